import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { isRetriable, NotFoundError, UnavailableError } from '../../src/errors/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createConfluentSchemaRegistry,
  createEmbeddedSchemaRegistry,
  createIngressDecoder,
  encodeFrame,
  heraldAvroSubjects,
  registerSubjects,
  type SchemaRegistry,
  toKafkaMessage,
} from '../../src/ingress/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import { wireIngress } from '../../src/wiring/ingress.ts'
import { runSchemaRegistryContract } from '../contracts/schema-registry.contract.ts'
import { type SchemaRegistryStandIn, startSchemaRegistry } from '../support/schema-registry.ts'
import { unusedWarehouse } from '../support/unused-warehouse.ts'

let standIn: SchemaRegistryStandIn
before(async () => {
  standIn = await startSchemaRegistry({ auth: { username: 'herald', password: 's3cret' } })
})
after(async () => {
  await standIn?.close()
})

const confluent = (overrides: { password?: string } = {}): SchemaRegistry =>
  createConfluentSchemaRegistry({
    url: standIn.url,
    username: 'herald',
    password: overrides.password ?? 's3cret',
    retry: { retries: 0 },
  })

runSchemaRegistryContract({ name: 'embedded', open: async () => createEmbeddedSchemaRegistry() })
runSchemaRegistryContract({ name: 'Confluent (against the REST stand-in)', open: async () => confluent() })

const encoder = new TextEncoder()

describe('Confluent schema registry adapter', () => {
  it('fetches and compiles each schema once, however many messages name it', async () => {
    const registry = confluent()
    const id = standIn.register(
      `c-${randomUUID()}-value`,
      JSON.stringify({ type: 'object', required: ['a'] }),
    )
    const decoder = createIngressDecoder({ registry })
    const event = { specversion: '1.0', id: 'e1', source: '/engine', type: 'x', account: 'acme', a: 1 }
    const message = {
      topic: 'engine.events',
      partition: 0,
      offset: 0,
      key: 'acme',
      value: encodeFrame(id, encoder.encode(JSON.stringify(event))),
      headers: {},
      timestamp: 0,
    }
    const fetches = () => standIn.requests.filter((r) => r.path === `/schemas/ids/${id}`).length
    for (let i = 0; i < 5; i++) await decoder.decodeBatch(Array.from({ length: 100 }, () => message))
    assert.equal(fetches(), 1)
  })

  it('asks about at most 8 unknown ids at once, and nothing more of a batch once an answer fails', async () => {
    // One batch of framed messages naming 200 ids the registry never issued: each is asked
    // about once, a few at a time, not in 200 requests at once.
    const slow = await startSchemaRegistry({ latencyMs: 20 })
    try {
      const registry = createConfluentSchemaRegistry({ url: slow.url, retry: { retries: 0 } })
      const decoder = createIngressDecoder({ registry })
      const framed = (id: number): LogMessage => ({
        topic: 'engine.events',
        partition: 0,
        offset: id,
        key: 'acme',
        value: encodeFrame(id, encoder.encode('{}')),
        headers: {},
        timestamp: 0,
      })
      const lookups = () => slow.requests.filter((r) => r.path.startsWith('/schemas/ids/')).length
      const results = await decoder.decodeBatch(Array.from({ length: 200 }, (_, i) => framed(1_000 + i)))
      assert.deepEqual(new Set(results.map((r) => !r.ok && r.failure.code)), new Set(['schema_not_found']))
      assert.equal(lookups(), 200)
      assert.ok(slow.mostInFlight <= 8, `${slow.mostInFlight} lookups at once`)
      assert.ok(slow.mostInFlight > 1, 'lookups still overlap')

      // A failed answer fails the batch (retriably: the registry's fault, not the messages'),
      // and no other lookup starts; the retry asks only about what was not answered.
      const batch = Array.from({ length: 100 }, (_, i) => framed(5_000 + i))
      slow.failNext(1)
      const before = lookups()
      await assert.rejects(decoder.decodeBatch(batch), (error) => isRetriable(error))
      const asked = lookups() - before
      assert.ok(asked <= 8, `${asked} lookups after the first failed`)
      const retried = await decoder.decodeBatch(batch)
      assert.ok(retried.every((r) => !r.ok && r.failure.code === 'schema_not_found'))
      assert.equal(lookups() - before, 101)
    } finally {
      await slow.close()
    }
  })

  it('reads Avro values through the same port', async () => {
    const registry = confluent()
    const avro = {
      type: 'record',
      name: 'CloudEvent',
      namespace: 'test.herald',
      fields: [
        { name: 'specversion', type: 'string' },
        { name: 'id', type: 'string' },
        { name: 'source', type: 'string' },
        { name: 'type', type: 'string' },
        { name: 'account', type: 'string' },
        { name: 'subject', type: ['null', 'string'], default: null },
        {
          name: 'data',
          type: { type: 'record', name: 'Data', fields: [{ name: 'digest', type: 'string' }] },
        },
      ],
    }
    const id = await registry.register(`avro-${randomUUID()}-value`, {
      type: 'AVRO',
      schema: JSON.stringify(avro),
    })
    const value = {
      specversion: '1.0',
      id: 'a1',
      source: '/engine',
      type: 'user.image.analysis.completed',
      account: 'acme',
      subject: null,
      data: { digest: 'sha256:ab' },
    }
    const bytes = await registry.encode(id, value)
    const decoder = await registry.decoderFor(id)
    assert.equal(decoder.type, 'AVRO')
    const { subject: _, ...expected } = value
    assert.deepEqual(decoder.decode(bytes.subarray(5)), { ok: true, value: expected })
    const truncated = decoder.decode(bytes.subarray(5, 12))
    assert.equal(truncated.ok === false && truncated.code, 'payload_undecodable')
  })

  it("reads Herald's Avro subjects in both CloudEvents modes, then judges the events by the one contract", async () => {
    const registry = confluent()
    const topic = `avro-${randomUUID()}`
    const ids = await registerSubjects(registry, heraldAvroSubjects({ events: topic }))
    const events = [
      ...generateActivity({ seed: 5, accounts: 2, count: 40, clock: () => Date.UTC(2026, 10, 22) }),
    ] as EngineEvent[]
    const message = (value: Uint8Array, headers: Readonly<Record<string, string>> = {}): LogMessage => ({
      topic,
      partition: 0,
      offset: 0,
      key: null,
      value,
      headers,
      timestamp: 0,
    })
    const idOf = (subject: string) => ids.get(subject) as number
    const messages: LogMessage[] = []
    for (const event of events) {
      messages.push(message(await registry.encode(idOf(`${topic}-${event.type}.Event`), event)))
      const { headers = {} } = toKafkaMessage(event, { mode: 'binary' })
      messages.push(message(await registry.encode(idOf(`${topic}-${event.type}.Data`), event.data), headers))
    }
    const results = await createIngressDecoder({ registry }).decodeBatch(messages)
    results.forEach((result, i) => {
      assert.ok(result.ok, JSON.stringify(!result.ok && result.failure))
      const event = events[Math.floor(i / 2)] as EngineEvent
      assert.equal(result.event.id, event.id)
      assert.equal(result.event.type, event.type)
    })

    // Avro carries what the contract refuses (a blank account): refused as it would be in JSON.
    const [first] = events as [EngineEvent]
    const bad = await registry.encode(idOf(`${topic}-${first.type}.Event`), { ...first, account: ' ' })
    const truncated = (await registry.encode(idOf(`${topic}-${first.type}.Event`), first)).subarray(0, 40)
    const [refused, undecodable] = await createIngressDecoder({ registry }).decodeBatch([
      message(bad),
      message(truncated),
    ])
    assert.equal(refused?.ok === false && refused.failure.code, 'event_invalid')
    assert.deepEqual(refused?.ok === false && refused.failure.issues.map((i) => i.path), ['account'])
    assert.equal(undecodable?.ok === false && undecodable.failure.code, 'payload_undecodable')
  })

  it('refuses Protobuf schemas as unsupported, which the ingress dead-letters', async () => {
    const registry = confluent()
    const id = standIn.register(
      `p-${randomUUID()}-value`,
      'syntax = "proto3"; message M { string a = 1; }',
      'PROTOBUF',
    )
    const [result] = await createIngressDecoder({ registry }).decodeBatch([
      {
        topic: 't',
        partition: 0,
        offset: 0,
        key: null,
        value: encodeFrame(id, new Uint8Array([0, 10, 1, 97])),
        headers: {},
        timestamp: 0,
      },
    ])
    assert.equal(result?.ok === false && result.failure.code, 'schema_unsupported')
  })

  it('maps a failing registry to a retriable UnavailableError, and a missing id to NotFoundError', async () => {
    const registry = confluent()
    standIn.failNext(1, 503)
    await assert.rejects(registry.decoderFor(1), (error: unknown) => {
      assert.ok(error instanceof UnavailableError, String(error))
      assert.ok(isRetriable(error))
      assert.ok(error.cause !== undefined)
      return true
    })
    await assert.rejects(registry.decoderFor(99_999), NotFoundError)
  })

  it('does not blame messages when the credentials are wrong', async () => {
    const registry = confluent({ password: 'wrong' })
    await assert.rejects(registry.decoderFor(1), UnavailableError)
  })

  it('reports an unreachable registry as unavailable, naming its address and the socket’s error, not its credentials', async () => {
    const closed = createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const { port } = closed.address() as AddressInfo
    closed.close()
    await once(closed, 'close')
    const registry = createConfluentSchemaRegistry({
      url: `http://herald:Zq7Pass@127.0.0.1:${port}/`,
      retry: { retries: 0 },
    })
    await assert.rejects(registry.decoderFor(1), (error: unknown) => {
      assert.ok(error instanceof UnavailableError)
      assert.equal(
        error.message,
        `schema registry at http://127.0.0.1:${port}: schema id 1: no answer (connect ECONNREFUSED 127.0.0.1:${port})`,
      )
      return true
    })
  })

  it('says which registry answered an error, and with which HTTP status', async () => {
    await assert.rejects(confluent({ password: 'wrong' }).decoderFor(1), (error: unknown) => {
      assert.ok(error instanceof UnavailableError)
      assert.equal(
        error.message,
        `schema registry at ${standIn.url}: schema id 1 failed: HTTP 401: Unauthorized`,
      )
      assert.doesNotMatch(error.message, /wrong/)
      return true
    })
  })
})

describe('wiring a Confluent registry whose URL carries credentials', () => {
  it('logs the registration without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-registry-'))
    const config = loadConfig({
      cwd: dir,
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_SCHEMA_REGISTRY__KIND: 'confluent',
        HERALD_SCHEMA_REGISTRY__CONFLUENT__URL: standIn.url.replace('://', '://herald:s3cret@'),
        HERALD_SCHEMA_REGISTRY__CONFLUENT__USERNAME: 'herald',
        HERALD_SCHEMA_REGISTRY__CONFLUENT__PASSWORD: 's3cret',
        HERALD_SCHEMA_REGISTRY__CONFLUENT__REGISTER_SCHEMAS: 'true',
      },
    })
    const logged: Record<string, unknown>[] = []
    const ingress = await wireIngress({
      config,
      warehouse: unusedWarehouse,
      logger: (_level, event, fields) => {
        logged.push({ event, ...fields })
      },
    })
    try {
      const registered = logged.find((entry) => entry.event === 'schema_registry.registered')
      assert.equal(registered?.url, standIn.url.replace('://', '://[redacted]@'))
      assert.doesNotMatch(JSON.stringify(logged), /s3cret/)
    } finally {
      await ingress.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
