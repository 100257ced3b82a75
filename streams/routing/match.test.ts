import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { wildcardMatches } from './match.ts'

describe('wildcardMatches', () => {
  const cases: [pattern: string, value: string, expected: boolean][] = [
    ['*', 'user.checks.tag.vulnerabilities.update', true],
    ['*', '', true],
    ['user.checks.*', 'user.checks.tag.vulnerabilities.update', true],
    ['user.checks.*', 'user.checks.', true],
    ['user.checks.*', 'user.checks', false],
    ['user.checks.*', 'system.checks.tag', false],
    ['user.*.update', 'user.checks.tag.policy_evaluation.update', true],
    ['user.*.update', 'user.checks.tag.policy_evaluation.updated', false],
    ['*.failed', 'system.feeds.sync.failed', true],
    ['*feeds*', 'system.feeds.sync.failed', true],
    ['a*b*c', 'abxbc', true],
    ['a*b*c', 'acb', false],
    ['**', 'anything', true],
    ['user.image.analysis.completed', 'user.image.analysis.completed', true],
    ['user.image.analysis.completed', 'user.image.analysis.completed.x', false],
    ['user.image.analysis.completed', 'user.image.analysis', false],
    // Only `*` is special: dots and question marks are literal.
    ['user.image', 'userximage', false],
    ['user?', 'users', false],
    ['', '', true],
    ['', 'x', false],
  ]
  for (const [pattern, value, expected] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(value)}`, () => {
      assert.equal(wildcardMatches(pattern, value), expected)
    })
  }

  it('answers patterns that make naive back-tracking exponential', () => {
    assert.equal(wildcardMatches(`${'*a'.repeat(30)}b`, 'a'.repeat(5_000)), false)
  })
})
