import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import { type CloudEvent, encodeLogEvent } from '../../src/events/index.ts'
import { createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import {
  createMemoryProcessedIds,
  DeadLetterHeaders,
  processedKey,
  readDeadLetter,
} from '../../src/ingress/index.ts'
import { createMetrics, type LogFields, silentLogger } from '../../src/observability/index.ts'
import { type Consumer, type EventLog, type LogMessage, messageBytes } from '../../src/ports/event-log.ts'
import { createDigestFlusher } from '../../streams/digest-flusher.ts'
import type { DigestEntry } from '../../streams/digest-store.ts'
import { createDigestStore } from '../../streams/digest-store-sqlite.ts'
import { createRouterHandler, ROUTER_MAX_BATCH } from '../../streams/router.ts'
import { buildSelectorIndex, decodeDeliveryCommand } from '../../streams/routing/index.ts'
import { aConfiguration, anEvent, aSelector } from '../../streams/routing/test-fixtures.ts'
import { eventually } from '../support/eventually.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'
import { unusedWarehouse } from '../support/unused-warehouse.ts'

const TOPICS = { events: 'limits.events', dlq: 'limits.events.dlq', deliveries: 'limits.deliveries' }
// Brokers that refuse (close the connection of) a request over 100 kB, as a real one refuses a
// record batch over its message.max.bytes.
const BROKER_MAX = 100_000
const TOKEN = 'test-admin-token-0123456789'

const failed = (id: string, error: string): CloudEvent =>
  anEvent({
    id,
    type: 'user.image.analysis.failed',
    resourcetype: 'image',
    level: 'error',
    data: { full_tag: 'docker.io/library/nginx:latest', error },
  })

/**
 * Herald on Kafka whose brokers take requests of at most 100 kB: a router batch's delivery
 * commands and an HTTP batch of events go out in as many requests as they need; an event whose
 * command alone is too large is set aside rather than failing its batch for ever, and one too
 * large for the log is refused with a 413.
 */
describe('Kafka with a request size limit', () => {
  let kafka: KafkaMock
  let log: EventLog
  const consumers: Consumer[] = []

  before(async () => {
    kafka = await startKafkaMock({ maxRequestBytes: BROKER_MAX })
    for (const topic of Object.values(TOPICS)) await kafka.createTopic(topic, 1)
    log = createKafkaEventLog({ ...mockLogOptions(kafka.bootstrapServers), maxRequestBytes: BROKER_MAX })
  })

  after(async () => {
    for (const consumer of consumers) await consumer.stop()
    await log?.close()
    await kafka?.stop()
  })

  it('the router publishes a whole batch of commands, and sets aside an event whose command is too large, never failing a batch', async () => {
    // A request's framing (at most 512 bytes, the client id and a partition's 80) is not the message's.
    const limit = BROKER_MAX - 512 - 'herald'.length - 80
    // About 800 kB of commands for one configuration, in one partition.
    const small = Array.from({ length: ROUTER_MAX_BATCH }, (_, i) =>
      failed(`e${String(i).padStart(4, '0')}`, `the registry timed out ${'.'.repeat(300)}`),
    )
    // An event the events topic takes, 100 bytes short of the limit: its command, a few hundred
    // bytes more, is not.
    const filler = limit - 100 - messageBytes(encodeLogEvent(failed('large', '')))
    const large = failed('large', 'x'.repeat(filler))
    assert.equal(messageBytes(encodeLogEvent(large)), limit - 100)
    // Published in requests the brokers take whatever the log does with a large publish.
    const slices = [
      ...Array.from({ length: 5 }, (_, i) => small.slice(i * 100, i * 100 + 100)),
      [large],
      ...Array.from({ length: 5 }, (_, i) => small.slice(500 + i * 100, 600 + i * 100)),
    ]
    const positions = []
    for (const slice of slices)
      positions.push(...(await log.publish(TOPICS.events, slice.map(encodeLogEvent))))
    const largeOffset = positions[500]?.offset
    const end = positions.at(-1)?.offset

    const index = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map([['cfg-1', aConfiguration()]]),
      selectors: new Map([['sel-1', aSelector({ type: 'user.image.analysis.failed' })]]),
    })
    const logged: { event: string; fields: LogFields }[] = []
    const router = createRouterHandler({
      log,
      topics: { deliveries: TOPICS.deliveries, dlq: TOPICS.dlq },
      getIndex: () => index,
      clock: Date.now,
      logger: (level, event, fields = {}) => {
        if (level === 'error') logged.push({ event, fields })
      },
      processed: createMemoryProcessedIds(),
      ...(log.maxMessageBytes === undefined ? {} : { maxMessageBytes: log.maxMessageBytes }),
    })
    let reached = -1
    let failedBatches = 0
    consumers.push(
      await log.consume(
        { groupId: 'limits-router', topics: [TOPICS.events], maxBatchSize: ROUTER_MAX_BATCH },
        async (batch) => {
          try {
            await router(batch)
          } catch (error) {
            failedBatches++
            throw error
          }
          reached = batch.messages.at(-1)?.offset ?? reached
        },
      ),
    )
    const delivered: string[] = []
    const letters: LogMessage[] = []
    consumers.push(
      await log.consume(
        { groupId: 'limits-readers', topics: [TOPICS.deliveries, TOPICS.dlq] },
        async (batch) => {
          for (const m of batch.messages) {
            if (m.topic === TOPICS.dlq) {
              letters.push(m)
              continue
            }
            const command = decodeDeliveryCommand(m)
            assert.ok(command.ok)
            delivered.push(command.value.event.id)
          }
        },
      ),
    )

    await eventually(
      () => {
        assert.equal(reached, end, 'the router read its partition to the end')
        assert.equal(delivered.length, small.length)
        assert.equal(letters.length, 1)
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    )
    assert.equal(failedBatches, 0, 'no batch failed')
    assert.equal(log.maxMessageBytes, limit)
    assert.deepEqual(
      delivered,
      small.map((e) => e.id),
      'every other event routed once, in order',
    )

    // The large event is set aside: its letter, too large with its value, goes without it and
    // names where the original stays.
    const [letter] = letters
    const info = letter === undefined ? undefined : readDeadLetter(letter)
    assert.equal(info?.code, 'event_unroutable')
    assert.equal(info?.offset, largeOffset)
    assert.match(
      info?.message ?? '',
      new RegExp(
        `^\\(event\\): makes a delivery command of \\d+ bytes \\(configuration cfg-1\\), over the ${limit} a delivery command may take \\(what the event log takes in one message, or the event store in one append\\)$`,
      ),
    )
    assert.equal(letter?.value.byteLength, 0)
    const originalBytes = encodeLogEvent(large).value.byteLength
    assert.equal(letter?.headers[DeadLetterHeaders.valueOmitted], String(originalBytes))
    assert.deepEqual(
      logged.map(({ event, fields }) => [event, fields.offset, fields.code, fields.value_omitted]),
      [['router.dead_letter_too_large', largeOffset, 'event_unroutable', true]],
    )
  })

  it('POST /v1/events takes a batch larger than a request, and refuses an event larger than one with a 413 naming it, writing nothing', async () => {
    const topic = 'limits.ingest'
    await kafka.createTopic(topic, 1)
    const app = createHttpApp({
      log,
      eventsTopic: topic,
      warehouse: unusedWarehouse,
      readiness: {},
      authenticate: createAdminTokenAuthenticator(TOKEN),
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
    })
    const post = (events: readonly CloudEvent[]) =>
      app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(events),
      })
    // About 350 kB: four requests or so.
    const batch = Array.from({ length: 500 }, (_, i) => failed(`h${i}`, `timed out ${'.'.repeat(500)}`))
    assert.equal((await post(batch)).status, 202)
    const written = async () => (await log.lag('nobody', [topic]))[0]?.end
    assert.equal(await written(), batch.length)

    const large = failed('large', 'x'.repeat(BROKER_MAX))
    const refused = await post([failed('before', 'ok'), large])
    assert.equal(refused.status, 413)
    const problem = (await refused.json()) as { code: string; detail: string }
    assert.equal(problem.code, 'message_too_large')
    assert.match(
      problem.detail,
      new RegExp(
        `^kafka publish to ${topic}: message 1 is \\d+ bytes, over the \\d+ one produce request of at most ${BROKER_MAX} bytes carries$`,
      ),
    )
    assert.equal(await written(), batch.length, 'nothing of the refused request was written')
  })

  it('the digest flusher lists fewer events of a digest too large, none when its event alone nearly fills a message', async () => {
    const topic = 'limits.digests'
    await kafka.createTopic(topic, 1)
    const dir = mkdtempSync(join(tmpdir(), 'herald-limits-'))
    const store = createDigestStore({ path: join(dir, 'digests.sqlite') })
    const held = (id: string, configurationId: string, bytes: number): DigestEntry => {
      const event = anEvent({ id, data: { tag: 'x'.repeat(bytes) } })
      return {
        configurationId,
        account: 'acme',
        endpoint: 'webhook',
        eventKey: processedKey(event),
        event,
        matchedSelectorIds: ['sel-1'],
        windowMs: 30_000,
      }
    }
    const T0 = Date.UTC(2026, 10, 22, 10)
    await store.record(
      [
        // Its digest holds its first event and lists the rest: 180 kB with five listed, 90 kB with two.
        ...['a', 'b', 'c', 'd', 'e'].map((id) => held(id, 'cfg-1', 30_000)),
        // A 60 kB event is its digest's event; listed too, the digest would be 120 kB: it lists none.
        held('f', 'cfg-2', 60_000),
        held('g', 'cfg-3', 100),
      ],
      T0,
    )
    const logged: string[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic,
      clock: () => T0 + 30_000,
      logger: (_level, event) => logged.push(event),
      ...(log.maxMessageBytes === undefined ? {} : { maxMessageBytes: log.maxMessageBytes }),
    })
    try {
      assert.deepEqual(await flusher.flushDue(), { digests: 3, events: 7, deadLettered: 0 })
      const read: LogMessage[] = []
      consumers.push(
        await log.consume({ groupId: 'limits-digests', topics: [topic] }, async (batch) => {
          read.push(...batch.messages)
        }),
      )
      await eventually(() => assert.equal(read.length, 3), { timeoutMs: 30_000 })
      const commands = read.map((m) => {
        const command = decodeDeliveryCommand(m)
        assert.ok(command.ok)
        return command.value
      })
      assert.deepEqual(
        commands.map((c) => [c.configurationId, c.digest?.total, c.digest?.events.map((e) => e.id)]),
        [
          ['cfg-1', 5, ['a', 'b']],
          ['cfg-2', 1, []],
          ['cfg-3', 1, ['g']],
        ],
      )
      assert.deepEqual(
        logged.filter((e) => e !== 'router.digest_flushed'),
        ['router.digest_trimmed', 'router.digest_trimmed'],
      )
      assert.deepEqual(
        (await store.due(T0 + 1_000_000)).map((d) => [d.configurationId, d.attempts]),
        [],
        'nothing held back',
      )
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

/**
 * Herald on Kafka whose brokers take less than `event_log.kafka.max_request_bytes` lets
 * through: they answer MESSAGE_TOO_LARGE (error 10), scripted here request by request, as a
 * broker does for a record batch over its message.max.bytes. The router sends a refused batch
 * of commands again in halves, and sets aside the event whose command the broker refuses alone
 * (its letter without the value when that is refused too), rather than retry the batch forever.
 */
describe('Kafka whose brokers refuse as too large what the log lets through', () => {
  let kafka: KafkaMock
  let log: EventLog
  const consumers: Consumer[] = []
  const topics = { events: 'refusing.events', dlq: 'refusing.events.dlq', deliveries: 'refusing.deliveries' }

  before(async () => {
    kafka = await startKafkaMock()
    for (const topic of Object.values(topics)) await kafka.createTopic(topic, 1)
    log = createKafkaEventLog(mockLogOptions(kafka.bootstrapServers))
  })

  after(async () => {
    for (const consumer of consumers) await consumer.stop()
    await log?.close()
    await kafka?.stop()
  })

  it('the router publishes every other command in order, and dead-letters the event whose command the broker refuses alone, naming the limit to lower', async () => {
    const events = Array.from({ length: 8 }, (_, i) => failed(`e${i}`, `the registry timed out (${i})`))
    const positions = await log.publish(topics.events, events.map(encodeLogEvent))
    // A broker refusing every request that holds e5's command: the batch's eight, then (four
    // taken) the last four, their first two (e4 taken), e5's alone; then its letter alone.
    await kafka.injectErrors(0, [10, 0, 10, 10, 0, 10, 0, 10])

    const index = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map([['cfg-1', aConfiguration()]]),
      selectors: new Map([['sel-1', aSelector({ type: 'user.image.analysis.failed' })]]),
    })
    const logged: { level: string; event: string; fields: LogFields }[] = []
    const router = createRouterHandler({
      log,
      topics: { deliveries: topics.deliveries, dlq: topics.dlq },
      getIndex: () => index,
      clock: Date.now,
      logger: (level, event, fields = {}) => {
        if (level !== 'debug') logged.push({ level, event, fields })
      },
      processed: createMemoryProcessedIds(),
      ...(log.maxMessageBytes === undefined ? {} : { maxMessageBytes: log.maxMessageBytes }),
    })
    let failedBatches = 0
    let reached = -1
    consumers.push(
      await log.consume({ groupId: 'refusing-router', topics: [topics.events] }, async (batch) => {
        try {
          await router(batch)
        } catch (error) {
          failedBatches++
          throw error
        }
        reached = batch.messages.at(-1)?.offset ?? reached
      }),
    )
    const delivered: string[] = []
    const letters: LogMessage[] = []
    consumers.push(
      await log.consume(
        { groupId: 'refusing-readers', topics: [topics.deliveries, topics.dlq] },
        async (batch) => {
          for (const m of batch.messages) {
            if (m.topic === topics.dlq) {
              letters.push(m)
              continue
            }
            const command = decodeDeliveryCommand(m)
            assert.ok(command.ok)
            delivered.push(command.value.event.id)
          }
        },
      ),
    )

    await eventually(
      () => {
        assert.equal(reached, positions.at(-1)?.offset, 'the router read its partition to the end')
        assert.equal(delivered.length, 7)
        assert.equal(letters.length, 1)
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    )
    assert.equal(failedBatches, 0, 'no batch failed')
    assert.deepEqual(
      delivered,
      ['e0', 'e1', 'e2', 'e3', 'e4', 'e6', 'e7'],
      'every other event routed once, in order',
    )

    const [letter] = letters
    const info = letter === undefined ? undefined : readDeadLetter(letter)
    assert.equal(info?.code, 'event_unroutable')
    assert.equal(info?.offset, positions[5]?.offset)
    assert.match(
      info?.message ?? '',
      /^\(event\): makes a delivery command of \d+ bytes \(configuration cfg-1\) that the broker refused as too large: event_log\.kafka\.max_request_bytes is above its message\.max\.bytes$/,
    )
    // Refused with its value too, the letter went without it.
    assert.equal(letter?.value.byteLength, 0)
    assert.equal(
      letter?.headers[DeadLetterHeaders.valueOmitted],
      String(encodeLogEvent(events[5] as CloudEvent).value.byteLength),
    )
    assert.deepEqual(
      logged
        .filter(({ level }) => level === 'error')
        .map(({ event, fields }) => [event, fields.offset, fields.code, fields.value_omitted]),
      [
        ['router.command_refused', positions[5]?.offset, 'message_too_large', undefined],
        ['router.dead_letter_too_large', positions[5]?.offset, 'event_unroutable', true],
      ],
    )
    assert.match(
      String(logged.find(({ event }) => event === 'router.command_refused')?.fields.error),
      /set event_log\.kafka\.max_request_bytes \(1048576\) at or below its message\.max\.bytes/,
    )
  })
})
