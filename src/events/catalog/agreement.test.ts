import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import type { ValidateFunction } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FormatsPlugin } from 'ajv-formats'
import fc from 'fast-check'
import { isRight } from 'fp-ts/lib/Either.js'
import type * as t from 'io-ts'
import { fixturesOf } from '../../../schemas/fixtures.ts'
import { ACCOUNT_NAME } from '../../access/index.ts'
import { decodeCloudEvent } from '../cloudevent.ts'
import { compileGuard, type Guard } from '../io-ts-guard.ts'
import { applyMutation, arbitraryFromSchema, type Json, mutationsOf } from './arbitraries.ts'
import { type EventTypeEntry, envelopeSchema, eventTypes } from './catalog.ts'
import {
  MAX_COUNT,
  NON_BLANK_STRING_ATTRIBUTE_PATTERN,
  NON_EMPTY_STRING_ATTRIBUTE_PATTERN,
  STRING_ATTRIBUTE_PATTERN,
  TIMESTAMP_PATTERN,
  URI_PATTERN,
  URI_REFERENCE_PATTERN,
} from './formats.ts'

// The wire side is ajv as producers and the schema registry run it: draft 2020-12, formats
// checked. Strict mode too, so a schema using a keyword ajv would ignore fails here.
const addFormats = createRequire(import.meta.url)('ajv-formats') as FormatsPlugin
const ajv = new Ajv2020({ strict: true, allErrors: true })
addFormats(ajv)

const validators = new Map<string, ValidateFunction>(eventTypes.map((e) => [e.type, ajv.compile(e.schema)]))
const guards = new Map<string, Guard>(eventTypes.map((e) => [e.type, compileGuard(e.dataCodec)]))
const envelopeValidator = ajv.compile(envelopeSchema)

/**
 * Both verdicts on one document: the codec's (checking its `is` and the compiled guard the
 * decoder uses against `decode`) and the schema's.
 */
const verdicts = (entry: EventTypeEntry, data: unknown) => {
  const codec: t.Mixed = entry.dataCodec
  const decoded = isRight(codec.decode(data))
  assert.equal(codec.is(data), decoded, `${entry.type}: the codec's is and decode disagree`)
  assert.equal(
    (guards.get(entry.type) as Guard)(data),
    decoded,
    `${entry.type}: the compiled guard and decode disagree`,
  )
  return { codec: decoded, schema: (validators.get(entry.type) as ValidateFunction)(data) }
}

const show = (value: unknown) => JSON.stringify(value)?.slice(0, 400)

describe('every data codec and its wire schema accept and reject the same fixtures', () => {
  for (const entry of eventTypes) {
    it(entry.type, () => {
      const fixtures = fixturesOf(entry.type)
      assert.ok(fixtures.valid.length > 0 && fixtures.invalid.length > 0, 'needs valid and invalid fixtures')
      for (const data of fixtures.valid) {
        assert.deepEqual(verdicts(entry, data), { codec: true, schema: true }, `valid: ${show(data)}`)
      }
      for (const { because, data } of fixtures.invalid) {
        assert.deepEqual(
          verdicts(entry, data),
          { codec: false, schema: false },
          `invalid (${because}): ${show(data)}`,
        )
      }
      // Each valid fixture without each of its type's required fields, and non-objects.
      const required = (entry.schema.required ?? []) as string[]
      assert.ok(required.length > 0, 'every type requires at least one field')
      for (const data of fixtures.valid) {
        for (const key of required) {
          const { [key]: _, ...without } = data as Record<string, Json>
          assert.deepEqual(
            verdicts(entry, without),
            { codec: false, schema: false },
            `without ${key}: ${show(without)}`,
          )
        }
      }
      for (const data of [undefined, null, 'x', 42, true, [], [fixtures.valid[0]]]) {
        assert.deepEqual(
          verdicts(entry, data),
          { codec: false, schema: false },
          `not an object: ${show(data)}`,
        )
      }
    })
  }
})

describe('generated documents (fast-check)', () => {
  for (const entry of eventTypes) {
    const arbitrary = arbitraryFromSchema(entry.schema)
    it(`${entry.type}: valid data is accepted by both`, () => {
      fc.assert(
        fc.property(arbitrary, (data) => {
          assert.deepEqual(verdicts(entry, data), { codec: true, schema: true }, show(data))
        }),
        { numRuns: 150 },
      )
    })
    it(`${entry.type}: every single mutation is rejected by both`, () => {
      const mutated = arbitrary.chain((data) => {
        const mutations = mutationsOf(data, entry.schema)
        return fc
          .constantFrom(...mutations)
          .map((mutation) => ({ mutation, data: applyMutation(data, mutation) }))
      })
      fc.assert(
        fc.property(mutated, ({ mutation, data }) => {
          assert.deepEqual(
            verdicts(entry, data),
            { codec: false, schema: false },
            `${mutation.description} at ${mutation.path.join('.') || '(root)'}: ${show(data)}`,
          )
        }),
        { numRuns: 300 },
      )
    })
  }
})

interface EnvelopeFixtures {
  readonly valid: readonly Json[]
  readonly invalid: readonly { readonly because: string; readonly event: Json }[]
  readonly divergent: readonly { readonly because: string; readonly event: Json }[]
}

describe('the data schemas', () => {
  it('bound every integer as the codec bounds a count, to what the tables hold', () => {
    let integers = 0
    const walk = (node: unknown, path: string) => {
      if (typeof node !== 'object' || node === null) return
      const schema = node as Record<string, unknown>
      if (schema.type === 'integer') {
        integers++
        assert.deepEqual([schema.minimum, schema.maximum], [0, MAX_COUNT], path)
      }
      for (const [key, value] of Object.entries(schema)) walk(value, `${path}/${key}`)
    }
    for (const entry of eventTypes) walk(entry.schema, entry.type)
    assert.ok(integers > 0)
  })
})

describe('the envelope codec and cloudevent.schema.json', () => {
  const fixtures = fixturesOf('cloudevent') as unknown as EnvelopeFixtures
  const both = (event: unknown) => ({ codec: decodeCloudEvent(event).ok, schema: envelopeValidator(event) })

  it('accept and reject the same fixtures', () => {
    for (const event of fixtures.valid)
      assert.deepEqual(both(event), { codec: true, schema: true }, show(event))
    for (const { because, event } of fixtures.invalid) {
      assert.deepEqual(both(event), { codec: false, schema: false }, `${because}: ${show(event)}`)
    }
  })

  it('state one rule for account names, the one tokens follow', () => {
    const account = (envelopeSchema.properties as Record<string, { pattern?: string }>).account
    assert.equal(account?.pattern, ACCOUNT_NAME.source)
  })

  it('state the codec’s rule for timestamps wherever one is asked for, data included', () => {
    const timestamps: string[] = []
    const walk = (node: unknown, path: string) => {
      // Arrays too: their entries are their indices.
      if (typeof node === 'object' && node !== null) {
        const schema = node as Record<string, unknown>
        if (schema.format === 'date-time') {
          timestamps.push(path)
          assert.equal(schema.pattern, TIMESTAMP_PATTERN, path)
        }
        for (const [key, value] of Object.entries(schema)) walk(value, `${path}/${key}`)
      }
    }
    walk(envelopeSchema, 'cloudevent')
    for (const entry of eventTypes) walk(entry.schema, entry.type)
    assert.ok(timestamps.length > 1)
  })

  it('state the codec’s rule for string attributes, extension attributes included', () => {
    const properties = envelopeSchema.properties as Record<string, { pattern?: string }>
    for (const name of ['id', 'type'])
      assert.equal(properties[name]?.pattern, NON_BLANK_STRING_ATTRIBUTE_PATTERN, name)
    for (const name of ['subject', 'resourcetype', 'subtype'])
      assert.equal(properties[name]?.pattern, NON_EMPTY_STRING_ATTRIBUTE_PATTERN, name)
    assert.equal(properties.source?.pattern, URI_REFERENCE_PATTERN)
    assert.equal(properties.dataschema?.pattern, URI_PATTERN)
    assert.equal(properties.datacontenttype?.pattern, STRING_ATTRIBUTE_PATTERN)
    const extension = (envelopeSchema.additionalProperties as { anyOf: { type: string; pattern?: string }[] })
      .anyOf
    assert.equal(extension.find((m) => m.type === 'string')?.pattern, STRING_ATTRIBUTE_PATTERN)
  })

  it('agree on generated envelopes and their mutations', () => {
    // Leap seconds and long non-ASCII ids are the known divergences below.
    const options = { leapSeconds: false, stringUnit: 'binary-ascii' } as const
    const arbitrary = arbitraryFromSchema(envelopeSchema, envelopeSchema, options).filter(
      (e) => typeof e === 'object' && e !== null && !('data_base64' in e),
    )
    fc.assert(
      fc.property(arbitrary, (event) => {
        assert.deepEqual(both(event), { codec: true, schema: true }, show(event))
      }),
      { numRuns: 300 },
    )
    const mutated = arbitrary.chain((event) =>
      fc
        .constantFrom(...mutationsOf(event, envelopeSchema).filter((m) => m.description !== '30 February'))
        .map((mutation) => ({ mutation, event: applyMutation(event, mutation) })),
    )
    fc.assert(
      fc.property(mutated, ({ mutation, event }) => {
        assert.deepEqual(
          both(event),
          { codec: false, schema: false },
          `${mutation.description}: ${show(event)}`,
        )
      }),
      { numRuns: 300 },
    )
  })

  // Cases where a naive codec and the schema would part: calendar-invalid times, leap
  // seconds, and ids whose length differs in UTF-16 units and code points.
  for (const { because, event } of fixtures.divergent) {
    it(`agree on ${because}`, () => {
      const verdict = both(event)
      assert.equal(verdict.codec, verdict.schema)
    })
  }
})
