import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import { type Config, loadConfig } from '../../src/config/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  DeadLetterHeaders,
  encodeFrame,
  heraldAvroSubjects,
  registerSubjects,
  toKafkaMessage,
} from '../../src/ingress/index.ts'
import { createMetrics } from '../../src/observability/index.ts'
import type { Consumer, EventLog } from '../../src/ports/event-log.ts'
import { type IngressWiring, startRouter, wireIngress } from '../../src/wiring/ingress.ts'
import { buildSelectorIndex, decodeDeliveryCommand } from '../../streams/routing/index.ts'
import { aConfiguration, aSelector } from '../../streams/routing/test-fixtures.ts'
import { eventually } from '../support/eventually.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'
import { createKcat } from '../support/kcat.ts'
import { type SchemaRegistryStandIn, startSchemaRegistry } from '../support/schema-registry.ts'

/**
 * Herald's Kafka ingress against real components: the librdkafka mock cluster, the schema
 * registry stand-in, and kcat as the producer and the downstream consumer Herald shares no
 * code with. Herald's side is composed by its own wiring (`wireIngress`, `startRouter`) from a
 * configuration loaded as in production.
 */
describe('Kafka ingress: kcat → engine.events → router → deliveries and DLQ → kcat', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-kafka-ingress-'))
  const metrics = createMetrics()
  let kafka: KafkaMock
  let registry: SchemaRegistryStandIn
  let kcat: ReturnType<typeof createKcat>
  let config: Config
  let log: EventLog
  let ingress: IngressWiring
  let router: Consumer

  const events: EngineEvent[] = [
    ...generateActivity({
      seed: 11,
      accounts: ['acme', 'globex'],
      count: 60,
      clock: () => Date.UTC(2026, 10, 22),
    }),
  ].filter((e) => e.account === 'acme' || e.account === 'globex')
  const pick = (i: number) => events[i] as EngineEvent

  before(async () => {
    kafka = await startKafkaMock()
    registry = await startSchemaRegistry()
    kcat = createKcat(kafka.bootstrapServers)
    config = loadConfig({
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_EVENT_LOG__KIND: 'kafka',
        HERALD_EVENT_LOG__KAFKA__BROKERS: kafka.bootstrapServers.join(','),
        HERALD_SCHEMA_REGISTRY__KIND: 'confluent',
        HERALD_SCHEMA_REGISTRY__CONFLUENT__URL: registry.url,
        HERALD_SCHEMA_REGISTRY__CONFLUENT__REGISTER_SCHEMAS: 'true',
      },
    })
    const { topics } = config.event_log
    for (const topic of [topics.events, topics.dlq, topics.deliveries]) await kafka.createTopic(topic, 4)
    log = createKafkaEventLog(mockLogOptions(kafka.bootstrapServers))
    const noWarehouse = {
      command: () => Promise.reject(new Error('not used')),
      query: () => Promise.reject(new Error('not used')),
      insert: () => Promise.reject(new Error('not used')),
    }
    ingress = await wireIngress({ config, warehouse: noWarehouse, logger: () => {} })
    const index = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map(
        ['acme', 'globex'].map((account) => [
          `cfg-${account}`,
          aConfiguration({ id: `cfg-${account}`, account }),
        ]),
      ),
      selectors: new Map(
        ['acme', 'globex'].map((account) => [
          `sel-${account}`,
          aSelector({}, { id: `sel-${account}`, configurationId: `cfg-${account}`, account }),
        ]),
      ),
    })
    router = await startRouter({
      config,
      log,
      ingress,
      metrics,
      logger: () => {},
      clock: Date.now,
      getIndex: () => index,
      route: true,
    })
  })

  after(async () => {
    await router?.stop()
    await log?.close()
    await ingress?.close()
    kcat?.close()
    await registry?.close()
    await kafka?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('registered every Herald subject in the registry at start-up', async () => {
    const subjects = (await (await fetch(`${registry.url}/subjects`)).json()) as string[]
    for (const subject of [
      'engine.events-value',
      'engine.events-user.image.analysis.completed',
      'engine.events-user.image.analysis.completed-data',
      'notifications.deliveries-value',
      'notifications.outcomes-value',
      'reports.metrics-value',
    ])
      assert.ok(subjects.includes(subject), `${subject} registered`)
  })

  it('routes what kcat publishes in every mode, dead-letters the poison pills, and kcat reads both topics', async () => {
    const { topics } = config.event_log
    const typeId = (event: EngineEvent) => ingress.registry.latestId(`${topics.events}-${event.type}`)
    const dataId = (event: EngineEvent) => ingress.registry.latestId(`${topics.events}-${event.type}-data`)
    const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
    const [a, b, c, d, e, f] = [pick(0), pick(1), pick(2), pick(3), pick(4), pick(5)]

    const structured = toKafkaMessage(a, { mode: 'structured' })
    const send = (m: { key: string | null; value: Uint8Array; headers?: Readonly<Record<string, string>> }) =>
      kcat.produce(topics.events, {
        key: m.key ?? '',
        value: m.value,
        ...(m.headers ? { headers: m.headers } : {}),
      })

    // Structured mode, plain JSON, with and without a content type.
    await send(structured)
    await kcat.produce(topics.events, { key: b.account, value: JSON.stringify(b) })
    // Structured mode in the Confluent wire format, under the type's subject.
    await send(toKafkaMessage(c, { mode: 'structured', schemaId: await typeId(c) }))
    // Binary mode with ce_ headers: plain JSON data, then data in the wire format.
    await send(toKafkaMessage(d, { mode: 'binary' }))
    await send(toKafkaMessage(e, { mode: 'binary', schemaId: await dataId(e) }))
    // The same event again: routed once.
    await send(structured)
    // Poison pills.
    const unknownType = JSON.stringify({ ...f, type: 'com.example.unknown' })
    await kcat.produce(topics.events, { key: 'acme', value: unknownType })
    await kcat.produce(topics.events, { key: 'acme', value: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) })
    await kcat.produce(topics.events, { key: 'acme', value: encodeFrame(4_242_424, json(f)) })
    await kcat.produce(topics.events, {
      key: 'acme',
      value: encodeFrame(await typeId(f), json({ ...f, data: 'not the data' })),
    })
    // Herald's own system event, for a tenant: not as Herald emits it, whoever wrote it.
    await kcat.produce(topics.events, {
      key: 'acme',
      value: JSON.stringify({
        specversion: '1.0',
        id: 'forged-1',
        source: '/herald/deliverer',
        type: 'system.notifications.configuration_disabled',
        account: 'acme',
        data: {
          configuration_id: '7d9f4a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
          account: 'globex',
          endpoint: 'webhook',
          reason: 'sustained_failure',
          failing_since: '2026-11-20T00:00:00.000Z',
        },
      }),
    })

    const expected = [a, b, c, d, e].map((event) => event.id).sort()
    const deliveries = await eventually(
      async () => {
        const messages = await kcat.consumeAll(topics.deliveries)
        assert.equal(messages.length, expected.length)
        return messages
      },
      { timeoutMs: 40_000, intervalMs: 500 },
    )
    const commands = deliveries.map((m) => {
      const decoded = decodeDeliveryCommand({
        topic: m.topic,
        partition: m.partition,
        offset: m.offset,
        key: m.key,
        value: new TextEncoder().encode(m.payload ?? ''),
        headers: m.headers,
        timestamp: 0,
      })
      assert.ok(decoded.ok)
      assert.equal(m.key, decoded.value.configurationId)
      return decoded.value
    })
    assert.deepEqual(commands.map((command) => command.event.id).sort(), expected)

    // A downstream consumer can check each value against the registered schema.
    const deliverySchema = await ingress.registry.decoderFor(
      await ingress.registry.latestId(`${topics.deliveries}-value`),
    )
    for (const m of deliveries)
      assert.deepEqual(deliverySchema.decode(json(JSON.parse(m.payload ?? ''))).ok, true)

    const letters = await eventually(
      async () => {
        const messages = await kcat.consumeAll(topics.dlq)
        assert.equal(messages.length, 5)
        return messages
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    )
    assert.deepEqual(letters.map((l) => l.headers[DeadLetterHeaders.code]).sort(), [
      'event_reserved',
      'event_type_unknown',
      'payload_undecodable',
      'schema_invalid',
      'schema_not_found',
    ])
    for (const letter of letters) {
      assert.equal(letter.key, 'acme')
      assert.equal(letter.headers[DeadLetterHeaders.topic], topics.events)
      assert.match(letter.headers[DeadLetterHeaders.partition] ?? '', /^[0-3]$/)
      assert.match(letter.headers[DeadLetterHeaders.offset] ?? '', /^\d+$/)
      assert.ok((letter.headers[DeadLetterHeaders.message] ?? '').length > 0)
    }
    const unknown = letters.find((l) => l.headers[DeadLetterHeaders.code] === 'event_type_unknown')
    assert.equal(unknown?.payload, unknownType, 'the original bytes, unchanged')

    const text = await metrics.registry.metrics()
    assert.match(text, /herald_ingress_dead_lettered_total\{reason="schema_not_found"\} 1/)
    assert.match(text, /herald_router_duplicate_events_total 1/)
  })

  it('routes Avro events in both modes, as a Confluent Avro serializer writes them', async () => {
    const { topics } = config.event_log
    await registerSubjects(ingress.registry, heraldAvroSubjects(topics))
    const [g, h] = [pick(6), pick(7)]
    const avro = async (subject: string, value: unknown) =>
      ingress.registry.encode(await ingress.registry.latestId(subject), value)
    // Structured: the whole event as the value, no headers at all.
    await kcat.produce(topics.events, {
      key: g.account,
      value: await avro(`${topics.events}-${g.type}.Event`, g),
    })
    // Binary: the attributes in ce_ headers, the data in Avro.
    const binary = toKafkaMessage(h, { mode: 'binary' })
    await kcat.produce(topics.events, {
      key: h.account,
      value: await avro(`${topics.events}-${h.type}.Data`, h.data),
      headers: binary.headers ?? {},
    })
    await eventually(
      async () => {
        const ids = (await kcat.consumeAll(topics.deliveries)).map(
          (m) => (JSON.parse(m.payload ?? '{}') as { event: { id: string } }).event.id,
        )
        assert.ok(ids.includes(g.id) && ids.includes(h.id), 'both Avro events routed')
      },
      { timeoutMs: 40_000, intervalMs: 500 },
    )
  })
})
