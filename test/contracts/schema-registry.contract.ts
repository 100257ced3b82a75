import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { NotFoundError, ValidationError } from '../../src/errors/index.ts'
import { heraldSubjects, parseFrame, registerSubjects, type SchemaRegistry } from '../../src/ingress/index.ts'

/**
 * The SchemaRegistry contract, run against the embedded registry and the Confluent adapter
 * (against the registry stand-in), so producers and consumers see the same behaviour on both.
 * Subjects are unique per test, so one registry serves the whole suite.
 */
export interface SchemaRegistryContractOptions {
  readonly name: string
  readonly open: () => Promise<SchemaRegistry>
}

const encoder = new TextEncoder()
const json = (value: unknown) => encoder.encode(JSON.stringify(value))
const schemaOf = (version: number) => ({
  type: 'JSON' as const,
  schema: JSON.stringify({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:test:thing',
    type: 'object',
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1 },
      size: { type: 'integer', minimum: 0 },
      ...(version > 1 ? { colour: { enum: ['red', 'blue'] } } : {}),
      at: { type: 'string', format: 'date-time' },
    },
  }),
})

export const runSchemaRegistryContract = ({ name, open }: SchemaRegistryContractOptions) => {
  describe(`SchemaRegistry contract: ${name}`, () => {
    const subject = () => `test-${randomUUID()}-value`

    it('issues one id per schema, whatever the subject, and the latest per subject', async () => {
      const registry = await open()
      try {
        const [a, b] = [subject(), subject()]
        const v1 = await registry.register(a, schemaOf(1))
        assert.equal(await registry.register(a, schemaOf(1)), v1, 'registering again is a no-op')
        assert.equal(await registry.register(b, schemaOf(1)), v1, 'the same schema shares its id')
        const v2 = await registry.register(a, schemaOf(2))
        assert.notEqual(v2, v1)
        assert.equal(await registry.latestId(a), v2)
        assert.equal(await registry.latestId(b), v1)
        await assert.rejects(registry.latestId(subject()), NotFoundError)
      } finally {
        await registry.close()
      }
    })

    it('decodes what its schema accepts, and names what it does not', async () => {
      const registry = await open()
      try {
        const id = await registry.register(subject(), schemaOf(1))
        const decoder = await registry.decoderFor(id)
        assert.equal(decoder.schemaId, id)
        assert.equal(decoder.type, 'JSON')
        const value = { name: 'n', size: 3, at: '2026-11-22T10:00:00Z' }
        assert.deepEqual(decoder.decode(json(value)), { ok: true, value })
        const invalid = decoder.decode(json({ size: -1, at: 'yesterday' }))
        assert.equal(invalid.ok, false)
        if (invalid.ok) return
        assert.equal(invalid.code, 'schema_invalid')
        const paths = invalid.issues.map((i) => i.path).sort()
        assert.deepEqual(paths, ['at', 'name', 'size'])
        const garbage = decoder.decode(new Uint8Array([0xff, 0x00]))
        assert.equal(garbage.ok === false && garbage.code, 'payload_undecodable')
      } finally {
        await registry.close()
      }
    })

    it('compiles two versions of one subject that share an $id', async () => {
      const registry = await open()
      try {
        const s = subject()
        const v1 = await registry.decoderFor(await registry.register(s, schemaOf(1)))
        const v2 = await registry.decoderFor(await registry.register(s, schemaOf(2)))
        assert.equal(v1.decode(json({ name: 'n', colour: 'green' })).ok, true)
        assert.equal(v2.decode(json({ name: 'n', colour: 'green' })).ok, false)
      } finally {
        await registry.close()
      }
    })

    it('refuses an id it never issued with a NotFoundError', async () => {
      const registry = await open()
      try {
        await assert.rejects(registry.decoderFor(987_654), NotFoundError)
      } finally {
        await registry.close()
      }
    })

    it('encodes into the wire format, validating first', async () => {
      const registry = await open()
      try {
        const id = await registry.register(subject(), schemaOf(1))
        const bytes = await registry.encode(id, { name: 'n' })
        const frame = parseFrame(bytes)
        assert.ok(frame.kind === 'framed' && frame.schemaId === id)
        assert.deepEqual(JSON.parse(new TextDecoder().decode(frame.payload)), { name: 'n' })
        await assert.rejects(registry.encode(id, { size: 1 }), ValidationError)
      } finally {
        await registry.close()
      }
    })

    it('refuses a schema that is not one', async () => {
      const registry = await open()
      try {
        await assert.rejects(
          registry.register(subject(), { type: 'JSON', schema: JSON.stringify({ type: 'no-such-type' }) }),
          ValidationError,
        )
      } finally {
        await registry.close()
      }
    })

    it('holds every Herald subject, each one decoding', async () => {
      const registry = await open()
      try {
        const prefix = `t${randomUUID().slice(0, 8)}`
        const topics = {
          events: `${prefix}.events`,
          deliveries: `${prefix}.deliveries`,
          outcomes: `${prefix}.outcomes`,
          metrics: `${prefix}.metrics`,
        }
        const subjects = heraldSubjects(topics)
        const ids = await registerSubjects(registry, subjects)
        assert.equal(ids.size, subjects.length)
        const decoder = await registry.decoderFor(ids.get(`${topics.events}-value`) as number)
        const event = { specversion: '1.0', id: 'e1', source: '/engine', type: 'x.y', account: 'acme' }
        assert.deepEqual(decoder.decode(json(event)), { ok: true, value: event })
        assert.equal(decoder.decode(json({ ...event, account: '' })).ok, false)
        // Herald's event schemas are known as ones the event contract covers; the rest are not.
        const type = 'user.image.analysis.completed'
        const coverage = async (subject: string) =>
          (await registry.decoderFor(ids.get(subject) as number)).deferred?.coverage
        assert.deepEqual(decoder.deferred?.coverage, { mode: 'structured', type: undefined })
        assert.deepEqual(await coverage(`${topics.events}-${type}`), { mode: 'structured', type })
        assert.deepEqual(await coverage(`${topics.events}-${type}-data`), { mode: 'binary', type })
        assert.equal(await coverage(`${topics.outcomes}-value`), undefined)
        const own = await registry.register(subject(), schemaOf(1))
        assert.equal((await registry.decoderFor(own)).deferred, undefined)
      } finally {
        await registry.close()
      }
    })
  })
}
