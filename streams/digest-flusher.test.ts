import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { TestScheduler } from 'rxjs/testing'
import { createSqliteEventLog } from '../src/adapters/sqlite-event-log/index.ts'
import { HeraldError, UnavailableError } from '../src/errors/index.ts'
import { encodeLogEvent } from '../src/events/index.ts'
import { compileJsonSchema, DeadLetterHeaders, heraldSubjects, processedKey } from '../src/ingress/index.ts'
import type { LogFields } from '../src/observability/index.ts'
import { messageBytes } from '../src/ports/event-log.ts'
import type { LogMessage, OutgoingMessage, PublishedPosition } from '../src/ports/index.ts'
import { eventually } from '../test/support/eventually.ts'
import { createDigestFlusher, type FlushReport, flushDigests } from './digest-flusher.ts'
import type { DigestEntry, DigestStore } from './digest-store.ts'
import { createDigestStore } from './digest-store-sqlite.ts'
import { createRouterHandler } from './router.ts'
import {
  buildSelectorIndex,
  type DeliveryCommand,
  decodeDeliveryCommand,
  digestDeliveryIdFor,
} from './routing/index.ts'
import { aConfiguration, anEvent, aSelector, aSelectorSet } from './routing/test-fixtures.ts'

const newScheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected))

const T0 = Date.UTC(2026, 10, 22, 10, 0, 0)
const TOPIC = 'notifications.deliveries'

const asLogMessage = (m: OutgoingMessage): LogMessage => ({
  topic: TOPIC,
  partition: 0,
  offset: 0,
  key: m.key,
  value: m.value,
  headers: m.headers ?? {},
  timestamp: 0,
})

const decoded = (messages: readonly OutgoingMessage[]): DeliveryCommand[] =>
  messages.map((m) => {
    const result = decodeDeliveryCommand(asLogMessage(m))
    assert.ok(result.ok, JSON.stringify(!result.ok && result.issues))
    return result.value
  })

const capturingLog = () => {
  const published: OutgoingMessage[] = []
  let failures = 0
  return {
    published,
    /** The next `n` publishes fail. */
    failNext: (n: number) => {
      failures = n
    },
    log: {
      publish: async (_topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        if (failures > 0) {
          failures--
          throw new UnavailableError('log unavailable')
        }
        published.push(...messages)
        return []
      },
    },
  }
}

const entry = (id: string, overrides: Partial<DigestEntry> = {}): DigestEntry => {
  const event = anEvent({ id })
  return {
    configurationId: 'cfg-1',
    account: 'acme',
    endpoint: 'slack',
    eventKey: processedKey(event),
    event,
    matchedSelectorIds: ['s1'],
    windowMs: 30_000,
    ...overrides,
  }
}

describe('flushDigests', () => {
  it('flushes at each tick, drops ticks while a flush runs, and goes on after a failed one', () => {
    const failures: number[] = []
    newScheduler().run(({ cold, expectObservable }) => {
      const flush = (now: number) =>
        now === 5
          ? cold<number>('-#', undefined, new Error('log unavailable'))
          : cold('---(r|)', { r: now * 10 })
      expectObservable(
        cold('-a-b----c-d-----e|', { a: 1, b: 2, c: 3, d: 4, e: 5 }).pipe(
          flushDigests(flush, (_error, now) => failures.push(now)),
        ),
      ).toBe('----x------y-----|', { x: 10, y: 30 })
    })
    // b and d came while a flush ran; e's flush failed and was reported, and the stream went on.
    assert.deepEqual(failures, [5])
  })
})

describe('createDigestFlusher', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-flusher-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  let files = 0
  const aStore = () => createDigestStore({ path: join(dir, `digests-${files++}.sqlite`) })
  const logLines: { event: string; fields: LogFields }[] = []
  const logger = (_level: string, event: string, fields: LogFields = {}) => logLines.push({ event, fields })

  it('publishes one digest per closed window, valid by the topic schema, and marks it flushed', async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    let now = T0 + 1_000
    const reports: FlushReport[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger,
      onFlushed: (r) => reports.push(r),
    })
    await store.record([entry('a'), entry('b'), entry('c', { configurationId: 'cfg-2' })], now)
    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 0 })

    now = T0 + 30_000
    assert.deepEqual(await flusher.flushDue(), { digests: 2, events: 3, deadLettered: 0 })
    const commands = decoded(published)
    assert.deepEqual(
      commands.map((c) => [c.configurationId, c.deliveryId, c.event.id, c.digest?.total]),
      [
        ['cfg-1', digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'), 'a', 2],
        ['cfg-2', digestDeliveryIdFor('cfg-2', '2026-11-22T10:00:00.000Z'), 'c', 1],
      ],
    )
    assert.deepEqual(
      published.map((m) => m.key),
      ['cfg-1', 'cfg-2'],
    )
    const subject = heraldSubjects({
      events: 'engine.events',
      deliveries: TOPIC,
      outcomes: 'notifications.outcomes',
      metrics: 'reports.metrics',
    }).find((s) => s.subject === `${TOPIC}-value`)
    const validate = compileJsonSchema(subject?.schema.schema ?? assert.fail())
    for (const m of published) {
      const value = JSON.parse(new TextDecoder().decode(m.value))
      assert.ok(validate(value), JSON.stringify(validate.errors))
    }
    assert.deepEqual(reports, [{ digests: 2, events: 3, deadLettered: 0 }])
    assert.ok(logLines.some((l) => l.event === 'router.digest_flushed' && l.fields.events === 2))

    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 0 }, 'flushed once')
    assert.equal(published.length, 2)
    await store.close()
  })

  it('leaves a window due when publishing fails, and publishes it with the same id next time', async () => {
    const store = aStore()
    const { log, published, failNext } = capturingLog()
    const flusher = createDigestFlusher({ store, log, topic: TOPIC, clock: () => T0 + 60_000, logger })
    await store.record([entry('a')], T0)
    failNext(1)
    await assert.rejects(flusher.flushDue(), /log unavailable/)
    await flusher.flushDue()
    assert.deepEqual(
      decoded(published).map((c) => c.deliveryId),
      [digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z')],
    )
    await store.close()
  })

  it('publishes a window again, with the same id, after a crash between publishing and marking it', async () => {
    const path = join(dir, 'crash.sqlite')
    const { log, published } = capturingLog()
    const first = createDigestStore({ path })
    await first.record([entry('a'), entry('b')], T0)
    // The process dies after the publish: the mark never happens.
    const dying: DigestStore = {
      ...first,
      markFlushed: async () => {
        throw new Error('process killed')
      },
    }
    const clock = () => T0 + 30_000
    await assert.rejects(createDigestFlusher({ store: dying, log, topic: TOPIC, clock, logger }).flushDue())
    await first.close()

    const restarted = createDigestStore({ path })
    await createDigestFlusher({ store: restarted, log, topic: TOPIC, clock, logger }).flushDue()
    const [before, again] = decoded(published)
    assert.equal(published.length, 2)
    assert.equal(before?.deliveryId, again?.deliveryId)
    assert.deepEqual(before?.digest, again?.digest)
    assert.deepEqual(await restarted.due(T0 + 1_000_000), [])
    await restarted.close()
  })

  it("names its buffer in the delivery id when told to, as each Kafka router's flusher is", async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    await store.record([entry('a')], T0)
    await createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => T0 + 30_000,
      logger,
      instance: store.instanceId,
    }).flushDue()
    assert.deepEqual(
      decoded(published).map((c) => c.deliveryId),
      [digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z', store.instanceId)],
    )
    await store.close()
  })

  it('stamps each digest with the position of the selector set the router routes with when it goes out', async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    await store.record([entry('a'), entry('b', { configurationId: 'cfg-2' })], T0)
    let position: number | undefined = 4_096
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => T0 + 30_000,
      logger,
      selectorSetPosition: () => position,
      batchSize: 1,
    })
    await flusher.flushDue()
    assert.deepEqual(
      decoded(published).map((c) => c.selectorSetPosition),
      [4_096, 4_096],
    )
    position = undefined
    await store.record([entry('c')], T0 + 30_000)
    await createDigestFlusher({ store, log, topic: TOPIC, clock: () => T0 + 60_000, logger }).flushDue()
    assert.equal(decoded(published).at(-1)?.selectorSetPosition, undefined)
    await store.close()
  })

  it('takes every closed window in one flush, a batch at a time', async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => T0 + 60_000,
      logger,
      batchSize: 2,
    })
    await store.record(
      ['a', 'b', 'c', 'd', 'e'].map((id) => entry(id, { configurationId: `cfg-${id}` })),
      T0,
    )
    assert.deepEqual(await flusher.flushDue(), { digests: 5, events: 5, deadLettered: 0 })
    assert.equal(published.length, 5)
    await store.close()
  })

  it('flushes at start what closed while Herald was down, then on its timer; stop waits for a flush in progress', async () => {
    const path = join(dir, 'down.sqlite')
    const before = createDigestStore({ path })
    await before.record([entry('a')], T0)
    await before.close()

    const store = createDigestStore({ path })
    const published: OutgoingMessage[] = []
    let slow = false
    let publishing = false
    const log = {
      publish: async (_topic: string, messages: readonly OutgoingMessage[]) => {
        publishing = true
        if (slow) await sleep(150)
        published.push(...messages)
        return []
      },
    }
    let now = T0 + 10 * 60_000
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger,
      intervalMs: 20,
    })
    flusher.start()
    await eventually(() => assert.equal(published.length, 1))
    assert.equal(decoded(published)[0]?.event.id, 'a')

    // A window that closes while it runs goes out on a tick; stop() comes in the middle of its publish.
    await store.record([entry('b')], now)
    slow = true
    publishing = false
    now += 30_000
    await eventually(() => assert.ok(publishing))
    await flusher.stop()
    assert.equal(published.length, 2)
    assert.deepEqual(await store.due(now), [], 'marked before stop() returned')
    await store.close()
  })
  it('logs a flush whose store cannot sync its write-ahead log as router.digest_flush_failed, naming the code, and ticks on', async () => {
    const path = join(dir, 'unsynced.sqlite')
    const before = createDigestStore({ path })
    await before.record([entry('a')], T0)
    await before.close()
    const store = createDigestStore({ path })
    // The log file is deleted before the store's first sync opens it: SQLite writes on to the
    // file it has open, and every sync finds nothing at the path (ENOENT).
    unlinkSync(`${path}-wal`)
    let looks = 0
    const looking: DigestStore = {
      ...store,
      due: (now, limit) => {
        looks++
        return store.due(now, limit)
      },
    }
    const failures: LogFields[] = []
    const { log, published } = capturingLog()
    const flusher = createDigestFlusher({
      store: looking,
      log,
      topic: TOPIC,
      clock: () => T0 + 60_000,
      logger: (_level, event, fields = {}) => {
        if (event === 'router.digest_flush_failed') failures.push(fields)
      },
      intervalMs: 20,
    })
    try {
      flusher.start()
      await eventually(() => assert.equal(failures.length, 1))
      assert.deepEqual(failures, [
        {
          error: 'digest store markFlushed: the write-ahead log could not be synced to disk (ENOENT)',
          sqlite_code: undefined,
          retried: true,
        },
      ])
      assert.equal(decoded(published).length, 1)
      // The timer runs on.
      const looked = looks
      await eventually(() => assert.ok(looks > looked + 2))
    } finally {
      await flusher.stop()
      await store.close()
    }
  })

  it('publishes the other windows when one’s stored events cannot be read, and that one once they can, after a back-off', async () => {
    const path = join(dir, 'unreadable.sqlite')
    const store = createDigestStore({ path })
    const { log, published } = capturingLog()
    let now = T0 + 1_000
    const lines: { level: string; event: string; fields: LogFields }[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger: (level, event, fields = {}) => lines.push({ level, event, fields }),
      retryBackoffMs: { min: 1_000, max: 60_000 },
    })
    await store.record([entry('a'), entry('b', { configurationId: 'cfg-2' })], now)
    // cfg-1's only event is damaged on disk (a bad sector, a bug of an older version).
    const other = new DatabaseSync(path)
    const damage = (event: string) =>
      other
        .prepare(
          "UPDATE digest_entries SET event = ? WHERE window_id = (SELECT id FROM digest_windows WHERE configuration_id = 'cfg-1')",
        )
        .run(event)
    const stored = (
      other
        .prepare(
          "SELECT event FROM digest_entries WHERE window_id = (SELECT id FROM digest_windows WHERE configuration_id = 'cfg-1')",
        )
        .get() as { event: string }
    ).event
    damage('{"specversion":"1.0","id":')

    now = T0 + 30_000
    assert.deepEqual(await flusher.flushDue(), { digests: 1, events: 1, deadLettered: 0 })
    assert.deepEqual(
      decoded(published).map((c) => c.configurationId),
      ['cfg-2'],
    )
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.digest_deferred').map((l) => [l.level, l.fields]),
      [
        [
          'error',
          {
            configuration_id: 'cfg-1',
            window_start: '2026-11-22T10:00:00.000Z',
            window_end: '2026-11-22T10:00:30.000Z',
            events: 1,
            attempts: 1,
            retry_at: '2026-11-22T10:00:31.000Z',
            error: 'digest window cfg-1@1795341600000 holds no event',
            unreadable: 1,
          },
        ],
      ],
    )
    // It waits out its back-off, then stays due.
    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 0 })
    now = T0 + 31_000
    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 0 })
    assert.equal(lines.filter((l) => l.event === 'router.digest_deferred').at(-1)?.fields.attempts, 2)
    assert.equal(
      lines.filter((l) => l.event === 'router.digest_deferred').at(-1)?.fields.retry_at,
      '2026-11-22T10:00:33.000Z',
    )

    // Repaired, it goes out at its next try, with its delivery id.
    damage(stored)
    other.close()
    now = T0 + 33_000
    assert.deepEqual(await flusher.flushDue(), { digests: 1, events: 1, deadLettered: 0 })
    assert.deepEqual(
      decoded(published).map((c) => [c.configurationId, c.deliveryId, c.event.id]),
      [
        ['cfg-2', digestDeliveryIdFor('cfg-2', '2026-11-22T10:00:00.000Z'), 'b'],
        ['cfg-1', digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'), 'a'],
      ],
    )
    assert.deepEqual(await store.due(T0 + 1_000_000), [])
    await store.close()
  })

  it('publishes the other windows when the log refuses one for good, and retries that one with a growing back-off until it takes it', async () => {
    const store = aStore()
    const published: OutgoingMessage[] = []
    let refusing = true
    // A refusal for good (not retriable), as kafkajs reports a broker's MESSAGE_TOO_LARGE.
    const log = {
      publish: async (_topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        if (refusing && messages.some((m) => m.key === 'cfg-1'))
          throw new HeraldError(
            'event_log_failed',
            'kafka publish failed: The request included a message larger than the max message size the server will accept',
            { context: { kafkaError: 'MESSAGE_TOO_LARGE' } },
          )
        published.push(...messages)
        return []
      },
    }
    let now = T0 + 1_000
    const deferred: LogFields[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger: (_level, event, fields = {}) => {
        if (event === 'router.digest_deferred') deferred.push(fields)
      },
      retryBackoffMs: { min: 1_000, max: 3_000 },
    })
    await store.record(
      [entry('a'), entry('b', { configurationId: 'cfg-2' }), entry('c', { configurationId: 'cfg-3' })],
      now,
    )
    now = T0 + 30_000
    assert.deepEqual(await flusher.flushDue(), { digests: 2, events: 2, deadLettered: 0 })
    assert.deepEqual(
      decoded(published).map((c) => c.configurationId),
      ['cfg-2', 'cfg-3'],
    )
    // Later windows of the others go out meanwhile; cfg-1's waits 1 s, 2 s, then 3 s at most.
    await store.record([entry('d', { configurationId: 'cfg-2' })], now)
    for (const at of [31_000, 33_000, 36_000]) {
      now = T0 + at
      await flusher.flushDue()
    }
    now = T0 + 60_000
    await flusher.flushDue()
    assert.deepEqual(
      deferred.map((f) => [f.configuration_id, f.attempts, f.retry_at, f.kafka_error]),
      [
        ['cfg-1', 1, '2026-11-22T10:00:31.000Z', 'MESSAGE_TOO_LARGE'],
        ['cfg-1', 2, '2026-11-22T10:00:33.000Z', 'MESSAGE_TOO_LARGE'],
        ['cfg-1', 3, '2026-11-22T10:00:36.000Z', 'MESSAGE_TOO_LARGE'],
        ['cfg-1', 4, '2026-11-22T10:00:39.000Z', 'MESSAGE_TOO_LARGE'],
        ['cfg-1', 5, '2026-11-22T10:01:03.000Z', 'MESSAGE_TOO_LARGE'],
      ],
    )
    assert.deepEqual(
      decoded(published).map((c) => [c.configurationId, c.event.id]),
      [
        ['cfg-2', 'b'],
        ['cfg-3', 'c'],
        ['cfg-2', 'd'],
      ],
    )
    // Once the log takes it (a topic's limit raised), it goes out with its delivery id.
    refusing = false
    now = T0 + 63_000
    assert.deepEqual(await flusher.flushDue(), { digests: 1, events: 1, deadLettered: 0 })
    assert.deepEqual(
      decoded(published).at(-1)?.deliveryId,
      digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'),
    )
    await store.close()
  })

  it('dead-letters a window that failed for good `maxAttempts` times and drops it from the buffer; an unreachable log counts no attempt', async () => {
    const path = join(dir, 'dead-letter.sqlite')
    const store = createDigestStore({ path })
    const written: { topic: string; message: OutgoingMessage }[] = []
    let unreachable = 0
    const log = {
      publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        if (unreachable > 0) {
          unreachable--
          throw new UnavailableError('log unavailable')
        }
        written.push(...messages.map((message) => ({ topic, message })))
        return []
      },
    }
    let now = T0 + 1_000
    const lines: { level: string; event: string; fields: LogFields }[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      deadLetterTopic: 'engine.events.dlq',
      maxAttempts: 3,
      clock: () => now,
      logger: (level, event, fields = {}) => lines.push({ level, event, fields }),
      retryBackoffMs: { min: 1_000, max: 60_000 },
    })
    await store.record([entry('a'), entry('b'), entry('c', { configurationId: 'cfg-2' })], now)
    // cfg-1's events are damaged on disk: its digest cannot be made, however often it is tried.
    const other = new DatabaseSync(path)
    other
      .prepare(
        "UPDATE digest_entries SET event = '{' WHERE window_id = (SELECT id FROM digest_windows WHERE configuration_id = 'cfg-1')",
      )
      .run()
    other.close()

    now = T0 + 30_000
    // The log cannot be reached: the whole flush fails, and counts no attempt.
    unreachable = 2
    await assert.rejects(flusher.flushDue(), UnavailableError)
    await assert.rejects(flusher.flushDue(), UnavailableError)
    assert.deepEqual(await flusher.flushDue(), { digests: 1, events: 1, deadLettered: 0 })
    now = T0 + 31_000
    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 0 })
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.digest_deferred').map((l) => l.fields.attempts),
      [1, 2],
    )
    assert.deepEqual(
      written.map((w) => w.topic),
      [TOPIC],
      'only cfg-2’s digest so far',
    )

    // The third failure is the last: the window is dead-lettered and leaves the buffer.
    now = T0 + 33_000
    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 1 })
    const letters = written.filter((w) => w.topic === 'engine.events.dlq').map((w) => w.message)
    assert.equal(letters.length, 1)
    const [letter] = letters
    assert.equal(letter?.key, 'acme')
    assert.deepEqual(JSON.parse(new TextDecoder().decode(letter?.value)), [])
    assert.deepEqual(
      { ...letter?.headers, [DeadLetterHeaders.at]: undefined },
      {
        'content-type': 'application/cloudevents-batch+json',
        [DeadLetterHeaders.code]: 'digest_undeliverable',
        [DeadLetterHeaders.message]: 'digest window cfg-1@1795341600000 holds no event',
        [DeadLetterHeaders.issues]: '[]',
        [DeadLetterHeaders.group]: 'herald-router',
        [DeadLetterHeaders.at]: undefined,
        'herald.digest.configuration_id': 'cfg-1',
        'herald.digest.window_start': '2026-11-22T10:00:00.000Z',
        'herald.digest.window_end': '2026-11-22T10:00:30.000Z',
        'herald.digest.total': '2',
        'herald.digest.attempts': '3',
      },
    )
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.digest_dead_lettered').map((l) => [l.level, l.fields]),
      [
        [
          'error',
          {
            configuration_id: 'cfg-1',
            window_start: '2026-11-22T10:00:00.000Z',
            window_end: '2026-11-22T10:00:30.000Z',
            events: 2,
            attempts: 3,
            error: 'digest window cfg-1@1795341600000 holds no event',
            unreadable: 2,
            topic: 'engine.events.dlq',
            value_omitted: false,
            left_out: false,
          },
        ],
      ],
    )
    assert.equal(lines.filter((l) => l.event === 'router.digest_deferred').length, 2)
    assert.deepEqual(await store.due(T0 + 1_000_000_000), [], 'no window left to try')
    await store.close()
  })

  it('dead-letters without its events a window whose letter is larger than the log takes', async () => {
    const store = aStore()
    const written: { topic: string; message: OutgoingMessage }[] = []
    const log = {
      publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        written.push(...messages.map((message) => ({ topic, message })))
        return []
      },
    }
    const lines: { event: string; fields: LogFields }[] = []
    const reports: FlushReport[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      deadLetterTopic: 'engine.events.dlq',
      maxAttempts: 1,
      maxMessageBytes: 5_000,
      clock: () => T0 + 30_000,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
      // For herald_ingress_dead_lettered_total: a flush that only dead-lettered is reported too.
      onFlushed: (report) => reports.push(report),
    })
    await store.record([entry('a', { event: anEvent({ id: 'a', data: { tag: 'x'.repeat(6_000) } }) })], T0)

    assert.deepEqual(await flusher.flushDue(), { digests: 0, events: 0, deadLettered: 1 })
    assert.deepEqual(reports, [{ digests: 0, events: 0, deadLettered: 1 }])
    const [letter, ...more] = written
    assert.equal(more.length, 0)
    assert.equal(letter?.topic, 'engine.events.dlq')
    assert.equal(letter?.message.value.byteLength, 0)
    assert.ok(Number(letter?.message.headers?.[DeadLetterHeaders.valueOmitted]) > 6_000)
    assert.equal(letter?.message.headers?.[DeadLetterHeaders.code], 'digest_undeliverable')
    assert.deepEqual(
      lines
        .filter((l) => l.event === 'router.digest_dead_lettered')
        .map((l) => [l.fields.attempts, l.fields.value_omitted, l.fields.left_out]),
      [[1, true, false]],
    )
    assert.deepEqual(await store.due(T0 + 1_000_000_000), [])
    await store.close()
  })

  it('lists fewer of a window’s events when its digest would be larger than the log takes, and holds back one too large even listing none', async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    let now = T0 + 1_000
    const lines: { event: string; fields: LogFields }[] = []
    const large = (id: string, configurationId: string) =>
      entry(id, { configurationId, event: anEvent({ id, data: { tag: 'x'.repeat(2_000) } }) })
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
      maxMessageBytes: 10_000,
    })
    await store.record(
      [
        ...['a', 'b', 'c', 'd', 'e'].map((id) => large(id, 'cfg-1')),
        entry('g', { configurationId: 'cfg-3' }),
        // Larger than the log takes, whatever the digest lists.
        entry('h', {
          configurationId: 'cfg-4',
          event: anEvent({ id: 'h', data: { tag: 'x'.repeat(11_000) } }),
        }),
      ],
      now,
    )
    now = T0 + 30_000
    assert.deepEqual(await flusher.flushDue(), { digests: 2, events: 6, deadLettered: 0 })
    const [first, third] = decoded(published)
    assert.equal(first?.configurationId, 'cfg-1')
    assert.equal(first?.digest?.total, 5)
    // About 5 kB with one listed, 2.2 kB more with each other: three fit.
    assert.deepEqual(
      first?.digest?.events.map((e) => e.id),
      ['a', 'b', 'c'],
    )
    assert.ok(published.every((m) => messageBytes(m) <= 10_000))
    assert.equal(third?.configurationId, 'cfg-3')
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.digest_trimmed').map((l) => l.fields),
      [
        {
          configuration_id: 'cfg-1',
          window_start: '2026-11-22T10:00:00.000Z',
          listed: 3,
          held: 5,
          limit: 10_000,
        },
      ],
    )
    const [deferred, ...others] = lines.filter((l) => l.event === 'router.digest_deferred')
    assert.equal(others.length, 0)
    assert.equal(deferred?.fields.configuration_id, 'cfg-4')
    assert.match(
      String(deferred?.fields.error),
      /^digest of cfg-4@\d+ is \d+ bytes listing no event, over the 10000 the event log takes in one message$/,
    )
    await store.close()
  })

  it('sends a window whose first event is more than half of what the log takes, listing the events that fit besides it', async () => {
    const store = aStore()
    const { log, published } = capturingLog()
    let now = T0 + 1_000
    const lines: { event: string; fields: LogFields }[] = []
    const flusher = createDigestFlusher({
      store,
      log,
      topic: TOPIC,
      clock: () => now,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
      maxMessageBytes: 10_000,
      maxAttempts: 1,
    })
    const big = (id: string, bytes: number, configurationId: string) =>
      entry(id, { configurationId, event: anEvent({ id, data: { tag: 'x'.repeat(bytes) } }) })
    await store.record(
      [
        // Alone it goes as a command; listed besides, twice, it would not.
        big('big', 6_000, 'cfg-1'),
        ...['s1', 's2', 's3'].map((id) => entry(id, { configurationId: 'cfg-1' })),
        // Alone it goes in no digest.
        big('huge', 9_500, 'cfg-2'),
        entry('s4', { configurationId: 'cfg-2' }),
        // Nothing beside it.
        big('lone', 6_000, 'cfg-3'),
      ],
      now,
    )
    now = T0 + 30_000

    assert.deepEqual(await flusher.flushDue(), { digests: 3, events: 7, deadLettered: 0 })
    const commands = decoded(published)
    assert.deepEqual(
      commands.map((c) => [
        c.configurationId,
        c.event.id,
        c.digest?.total,
        c.digest?.events.map((e) => e.id),
      ]),
      [
        ['cfg-1', 'big', 4, ['s1', 's2', 's3']],
        // The window's first is too large to be the command's event: its second is.
        ['cfg-2', 's4', 2, ['s4']],
        ['cfg-3', 'lone', 1, []],
      ],
    )
    assert.ok(published.every((m) => messageBytes(m) <= 10_000))
    assert.deepEqual(
      lines
        .filter((l) => l.event === 'router.digest_trimmed')
        .map((l) => [l.fields.configuration_id, l.fields.listed, l.fields.held, l.fields.event_id]),
      [
        ['cfg-1', 3, 4, undefined],
        ['cfg-2', 1, 2, 's4'],
        ['cfg-3', 0, 1, undefined],
      ],
    )
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.digest_deferred' || l.event === 'router.digest_dead_lettered'),
      [],
    )
    assert.deepEqual(await store.due(T0 + 1_000_000_000), [])
    await store.close()
  })
})

describe('storm control through the embedded log', () => {
  it('turns a storm of matching events into one digest command on notifications.deliveries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-storm-'))
    const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 20 })
    const store = createDigestStore({ path: join(dir, 'digests.sqlite') })
    try {
      await log.createTopics([
        { topic: 'engine.events', partitions: 3 },
        { topic: TOPIC, partitions: 3 },
      ])
      const index = buildSelectorIndex(
        aSelectorSet(
          [
            aConfiguration({
              id: 'cfg-storm',
              endpoint: 'slack',
              digest: { enabled: true, windowSeconds: 60 },
            }),
            aConfiguration({ id: 'cfg-each' }),
          ],
          [
            // Two selectors of the digest configuration match every event: still one entry each.
            aSelector({ type: 'user.image.*' }, { id: 's1', configurationId: 'cfg-storm' }),
            aSelector({ level: 'error' }, { id: 's2', configurationId: 'cfg-storm' }),
            aSelector({ type: 'user.image.analysis.failed' }, { id: 's3', configurationId: 'cfg-each' }),
          ],
        ),
      )
      let now = T0 + 5_000
      const clock = () => now
      const consumer = await log.consume(
        { groupId: 'herald-router', topics: ['engine.events'] },
        createRouterHandler({
          log,
          topics: { deliveries: TOPIC },
          getIndex: () => index,
          clock,
          logger: () => {},
          digests: { store, defaultWindowSeconds: 30 },
        }),
      )
      const storm = Array.from({ length: 250 }, (_, i) =>
        anEvent({
          id: `fail-${i}`,
          type: 'user.image.analysis.failed',
          level: 'error',
          resourcetype: 'image',
          data: { full_tag: `registry.example.com/app:${i}`, error: 'analyzer timed out after 3600s' },
        }),
      )
      await log.publish('engine.events', storm.map(encodeLogEvent))

      const delivered: DeliveryCommand[] = []
      const reader = await log.consume({ groupId: 'test-reader', topics: [TOPIC] }, async (batch) => {
        for (const m of batch.messages) {
          const command = decodeDeliveryCommand(m)
          assert.ok(command.ok)
          delivered.push(command.value)
        }
      })
      await eventually(() => assert.equal(delivered.length, 250), { timeoutMs: 10_000 })
      assert.ok(delivered.every((c) => c.configurationId === 'cfg-each' && c.digest === undefined))
      await consumer.stop()

      now = T0 + 60_000
      const flusher = createDigestFlusher({ store, log, topic: TOPIC, clock, logger: () => {} })
      await flusher.flushDue()
      await eventually(() => assert.equal(delivered.length, 251), { timeoutMs: 10_000 })
      await reader.stop()
      const digest = delivered.find((c) => c.configurationId === 'cfg-storm')
      assert.equal(digest?.deliveryId, digestDeliveryIdFor('cfg-storm', '2026-11-22T10:00:00.000Z'))
      assert.deepEqual(digest?.matchedSelectorIds, ['s1', 's2'])
      assert.deepEqual(digest?.digest?.counts, [
        { type: 'user.image.analysis.failed', level: 'error', count: 250 },
      ])
      assert.equal(digest?.digest?.total, 250)
      assert.deepEqual(
        digest?.digest?.events.map((e) => e.id),
        storm.slice(0, 10).map((e) => e.id),
      )
      assert.equal(digest?.digest?.windowEnd, '2026-11-22T10:01:00.000Z')
    } finally {
      await store.close()
      await log.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
