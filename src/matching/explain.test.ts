import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  compileAnchoreSelector,
  compilePattern,
  explainPattern,
  explainSelector,
  type PatternNode,
} from './index.ts'

const failureOf = (explanation: ReturnType<typeof explainPattern>) =>
  explanation.matched ? undefined : explanation.failure

describe('explainPattern', () => {
  it('says matched for a matching event', () => {
    const pattern = compilePattern({ type: [{ prefix: 'user.' }], data: { severity: ['critical'] } })
    assert.deepEqual(
      explainPattern(pattern, { type: 'user.checks.x', data: { severity: 'critical' } }, { path: 'pattern' }),
      { matched: true },
    )
  })

  it('names the first failing value condition with expected and actual', () => {
    const pattern = compilePattern({ data: { severity: ['critical'] } })
    assert.deepEqual(failureOf(explainPattern(pattern, { data: { severity: 'low' } }, { path: 'pattern' })), {
      path: 'pattern.data.severity',
      expected: '"critical"',
      actual: '"low"',
      message: 'pattern.data.severity: none of ["critical"] matched "low"',
    })
    assert.equal(
      failureOf(explainPattern(compilePattern({ data: { severity: ['critical', 'high'] } }), { data: {} }))
        ?.message,
      'data.severity: expected one of ["critical", "high"], got nothing',
    )
  })

  it('describes operators in words', () => {
    const cases: [unknown, unknown, string][] = [
      [{ n: [{ numeric: ['>', 0, '<=', 5] }] }, { n: 9 }, 'n: expected a number > 0 and <= 5, got 9'],
      [{ n: [{ numeric: ['=', 3] }] }, { n: '3' }, 'n: expected a number = 3, got "3"'],
      [
        { s: [{ prefix: { 'equals-ignore-case': 'ab' } }] },
        { s: 'x' },
        's: expected prefix "ab" (ignoring case), got "x"',
      ],
      [{ s: [{ 'anything-but': ['a', 'b'] }] }, { s: 'a' }, 's: expected anything but "a" or "b", got "a"'],
      [{ s: [{ exists: false }] }, { s: 1 }, 's: expected absent, got 1'],
      [{ s: [{ exists: true }] }, {}, 's: expected present, got nothing'],
      [
        { ip: [{ cidr: '10.0.0.0/8' }] },
        { ip: '11.0.0.1' },
        'ip: expected an address in 10.0.0.0/8, got "11.0.0.1"',
      ],
      [
        { s: [{ wildcard: 'a*b' }, 'c'] },
        { s: ['x', 'y'] },
        's: expected wildcard "a*b" or "c", got ["x", "y"]',
      ],
      [{ s: ['x'] }, { s: { nested: 1 } }, 's: expected "x", got an object'],
    ]
    for (const [pattern, event, message] of cases)
      assert.equal(failureOf(explainPattern(compilePattern(pattern), event))?.message, message)
  })

  it('explains a nested pattern over an array of objects by its first element', () => {
    const pattern = compilePattern({ data: { vulns: { severity: ['Critical'], fixed: [true] } } })
    const event = {
      data: {
        vulns: [
          { severity: 'Critical', fixed: false },
          { severity: 'Low', fixed: true },
        ],
      },
    }
    assert.equal(pattern.matches(event), false)
    const failure = failureOf(explainPattern(pattern, event))
    assert.equal(failure?.path, 'data.vulns.fixed')
    assert.equal(
      failure?.message,
      'data.vulns: no element of the array matched; in the first, data.vulns.fixed: none of [true] matched false (and 1 more failed)',
    )
    assert.equal(
      failureOf(explainPattern(pattern, { data: { vulns: [{ severity: 'Low', fixed: true }] } }))?.message,
      'data.vulns.severity: none of ["Critical"] matched "Low"',
    )
  })

  it('describes only the failure it reports, not every failing element of an array', () => {
    // A pattern written by hand, so that describing its alternatives can be counted: each
    // description reads an alternative's value, compiling it reads each once.
    let reads = 0
    const severity = (text: string) => ({
      kind: 'exact' as const,
      get value() {
        reads++
        return text
      },
    })
    const pattern: PatternNode = {
      fields: [
        {
          kind: 'object',
          key: 'findings',
          node: {
            fields: [{ kind: 'leaf', key: 'severity', matchers: [severity('critical'), severity('high')] }],
            anyOf: [],
          },
        },
      ],
      anyOf: [],
    }
    const event = { findings: Array.from({ length: 1_000 }, (_, i) => ({ id: i, severity: 'low' })) }
    explainPattern(pattern, event)
    reads = 0
    const failure = failureOf(explainPattern(pattern, event))
    assert.equal(
      failure?.message,
      'findings: no element of the array matched; in the first, findings.severity: none of ["critical", "high"] matched "low" (and 999 more failed)',
    )
    // The first element's failure described (its expected and its message), once.
    assert.ok(reads <= 4, `${reads} reads`)
  })

  it('lists every branch of an $or that failed', () => {
    const pattern = compilePattern({
      $or: [{ level: ['error'] }, { data: { count: [{ numeric: ['>', 3] }] } }],
    })
    const failure = failureOf(
      explainPattern(pattern, { level: 'info', data: { count: 1 } }, { path: 'pattern' }),
    )
    assert.equal(failure?.path, 'pattern.$or')
    assert.equal(
      failure?.message,
      'pattern.$or: no branch matched: pattern.$or[0].level: none of ["error"] matched "info"; ' +
        'pattern.$or[1].data.count: expected a number > 3, got 1',
    )
  })

  it('quotes keys that are not plain names, as compile errors do', () => {
    const failure = failureOf(
      explainPattern(compilePattern({ data: { 'a.b': ['x'] } }), { data: { 'a.b': 'y' } }),
    )
    assert.equal(failure?.path, 'data["a.b"]')
  })

  it('treats inherited names as absent, as the evaluation does', () => {
    const pattern = compilePattern({ constructor: [{ exists: true }] })
    assert.equal(pattern.matches({}), false)
    assert.equal(failureOf(explainPattern(pattern, {}))?.actual, 'nothing')
  })
})

describe('explainSelector', () => {
  const selector = {
    scope: 'account' as const,
    account: 'acme',
    event: { level: '*', type: 'user.image.*', resource_type: '*' },
  }

  it('reports the selector’s own fields as the user wrote them', () => {
    const failure = failureOf(
      explainSelector(selector, undefined, { account: 'acme', type: 'system.feeds.sync.failed' }),
    )
    assert.deepEqual(failure, {
      path: 'event.type',
      expected: '"user.image.*"',
      actual: '"system.feeds.sync.failed"',
      message: 'event.type: expected "user.image.*", got "system.feeds.sync.failed"',
    })
    assert.equal(
      failureOf(explainSelector(selector, undefined, { account: 'globex', type: 'user.image.x' }))?.message,
      'account: expected "acme" (account scope), got "globex"',
    )
    assert.equal(
      failureOf(
        explainSelector(
          { ...selector, event: { level: 'error', type: '*', resource_type: 'image*' } },
          undefined,
          { account: 'acme', type: 'x', level: 'error' },
        ),
      )?.message,
      'event.resource_type: expected "image*", got nothing',
    )
  })

  it('then the content pattern, under `pattern`', () => {
    const content = compilePattern({ data: { severity: ['critical'] } })
    const event = { account: 'acme', type: 'user.image.analysis.completed', data: { severity: 'low' } }
    assert.equal(
      failureOf(explainSelector(selector, content, event))?.message,
      'pattern.data.severity: none of ["critical"] matched "low"',
    )
    assert.deepEqual(explainSelector(selector, content, { ...event, data: { severity: 'critical' } }), {
      matched: true,
    })
  })
})

// The differential property: explain says matched exactly when the compiled evaluation does.
// Small vocabularies make matches, shared paths, arrays of objects and $or frequent.

const KEYS = ['a', 'b', 'data', 'constructor']
const STRINGS = ['x', 'xy', 'X', '', 'a*b', '10.0.0.1', '2001:db8::1', '5']
const NUMBERS = [0, 1, 5, -1, 2.5, 300]
const scalar = fc.oneof(
  fc.constantFrom(...STRINGS),
  fc.constantFrom(...NUMBERS),
  fc.boolean(),
  fc.constant(null),
)

const eventObject = fc.letrec<{ value: unknown; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(scalar, { maxLength: 3 }),
    tie('object'),
    fc.array(fc.oneof(tie('object'), scalar, fc.array(tie('object'), { maxLength: 2 })), { maxLength: 3 }),
  ),
  object: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 4 }),
})).object

const text = fc.constantFrom('', 'x', 'X', 'xy', '10.')
const alternative: fc.Arbitrary<unknown> = fc.oneof(
  scalar,
  text.map((t) => ({ prefix: t })),
  text.map((t) => ({ suffix: { 'equals-ignore-case': t } })),
  text.map((t) => ({ 'equals-ignore-case': t })),
  fc.constantFrom('x*', '*y', 'a\\*b', '*').map((w) => ({ wildcard: w })),
  fc.oneof(
    fc.constantFrom(...STRINGS).map((s) => ({ 'anything-but': s })),
    fc.constantFrom(...NUMBERS).map((n) => ({ 'anything-but': [n, 1] })),
    text.map((t) => ({ 'anything-but': { prefix: t } })),
  ),
  fc.constantFrom({ numeric: ['>', 0] }, { numeric: ['>=', 1, '<', 5] }, { numeric: ['=', 5] }),
  fc.boolean().map((b) => ({ exists: b })),
  fc.constantFrom('10.0.0.0/8', '2001:db8::/32').map((c) => ({ cidr: c })),
)

const patternAt = (depth: number): fc.Arbitrary<Record<string, unknown>> => {
  const leaf = fc.array(alternative, { minLength: 1, maxLength: 3 })
  const field =
    depth === 0
      ? leaf
      : fc.oneof({ weight: 3, arbitrary: leaf }, { weight: 1, arbitrary: patternAt(depth - 1) })
  const fields = fc.dictionary(fc.constantFrom(...KEYS), field, { minKeys: 1, maxKeys: 3 })
  if (depth === 0) return fields
  return fc
    .tuple(fields, fc.option(fc.array(patternAt(depth - 1), { minLength: 2, maxLength: 3 }), { freq: 3 }))
    .map(([f, or]) => (or === null ? f : { ...f, $or: or }))
}

const anchore = fc.record({
  scope: fc.constantFrom('account' as const, 'global' as const),
  account: fc.constantFrom('x', 'xy'),
  event: fc.record({
    level: fc.constantFrom('*', 'info', 'error'),
    type: fc.constantFrom('*', 'x', 'x*', '*y', 'x*y'),
    resource_type: fc.constantFrom('*', 'x', 'y*'),
  }),
})

const envelope = fc.record(
  {
    account: fc.constantFrom('x', 'xy'),
    type: fc.constantFrom('x', 'xy', 'xzy'),
    level: fc.constantFrom('info', 'error'),
    resourcetype: fc.constantFrom('x', 'yy'),
  },
  { requiredKeys: [] },
)
const anyEvent = fc.oneof(
  { weight: 9, arbitrary: fc.tuple(envelope, eventObject).map(([env, body]) => ({ ...body, ...env })) },
  { weight: 1, arbitrary: scalar },
)

describe('explain: differential property against the compiler', () => {
  it('matched exactly when compilePattern(…).matches, with a failure otherwise', () => {
    fc.assert(
      fc.property(patternAt(2), fc.array(anyEvent, { minLength: 1, maxLength: 6 }), (pattern, events) => {
        const compiled = compilePattern(pattern)
        for (const event of events) {
          const explanation = explainPattern(compiled, event, { path: 'pattern' })
          assert.equal(explanation.matched, compiled.matches(event), JSON.stringify({ pattern, event }))
          if (!explanation.matched) assert.match(explanation.failure.message, /^pattern[.[]/)
        }
      }),
      { numRuns: 3_000 },
    )
  })

  it('agrees on events built from the pattern’s own values', () => {
    const eventFrom = (pattern: unknown): unknown => {
      if (Array.isArray(pattern)) return pattern.find((v) => typeof v !== 'object' || v === null) ?? 'x'
      if (typeof pattern !== 'object' || pattern === null) return pattern
      return Object.fromEntries(
        Object.entries(pattern)
          .filter(([k]) => k !== '$or')
          .map(([k, v]) => [k, eventFrom(v)]),
      )
    }
    fc.assert(
      fc.property(patternAt(2), (pattern) => {
        const compiled = compilePattern(pattern)
        const event = eventFrom(pattern) as Record<string, unknown>
        for (const e of [event, { ...event, data: [event, {}] }])
          assert.equal(
            explainPattern(compiled, e).matched,
            compiled.matches(e),
            JSON.stringify({ pattern, e }),
          )
      }),
      { numRuns: 1_000 },
    )
  })

  it('matched exactly when compileAnchoreSelector(selector, content).matches', () => {
    fc.assert(
      fc.property(
        anchore,
        fc.option(patternAt(1)),
        fc.array(anyEvent, { minLength: 1, maxLength: 6 }),
        (s, p, events) => {
          const content = p === null ? undefined : compilePattern(p)
          const compiled = compileAnchoreSelector(s, content)
          for (const event of events)
            assert.equal(
              explainSelector(s, content, event).matched,
              compiled.matches(event),
              JSON.stringify({ s, p, event }),
            )
        },
      ),
      { numRuns: 2_000 },
    )
  })
})
