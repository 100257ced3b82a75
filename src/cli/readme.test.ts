import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

describe('README examples of the client commands', () => {
  it('pass the token through HERALD_TOKEN, never --token: npm echoes the script line and ps shows it', () => {
    const lines = README.split('\n').filter((line) =>
      /herald -- (publish|generate|rebuild-reports|log-reset)\b/.test(line),
    )
    assert.ok(lines.length >= 4, 'the examples are still there')
    for (const line of lines) assert.doesNotMatch(line, /--token/, line)
  })
})
