import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { matchesSelector, wildcardMatches } from './match.ts'
import { anEvent, aSelector } from './test-fixtures.ts'

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

  it('stays fast on patterns that make naive back-tracking exponential', () => {
    const started = performance.now()
    assert.equal(wildcardMatches(`${'*a'.repeat(30)}b`, 'a'.repeat(5_000)), false)
    assert.ok(performance.now() - started < 1_000)
  })
})

describe('matchesSelector', () => {
  const event = anEvent()
  const cases: [
    name: string,
    selector: ReturnType<typeof aSelector>,
    ev: ReturnType<typeof anEvent>,
    expected: boolean,
  ][] = [
    ['everything of its account', aSelector(), event, true],
    ['not another account in account scope', aSelector({}, { account: 'other' }), event, false],
    ['another account in global scope', aSelector({}, { account: 'admin', scope: 'global' }), event, true],
    ['a type prefix wildcard', aSelector({ type: 'user.checks.*' }), event, true],
    ['not another type family', aSelector({ type: 'system.*' }), event, false],
    ['the exact type', aSelector({ type: 'user.checks.tag.vulnerabilities.update' }), event, true],
    ['the level asked for', aSelector({ level: 'info' }), event, true],
    ['not another level', aSelector({ level: 'error' }), event, false],
    [
      'not a specific level when the event has none',
      aSelector({ level: 'info' }),
      anEvent({ level: undefined }),
      false,
    ],
    ['any level when the event has none', aSelector({ level: '*' }), anEvent({ level: undefined }), true],
    ['the resource type asked for', aSelector({ resource_type: 'tag' }), event, true],
    ['not another resource type', aSelector({ resource_type: 'image' }), event, false],
    [
      'not a specific resource type when the event has none',
      aSelector({ resource_type: 'tag' }),
      anEvent({ resourcetype: undefined }),
      false,
    ],
    ['any resource type when the event has none', aSelector(), anEvent({ resourcetype: undefined }), true],
    [
      'all three criteria together',
      aSelector({ level: 'error', type: 'system.*', resource_type: '*' }),
      anEvent({ type: 'system.feeds.sync.failed', level: 'error' }),
      true,
    ],
    [
      'none of the criteria may fail',
      aSelector({ level: 'error', type: 'system.*', resource_type: 'feed' }),
      anEvent({ type: 'system.feeds.sync.failed', level: 'error' }),
      false,
    ],
  ]
  for (const [name, selector, ev, expected] of cases) {
    it(`${expected ? 'matches' : 'rejects'}: ${name}`, () => {
      assert.equal(matchesSelector(selector, ev), expected)
    })
  }
})
