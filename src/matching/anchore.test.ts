import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compileAnchoreSelector, compilePattern, InvalidPatternError } from './index.ts'

const event = {
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/policy',
  type: 'user.checks.tag.vulnerabilities.update',
  account: 'acme',
  level: 'info',
  resourcetype: 'tag',
  data: { severity: 'High' },
}

const selector = (
  e: Partial<{ level: string; type: string; resource_type: string }> = {},
  scope: 'account' | 'global' = 'account',
  account = 'acme',
) => ({ scope, account, event: { level: '*', type: '*', resource_type: '*', ...e } })

describe('compileAnchoreSelector', () => {
  const { level: _, ...withoutLevel } = event
  const { resourcetype: __, ...withoutResource } = event
  const rows: [name: string, input: ReturnType<typeof selector>, ev: unknown, expected: boolean][] = [
    ['everything of its account', selector(), event, true],
    ['not another account in account scope', selector({}, 'account', 'other'), event, false],
    ['another account in global scope', selector({}, 'global', 'admin'), event, true],
    ['a type prefix wildcard', selector({ type: 'user.checks.*' }), event, true],
    ['not another type family', selector({ type: 'system.*' }), event, false],
    ['the exact type', selector({ type: 'user.checks.tag.vulnerabilities.update' }), event, true],
    ['not a longer exact type', selector({ type: 'user.checks.tag' }), event, false],
    ['a type suffix wildcard', selector({ type: '*.update' }), event, true],
    ['a type infix wildcard', selector({ type: 'user.*.update' }), event, true],
    ['a type infix wildcard, no match', selector({ type: 'user.*.completed' }), event, false],
    ['stars in a row are one star', selector({ type: 'user.**.update' }), event, true],
    ['a type with regex-looking characters is literal', selector({ type: 'user.checks.?' }), event, false],
    ['backslashes are literal', selector({ type: 'a\\*' }), { ...event, type: 'a\\b' }, true],
    ['the level asked for', selector({ level: 'info' }), event, true],
    ['not another level', selector({ level: 'error' }), event, false],
    ['not a specific level when the event has none', selector({ level: 'info' }), withoutLevel, false],
    ['any level when the event has none', selector({ level: '*' }), withoutLevel, true],
    ['the resource type asked for', selector({ resource_type: 'tag' }), event, true],
    ['a resource type wildcard', selector({ resource_type: 't*' }), event, true],
    ['not another resource type', selector({ resource_type: 'image' }), event, false],
    [
      'not a specific resource type when the event has none',
      selector({ resource_type: 'tag' }),
      withoutResource,
      false,
    ],
    ['any resource type when the event has none', selector(), withoutResource, true],
    [
      'only a lone * accepts a missing resource type',
      selector({ resource_type: '**' }),
      withoutResource,
      false,
    ],
    ['a run of stars accepts any present resource type', selector({ resource_type: '**' }), event, true],
  ]
  for (const [name, input, ev, expected] of rows)
    it(`${expected ? 'matches' : 'rejects'}: ${name}`, () => {
      assert.equal(compileAnchoreSelector(input).matches(ev), expected)
    })

  it('compiles to the same representation as content patterns', () => {
    const { root } = compileAnchoreSelector(
      selector({ level: 'error', type: 'system.*', resource_type: 'feed' }),
    )
    assert.deepEqual(
      root,
      compilePattern({
        account: ['acme'],
        type: [{ prefix: 'system.' }],
        level: ['error'],
        resourcetype: ['feed'],
      }).root,
    )
    assert.deepEqual(compileAnchoreSelector(selector({}, 'global')).root, { fields: [], anyOf: [] })
  })

  it('AND-s a content pattern, merging nested objects', () => {
    const content = compilePattern({ account: ['acme'], data: { severity: ['High', 'Critical'] } })
    const combined = compileAnchoreSelector(selector({ type: 'user.*' }), content)
    assert.equal(combined.matches(event), true)
    assert.equal(combined.matches({ ...event, data: { severity: 'Low' } }), false)
    assert.equal(combined.matches({ ...event, type: 'system.x' }), false)
    const nested = compileAnchoreSelector(
      selector(),
      compilePattern({ data: { severity: ['High'] }, $or: [{ level: ['info'] }, { level: ['error'] }] }),
    )
    assert.equal(nested.matches(event), true)
    assert.equal(nested.matches({ ...event, level: 'warning' }), false)
  })

  it('names the offending fields of an invalid selector', () => {
    assert.throws(
      () => compileAnchoreSelector({ scope: 'team', event: { type: '', level: 'fatal', resource_type: 3 } }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidPatternError)
        assert.deepEqual(
          error.issues.map((i) => i.path),
          ['scope', 'event.type', 'event.level', 'event.resource_type'],
        )
        return true
      },
    )
    assert.throws(
      () => compileAnchoreSelector({ scope: 'account', event: { type: '*' } }),
      /account: must be/,
    )
    assert.throws(() => compileAnchoreSelector({ scope: 'global' }), /event: must be a JSON object/)
    assert.throws(() => compileAnchoreSelector('x'), /\(root\)/)
    assert.throws(
      () => compileAnchoreSelector({ scope: 'global', event: { type: '' } }, undefined, { path: 'selector' }),
      /selector\.event\.type: must be/,
    )
  })
})
