import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it } from 'node:test'
import { filter, lastValueFrom, map, of } from 'rxjs'
import { TestScheduler } from 'rxjs/testing'
import { validDataOf } from '../schemas/fixtures.ts'
import { MessageTooLargeError, UnavailableError } from '../src/errors/index.ts'
import { type CloudEvent, encodeLogEvent } from '../src/events/index.ts'
import {
  createMemoryProcessedIds,
  DeadLetterHeaders,
  failure,
  type IngressEvent,
  processedKey,
  readDeadLetter,
  toDeadLetter,
  toKafkaMessage,
} from '../src/ingress/index.ts'
import type { EndpointConfiguration } from '../src/notifications/index.ts'
import type { LogFields, Logger, LogLevel } from '../src/observability/index.ts'
import { messageBytes } from '../src/ports/event-log.ts'
import type { Batch, LogMessage, OutgoingMessage, PublishedPosition } from '../src/ports/index.ts'
import { digestWindowMs, loneDigestCommand, noDigests } from './digest.ts'
import { createDigestFlusher } from './digest-flusher.ts'
import type { DigestStore } from './digest-store.ts'
import { createDigestStore } from './digest-store-sqlite.ts'
import {
  batchHandler,
  createRouterHandler,
  dropRouted,
  matchSelectors,
  type RouterCounts,
  type RouterHandlerOptions,
  type Routing,
  toDeliveries,
} from './router.ts'
import {
  buildSelectorIndex,
  commandFor,
  type DeliveryCommand,
  decodeDeliveryCommand,
  encodeDeliveryCommand,
  type SelectorIndex,
} from './routing/index.ts'
import { aConfiguration, anEvent, aSelector, aSelectorSet } from './routing/test-fixtures.ts'

const capturingLogger = () => {
  const lines: { level: LogLevel; event: string; fields: LogFields }[] = []
  const logger: Logger = (level, event, fields = {}) => lines.push({ level, event, fields })
  return { lines, logger }
}

const aValidEvent = (overrides: Partial<CloudEvent> = {}): CloudEvent => {
  const type = overrides.type ?? 'user.checks.tag.vulnerabilities.update'
  return anEvent({ data: validDataOf(type), ...overrides, type })
}

const asLogMessage = (m: OutgoingMessage, offset: number): LogMessage => ({
  topic: 'engine.events',
  partition: 0,
  offset,
  key: m.key,
  value: m.value,
  headers: m.headers ?? {},
  timestamp: 0,
})

const batchOf = (messages: (Uint8Array | OutgoingMessage)[]): Batch => ({
  topic: 'engine.events',
  partition: 0,
  messages: messages.map((m, offset) =>
    asLogMessage(m instanceof Uint8Array ? { key: 'acme', value: m } : m, offset),
  ),
})

const capturingLog = () => {
  const published: { topic: string; messages: readonly OutgoingMessage[] }[] = []
  const log = {
    publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
      published.push({ topic, messages })
      return []
    },
  }
  const on = (topic: string) => published.filter((p) => p.topic === topic).flatMap((p) => p.messages)
  return { log, published, on }
}

const commandOf = (message: OutgoingMessage): DeliveryCommand => {
  const decoded = decodeDeliveryCommand(asLogMessage(message, 0))
  assert.ok(decoded.ok)
  return decoded.value
}

const deliveredEventIds = (messages: readonly OutgoingMessage[]): string[] =>
  messages.map((m) => commandOf(m).event.id)

const index = buildSelectorIndex({
  position: 1,
  disabledEndpoints: new Set(),
  unannounced: new Map(),
  configurations: new Map([['cfg-1', aConfiguration()]]),
  selectors: new Map([['sel-1', aSelector({ type: 'user.checks.*' })]]),
})

const topics = { deliveries: 'notifications.deliveries', dlq: 'engine.events.dlq' }

/**
 * The router's handler over a capturing log, with the tests' defaults (the index above, the
 * clock at 0, no logging, counts kept) and `options` on top.
 */
const aRouter = (options: Partial<RouterHandlerOptions> = {}) => {
  const captured = capturingLog()
  const counts: RouterCounts[] = []
  const handler = createRouterHandler({
    log: captured.log,
    topics,
    getIndex: () => index,
    clock: () => 0,
    logger: () => {},
    onRouted: (c) => counts.push(c),
    ...options,
  })
  return { ...captured, handler, counts }
}

describe('createRouterHandler', () => {
  it('publishes one command per matched event to the deliveries topic', async () => {
    const { handler, on, counts } = aRouter()

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        encodeLogEvent(aValidEvent({ id: 'e2', type: 'user.image.analysis.completed' })).value,
        toKafkaMessage(aValidEvent({ id: 'e3' }), { mode: 'binary' }),
      ]),
    )

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e3'])
    assert.equal(on(topics.deliveries)[0]?.key, 'cfg-1')
    assert.deepEqual(counts, [
      { events: 3, invalid: 0, duplicates: 0, deliveries: 2, digested: 0, deadLettered: {} },
    ])
  })

  it('dead-letters each invalid message with its original bytes, key and headers, and routes the rest', async () => {
    const { lines, logger } = capturingLogger()
    const { handler, on, counts } = aRouter({ clock: () => Date.UTC(2026, 10, 22), logger })
    const garbage = new Uint8Array([0xff, 0xfe, 0x00])
    const unknownType = toKafkaMessage(anEvent({ id: 'u1', type: 'com.example.unknown' }), {
      mode: 'binary',
    })

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        garbage,
        new TextEncoder().encode('{"not":"an event"}'),
        unknownType,
        new Uint8Array([0, 0, 0]),
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
      ]),
    )

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e2'])
    const letters = on(topics.dlq)
    assert.deepEqual(
      letters.map((l) => readDeadLetter({ headers: l.headers ?? {} })?.code),
      ['payload_undecodable', 'event_invalid', 'event_type_unknown', 'wire_format_invalid'],
    )
    assert.deepEqual(letters[0]?.value, garbage)
    assert.equal(letters[0]?.key, 'acme')
    const info = readDeadLetter({ headers: letters[2]?.headers ?? {} })
    assert.deepEqual(
      { topic: info?.topic, partition: info?.partition, offset: info?.offset },
      { topic: 'engine.events', partition: 0, offset: 3 },
    )
    assert.equal(letters[2]?.headers?.ce_id, 'u1', 'binary-mode attributes stay on the letter')
    assert.match(info?.message ?? '', /unknown event type "com.example.unknown"/)
    assert.equal(lines.filter((l) => l.event === 'router.event_invalid').length, 4)
    assert.deepEqual(counts[0]?.deadLettered, {
      payload_undecodable: 1,
      event_invalid: 1,
      event_type_unknown: 1,
      wire_format_invalid: 1,
    })
    assert.equal(counts[0]?.invalid, 4)
  })

  it('dead-letters an event nested too deep (past 64 levels) as invalid, and still routes the rest of the batch', async () => {
    const processed = createMemoryProcessedIds()
    const { handler, on, counts } = aRouter({ processed })
    // JSON.parse reads 20,000 levels; JSON.stringify, the selector index and SQLite's JSON
    // functions would not: the contract refuses it first.
    const event = aValidEvent({ id: 'deep' })
    const deep = new TextEncoder().encode(
      JSON.stringify({ ...event, data: { ...(event.data as object), nested: 'HERE' } }).replace(
        '"HERE"',
        `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      ),
    )

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        deep,
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
      ]),
    )

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e2'])
    const letters = on(topics.dlq)
    assert.equal(letters.length, 1)
    const info = readDeadLetter({ headers: letters[0]?.headers ?? {} })
    assert.equal(info?.code, 'event_invalid')
    assert.equal(info?.offset, 1)
    assert.deepEqual(letters[0]?.value, deep)
    assert.deepEqual(counts[0]?.deadLettered, { event_invalid: 1 })
    // Not remembered as routed: the same id sent again, fixed, is routed.
    const key = processedKey({ ...event, id: 'deep' } as IngressEvent)
    assert.equal((await processed.seen([key])).size, 0)
  })

  it('sets aside an event whose command is larger than the log takes, its letter without the value if that is too large too, and routes the rest', async () => {
    const { lines, logger } = capturingLogger()
    const processed = createMemoryProcessedIds()
    const large = aValidEvent({
      id: 'large',
      data: { ...validDataOf('user.checks.tag.vulnerabilities.update'), note: 'x'.repeat(2_000) },
    })
    const largeBytes = encodeLogEvent(large).value
    // The log takes the event (2 kB and a little) but not its command, a few hundred bytes more.
    const limit = messageBytes(encodeLogEvent(large)) + 50
    const { handler, on, counts } = aRouter({ processed, logger, maxMessageBytes: limit })

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        largeBytes,
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
      ]),
    )

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e2'])
    const [letter, ...more] = on(topics.dlq)
    assert.equal(more.length, 0)
    const info = readDeadLetter({ headers: letter?.headers ?? {} })
    assert.equal(info?.code, 'event_unroutable')
    assert.equal(info?.offset, 1)
    assert.match(
      info?.message ?? '',
      new RegExp(
        `^\\(event\\): makes a delivery command of \\d+ bytes \\(configuration cfg-1\\), over the ${limit} a delivery command may take \\(what the event log takes in one message, or the event store in one append\\)$`,
      ),
    )
    // The letter with the original's value would be too large: it goes without, saying how large it was.
    assert.equal(letter?.value.byteLength, 0)
    assert.equal(letter?.headers?.[DeadLetterHeaders.valueOmitted], String(largeBytes.byteLength))
    assert.ok(messageBytes(letter as OutgoingMessage) <= limit)
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.dead_letter_too_large').map((l) => [l.level, l.fields]),
      [
        [
          'error',
          {
            topic: 'engine.events',
            partition: 0,
            offset: 1,
            code: 'event_unroutable',
            bytes: messageBytes(
              toDeadLetter(
                batchOf([largeBytes]).messages[0] as LogMessage,
                failure('event_unroutable', info?.issues ?? []),
                { group: 'herald-router', now: 0 },
              ),
            ),
            limit,
            value_omitted: true,
            left_out: false,
          },
        ],
      ],
    )
    assert.deepEqual(counts[0]?.deadLettered, { event_unroutable: 1 })
    // Not remembered as routed: sent again once the limit is raised, it is routed.
    assert.equal((await processed.seen([processedKey(large as IngressEvent)])).size, 0)
  })

  it('sets aside, with its whole value, an event whose command is larger than the event store can record, though the log takes any', async () => {
    const processed = createMemoryProcessedIds()
    const large = aValidEvent({
      id: 'large',
      data: { ...validDataOf('user.checks.tag.vulnerabilities.update'), note: 'x'.repeat(2_000) },
    })
    const largeBytes = encodeLogEvent(large).value
    const limit = messageBytes(encodeLogEvent(large)) + 50
    // No limit of the log's (the embedded one): only the deliverer's store limits the command.
    const { handler, on, counts } = aRouter({ processed, maxCommandBytes: limit })

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        largeBytes,
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
      ]),
    )

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e2'])
    const [letter, ...more] = on(topics.dlq)
    assert.equal(more.length, 0)
    const info = readDeadLetter({ headers: letter?.headers ?? {} })
    assert.equal(info?.code, 'event_unroutable')
    assert.match(info?.message ?? '', new RegExp(`over the ${limit} a delivery command may take`))
    // The log takes the letter whole: the event stays readable there.
    assert.deepEqual(letter?.value, largeBytes)
    assert.deepEqual(counts[0]?.deadLettered, { event_unroutable: 1 })
    assert.equal((await processed.seen([processedKey(large as IngressEvent)])).size, 0)
  })

  it('sets aside an event whose command a broker refuses alone, though the log let it through, and publishes the rest in order', async () => {
    const { lines, logger } = capturingLogger()
    const processed = createMemoryProcessedIds()
    const large = aValidEvent({
      id: 'large',
      data: { ...validDataOf('user.checks.tag.vulnerabilities.update'), note: 'x'.repeat(2_000) },
    })
    const brokerMax = 2_000
    // As the Kafka adapter reports a broker's limit below its own: the messages before the one
    // refused are written, and none after it.
    const published: OutgoingMessage[] = []
    const log = {
      publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        for (const [index, message] of messages.entries()) {
          const bytes = messageBytes(message)
          if (topic === topics.deliveries && bytes > brokerMax)
            throw new MessageTooLargeError('refused', { topic, index, bytes, published: index })
          published.push(message)
        }
        return []
      },
    }
    const both = buildSelectorIndex({
      position: 1,
      disabledEndpoints: new Set(),
      unannounced: new Map(),
      configurations: new Map([
        ['cfg-1', aConfiguration({ id: 'cfg-1' })],
        ['cfg-2', aConfiguration({ id: 'cfg-2' })],
      ]),
      selectors: new Map([
        ['sel-1', aSelector({ type: 'user.checks.*' })],
        ['sel-2', aSelector({ type: 'user.checks.*' }, { id: 'sel-2', configurationId: 'cfg-2' })],
      ]),
    })
    const counts: RouterCounts[] = []
    const handler = createRouterHandler({
      log,
      topics,
      getIndex: () => both,
      clock: () => 0,
      logger,
      processed,
      onRouted: (c) => counts.push(c),
    })

    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        encodeLogEvent(large).value,
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
      ]),
    )

    const commands = published.filter((m) => m.headers?.[DeadLetterHeaders.code] === undefined)
    assert.deepEqual(
      commands.map((m) => `${commandOf(m).event.id}>${m.key}`),
      ['e1>cfg-1', 'e1>cfg-2', 'e2>cfg-1', 'e2>cfg-2'],
    )
    const letters = published.filter((m) => m.headers?.[DeadLetterHeaders.code] !== undefined)
    assert.equal(letters.length, 1)
    const info = readDeadLetter({ headers: letters[0]?.headers ?? {} })
    assert.equal(info?.code, 'event_unroutable')
    assert.equal(info?.offset, 1)
    assert.match(
      info?.message ?? '',
      /^\(event\): makes a delivery command of \d+ bytes \(configuration cfg-1\) that the broker refused as too large: event_log\.kafka\.max_request_bytes is above its message\.max\.bytes$/,
    )
    // Refused once: its command to cfg-2 is not tried.
    assert.deepEqual(
      lines
        .filter((l) => l.event === 'router.command_refused')
        .map((l) => [l.level, l.fields.offset, l.fields.configuration_id, l.fields.error]),
      [['error', 1, 'cfg-1', 'refused']],
    )
    assert.deepEqual(counts, [
      {
        events: 2,
        invalid: 0,
        duplicates: 0,
        deliveries: 4,
        digested: 0,
        deadLettered: { event_unroutable: 1 },
      },
    ])
    assert.equal((await processed.seen([processedKey(large as IngressEvent)])).size, 0)
  })

  it('names, in the letter of an event a broker refused for one configuration, the configurations its commands reached before', async () => {
    const { lines, logger } = capturingLogger()
    const large = aValidEvent({
      id: 'large',
      data: { ...validDataOf('user.checks.tag.vulnerabilities.update'), note: 'x'.repeat(2_000) },
    })
    const three = buildSelectorIndex(
      aSelectorSet(
        ['cfg-1', 'cfg-2', 'cfg-3-with-a-longer-id'].map((id) => aConfiguration({ id })),
        ['cfg-1', 'cfg-2', 'cfg-3-with-a-longer-id'].map((configurationId, i) =>
          aSelector({ type: 'user.checks.*' }, { id: `sel-${i}`, configurationId }),
        ),
      ),
    )
    // The broker takes the large event's commands to cfg-1 and cfg-2, not its longer one to cfg-3.
    const [toFirst] = three
      .match(large)
      .map((m) => encodeDeliveryCommand(commandFor(large, m, new Date(0).toISOString(), three.position)))
    const brokerMax = messageBytes(toFirst as OutgoingMessage) + 2
    const published: OutgoingMessage[] = []
    const log = {
      publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        for (const [index, message] of messages.entries()) {
          const bytes = messageBytes(message)
          if (topic === topics.deliveries && bytes > brokerMax)
            throw new MessageTooLargeError('refused', { topic, index, bytes, published: index })
          published.push(message)
        }
        return []
      },
    }
    const handler = createRouterHandler({ log, topics, getIndex: () => three, clock: () => 0, logger })

    await handler(batchOf([encodeLogEvent(large).value, encodeLogEvent(aValidEvent({ id: 'e2' })).value]))

    const commands = published.filter((m) => m.headers?.[DeadLetterHeaders.code] === undefined)
    assert.deepEqual(
      commands.map((m) => `${commandOf(m).event.id}>${m.key}`),
      ['large>cfg-1', 'large>cfg-2', 'e2>cfg-1', 'e2>cfg-2', 'e2>cfg-3-with-a-longer-id'],
    )
    const [letter] = published.filter((m) => m.headers?.[DeadLetterHeaders.code] !== undefined)
    const info = readDeadLetter({ headers: letter?.headers ?? {} })
    assert.equal(info?.code, 'event_unroutable')
    assert.match(
      info?.message ?? '',
      /^\(event\): makes a delivery command of \d+ bytes \(configuration cfg-3-with-a-longer-id\) that the broker refused as too large: [^;]+; \(event\): reached configuration cfg-1, cfg-2 first: routed again, it repeats those commands under their delivery ids, which the deliverer records once$/,
    )
    assert.deepEqual(
      lines.filter((l) => l.event === 'router.command_refused').map((l) => l.fields.reached),
      [['cfg-1', 'cfg-2']],
    )
  })

  it('logs and leaves out a letter too large even without its value, and routes the rest', async () => {
    const { lines, logger } = capturingLogger()
    const { handler, on, counts } = aRouter({ logger, maxMessageBytes: 1_000 })
    const unknown = toKafkaMessage(
      anEvent({ id: 'u1', type: 'com.example.unknown', subject: 's'.repeat(2_000) }),
      {
        mode: 'binary',
      },
    )

    await handler(batchOf([unknown, encodeLogEvent(aValidEvent({ id: 'e1' })).value]))

    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1'])
    assert.deepEqual(on(topics.dlq), [])
    assert.deepEqual(
      lines
        .filter((l) => l.event === 'router.dead_letter_too_large')
        .map(({ fields }) => [fields.offset, fields.code, fields.value_omitted, fields.left_out]),
      [[0, 'event_type_unknown', false, true]],
    )
    assert.deepEqual(counts[0]?.deadLettered, {})
  })

  it('routes an event once per (account, source, id), within a batch and across batches', async () => {
    const processed = createMemoryProcessedIds()
    const { handler, on, counts } = aRouter({ processed })
    const e1 = encodeLogEvent(aValidEvent({ id: 'e1' })).value
    const otherSource = encodeLogEvent(aValidEvent({ id: 'e1', source: '/engine/other' })).value
    const otherAccount = encodeLogEvent(aValidEvent({ id: 'e1', account: 'globex' })).value

    await handler(batchOf([e1, e1, otherSource]))
    await handler(batchOf([e1, otherAccount]))

    // globex has no configuration: it is routed (and remembered) but matches nothing.
    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e1'])
    assert.deepEqual(
      counts.map((c) => [c.events, c.duplicates]),
      [
        [2, 1],
        [1, 1],
      ],
    )
    const seen = await processed.seen([
      processedKey({ account: 'globex', source: '/engine/policy', id: 'e1' }),
    ])
    assert.equal(seen.size, 1)
  })

  it('records nothing when publishing fails, so the retried batch is routed in full', async () => {
    let fail = true
    const processed = createMemoryProcessedIds()
    const { log, on } = capturingLog()
    const handler = createRouterHandler({
      log: {
        publish: async (topic, messages) => {
          if (fail) throw new Error('log unavailable')
          return log.publish(topic, messages)
        },
      },
      topics,
      getIndex: () => index,
      clock: () => 0,
      logger: () => {},
      processed,
    })
    const batch = batchOf([encodeLogEvent(aValidEvent({ id: 'e1' })).value])
    await assert.rejects(handler(batch), /log unavailable/)
    fail = false
    await handler(batch)
    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1'])
  })

  it('validates and dead-letters, but routes nothing, when routing is off', async () => {
    const { handler, on } = aRouter({ route: false })
    await handler(batchOf([encodeLogEvent(aValidEvent()).value, new Uint8Array([1, 2, 3])]))
    assert.equal(on(topics.deliveries).length, 0)
    assert.equal(on(topics.dlq).length, 1)
  })

  it('logs and skips invalid messages when no dead-letter topic is given', async () => {
    const { handler, published } = aRouter({ topics: { deliveries: 'd' } })
    await handler(batchOf([new Uint8Array([1, 2, 3])]))
    assert.equal(published.length, 0)
  })

  it('publishes nothing when nothing matched', async () => {
    const { handler, published } = aRouter()
    await handler(batchOf([encodeLogEvent(aValidEvent({ type: 'system.feeds.sync.failed' })).value]))
    assert.equal(published.length, 0)
  })

  it('rejects when publishing fails, so the batch is not committed', async () => {
    const handler = createRouterHandler({
      log: {
        publish: async () => {
          throw new Error('log unavailable')
        },
      },
      topics,
      getIndex: () => index,
      clock: () => 0,
      logger: () => {},
    })
    await assert.rejects(handler(batchOf([encodeLogEvent(aValidEvent()).value])), /log unavailable/)
    await assert.rejects(
      handler(batchOf([new Uint8Array([1])])),
      /log unavailable/,
      'a DLQ write failure too',
    )
  })
})

describe('createRouterHandler with digests', () => {
  // cfg-each delivers every event; cfg-digest (two selectors matching the same events) wants digests.
  const digestIndex = buildSelectorIndex(
    aSelectorSet(
      [
        aConfiguration({ id: 'cfg-each' }),
        aConfiguration({
          id: 'cfg-digest',
          endpoint: 'slack',
          digest: { enabled: true, windowSeconds: null },
        }),
      ],
      [
        aSelector({ type: 'user.checks.*' }, { id: 's1', configurationId: 'cfg-each' }),
        aSelector({ type: 'user.checks.*' }, { id: 's2', configurationId: 'cfg-digest' }),
        aSelector({ level: 'info' }, { id: 's3', configurationId: 'cfg-digest' }),
      ],
    ),
  )
  const T0 = Date.UTC(2026, 10, 22, 10, 0, 5)

  it('holds the matches of a digest configuration in the store, once per event, and publishes the rest', async () => {
    const store = createDigestStore({ path: ':memory:' })
    const { handler, on, counts } = aRouter({
      getIndex: () => digestIndex,
      clock: () => T0,
      processed: createMemoryProcessedIds(),
      digests: { store, defaultWindowSeconds: 30 },
    })
    await handler(
      batchOf([
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
        encodeLogEvent(aValidEvent({ id: 'e2' })).value,
        encodeLogEvent(aValidEvent({ id: 'e1' })).value,
      ]),
    )
    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e2'])
    assert.ok(on(topics.deliveries).every((m) => m.key === 'cfg-each'))
    assert.deepEqual(counts, [
      { events: 2, invalid: 0, duplicates: 1, deliveries: 2, digested: 2, deadLettered: {} },
    ])
    // The default window (30 s) holding the event: aligned, so [10:00:00, 10:00:30).
    const [window] = await store.due(Date.UTC(2026, 10, 22, 10, 0, 30))
    assert.deepEqual(
      [window?.configurationId, window?.total, window?.matchedSelectorIds, window?.events.map((e) => e.id)],
      ['cfg-digest', 2, ['s2', 's3'], ['e1', 'e2']],
    )
    await store.close()
  })

  it('never adds to a window the flusher has taken while the batch was in flight', async () => {
    const store = createDigestStore({ path: ':memory:' })
    await store.record(
      [
        {
          configurationId: 'cfg-digest',
          account: 'acme',
          endpoint: 'slack',
          eventKey: 'earlier',
          event: aValidEvent({ id: 'earlier' }),
          matchedSelectorIds: ['s2'],
          windowMs: 30_000,
        },
      ],
      T0,
    )
    let now = T0
    const flushed: number[] = []
    const handler = createRouterHandler({
      // While the batch's commands are published, the window ends and is flushed.
      log: {
        publish: async () => {
          now = Date.UTC(2026, 10, 22, 10, 0, 30)
          const due = await store.due(now)
          flushed.push(...due.map((d) => d.total))
          await store.markFlushed(due, now)
          return []
        },
      },
      topics,
      getIndex: () => digestIndex,
      clock: () => now,
      logger: () => {},
      digests: { store, defaultWindowSeconds: 30 },
    })
    await handler(batchOf([encodeLogEvent(aValidEvent({ id: 'late' })).value]))
    assert.deepEqual(flushed, [1])
    const [next] = await store.due(Date.UTC(2026, 10, 22, 11))
    assert.deepEqual(
      [next?.windowStart, next?.events.map((e) => e.id)],
      [Date.UTC(2026, 10, 22, 10, 0, 30), ['late']],
    )
    await store.close()
  })

  it('delivers each event on its own when no digest store is given', async () => {
    const { handler, on } = aRouter({ getIndex: () => digestIndex, clock: () => T0 })
    await handler(batchOf([encodeLogEvent(aValidEvent({ id: 'e1' })).value]))
    assert.deepEqual(
      on(topics.deliveries).map((m) => m.key),
      ['cfg-digest', 'cfg-each'],
    )
  })

  it('rejects when the digest store fails, remembering nothing, so the retried batch is routed in full', async () => {
    const processed = createMemoryProcessedIds()
    const real = createDigestStore({ path: ':memory:' })
    let fail = true
    const store: DigestStore = {
      ...real,
      record: async (entries, now) => {
        if (fail) throw new Error('disk full')
        return real.record(entries, now)
      },
    }
    const { handler, on } = aRouter({
      getIndex: () => digestIndex,
      clock: () => T0,
      processed,
      digests: { store, defaultWindowSeconds: 30 },
    })
    const batch = batchOf([encodeLogEvent(aValidEvent({ id: 'e1' })).value])
    await assert.rejects(handler(batch), /disk full/)
    assert.equal((await processed.seen([processedKey(aValidEvent({ id: 'e1' }))])).size, 0)
    fail = false
    await handler(batch)
    // The command was published twice, with one delivery id: the deliverer sends it once.
    assert.deepEqual(deliveredEventIds(on(topics.deliveries)), ['e1', 'e1'])
    assert.equal((await real.due(T0 + 60_000))[0]?.total, 1)
    await real.close()
  })

  it('rejects on a full digest store, logging router.digest_record_failed with its SQLite code, and routes the batch in full once the disk has room', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-router-digests-'))
    const path = join(dir, 'digests.sqlite')
    // A window of another configuration fills the file's pages; past them it may not grow.
    const setUp = createDigestStore({ path })
    await setUp.record(
      Array.from({ length: 300 }, (_, i) => {
        const event = aValidEvent({ id: `filler-${i}` })
        return {
          configurationId: 'cfg-other',
          account: 'acme',
          endpoint: 'slack' as const,
          eventKey: processedKey(event),
          event,
          matchedSelectorIds: ['s9'],
          windowMs: 30_000,
        }
      }),
      T0,
    )
    await setUp.close()
    const store = createDigestStore({ path, maxPageCount: 1 })
    const processed = createMemoryProcessedIds()
    const { lines, logger } = capturingLogger()
    const { log, on } = capturingLog()
    const handler = createRouterHandler({
      log,
      topics,
      getIndex: () => digestIndex,
      clock: () => T0,
      logger,
      processed,
      digests: { store, defaultWindowSeconds: 30 },
    })
    const batch = batchOf(
      Array.from({ length: 200 }, (_, i) => encodeLogEvent(aValidEvent({ id: `storm-${i}` })).value),
    )
    try {
      await assert.rejects(handler(batch), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.match(error.message, /^digest store record: SQLITE_FULL/)
        return true
      })
      assert.deepEqual(
        lines.filter((l) => l.level === 'error'),
        [
          {
            level: 'error',
            event: 'router.digest_record_failed',
            fields: {
              topic: 'engine.events',
              partition: 0,
              from_offset: 0,
              entries: 200,
              error: 'digest store record: SQLITE_FULL (database or disk is full)',
              sqlite_code: 13,
              retried: true,
            },
          },
        ],
      )
      assert.equal((await processed.seen([processedKey(aValidEvent({ id: 'storm-0' }))])).size, 0)

      // An operator frees space: the batch, handed over again, is routed in full.
      const other = new DatabaseSync(path)
      other.exec(
        "DELETE FROM digest_entries WHERE window_id IN (SELECT id FROM digest_windows WHERE configuration_id = 'cfg-other')",
      )
      other.close()
      await handler(batch)
      const due = await store.due(T0 + 60_000)
      assert.deepEqual(
        due.map((d) => [d.configurationId, d.total]),
        [
          ['cfg-other', 300],
          ['cfg-digest', 200],
        ],
      )
      // cfg-each's commands went out with both attempts, under the same delivery ids.
      assert.equal(on(topics.deliveries).length, 400)
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('sets aside an event only a digest configuration matched whose digest could never go out, and holds one that fits alone', async () => {
    // Only a configuration that asked for digests.
    const onlyDigests = buildSelectorIndex(
      aSelectorSet(
        [aConfiguration({ id: 'cfg-digest', digest: { enabled: true, windowSeconds: 30 } })],
        [aSelector({ type: 'user.checks.*' }, { id: 's2', configurationId: 'cfg-digest' })],
      ),
    )
    const withNote = (id: string, note: number) =>
      aValidEvent({
        id,
        data: { ...validDataOf('user.checks.tag.vulnerabilities.update'), note: 'x'.repeat(note) },
      })
    const large = withNote('large', 5_000)
    const entry = {
      configurationId: 'cfg-digest',
      account: 'acme',
      endpoint: 'webhook' as const,
      eventKey: processedKey(large as IngressEvent),
      event: large,
      matchedSelectorIds: ['s2'],
      windowMs: 30_000,
    }
    // Exactly what the flusher sends for a window holding it alone, stamped with the longest
    // selector set position there is.
    const limit = messageBytes(
      encodeDeliveryCommand({
        ...loneDigestCommand(entry, new Date(T0).toISOString()),
        selectorSetPosition: Number.MAX_SAFE_INTEGER,
      }),
    )
    // A command for it alone would fit with room to spare.
    assert.ok(messageBytes(encodeLogEvent(large)) + 400 < limit)
    for (const [maxMessageBytes, routed] of [
      [limit, true],
      [limit - 1, false],
    ] as const) {
      const store = createDigestStore({ path: ':memory:' })
      const { handler, on, counts } = aRouter({
        getIndex: () => onlyDigests,
        clock: () => T0,
        digests: { store, defaultWindowSeconds: 30 },
        maxMessageBytes,
      })
      // More than half the limit: fine in a digest whose event it is, not listed besides.
      await handler(batchOf([encodeLogEvent(large).value, encodeLogEvent(withNote('half', 3_000)).value]))
      const due = await store.due(T0 + 60_000)
      assert.deepEqual(
        due.flatMap((w) => w.events.map((e) => e.id)),
        routed ? ['large', 'half'] : ['half'],
      )
      assert.deepEqual(counts[0]?.deadLettered, routed ? {} : { event_unroutable: 1 })
      const [letter] = on(topics.dlq)
      if (!routed)
        assert.match(
          readDeadLetter({ headers: letter?.headers ?? {} })?.message ?? '',
          new RegExp(
            `^\\(event\\): makes a digest of ${limit} bytes at the least \\(configuration cfg-digest\\), over the ${maxMessageBytes} the event log takes in one message$`,
          ),
        )
      const published: OutgoingMessage[] = []
      const flusher = createDigestFlusher({
        store,
        log: {
          publish: async (_topic, messages) => {
            published.push(...messages)
            return []
          },
        },
        topic: topics.deliveries,
        clock: () => T0 + 60_000,
        logger: () => {},
        maxMessageBytes,
      })
      assert.deepEqual(await flusher.flushDue(), { digests: 1, events: routed ? 2 : 1, deadLettered: 0 })
      assert.ok(published.every((m) => messageBytes(m) <= maxMessageBytes))
      await store.close()
    }
  })

  it('rejects when the index cannot be read or throws, publishing and remembering nothing', async () => {
    const { log, published } = capturingLog()
    const processed = createMemoryProcessedIds()
    const throwing: SelectorIndex = {
      size: 1,
      match: () => {
        throw new TypeError('corrupt index')
      },
    }
    for (const getIndex of [
      () => throwing,
      () => {
        throw new Error('index not loaded')
      },
    ]) {
      const handler = createRouterHandler({
        log,
        topics,
        getIndex,
        clock: () => T0,
        logger: () => {},
        processed,
      })
      await assert.rejects(handler(batchOf([encodeLogEvent(aValidEvent({ id: 'e1' })).value])))
    }
    assert.equal(published.length, 0)
    assert.equal((await processed.seen([processedKey(aValidEvent({ id: 'e1' }))])).size, 0)
  })
})

describe('router operators', () => {
  const newScheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected))
  const routingOf = (events: readonly CloudEvent[], startedAt = 0): Routing => ({
    batch: batchOf([]),
    startedAt,
    events: events.map((event, offset) => ({
      event: event as IngressEvent,
      message: asLogMessage({ key: event.account, value: encodeLogEvent(event).value }, offset),
      key: processedKey(event),
    })),
    refused: [],
    invalid: 0,
    duplicates: 0,
    deadLettered: {},
    routed: [],
    commands: [],
    origins: [],
    entries: [],
  })
  /** `event>configuration:selector+selector` for each command, `event~configuration` for each digest entry. */
  const routesOf = (routing: Routing): string[] => [
    ...routing.commands.map((m) => {
      const c = commandOf(m)
      return `${c.event.id}>${c.configurationId}:${c.matchedSelectorIds.join('+')}`
    }),
    ...routing.entries.map((e) => `${e.event.id}~${e.configurationId}`),
  ]
  const set = aSelectorSet(
    [
      aConfiguration({ id: 'cfg-1' }),
      aConfiguration({ id: 'cfg-2' }),
      aConfiguration({ id: 'cfg-off', enabled: false }),
      aConfiguration({ id: 'cfg-digest', endpoint: 'slack', digest: { enabled: true, windowSeconds: 60 } }),
      aConfiguration({
        id: 'cfg-digest-off',
        endpoint: 'slack',
        enabled: false,
        digest: { enabled: true, windowSeconds: 60 },
      }),
    ],
    [
      aSelector({ type: 'user.checks.*' }, { id: 's1', configurationId: 'cfg-1' }),
      aSelector({ level: 'info' }, { id: 's2', configurationId: 'cfg-1' }),
      aSelector({ type: 'user.*' }, { id: 's3', configurationId: 'cfg-2' }),
      aSelector({ type: 'user.*' }, { id: 's4', configurationId: 'cfg-off' }),
      aSelector({ type: 'system.*' }, { id: 's5', configurationId: 'cfg-digest' }),
      aSelector({ type: 'system.*' }, { id: 's6', configurationId: 'cfg-digest-off' }),
    ],
  )
  const full = buildSelectorIndex(set)
  const only = (configurationId: string) =>
    buildSelectorIndex({
      ...set,
      selectors: new Map([...set.selectors].filter(([, s]) => s.configurationId === configurationId)),
    })
  const windowOf = (c: EndpointConfiguration) => digestWindowMs(c.digest, 30)
  const a = anEvent({ id: 'a' })
  const b = anEvent({ id: 'b', type: 'user.image.analysis.completed', level: 'warning' })
  const c = anEvent({ id: 'c', type: 'system.feeds.sync.failed', level: 'error' })

  // A disabled configuration is routed like the others: the deliverer records its deliveries
  // (and its digests) as skipped, so a replay can send them once it is enabled again.
  it('turns matches into one command per configuration, disabled ones included, and digest entries for digest configurations', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold('-x-y|', { x: routingOf([a, b]), y: routingOf([c]) }).pipe(
          matchSelectors(() => full),
          toDeliveries(windowOf),
          map(routesOf),
        ),
      ).toBe('-x-y|', {
        x: ['a>cfg-1:s1+s2', 'a>cfg-2:s3', 'a>cfg-off:s4', 'b>cfg-2:s3', 'b>cfg-off:s4'],
        y: ['c~cfg-digest', 'c~cfg-digest-off'],
      })
    })
  })

  it('matches each batch against one whole index: the old one before a swap, the new one after', () => {
    let current = only('cfg-1')
    newScheduler().run(({ cold, expectObservable, flush }) => {
      cold('---s|').subscribe(() => {
        current = only('cfg-2')
      })
      expectObservable(
        cold('-x---y|', { x: routingOf([a, b]), y: routingOf([a, b]) }).pipe(
          matchSelectors(() => current),
          toDeliveries(noDigests),
          map(routesOf),
        ),
      ).toBe('-x---y|', { x: ['a>cfg-1:s1+s2'], y: ['a>cfg-2:s3', 'b>cfg-2:s3'] })
      flush()
    })
  })

  it('errors, after what came before, when the index cannot be read', () => {
    const failure = new Error('index not loaded')
    let fail = false
    newScheduler().run(({ cold, expectObservable }) => {
      cold('--f|').subscribe(() => {
        fail = true
      })
      expectObservable(
        cold('-x-y|', { x: routingOf([a]), y: routingOf([a]) }).pipe(
          matchSelectors(() => {
            if (fail) throw failure
            return full
          }),
          toDeliveries(noDigests),
          map(routesOf),
        ),
      ).toBe('-x-#', { x: ['a>cfg-1:s1+s2', 'a>cfg-2:s3', 'a>cfg-off:s4'] }, failure)
    })
  })

  it('stamps commands with the time the batch was decoded, and remembers every event it routed', () => {
    const unmatched = anEvent({ id: 'u', account: 'globex' })
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold('x|', { x: routingOf([a, unmatched], Date.UTC(2026, 10, 22, 10)) }).pipe(
          matchSelectors(() => full),
          toDeliveries(noDigests),
          map((r) => ({
            createdAt: r.commands.map((m) => commandOf(m).createdAt),
            routed: r.routed,
          })),
        ),
      ).toBe('x|', {
        x: {
          createdAt: Array(3).fill('2026-11-22T10:00:00.000Z'),
          routed: [processedKey(a), processedKey(unmatched)],
        },
      })
    })
  })

  it('stamps each command with the position of the selector set it was matched against', () => {
    const later = buildSelectorIndex({ ...set, position: 4_096 })
    let current = full
    newScheduler().run(({ cold, expectObservable, flush }) => {
      cold('--s|').subscribe(() => {
        current = later
      })
      expectObservable(
        cold('-x-y|', { x: routingOf([a]), y: routingOf([b]) }).pipe(
          matchSelectors(() => current),
          toDeliveries(noDigests),
          map((r) => r.commands.map((m) => commandOf(m).selectorSetPosition)),
        ),
      ).toBe('-x-y|', { x: [1, 1, 1], y: [4_096, 4_096] })
      flush()
    })
  })

  it('drops events already routed and repeats within the batch, counting them', async () => {
    const processed = createMemoryProcessedIds()
    await processed.record([processedKey(b)])
    const out = await lastValueFrom(
      of(routingOf([a, b, a, c, anEvent({ id: 'a', account: 'globex' })])).pipe(dropRouted(processed)),
    )
    assert.deepEqual(
      out.events.map((e) => `${e.event.account}/${e.event.id}`),
      ['acme/a', 'acme/c', 'globex/a'],
    )
    assert.equal(out.duplicates, 2)
    const withoutWindow = await lastValueFrom(of(routingOf([a, a])).pipe(dropRouted()))
    assert.equal(withoutWindow.events.length, 1)
  })

  it('a batch handler resolves when the batch comes out, also when nothing does, and rejects on an error', async () => {
    await batchHandler(map(() => 1))(batchOf([]))
    await batchHandler(filter(() => false))(batchOf([]))
    await assert.rejects(
      batchHandler(
        map(() => {
          throw new Error('store unavailable')
        }),
      )(batchOf([])),
      /store unavailable/,
    )
  })
})
