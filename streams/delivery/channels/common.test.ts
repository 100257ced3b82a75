import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { summarise } from './common.ts'

describe('summarise', () => {
  it('makes one printable line of at most 300 characters, never splitting a character', () => {
    assert.equal(summarise(' a\r\n\tb\u0000 '), 'a b')
    // 😀 is two UTF-16 units, and the cut falls between them: it is left out whole.
    const cut = summarise(`${'a'.repeat(298)}😀${'b'.repeat(10)}`)
    assert.equal(cut, `${'a'.repeat(298)}…`)
    assert.ok(cut.isWellFormed())
    assert.equal(summarise('a'.repeat(300)), 'a'.repeat(300))
  })
})
