import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { fixturesOf } from '../../schemas/fixtures.ts'
import { applyMutation, arbitraryFromSchema, mutationsOf } from '../events/catalog/arbitraries.ts'
import { decodeEngineEvent, type EventTypeEntry, eventTypes } from '../events/index.ts'
import type { AvroTypeLike } from './avro-reader.ts'
import { avroDataSchemaOf, avroEventSchemaOf, heraldAvroSubjects } from './avro-schemas.ts'
import { type AvroReader, avroPayloadDecoder } from './payload-decoders.ts'

// avsc is the Confluent client's Avro library: the tests write Avro with the client's own copy.
interface AvscType extends AvroReader {
  toBuffer(value: unknown): Buffer
}
const avsc = createRequire(import.meta.resolve('@kafkajs/confluent-schema-registry'))('avsc') as {
  Type: { forSchema(schema: unknown): AvscType }
}

const envelope = (entry: EventTypeEntry, data: unknown) => ({
  specversion: '1.0',
  id: 'e1',
  source: '/engine',
  type: entry.type,
  account: 'acme',
  time: '2026-11-22T10:00:00Z',
  ...(entry.subtypes === undefined ? {} : { subtype: entry.subtypes[0]?.subtype }),
  data,
})

/** Avro of `value`, or undefined when Avro cannot carry it (a field of the wrong type). */
const encode = (type: AvscType, value: unknown): Buffer | undefined => {
  try {
    return type.toBuffer(value)
  } catch {
    return undefined
  }
}

/**
 * The document an Avro encoding of `value` denotes: the fields the schema names, and no null
 * where a field's default is null (Avro's absent optional field).
 */
const project = (value: unknown, type: AvroTypeLike): unknown => {
  switch (type.typeName) {
    case 'record': {
      const out: Record<string, unknown> = {}
      for (const field of type.fields ?? []) {
        const v = (value as Record<string, unknown>)[field.name]
        if (v === undefined || (v === null && field.defaultValue() === null)) continue
        out[field.name] = project(v, field.type)
      }
      return out
    }
    case 'array':
      return (value as unknown[]).map((item) => project(item, type.itemsType as AvroTypeLike))
    case 'map':
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [
          k,
          project(v, type.valuesType as AvroTypeLike),
        ]),
      )
    case 'union:unwrapped':
      return value === null
        ? null
        : project(value, (type.types ?? []).find((t) => t.typeName !== 'null') as AvroTypeLike)
    default:
      return value
  }
}

const paths = (decoded: ReturnType<typeof decodeEngineEvent>) =>
  decoded.ok ? [] : decoded.issues.map((i) => i.path).sort()

const types = eventTypes.map((entry) => {
  const event = avsc.Type.forSchema(avroEventSchemaOf(entry))
  const data = avsc.Type.forSchema(avroDataSchemaOf(entry))
  return {
    entry,
    event,
    data,
    readEvent: avroPayloadDecoder(1, event),
    readData: avroPayloadDecoder(2, data),
  }
})

describe('Avro schemas derived from the wire contract', () => {
  it('names two subjects per catalog type, after the record names', () => {
    const subjects = heraldAvroSubjects({ events: 'in' })
    assert.equal(subjects.length, 2 * eventTypes.length)
    assert.equal(new Set(subjects.map((s) => s.subject)).size, subjects.length)
    for (const { subject, schema } of subjects) {
      assert.equal(schema.type, 'AVRO')
      const record = JSON.parse(schema.schema) as { name: string; namespace: string }
      assert.equal(subject, `in-${record.namespace}.${record.name}`)
    }
  })

  it('carry every valid fixture through Avro to an event the contract accepts, losing nothing Avro names', () => {
    for (const { entry, event, data, readEvent, readData } of types) {
      for (const payload of fixturesOf(entry.type).valid) {
        const original = envelope(entry, payload)
        const bytes = encode(event, original)
        assert.ok(bytes, `${entry.type}: Avro carries ${JSON.stringify(payload)}`)
        const decoded = readEvent.decode(bytes)
        assert.ok(decoded.ok, entry.type)
        assert.ok(decodeEngineEvent(decoded.value).ok, `${entry.type}: ${JSON.stringify(decoded.value)}`)
        assert.deepEqual(event.toBuffer(decoded.value), bytes, `${entry.type}: a lossless round trip`)
        // Binary mode: the value is the data alone.
        const dataBytes = encode(data, payload) as Buffer
        const dataDecoded = readData.decode(dataBytes)
        assert.ok(dataDecoded.ok && decodeEngineEvent(envelope(entry, dataDecoded.value)).ok, entry.type)
      }
    }
  })

  it('require the subtype of a subtyped type, which Avro cannot write without', () => {
    const subtyped = types.filter(({ entry }) => entry.subtypes !== undefined)
    assert.ok(subtyped.length > 0)
    for (const { entry, event } of subtyped) {
      const field = avroEventSchemaOf(entry).fields.find((f) => f.name === 'subtype')
      assert.deepEqual(field?.type, 'string', entry.type)
      const { subtype: _, ...without } = envelope(entry, fixturesOf(entry.type).valid[0])
      assert.equal(encode(event, without), undefined, entry.type)
      assert.equal(decodeEngineEvent(without).ok, false, entry.type)
    }
  })

  it('keep a required null (a finding without a fix) and leave out optional ones', () => {
    const entry = eventTypes.find(
      (e) => e.type === 'user.checks.tag.vulnerabilities.update',
    ) as EventTypeEntry
    const { event, readEvent } = types.find((t) => t.entry === entry) as (typeof types)[number]
    const finding = {
      id: 'CVE-1',
      severity: 'high',
      package: 'p',
      version: '1',
      type: 'deb',
      fix_version: null,
      kev: false,
      cvss: null,
    }
    const original = envelope(entry, {
      full_tag: 'docker.io/library/nginx:1',
      digest: 'sha256:ab',
      added: [finding],
      removed: [],
      updated: [],
    })
    const decoded = readEvent.decode(event.toBuffer(original))
    assert.ok(decoded.ok)
    const added = (decoded.value as { data: { added: Record<string, unknown>[] } }).data.added
    assert.deepEqual(added[0], {
      id: 'CVE-1',
      severity: 'high',
      package: 'p',
      version: '1',
      type: 'deb',
      fix_version: null,
      kev: false,
    })
    assert.ok(decodeEngineEvent(decoded.value).ok)
  })

  it('leave the rest to the one contract: an invalid document Avro carries whole is refused as in JSON', () => {
    let checked = 0
    for (const { entry, event, readEvent } of types) {
      for (const { because, data } of fixturesOf(entry.type).invalid) {
        const original = envelope(entry, data)
        const bytes = encode(event, original)
        if (bytes === undefined) continue // Avro itself cannot say it
        const decoded = readEvent.decode(bytes)
        assert.ok(decoded.ok)
        assert.deepEqual(decoded.value, project(original, event), `${entry.type}: ${because}`)
        // An optional field given as null is, in Avro, a field left out: a different document.
        if (!isDeepStrictEqual(decoded.value, original)) continue
        const verdict = decodeEngineEvent(decoded.value)
        assert.equal(verdict.ok, false, `${entry.type}: ${because}`)
        assert.deepEqual(paths(verdict), paths(decodeEngineEvent(original)), `${entry.type}: ${because}`)
        checked++
      }
    }
    assert.ok(checked >= 40, `only ${checked} invalid fixtures went through Avro`)
  })

  for (const { entry, event, readEvent } of types) {
    it(`${entry.type}: generated data and its mutations decode to what Avro names, and keep their verdict`, () => {
      const arbitrary = arbitraryFromSchema(entry.schema).chain((data) =>
        fc.oneof(
          fc.constant({ data, valid: true }),
          fc
            .constantFrom(...mutationsOf(data, entry.schema))
            .map((m) => ({ data: applyMutation(data, m), valid: false })),
        ),
      )
      fc.assert(
        fc.property(arbitrary, ({ data, valid }) => {
          const original = envelope(entry, data)
          const bytes = encode(event, original)
          if (bytes === undefined) return
          const decoded = readEvent.decode(bytes)
          assert.ok(decoded.ok)
          const expected = project(original, event)
          assert.deepEqual(decoded.value, expected)
          // Fields Avro does not name are dropped; what is left keeps the verdict of a whole document.
          if (valid || isDeepStrictEqual(expected, original))
            assert.equal(decodeEngineEvent(decoded.value).ok, valid, JSON.stringify(data))
        }),
        { numRuns: 60 },
      )
    })
  }
})
