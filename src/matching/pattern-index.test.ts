import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  buildPatternIndex,
  type CompiledPattern,
  compileAnchoreSelector,
  compilePattern,
  type PatternIndex,
  type PatternIndexEntry,
  patternIndexSteps,
} from './index.ts'

const sorted = <T>(values: readonly T[]): T[] => [...values].sort()

const expectedIds = <Id>(entries: readonly { id: Id; pattern: CompiledPattern }[], event: unknown): Id[] => [
  ...new Set(entries.filter((e) => e.pattern.matches(event)).map((e) => e.id)),
]

describe('buildPatternIndex', () => {
  it('finds exactly the matching patterns among many', () => {
    const entries = [
      {
        id: 'acme-any',
        pattern: compileAnchoreSelector({ scope: 'account', account: 'acme', event: { type: '*' } }),
      },
      {
        id: 'acme-checks',
        pattern: compileAnchoreSelector({
          scope: 'account',
          account: 'acme',
          event: { type: 'user.checks.*' },
        }),
      },
      {
        id: 'acme-errors',
        pattern: compileAnchoreSelector({
          scope: 'account',
          account: 'acme',
          event: { type: '*', level: 'error' },
        }),
      },
      {
        id: 'other',
        pattern: compileAnchoreSelector({ scope: 'account', account: 'other', event: { type: '*' } }),
      },
      {
        id: 'global-feeds',
        pattern: compileAnchoreSelector({ scope: 'global', event: { type: '*.failed' } }),
      },
      { id: 'critical', pattern: compilePattern({ data: { severity: ['Critical'] } }) },
      { id: 'numeric', pattern: compilePattern({ data: { count: [{ numeric: ['>', 3] }] } }) },
      { id: 'no-subject', pattern: compilePattern({ subject: [{ exists: false }] }) },
      { id: 'everything', pattern: compilePattern({}) },
      { id: 'or', pattern: compilePattern({ $or: [{ level: ['warning'] }, { data: { count: [1] } }] }) },
    ]
    const index = buildPatternIndex(entries)
    assert.equal(index.size, entries.length)
    const events = [
      {
        account: 'acme',
        type: 'user.checks.tag.vulnerabilities.update',
        level: 'info',
        data: { severity: 'Critical' },
      },
      { account: 'acme', type: 'system.feeds.sync.failed', level: 'error', subject: 's', data: { count: 4 } },
      { account: 'other', type: 'user.image.analysis.completed', level: 'warning', data: { count: 1 } },
      { account: 'nobody', type: 'x' },
      'not an object',
    ]
    for (const event of events)
      assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)), JSON.stringify(event))
    assert.deepEqual(sorted(index.match(events[0])), [
      'acme-any',
      'acme-checks',
      'critical',
      'everything',
      'no-subject',
    ])
  })

  it('returns an id once even when several of its patterns match', () => {
    const index = buildPatternIndex([
      { id: 'a', pattern: compilePattern({ x: [1] }) },
      { id: 'a', pattern: compilePattern({ y: [2] }) },
      { id: 'b', pattern: compilePattern({ $or: [{ x: [1] }, { y: [2] }] }) },
    ])
    assert.deepEqual(sorted(index.match({ x: 1, y: 2 })), ['a', 'b'])
    assert.deepEqual(index.match({ x: 2 }), [])
  })

  it('keeps array elements consistent, as the reference evaluation does', () => {
    const entries = Array.from({ length: 12 }, (_, i) => ({
      id: i,
      pattern: compilePattern({
        data: { vulns: { severity: [i % 2 === 0 ? 'Critical' : 'Low'], fixed: [i % 3 === 0] } },
      }),
    }))
    const index = buildPatternIndex(entries)
    const event = {
      data: {
        vulns: [
          { severity: 'Critical', fixed: false },
          { severity: 'Low', fixed: true },
        ],
      },
    }
    assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)))
  })

  it('lets exists:false hold in one element of an array whose other elements have the field', () => {
    // Found by the differential property: the flat values at data.a are [0], but the element
    // {} lacks `a`, so the branch holds.
    const entries = [
      {
        id: 0,
        pattern: compilePattern({
          a: [{ exists: true }],
          $or: [{ a: [{ suffix: '' }] }, { data: { a: [{ exists: false }] } }],
        }),
      },
      { id: 1, pattern: compilePattern({ a: ['x'] }) },
      ...Array.from({ length: 6 }, (_, i) => ({
        id: 2 + i,
        pattern: compilePattern({ data: { a: [{ exists: false }], b: [i] } }),
      })),
    ]
    const index = buildPatternIndex(entries)
    for (const event of [
      { data: [{}, { a: 0 }], a: null },
      { data: [{ a: 1 }, { a: 0 }], a: null },
      { data: [{ b: 3 }, { a: 0, b: 4 }] },
      { data: { a: 0, b: 3 } },
    ])
      assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)), JSON.stringify(event))
    assert.deepEqual(index.match({ data: [{}, { a: 0 }], a: null }), [0])
  })

  it('indexes an empty list of patterns', () => {
    assert.deepEqual(buildPatternIndex([]).match({ a: 1 }), [])
  })

  it('finds the matches among 10,000 account selectors', () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => ({
      id: i,
      pattern: compileAnchoreSelector({
        scope: 'account',
        account: `account-${i % 1000}`,
        event: { type: Math.floor(i / 1000) % 2 === 0 ? 'user.image.analysis.completed' : 'user.checks.*' },
      }),
    }))
    const index = buildPatternIndex(entries)
    const event = { account: 'account-7', type: 'user.image.analysis.completed' }
    assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)))
    assert.equal(index.match(event).length, 5)
  })
})

// The differential property: on random patterns and events, the index returns exactly the
// ids whose pattern matches by the reference evaluation. Small vocabularies make matches,
// collisions of paths, values, prefixes and arrays of objects frequent.

const KEYS = ['a', 'b', 'c', 'data']
const STRINGS = [
  'x',
  'xy',
  'yx',
  'X',
  'XY',
  '',
  'a*b',
  'a\\b',
  '10.0.0.1',
  '10.1.2.3',
  '::1',
  '2001:db8::1',
  '5',
]
const NUMBERS = [0, 1, 5, -1, 2.5, 300, 1e9]

const scalar = fc.oneof(
  fc.constantFrom(...STRINGS),
  fc.constantFrom(...NUMBERS),
  fc.boolean(),
  fc.constant(null),
)

const eventObject: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{
  value: unknown
  object: Record<string, unknown>
}>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(scalar, { maxLength: 3 }),
    tie('object'),
    fc.array(fc.oneof(tie('object'), scalar), { maxLength: 3 }),
  ),
  object: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 4 }),
})).object

const text = fc.constantFrom('', 'x', 'y', 'X', 'xy', 'a', '10.', ':')
const wildcardText = fc.constantFrom('*', 'x*', '*y', 'x*y', '*x*', 'a\\*b', 'x', 'X*', '*\\\\b', '10.*')

const leafAlternative: fc.Arbitrary<unknown> = fc.oneof(
  scalar,
  scalar,
  text.map((t) => ({ prefix: t })),
  text.map((t) => ({ suffix: t })),
  text.map((t) => ({ 'equals-ignore-case': t })),
  text.map((t) => ({ prefix: { 'equals-ignore-case': t } })),
  text.map((t) => ({ suffix: { 'equals-ignore-case': t } })),
  wildcardText.map((w) => ({ wildcard: w })),
  fc.oneof(
    fc.constantFrom(...STRINGS).map((s) => ({ 'anything-but': s })),
    fc.constantFrom(...NUMBERS).map((n) => ({ 'anything-but': [n, 1] })),
    text.map((t) => ({ 'anything-but': { prefix: t } })),
    text.map((t) => ({ 'anything-but': { suffix: t } })),
    wildcardText.map((w) => ({ 'anything-but': { wildcard: w } })),
    text.map((t) => ({ 'anything-but': { 'equals-ignore-case': t } })),
  ),
  fc.constantFrom(
    { numeric: ['>', 0] },
    { numeric: ['>=', 1, '<', 5] },
    { numeric: ['=', 5] },
    { numeric: ['<=', -1] },
    { numeric: ['>', 2, '<=', 300] },
  ),
  fc.boolean().map((b) => ({ exists: b })),
  fc
    .constantFrom('10.0.0.0/8', '10.0.0.1/32', '::/0', '2001:db8::/32', '0.0.0.0/0')
    .map((c) => ({ cidr: c })),
)

/** Depth-bounded: at most three levels of nesting, `$or` branches one level shallower. */
const patternAt = (depth: number): fc.Arbitrary<Record<string, unknown>> => {
  const leaf = fc.array(leafAlternative, { minLength: 1, maxLength: 3 })
  const field =
    depth === 0
      ? leaf
      : fc.oneof({ weight: 3, arbitrary: leaf }, { weight: 1, arbitrary: patternAt(depth - 1) })
  const fields = fc.dictionary(fc.constantFrom(...KEYS), field, { minKeys: 1, maxKeys: 3 })
  if (depth === 0) return fields
  return fc
    .tuple(fields, fc.option(fc.array(patternAt(depth - 1), { minLength: 2, maxLength: 3 }), { freq: 4 }))
    .map(([f, or]) => (or === null ? f : { ...f, $or: or }))
}

const patternObject = patternAt(2)

const anchoreInput = fc.record({
  scope: fc.constantFrom('account' as const, 'global' as const),
  account: fc.constantFrom('x', 'xy', 'X'),
  event: fc.record({
    level: fc.constantFrom('*', 'info', 'error'),
    type: fc.constantFrom('*', 'x', 'x*', '*y', 'x*y', 'xy'),
    resource_type: fc.constantFrom('*', 'x', 'y*'),
  }),
})
const anchoreSelector = anchoreInput.map((s) => compileAnchoreSelector(s))

const anyPattern = fc.oneof(
  { weight: 3, arbitrary: patternObject.map((p) => compilePattern(p)) },
  { weight: 1, arbitrary: anchoreSelector },
  {
    weight: 1,
    arbitrary: fc
      .tuple(anchoreInput, patternObject)
      .map(([s, p]) => compileAnchoreSelector(s, compilePattern(p))),
  },
)

const envelope = fc.record(
  {
    account: fc.constantFrom('x', 'xy', 'X'),
    type: fc.constantFrom('x', 'xy', 'yx', 'xzy'),
    level: fc.constantFrom('info', 'error'),
    resourcetype: fc.constantFrom('x', 'yy'),
  },
  { requiredKeys: [] },
)

const anyEvent = fc.tuple(envelope, eventObject).map(([env, body]) => ({ ...body, ...env }))

describe('buildPatternIndex: differential property', () => {
  it('matches exactly what evaluating every pattern one by one matches', () => {
    fc.assert(
      fc.property(
        fc.array(anyPattern, { minLength: 1, maxLength: 40 }),
        fc.array(fc.oneof({ weight: 9, arbitrary: anyEvent }, { weight: 1, arbitrary: scalar }), {
          minLength: 1,
          maxLength: 8,
        }),
        (patterns, events) => {
          const entries = patterns.map((pattern, id) => ({ id, pattern }))
          const index = buildPatternIndex(entries)
          for (const event of events) {
            const actual = index.match(event)
            const expected = sorted(expectedIds(entries, event))
            assert.equal(new Set(actual).size, actual.length, 'an id was returned twice')
            assert.deepEqual(sorted(actual), expected, JSON.stringify(event))
          }
        },
      ),
      { numRuns: 2_000 },
    )
  })

  it('agrees on events built from the patterns’ own values', () => {
    // Random events rarely satisfy many conditions at once; replaying each pattern's exact
    // values as an event exercises the deep branches of the tree.
    const eventFrom = (pattern: unknown): unknown => {
      if (Array.isArray(pattern)) {
        const exact = pattern.find((v) => typeof v !== 'object' || v === null)
        return exact === undefined ? 'x' : exact
      }
      if (typeof pattern !== 'object' || pattern === null) return pattern
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(pattern)) if (k !== '$or') out[k] = eventFrom(v)
      return out
    }
    fc.assert(
      fc.property(fc.array(patternObject, { minLength: 1, maxLength: 40 }), (objects) => {
        const entries = objects.map((o, id) => ({ id, pattern: compilePattern(o) }))
        const index = buildPatternIndex(entries)
        for (const object of objects) {
          const event = eventFrom(object)
          assert.deepEqual(
            sorted(index.match(event)),
            sorted(expectedIds(entries, event)),
            JSON.stringify(event),
          )
          const doubled = { ...(event as Record<string, unknown>), data: [event, event] }
          assert.deepEqual(sorted(index.match(doubled)), sorted(expectedIds(entries, doubled)))
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('buildPatternIndex: events that repeat values', () => {
  const repeated = <T>(values: readonly T[], times: number): T[] =>
    Array.from({ length: values.length * times }, (_, i) => values[i % values.length] as T)

  it('enters each node once however often a value repeats, at nested splits alike', () => {
    const entries: { id: number; pattern: CompiledPattern }[] = []
    for (const a of ['a0', 'a1', 'a2'])
      for (const b of ['b0', 'b1', 'b2'])
        for (const c of ['c0', 'c1', 'c2'])
          for (let k = 0; k < 10; k++)
            entries.push({
              id: entries.length,
              pattern: compilePattern({ data: { a: [a], b: [b], c: [c] } }),
            })
    const index = buildPatternIndex(entries)
    const once = { data: { a: ['a0', 'a1'], b: ['b0'], c: ['c0', 'c2'] } }
    const expected = sorted(expectedIds(entries, once))
    assert.deepEqual(sorted(index.match(once)), expected)
    const visited = index.visited
    assert.ok(visited > 3, `${visited}`)
    // 200 of each: descending once per value entered the b split 400 times, the c split 80,000.
    const often = {
      data: { a: repeated(once.data.a, 200), b: repeated(once.data.b, 200), c: repeated(once.data.c, 200) },
    }
    assert.deepEqual(sorted(index.match(often)), expected)
    assert.equal(index.visited, visited)
  })

  it('enters a prefix or suffix branch once for all the values that have it', () => {
    const entries = [
      ...['user.', 'system.', 'admin.'].flatMap((prefix) =>
        Array.from({ length: 12 }, (_, k) => ({
          id: `${prefix}${k}`,
          pattern: compilePattern({ type: [{ prefix }], data: { n: [k % 3] } }),
        })),
      ),
      ...['.failed', '.done'].flatMap((suffix) =>
        Array.from({ length: 12 }, (_, k) => ({
          id: `${suffix}${k}`,
          pattern: compilePattern({ type: [{ suffix }], data: { n: [k % 3] } }),
        })),
      ),
    ]
    const index = buildPatternIndex(entries)
    const one = { type: ['user.x.failed'], data: { n: [0, 1] } }
    const expected = sorted(expectedIds(entries, one))
    assert.deepEqual(sorted(index.match(one)), expected)
    const visited = index.visited
    const many = {
      type: Array.from({ length: 2_000 }, (_, i) => `user.x${i}.failed`),
      data: { n: repeated([0, 1], 500) },
    }
    assert.deepEqual(sorted(index.match(many)), expected)
    assert.equal(index.visited, visited)
  })

  it('meets an array of thousands of findings as it meets one of each kind', () => {
    const severities = ['critical', 'high', 'medium', 'low']
    const kinds = ['npm', 'python', 'java', 'gem', 'os']
    const entries = severities.flatMap((severity) =>
      kinds.flatMap((type) =>
        [0, 1, 2].map((k) => ({
          id: `${severity}/${type}/${k}`,
          pattern: compileAnchoreSelector(
            { scope: 'account', account: 'acme', event: { type: 'herald.report.image.*' } },
            compilePattern({ data: { findings: { severity: [severity], type: [type] } } }),
          ),
        })),
      ),
    )
    const index = buildPatternIndex(entries)
    const event = (n: number) => ({
      account: 'acme',
      type: 'herald.report.image.analyzed',
      data: {
        findings: Array.from({ length: n }, (_, i) => ({
          id: `CVE-${i}`,
          severity: severities[i % 4],
          type: kinds[i % 5],
        })),
      },
    })
    const few = event(20)
    assert.deepEqual(sorted(index.match(few)), sorted(expectedIds(entries, few)))
    const visited = index.visited
    const many = event(8_000)
    assert.deepEqual(sorted(index.match(many)), sorted(expectedIds(entries, many)))
    assert.equal(index.visited, visited)
  })
})

describe('buildPatternIndex: shapes that stress the tree', () => {
  it('stays shallow with thousands of distinct paths', () => {
    const entries = Array.from({ length: 20_000 }, (_, i) => ({
      id: i,
      pattern: compilePattern({ data: { [`f${i >> 1}`]: [i % 2] } }),
    }))
    const index = buildPatternIndex(entries)
    const event = { data: { f7: 1, f9_999: 0, f9999: 0 } }
    assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)))
  })

  it('builds one pattern of thousands of fields, with or without $or, in steps that grow linearly with it', () => {
    /** The steps `patternIndexSteps` takes (each a bounded slice of work) and the index it builds. */
    const build = <Id>(entries: PatternIndexEntry<Id>[]): [number, PatternIndex<Id>] => {
      const steps = patternIndexSteps(entries)
      let count = 0
      for (let next = steps.next(); ; next = steps.next(), count++) if (next.done) return [count, next.value]
    }
    const wide = (fields: number, or: boolean) => {
      const pattern: Record<string, unknown> = {}
      for (let i = 0; i < fields; i++) pattern[`f${i}`] = [i]
      return compilePattern(or ? { ...pattern, $or: [{ a: [1] }, { b: [2] }] } : pattern)
    }
    const event = (fields: number) => ({
      b: 2,
      ...Object.fromEntries(Array.from({ length: fields }, (_, i) => [`f${i}`, i])),
    })
    for (const or of [true, false]) {
      const [small, smallIndex] = build([{ id: 'wide', pattern: wide(2_000, or) }])
      const [large, largeIndex] = build([{ id: 'wide', pattern: wide(8_000, or) }])
      // Sliced within the one pattern: it does not hold the event loop for its whole expansion.
      assert.ok(small >= 1, `${or}: ${small} steps`)
      // Four times the fields, about four times the work (copying each conjunct's conditions
      // once per field made it sixteen).
      assert.ok(large <= 4 * small + 4, `${or}: ${small} then ${large} steps`)
      assert.deepEqual(smallIndex.match(event(2_000)), ['wide'])
      assert.deepEqual(largeIndex.match(event(8_000)), ['wide'])
      assert.deepEqual(largeIndex.match({ ...event(8_000), f7999: 0 }), [])
    }
  })

  it('indexes conditions with many alternatives and many $or branches', () => {
    const values = Array.from({ length: 200 }, (_, i) => `v${i}`)
    const entries = [
      { id: 'many', pattern: compilePattern({ a: values, b: values }) },
      {
        id: 'wide-or',
        pattern: compilePattern({
          $or: values.slice(0, 10).map((v) => ({ a: [v] })),
          c: { $or: values.slice(0, 10).map((v) => ({ d: [v] })) },
        }),
      },
      ...Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, pattern: compilePattern({ a: [`v${i}`] }) })),
    ]
    const index = buildPatternIndex(entries)
    for (const event of [
      { a: 'v3', b: 'v150', c: { d: 'v9' } },
      { a: 'v3', c: { d: 'v10' } },
      { a: ['v1', 'v2'], b: 'x' },
    ])
      assert.deepEqual(sorted(index.match(event)), sorted(expectedIds(entries, event)), JSON.stringify(event))
  })
})
