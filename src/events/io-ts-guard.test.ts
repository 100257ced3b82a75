import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isRight } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { applyMutation, arbitraryFromSchema, mutationsOf } from './catalog/arbitraries.ts'
import { envelopeSchema } from './catalog/catalog.ts'
import { CloudEvent } from './cloudevent.ts'
import { compileGuard } from './io-ts-guard.ts'
import { withMessage } from './io-ts-issues.ts'

/** The guard answers as `is` does on every sample, and decode accepts whatever it accepts. */
const agree = (codec: t.Any, samples: readonly unknown[]) => {
  const guard = compileGuard(codec)
  for (const sample of samples) {
    const verdict = guard(sample)
    assert.equal(verdict, codec.is(sample), `${codec.name}: ${JSON.stringify(sample)}`)
    if (verdict) assert.ok(isRight(codec.decode(sample)), `${codec.name} decode: ${JSON.stringify(sample)}`)
  }
}

const values = [undefined, null, true, false, 0, 1.5, -1, '', 'x', 'info', [], [1], ['x'], {}, { a: 'x' }]

describe('compileGuard', () => {
  it('reads primitives, literals and keyofs as io-ts does', () => {
    for (const codec of [t.string, t.number, t.boolean, t.null, t.unknown, t.literal('1.0'), t.literal(3)])
      agree(codec, [...values, '1.0', 3])
    agree(t.keyof({ info: null, warning: null }), [...values, 'warning', 'toString', '__proto__'])
  })

  it('calls refinement predicates and sees through withMessage', () => {
    const nonEmpty = t.refinement(t.string, (s) => s.length > 0, 'NonEmpty')
    agree(nonEmpty, values)
    agree(
      withMessage(nonEmpty, () => 'must not be empty'),
      values,
    )
    agree(t.union([nonEmpty, t.null]), values)
  })

  it('tells a missing required key from one that holds undefined, as io-ts does', () => {
    const codec = t.type({ a: t.unknown, b: t.union([t.string, t.undefined]) })
    agree(codec, [{}, { a: 1 }, { a: undefined, b: undefined }, { b: 'x' }, { a: null, b: 'x' }, [], null])
  })

  it('walks interfaces, partials, intersections, arrays and string records', () => {
    const item = t.intersection([
      t.type({ id: t.string }),
      t.partial({ n: t.number, tags: t.array(t.string) }),
    ])
    const codec = t.type({ items: t.array(item), meta: t.record(t.string, t.string) })
    agree(codec, [
      { items: [], meta: {} },
      { items: [{ id: 'a' }, { id: 'b', n: 1, tags: ['x'] }], meta: { k: 'v' } },
      { items: [{ id: 'a', n: 'one' }], meta: {} },
      { items: [{ id: 'a', tags: [1] }], meta: {} },
      { items: [{}], meta: {} },
      { items: {}, meta: {} },
      { items: [], meta: { k: 1 } },
      { items: [], meta: [] },
      { items: [] },
    ])
  })

  it('asks codecs it does not know through their own is', () => {
    agree(t.tuple([t.string, t.number]), [['a', 1], ['a', 'b'], [], 'a'])
    agree(t.record(t.literal('a'), t.string), [{ a: 'x' }, { a: 1 }, {}, { a: 'x', b: 'y' }])
  })

  it('never accepts what is rejects: an array with holes', () => {
    const guard = compileGuard(t.array(t.string))
    // biome-ignore lint/suspicious/noSparseArray: the case under test
    const holes = ['a', , 'b']
    assert.equal(t.array(t.string).is(holes), true)
    assert.equal(guard(holes), false)
  })

  it('agrees with the envelope codec on generated envelopes and their mutations', () => {
    const guard = compileGuard(CloudEvent)
    const arbitrary = arbitraryFromSchema(envelopeSchema, envelopeSchema, { stringUnit: 'binary-ascii' })
    const samples = arbitrary.chain((event) =>
      fc.oneof(
        fc.constant(event),
        fc.constantFrom(...mutationsOf(event, envelopeSchema)).map((m) => applyMutation(event, m)),
      ),
    )
    fc.assert(
      fc.property(samples, (sample) => {
        assert.equal(guard(sample), CloudEvent.is(sample), JSON.stringify(sample))
      }),
      { numRuns: 500 },
    )
  })
})
