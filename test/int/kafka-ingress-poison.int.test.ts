import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import kafkajs from 'kafkajs'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createConfluentSchemaRegistry,
  createIngressDecoder,
  createMemoryProcessedIds,
  encodeFrame,
  heraldSubjects,
  type IngressFailureCode,
  readDeadLetter,
  registerSubjects,
  type SchemaRegistry,
  toKafkaMessage,
} from '../../src/ingress/index.ts'
import type { Consumer, EventLog, LogMessage, OutgoingMessage } from '../../src/ports/event-log.ts'
import { createRouterHandler } from '../../streams/router.ts'
import { buildSelectorIndex, decodeDeliveryCommand } from '../../streams/routing/index.ts'
import { aConfiguration, aSelector } from '../../streams/routing/test-fixtures.ts'
import { eventually } from '../support/eventually.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'
import { type SchemaRegistryStandIn, startSchemaRegistry } from '../support/schema-registry.ts'

const TOPICS = {
  events: 'poison.events',
  dlq: 'poison.events.dlq',
  deliveries: 'poison.deliveries',
  outcomes: 'poison.outcomes',
  metrics: 'poison.metrics',
}
const PARTITIONS = 4
const ACCOUNTS = ['acme', 'globex', 'initech', 'umbrella']
const MISNAMED = ['acme\u0000', 'a'.repeat(5_000), 'acmé', '.acme', '-acme', '']
const SEQ = 'test-seq'
const encoder = new TextEncoder()
const json = (value: unknown) => encoder.encode(JSON.stringify(value))

/**
 * Poison pills mixed into valid traffic, through kafkajs against the Kafka protocol peer and
 * the registry stand-in: every invalid message must reach the dead-letter topic with its
 * reason, every valid event must be routed exactly once, and every partition must be read to
 * its end without a single failed batch.
 */
describe('Kafka ingress under poison pills', () => {
  let kafka: KafkaMock
  let standIn: SchemaRegistryStandIn
  let registry: SchemaRegistry
  let log: EventLog
  const consumers: Consumer[] = []

  before(async () => {
    kafka = await startKafkaMock()
    standIn = await startSchemaRegistry()
    for (const topic of [TOPICS.events, TOPICS.dlq, TOPICS.deliveries])
      await kafka.createTopic(topic, PARTITIONS)
    registry = createConfluentSchemaRegistry({ url: standIn.url })
    await registerSubjects(registry, heraldSubjects(TOPICS))
    log = createKafkaEventLog(mockLogOptions(kafka.bootstrapServers))
  })

  after(async () => {
    for (const consumer of consumers) await consumer.stop()
    await log?.close()
    await standIn?.close()
    await kafka?.stop()
  })

  it('dead-letters every invalid message with its reason, routes every valid one once, and never stalls', async (t) => {
    const typeId = (type: string) => registry.latestId(`${TOPICS.events}-${type}`)
    const dataId = (type: string) => registry.latestId(`${TOPICS.events}-${type}-data`)
    const envelopeId = await registry.latestId(`${TOPICS.events}-value`)

    const valid: EngineEvent[] = [
      ...generateActivity({
        seed: 2026,
        accounts: ACCOUNTS,
        count: 2_000,
        systemEvents: false,
        clock: () => Date.UTC(2026, 10, 22),
      }),
    ]
    const expectedCodes = new Map<string, IngressFailureCode | 'random'>()
    let seq = 0
    const tagged = (m: OutgoingMessage, code?: IngressFailureCode | 'random'): OutgoingMessage => {
      const id = String(seq++)
      if (code !== undefined) expectedCodes.set(id, code)
      return { ...m, headers: { ...m.headers, [SEQ]: id } }
    }
    // Pills come under many keys, so they land in every partition, between valid events.
    const account = (i: number) => `pill-${i % 16}`

    const traffic: OutgoingMessage[] = []
    for (const [i, event] of valid.entries()) {
      const mode = i % 2 === 0 ? 'structured' : 'binary'
      const framing = i % 3
      const schemaId =
        framing === 0
          ? undefined
          : mode === 'binary'
            ? await dataId(event.type)
            : framing === 1
              ? envelopeId
              : await typeId(event.type)
      traffic.push(tagged(toKafkaMessage(event, schemaId === undefined ? { mode } : { mode, schemaId })))
      // A producer's retry: the same event again, a little later.
      if (i % 10 === 0) traffic.push(tagged(toKafkaMessage(event, { mode: 'structured' })))
    }
    const randomBytes = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 300 }), {
      numRuns: 3_000,
      seed: 42,
    })
    const poison: OutgoingMessage[] = [
      ...randomBytes.map((value, i) => tagged({ key: account(i), value }, 'random')),
      ...Array.from({ length: 300 }, (_, i) =>
        tagged({ key: account(i), value: new Uint8Array(1 + (i % 4)) }, 'wire_format_invalid'),
      ),
      ...Array.from({ length: 300 }, (_, i) =>
        tagged({ key: account(i), value: encodeFrame(100_000 + i, json(valid[i])) }, 'schema_not_found'),
      ),
      ...(await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const event = valid[i] as EngineEvent
          const value = encodeFrame(await typeId(event.type), json({ ...event, data: [i] }))
          return tagged({ key: event.account, value }, 'schema_invalid')
        }),
      )),
      ...Array.from({ length: 300 }, (_, i) =>
        tagged(
          toKafkaMessage(
            { ...(valid[i] as EngineEvent), type: `com.example.unknown.${i % 7}` },
            { mode: 'binary' },
          ),
          'event_type_unknown',
        ),
      ),
      // Accounts that are not account names, in both modes: keyed by them, as a producer would.
      ...Array.from({ length: 300 }, (_, i) =>
        tagged(
          toKafkaMessage(
            { ...(valid[i] as EngineEvent), account: MISNAMED[i % MISNAMED.length] as string },
            { mode: i % 2 === 0 ? 'structured' : 'binary' },
          ),
          'event_invalid',
        ),
      ),
    ]
    // Interleave: the pills are spread through the valid traffic of every partition.
    const mixed: OutgoingMessage[] = []
    for (let i = 0, j = 0; i < traffic.length || j < poison.length; ) {
      if (i < traffic.length) mixed.push(traffic[i++] as OutgoingMessage)
      for (let k = 0; k < 2 && j < poison.length; k++) mixed.push(poison[j++] as OutgoingMessage)
    }
    const ends = new Map<number, number>()
    for (let i = 0; i < mixed.length; i += 500) {
      for (const p of await log.publish(TOPICS.events, mixed.slice(i, i + 500)))
        ends.set(p.partition, Math.max(ends.get(p.partition) ?? -1, p.offset))
    }
    assert.equal(ends.size, PARTITIONS, 'every partition holds traffic')

    const index = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map(
        ACCOUNTS.map((a) => [`cfg-${a}`, aConfiguration({ id: `cfg-${a}`, account: a })]),
      ),
      selectors: new Map(
        ACCOUNTS.map((a) => [
          `sel-${a}`,
          aSelector({}, { id: `sel-${a}`, configurationId: `cfg-${a}`, account: a }),
        ]),
      ),
    })
    const router = createRouterHandler({
      log,
      topics: { deliveries: TOPICS.deliveries, dlq: TOPICS.dlq },
      getIndex: () => index,
      clock: Date.now,
      logger: () => {},
      decoder: createIngressDecoder({ registry }),
      processed: createMemoryProcessedIds(),
    })
    const reached = new Map<number, number>()
    let failedBatches = 0
    consumers.push(
      await log.consume({ groupId: 'poison-router', topics: [TOPICS.events] }, async (batch) => {
        try {
          await router(batch)
        } catch (error) {
          failedBatches++
          throw error
        }
        const last = batch.messages.at(-1)
        if (last !== undefined) reached.set(batch.partition, last.offset)
      }),
    )

    const letters = new Map<string, LogMessage>()
    const delivered: string[] = []
    consumers.push(
      await log.consume({ groupId: 'poison-dlq-reader', topics: [TOPICS.dlq] }, async (batch) => {
        for (const m of batch.messages) letters.set(m.headers[SEQ] ?? '', m)
      }),
      await log.consume(
        { groupId: 'poison-deliveries-reader', topics: [TOPICS.deliveries] },
        async (batch) => {
          for (const m of batch.messages) {
            const command = decodeDeliveryCommand(m)
            assert.ok(command.ok)
            delivered.push(command.value.event.id)
          }
        },
      ),
    )

    await eventually(
      () => {
        for (const [partition, end] of ends)
          assert.equal(reached.get(partition), end, `partition ${partition} read to its end`)
        assert.equal(letters.size, expectedCodes.size)
        assert.equal(delivered.length, valid.length)
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    )

    assert.equal(failedBatches, 0, 'no batch failed: no poison pill ever blocked a partition')
    assert.deepEqual(
      [...delivered].sort(),
      valid.map((e) => e.id).sort(),
      'every valid event routed exactly once',
    )
    const original = new Map(mixed.map((m) => [m.headers?.[SEQ] ?? '', m]))
    const reasons = new Map<string, number>()
    for (const [id, expected] of expectedCodes) {
      const letter = letters.get(id)
      assert.ok(letter !== undefined, `message ${id} was dead-lettered`)
      const info = readDeadLetter(letter)
      assert.ok(info !== undefined)
      if (expected !== 'random') assert.equal(info.code, expected, `message ${id}`)
      reasons.set(info.code, (reasons.get(info.code) ?? 0) + 1)
      assert.ok(
        Buffer.from(letter.value).equals(Buffer.from(original.get(id)?.value ?? [])),
        'the original bytes',
      )
      assert.equal(letter.key, original.get(id)?.key)
      assert.equal(info.topic, TOPICS.events)
      assert.ok(info.message.length > 0)
    }
    for (const letter of letters.values())
      assert.ok(expectedCodes.has(letter.headers[SEQ] ?? ''), 'only pills')
    const fetches = standIn.requests.filter((r) => r.path.startsWith('/schemas/ids/')).length
    assert.ok(fetches < 400, `registry fetches stay bounded by distinct ids (${fetches})`)
    t.diagnostic(
      `${mixed.length} messages: ${valid.length} events routed, ${delivered.length} deliveries; dead letters by reason: ${JSON.stringify(Object.fromEntries(reasons))}; ${fetches} schema fetches`,
    )
  })
  it('dead-letters an event whose ce_id header is no UTF-8 text, rather than reading two such ids as one', async () => {
    const topics = {
      events: 'poison.bytes.events',
      dlq: 'poison.bytes.dlq',
      deliveries: 'poison.bytes.deliveries',
    }
    for (const topic of Object.values(topics)) await kafka.createTopic(topic, 1)
    const [event] = [...generateActivity({ seed: 11, accounts: 1, count: 1, clock: Date.now })] as [
      EngineEvent,
    ]
    const client = new kafkajs.Kafka({
      brokers: [...kafka.bootstrapServers],
      clientId: 'poison-bytes',
      logLevel: kafkajs.logLevel.NOTHING,
    })
    const producer = client.producer()
    await producer.connect()
    // Two ids whose bad bytes differ; read with replacement, both are "e\uFFFD1".
    const headers = (id: Buffer) => ({
      ce_specversion: '1.0',
      ce_id: id,
      ce_source: event.source,
      ce_type: event.type,
      ce_account: event.account,
      ...(event.subtype === undefined ? {} : { ce_subtype: event.subtype }),
      'content-type': 'application/json',
    })
    await producer.send({
      topic: topics.events,
      messages: [
        Buffer.from([0x65, 0xff, 0x31]),
        Buffer.from([0x65, 0xfe, 0x31]),
        Buffer.from('e\uFFFD1'),
      ].map((id) => ({ key: event.account, value: JSON.stringify(event.data), headers: headers(id) })),
    })
    await producer.disconnect()

    const index = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map([['cfg', aConfiguration({ id: 'cfg', account: event.account })]]),
      selectors: new Map([
        ['sel', aSelector({}, { id: 'sel', configurationId: 'cfg', account: event.account })],
      ]),
    })
    const router = createRouterHandler({
      log,
      topics: { deliveries: topics.deliveries, dlq: topics.dlq },
      getIndex: () => index,
      clock: Date.now,
      logger: () => {},
      decoder: createIngressDecoder({ registry }),
      processed: createMemoryProcessedIds(),
    })
    const letters: LogMessage[] = []
    const delivered: string[] = []
    consumers.push(
      await log.consume({ groupId: 'poison-bytes-router', topics: [topics.events] }, router),
      await log.consume({ groupId: 'poison-bytes-dlq', topics: [topics.dlq] }, async (batch) => {
        letters.push(...batch.messages)
      }),
      await log.consume(
        { groupId: 'poison-bytes-deliveries', topics: [topics.deliveries] },
        async (batch) => {
          for (const m of batch.messages) {
            const command = decodeDeliveryCommand(m)
            assert.ok(command.ok)
            delivered.push(command.value.event.id)
          }
        },
      ),
    )
    await eventually(
      () => {
        assert.equal(letters.length, 2)
        assert.equal(delivered.length, 1)
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    )
    assert.deepEqual(delivered, ['e\uFFFD1'], 'U+FFFD sent as its own bytes is text, and routed')
    for (const letter of letters) {
      const info = readDeadLetter(letter)
      assert.equal(info?.code, 'payload_undecodable')
      assert.match(info?.message ?? '', /ce_id: is not UTF-8 text/)
      assert.equal(letter.value.toString(), JSON.stringify(event.data))
    }
  })
})
