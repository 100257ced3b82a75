import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import {
  createDeliveryLog,
  createDeliveryReadModel,
  type DeliveryReadModel,
} from '../../src/deliveries/index.ts'
import { UnavailableError } from '../../src/errors/index.ts'
import type { Batch, EventLog, EventStore, LogMessage } from '../../src/ports/index.ts'
import { type DeliveryCommand, deliveryIdFor, encodeDeliveryCommand } from '../routing/index.ts'
import { anEvent } from '../routing/test-fixtures.ts'
import type { ConfigurationFailure, DeliverableConfiguration } from './attempt.ts'
import type { ChannelResult, DeliveryChannels } from './channels/index.ts'
import { type DeliveryEngine, type DeliveryEngineOptions, startDeliveryEngine } from './engine.ts'
import { DEFAULT_RATE_LIMITS } from './rate-limit.ts'

/** The delivery id of the fixture event `eventId` to `configurationId`. */
const deliveryIdOf = (eventId: string, configurationId: string): string =>
  deliveryIdFor(anEvent({ id: eventId }), configurationId)

const OUTCOMES = 'notifications.outcomes'

const webhook = (id: string, host = `${id}.example`, enabled = true): DeliverableConfiguration => ({
  enabled,
  channel: {
    endpoint: 'webhook',
    id,
    account: 'acme',
    url: `https://${host}/hook`,
    signingSecrets: ['whsec_x'],
  },
})

const commandFor = (eventId: string, configurationId: string): DeliveryCommand => ({
  deliveryId: deliveryIdOf(eventId, configurationId),
  account: 'acme',
  endpoint: 'webhook',
  configurationId,
  event: anEvent({ id: eventId }),
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:00.000Z',
})

const batchOf = (...commands: DeliveryCommand[]): Batch => ({
  topic: 'notifications.deliveries',
  partition: 0,
  messages: commands.map(
    (command, offset): LogMessage => ({
      topic: 'notifications.deliveries',
      partition: 0,
      offset,
      key: command.configurationId,
      value: encodeDeliveryCommand(command).value,
      headers: {},
      timestamp: 0,
    }),
  ),
})

interface Call {
  readonly configurationId: string
  readonly eventId: string
  readonly at: number
}

/**
 * The channel port, answering by configuration the way the channels classify (`retriable` for
 * 429 and 5xx, `gone` for 410, else `permanent`), after `latency` ms. Records every call.
 */
const endpoints = (
  behaviour: Record<string, { status?: () => number; latencyMs?: number; retryAfterMs?: number }>,
) => {
  const calls: Call[] = []
  let inFlight = 0
  let peak = 0
  const send: DeliveryChannels['send'] = async (delivery) => {
    const b = behaviour[delivery.configurationId] ?? {}
    calls.push({ configurationId: delivery.configurationId, eventId: delivery.event.id, at: Date.now() })
    inFlight++
    peak = Math.max(peak, inFlight)
    await sleep(b.latencyMs ?? 1)
    inFlight--
    const status = b.status?.() ?? 200
    if (status < 300) return { ok: true, status, response: 'ok', latencyMs: b.latencyMs ?? 1 }
    const kind = status === 410 ? 'gone' : status === 429 || status >= 500 ? 'retriable' : 'permanent'
    const result: ChannelResult = {
      ok: false,
      kind,
      code: status === 429 ? 'rate_limited' : 'http_status',
      status,
      error: `HTTP ${status}`,
      latencyMs: 1,
      ...(b.retryAfterMs === undefined ? {} : { retryAfterMs: b.retryAfterMs }),
    }
    return result
  }
  return { calls, send, peak: () => peak }
}

describe('delivery engine', () => {
  let store: EventStore
  let log: EventLog
  let view: DeliveryReadModel
  let engine: DeliveryEngine | undefined

  const start = async (
    configurations: Record<string, DeliverableConfiguration>,
    send: DeliveryChannels['send'],
    overrides: Partial<DeliveryEngineOptions> = {},
    /** What the engine appends through, around the real store (the read model follows the store itself). */
    wrap: (store: EventStore) => EventStore = (s) => s,
    /** What the engine reads the delivery log through, around the real read model. */
    wrapView: (view: DeliveryReadModel) => DeliveryReadModel = (v) => v,
  ) => {
    store = createSqliteEventStore({ path: ':memory:' })
    log = createSqliteEventLog({ path: ':memory:' })
    await log.createTopics([{ topic: OUTCOMES, partitions: 1 }])
    view = createDeliveryReadModel({ path: ':memory:', newId: randomUUID })
    view.follow(store)
    engine = startDeliveryEngine({
      store: wrap(store),
      view: wrapView(view),
      log,
      outcomesTopic: OUTCOMES,
      getConfiguration: (id) => configurations[id],
      send,
      uiUrl: null,
      timeoutMs: 1_000,
      logger: () => {},
      clock: Date.now,
      newId: randomUUID,
      random: () => 0.5,
      policy: { scheduleMs: [0, 30, 30], jitter: 0, maxRetryAfterMs: 60_000 },
      concurrency: 4,
      ...overrides,
    })
    return engine
  }

  afterEach(async () => {
    await engine?.stop(1_000)
    engine = undefined
    view.close()
    await log.close()
    await store.close()
  })

  const statusOf = (eventId: string, configurationId: string) =>
    view.get(deliveryIdOf(eventId, configurationId))?.status

  const settled = async (pairs: readonly [string, string][], timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const statuses = pairs.map(([e, c]) => statusOf(e, c))
      if (statuses.every((s) => s !== undefined && s !== 'pending' && s !== 'retrying')) return statuses
      if (Date.now() > deadline) assert.fail(`not settled: ${JSON.stringify(statuses)}`)
      await sleep(10)
    }
  }

  it('logs what a channel noted about a send that succeeded', async () => {
    const lines: { level: string; event: string; fields: Record<string, unknown> }[] = []
    const note = 'the label herald:abc was dropped by GitHub; repeats will file new issues'
    const { handler } = await start(
      { ok: webhook('ok') },
      async () => ({ ok: true, status: 201, response: 'created', latencyMs: 1, notes: [note] }),
      { logger: (level, event, fields = {}) => lines.push({ level, event, fields }) },
    )
    await handler(batchOf(commandFor('e1', 'ok')))
    assert.deepEqual(await settled([['e1', 'ok']]), ['sent'])
    const noted = lines.find((l) => l.event === 'delivery.webhook.noted')
    assert.equal(noted?.level, 'warn')
    assert.deepEqual(noted?.fields.notes, [note])
    assert.equal(noted?.fields.delivery_id, deliveryIdOf('e1', 'ok'))
  })

  it('records a batch and lets it go while an endpoint keeps failing; retries come from the log', async () => {
    let failures = 2
    const { calls, send } = endpoints({ down: { status: () => (failures-- > 0 ? 503 : 200) } })
    const { handler } = await start({ down: webhook('down') }, send)
    const started = Date.now()
    await handler(batchOf(commandFor('e1', 'down')))
    // The handler only records: the batch commits long before the endpoint recovers.
    assert.ok(Date.now() - started < 500)
    assert.deepEqual(await settled([['e1', 'down']]), ['sent'])
    assert.equal(calls.length, 3, 'two failures, then success')
    const delivery = view.get(deliveryIdOf('e1', 'down'))
    assert.equal(delivery?.attempts, 3)
    assert.deepEqual(
      view.attemptsOf(deliveryIdOf('e1', 'down')).map((a) => a.outcome),
      ['failed', 'failed', 'sent'],
    )
    // The second retry waited its 30 ms; the first was immediate.
    const [first, second, third] = calls
    assert.ok(first && second && third)
    assert.ok(third.at - second.at >= 28, `${third.at - second.at} ms`)
  })

  it('records a delivery once, however often its command comes', async () => {
    const { calls, send } = endpoints({})
    const { handler } = await start({ ok: webhook('ok') }, send)
    const batch = batchOf(commandFor('e1', 'ok'), commandFor('e2', 'ok'))
    await handler(batch)
    await settled([
      ['e1', 'ok'],
      ['e2', 'ok'],
    ])
    await handler(batch)
    await sleep(50)
    assert.equal(calls.length, 2)
    assert.equal(view.list({ limit: 10 }).items.length, 2)
  })

  it('keeps each configuration in order, and a slow configuration delays only itself', async () => {
    const { calls, send, peak } = endpoints({ slow: { latencyMs: 800 } })
    const { handler } = await start({ slow: webhook('slow'), fast: webhook('fast') }, send, {
      concurrency: 2,
    })
    await handler(
      batchOf(
        commandFor('s1', 'slow'),
        commandFor('s2', 'slow'),
        commandFor('f1', 'fast'),
        commandFor('f2', 'fast'),
        commandFor('f3', 'fast'),
      ),
    )
    const fastDone = Date.now()
    await settled([
      ['f1', 'fast'],
      ['f2', 'fast'],
      ['f3', 'fast'],
    ])
    assert.ok(
      Date.now() - fastDone < 250,
      'every fast delivery went out while the first slow one was in flight',
    )
    assert.equal(statusOf('s1', 'slow'), 'pending')
    await settled([
      ['s1', 'slow'],
      ['s2', 'slow'],
    ])
    const order = (c: string) =>
      calls.filter((call) => call.configurationId === c).map((call) => call.eventId)
    assert.deepEqual(order('slow'), ['s1', 's2'])
    assert.deepEqual(order('fast'), ['f1', 'f2', 'f3'])
    assert.equal(peak(), 2, 'one at a time per configuration, two configurations at once')
  })

  it('gives a slot that frees to a configuration waiting for one before busy ones’ backlogs', async () => {
    const { calls, send } = endpoints({ a: { latencyMs: 60 }, b: { latencyMs: 60 } })
    const { handler } = await start({ a: webhook('a'), b: webhook('b'), c: webhook('c') }, send, {
      concurrency: 2,
    })
    const backlog = Array.from({ length: 30 }, (_, i) => [commandFor(`a${i}`, 'a'), commandFor(`b${i}`, 'b')])
    await handler(batchOf(...backlog.flat()))
    await sleep(150)
    const queuedAt = Date.now()
    await handler(batchOf(commandFor('c1', 'c')))
    await settled([['c1', 'c']])
    const sentAfter = (calls.find((call) => call.configurationId === 'c')?.at ?? 0) - queuedAt
    assert.ok(sentAfter < 500, `sent ${sentAfter} ms after it was queued, behind a and b's backlogs`)
    assert.ok(statusOf('a29', 'a') === 'pending' && statusOf('b29', 'b') === 'pending', 'the backlogs wait')
  })

  it('sends a delivery replayed while its configuration works through a backlog next, in its place, not after the backlog', async () => {
    const { calls, send } = endpoints({ q: { latencyMs: 40 } })
    const { handler, deliveries } = await start({ q: webhook('q') }, send)
    await handler(batchOf(commandFor('e0', 'q')))
    await settled([['e0', 'q']])
    await handler(batchOf(...Array.from({ length: 40 }, (_, i) => commandFor(`b${i}`, 'q'))))
    await sleep(150)
    await view.waitFor(await deliveries.replay(deliveryIdOf('e0', 'q'), 'acme/admin'))
    const replayedAt = Date.now()
    await settled([['e0', 'q']])
    const again = calls.filter((call) => call.eventId === 'e0')[1]
    assert.ok(
      again !== undefined && again.at - replayedAt < 400,
      `sent again ${(again?.at ?? 0) - replayedAt} ms after the replay`,
    )
    assert.equal(statusOf('b39', 'q'), 'pending', 'ahead of the backlog')
    const backlog = calls.filter((call) => call.eventId.startsWith('b')).map((call) => call.eventId)
    assert.deepEqual(
      backlog,
      backlog.toSorted((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
      'the backlog in order',
    )
  })

  it('bounds how many configurations are served at once', async () => {
    const behaviour = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`c${i}`, { latencyMs: 30 }]))
    const configurations = Object.fromEntries(Object.keys(behaviour).map((id) => [id, webhook(id)]))
    const { send, peak } = endpoints(behaviour)
    const { handler } = await start(configurations, send, { concurrency: 3 })
    const commands = Object.keys(configurations).flatMap((id) => [commandFor('a', id), commandFor('b', id)])
    await handler(batchOf(...commands))
    await settled(commands.map((c) => [c.event.id, c.configurationId]))
    assert.equal(peak(), 3)
  })

  it('sends up to `maxInFlight` of one webhook configuration at once, and each once', async () => {
    const { calls, send, peak } = endpoints({ busy: { latencyMs: 40 } })
    const { handler } = await start({ busy: webhook('busy') }, send, {
      concurrency: 16,
      maxInFlight: { webhook: 4 },
    })
    const commands = Array.from({ length: 12 }, (_, i) => commandFor(`e${i}`, 'busy'))
    await handler(batchOf(...commands))
    assert.deepEqual(
      await settled(commands.map((c) => [c.event.id, c.configurationId])),
      commands.map(() => 'sent'),
    )
    assert.equal(peak(), 4)
    assert.deepEqual(calls.map((c) => c.eventId).toSorted(), commands.map((c) => c.event.id).toSorted())
  })

  it('takes a configuration’s own maxInFlight over its type’s, as it is when each delivery is sent, never for tickets', async () => {
    const open = new Map<string, number>()
    const peaks = new Map<string, number>()
    const send: DeliveryChannels['send'] = async (delivery) => {
      const id = delivery.configurationId
      open.set(id, (open.get(id) ?? 0) + 1)
      peaks.set(id, Math.max(peaks.get(id) ?? 0, open.get(id) ?? 0))
      await sleep(40)
      open.set(id, (open.get(id) ?? 0) - 1)
      return { ok: true, status: 200, response: 'ok', latencyMs: 40 }
    }
    const ticket: DeliverableConfiguration = {
      enabled: true,
      maxInFlight: 4,
      channel: {
        endpoint: 'github',
        id: 'ticket',
        account: 'acme',
        owner: 'acme',
        repository: 'app',
        token: 't',
      },
    }
    const configurations: Record<string, DeliverableConfiguration> = {
      own: { ...webhook('own'), maxInFlight: 4 },
      fewer: { ...webhook('fewer'), maxInFlight: 1 },
      plain: webhook('plain'),
      ticket,
    }
    const { handler } = await start(configurations, send, {
      concurrency: 32,
      maxInFlight: { webhook: 2 },
      // GitHub's default limit would space the tickets a second apart.
      rateLimits: { ...DEFAULT_RATE_LIMITS, github: 0 },
    })
    const round = async (label: string) => {
      peaks.clear()
      const commands = Object.keys(configurations).flatMap((id) =>
        Array.from({ length: 8 }, (_, i) => ({
          ...commandFor(`${label}-${i}`, id),
          ...(id === 'ticket' ? { endpoint: 'github' as const } : {}),
        })),
      )
      await handler(batchOf(...commands))
      assert.deepEqual(
        await settled(commands.map((c) => [c.event.id, c.configurationId])),
        commands.map(() => 'sent'),
      )
      return Object.fromEntries(peaks)
    }
    assert.deepEqual(await round('first'), { own: 4, fewer: 1, plain: 2, ticket: 1 })
    // Changed between two rounds: the deliveries sent after the change follow it.
    configurations.own = webhook('own')
    configurations.plain = { ...webhook('plain'), maxInFlight: 3 }
    assert.deepEqual(await round('second'), { own: 2, fewer: 1, plain: 3, ticket: 1 })
  })

  it('records a command only once its own configurations have reached those the router routed it with', async () => {
    // Instance A routed to a configuration just created (its selector set at position 7); this
    // deliverer's own snapshot is still at 5, without it, and catches up 300 ms later.
    const { calls, send } = endpoints({})
    const configurations: Record<string, DeliverableConfiguration> = {}
    let position = 5
    const lines: { event: string; fields: Record<string, unknown> }[] = []
    const { handler } = await start(configurations, send, {
      snapshot: { position: () => position },
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    })
    setTimeout(() => {
      configurations.fresh = webhook('fresh')
      position = 7
    }, 300)
    const started = Date.now()
    await handler(batchOf({ ...commandFor('e1', 'fresh'), selectorSetPosition: 7 }))
    assert.deepEqual(await settled([['e1', 'fresh']]), ['sent'])
    assert.ok(Date.now() - started >= 250, 'recorded once the snapshot caught up')
    assert.equal(calls.length, 1)
    // A command routed with a snapshot this one has passed, or older ones without a stamp, go at once.
    const again = Date.now()
    await handler(
      batchOf({ ...commandFor('e2', 'fresh'), selectorSetPosition: 6 }, commandFor('e3', 'fresh')),
    )
    assert.ok(Date.now() - again < 200)
    assert.deepEqual(
      await settled([
        ['e2', 'fresh'],
        ['e3', 'fresh'],
      ]),
      ['sent', 'sent'],
    )
    assert.deepEqual(
      lines.filter((l) => l.event === 'delivery.configurations_behind'),
      [],
    )
  })

  it('fails a batch retriably, recording nothing, while its configurations stay behind the router’s past the wait', async () => {
    const { calls, send } = endpoints({})
    const configurations: Record<string, DeliverableConfiguration> = {}
    let position = 5
    const lines: { event: string; fields: Record<string, unknown> }[] = []
    const { handler } = await start(configurations, send, {
      snapshot: { position: () => position },
      snapshotWaitMs: 200,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    })
    const batch = batchOf(commandFor('e0', 'fresh'), { ...commandFor('e1', 'fresh'), selectorSetPosition: 9 })
    await assert.rejects(handler(batch), (error: unknown) => {
      assert.ok(error instanceof UnavailableError, String(error))
      assert.equal(error.retriable, true)
      assert.match(error.message, /position 5.*position 9|9.*5/)
      return true
    })
    assert.equal(statusOf('e0', 'fresh'), undefined, 'nothing of the batch recorded')
    assert.equal(statusOf('e1', 'fresh'), undefined)
    const behind = lines.find((l) => l.event === 'delivery.configurations_behind')
    assert.equal(behind?.fields.configurations_at, 5)
    assert.equal(behind?.fields.routed_at, 9)
    // Consumed again once it caught up: recorded and sent, nothing skipped.
    configurations.fresh = webhook('fresh')
    position = 9
    await handler(batch)
    assert.deepEqual(
      await settled([
        ['e0', 'fresh'],
        ['e1', 'fresh'],
      ]),
      ['sent', 'sent'],
    )
    assert.equal(calls.length, 2)
  })

  it('lets its consumer stop at once while a batch waits for its configurations, the batch consumed again after a restart', async () => {
    const { calls, send } = endpoints({})
    const lines: { event: string; fields: Record<string, unknown> }[] = []
    const engine = await start({}, send, {
      snapshot: { position: () => 5 },
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    })
    await log.createTopics([{ topic: 'notifications.deliveries', partitions: 1 }])
    await log.publish('notifications.deliveries', [
      encodeDeliveryCommand({ ...commandFor('e1', 'fresh'), selectorSetPosition: 9 }),
    ])
    const consumer = await log.consume(
      { groupId: 'herald-deliverer', topics: ['notifications.deliveries'] },
      engine.handler,
    )
    // Consumed, and waiting for the configurations (position 5, behind the 9 it was routed with).
    await sleep(150)
    // Shutdown begins, as the wiring stops the deliverer's consumer.
    const stopping = performance.now()
    engine.halt()
    await consumer.stop()
    const tookMs = performance.now() - stopping
    assert.ok(tookMs < 2_000, `the consumer took ${Math.round(tookMs)} ms to stop`)
    assert.equal(statusOf('e1', 'fresh'), undefined, 'nothing of the batch recorded')
    const [lag] = await log.lag('herald-deliverer', ['notifications.deliveries'])
    assert.equal(
      (lag?.end ?? 0) - (lag?.committed ?? 0),
      1,
      'not committed: consumed again after the next start',
    )
    assert.equal(calls.length, 0)
  })

  it('records a batch with its configurations as they are when they are current and still behind past the wait (a restored store)', async () => {
    const { send } = endpoints({})
    const lines: { event: string; fields: Record<string, unknown> }[] = []
    const { handler } = await start({ q: webhook('q') }, send, {
      snapshot: { position: () => 5, current: () => true },
      snapshotWaitMs: 100,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    })
    await handler(batchOf({ ...commandFor('e1', 'q'), selectorSetPosition: 9 }))
    assert.deepEqual(await settled([['e1', 'q']]), ['sent'])
    const behind = lines.find((l) => l.event === 'delivery.configurations_behind')
    assert.equal(behind?.fields.recorded, true)
  })

  it('keeps a target’s rate limit, not the size of the step, when the wall clock steps back', async () => {
    const { calls, send } = endpoints({})
    let offset = 0
    const { handler } = await start({ q: webhook('q') }, send, {
      clock: () => Date.now() + offset,
      rateLimits: { ...DEFAULT_RATE_LIMITS, webhook: 60 },
    })
    await handler(batchOf(commandFor('e1', 'q')))
    assert.deepEqual(await settled([['e1', 'q']]), ['sent'])
    // Ten minutes back (an NTP step, a VM resumed): the next one to the target waits its second.
    offset = -600_000
    await handler(batchOf(commandFor('e2', 'q')))
    assert.deepEqual(await settled([['e2', 'q']], 3_000), ['sent'])
    const [first, second] = calls
    assert.ok(first && second)
    assert.ok(second.at - first.at >= 950, `${second.at - first.at} ms apart`)
  })

  it('attempts what was recorded by a clock ahead of its own: a first attempt at once, a retry within the longest wait', async () => {
    store = createSqliteEventStore({ path: ':memory:' })
    log = createSqliteEventLog({ path: ':memory:' })
    await log.createTopics([{ topic: OUTCOMES, partitions: 1 }])
    view = createDeliveryReadModel({ path: ':memory:', newId: randomUUID })
    view.follow(store)
    // Recorded before the wall clock stepped back a day (or by an instance a day ahead).
    const ahead = () => Date.now() + 86_400_000
    const recorder = createDeliveryLog({ store, clock: ahead, newId: randomUUID, origin: view.instanceId })
    const request = (command: DeliveryCommand) => {
      const { digest: _, ...fields } = command
      return recorder.request(fields)
    }
    await request(commandFor('e1', 'fresh'))
    await view.waitFor(await request(commandFor('e2', 'failing')))
    const failing = view.get(deliveryIdOf('e2', 'failing'))
    assert.ok(failing)
    const failed = await recorder.record(
      failing,
      { ok: false, status: 503, latencyMs: 1, code: 'http_status', error: 'HTTP 503', response: null },
      { outcome: 'failed', reason: 'http_status', nextAttemptAt: ahead() + 200, retryAfterMs: null },
    )
    await view.waitFor(failed.position)
    const { calls, send } = endpoints({})
    const started = Date.now()
    engine = startDeliveryEngine({
      store,
      view,
      log,
      outcomesTopic: OUTCOMES,
      getConfiguration: (id) => webhook(id),
      send,
      uiUrl: null,
      timeoutMs: 1_000,
      logger: () => {},
      clock: Date.now,
      newId: randomUUID,
      random: () => 0.5,
      // No wait of this policy is longer than 400 ms.
      policy: { scheduleMs: [0, 400], jitter: 0, maxRetryAfterMs: 300 },
    })
    assert.deepEqual(
      await settled(
        [
          ['e1', 'fresh'],
          ['e2', 'failing'],
        ],
        3_000,
      ),
      ['sent', 'sent'],
    )
    const at = (configurationId: string) =>
      (calls.find((c) => c.configurationId === configurationId)?.at ?? 0) - started
    assert.ok(at('fresh') < 300, `the first attempt ${at('fresh')} ms after the start`)
    assert.ok(
      at('failing') >= 350,
      `the retry ${at('failing')} ms after the start, its wait clamped to the longest`,
    )
  })

  it('keeps later deliveries behind one waiting for its retry', async () => {
    let failures = 1
    const { calls, send } = endpoints({ flaky: { status: () => (failures-- > 0 ? 503 : 200) } })
    const { handler } = await start({ flaky: webhook('flaky') }, send, {
      policy: { scheduleMs: [150], jitter: 0, maxRetryAfterMs: 60_000 },
    })
    await handler(batchOf(commandFor('e1', 'flaky'), commandFor('e2', 'flaky')))
    await settled([
      ['e1', 'flaky'],
      ['e2', 'flaky'],
    ])
    assert.deepEqual(
      calls.map((c) => c.eventId),
      ['e1', 'e1', 'e2'],
    )
  })

  it('settles a disabled configuration’s queue at once, the retry waiting hours included', async () => {
    const { calls, send } = endpoints({ down: { status: () => 503 } })
    const configurations = { down: webhook('down') }
    const { handler, configurationDisabled } = await start(configurations, send, {
      policy: { scheduleMs: [0, 3_600_000], jitter: 0, maxRetryAfterMs: 60_000 },
    })
    await handler(batchOf(commandFor('e1', 'down'), commandFor('e2', 'down'), commandFor('e3', 'down')))
    const deadline = Date.now() + 5_000
    while (
      statusOf('e1', 'down') !== 'retrying' ||
      (view.get(deliveryIdOf('e1', 'down'))?.attempts ?? 0) < 2
    ) {
      if (Date.now() > deadline) assert.fail(`e1 is ${statusOf('e1', 'down')}`)
      await sleep(10)
    }
    await sleep(50)
    assert.deepEqual([statusOf('e2', 'down'), statusOf('e3', 'down')], ['pending', 'pending'])
    const disabledAt = Date.now()
    configurations.down = webhook('down', undefined, false)
    configurationDisabled('down')
    assert.deepEqual(
      await settled(
        [
          ['e1', 'down'],
          ['e2', 'down'],
          ['e3', 'down'],
        ],
        1_000,
      ),
      ['skipped', 'skipped', 'skipped'],
    )
    assert.ok(Date.now() - disabledAt < 1_000)
    assert.deepEqual(
      ['e1', 'e2', 'e3'].map((e) => view.get(deliveryIdOf(e, 'down'))?.lastAttempt?.error),
      ['configuration_disabled', 'configuration_disabled', 'configuration_disabled'],
    )
    assert.equal(calls.length, 2, 'nothing sent once disabled')
  })

  it('settles every retrying delivery of a disabled configuration sending several at once, not only the head', async () => {
    const { calls, send } = endpoints({ down: { status: () => 503, latencyMs: 20 } })
    const configurations = { down: webhook('down') }
    const { handler, configurationDisabled } = await start(configurations, send, {
      policy: { scheduleMs: [3_600_000], jitter: 0, maxRetryAfterMs: 60_000 },
      maxInFlight: { webhook: 3 },
    })
    const queued = ['e1', 'e2', 'e3'].map((e) => commandFor(e, 'down'))
    await handler(batchOf(...queued, commandFor('e4', 'down')))
    const deadline = Date.now() + 5_000
    while (queued.some((c) => statusOf(c.event.id, 'down') !== 'retrying')) {
      if (Date.now() > deadline)
        assert.fail(`not all retrying: ${queued.map((c) => statusOf(c.event.id, 'down'))}`)
      await sleep(10)
    }
    configurations.down = webhook('down', undefined, false)
    configurationDisabled('down')
    const pairs = ['e1', 'e2', 'e3', 'e4'].map((e): [string, string] => [e, 'down'])
    assert.deepEqual(await settled(pairs, 1_000), ['skipped', 'skipped', 'skipped', 'skipped'])
    assert.equal(calls.length, 3, 'nothing sent once disabled')
  })

  it('tries a delivery waiting for its retry again at once when its configuration changes, once, then keeps to its schedule', async () => {
    const statuses = [503, 503]
    const { calls, send } = endpoints({ q: { status: () => statuses.shift() ?? 200 } })
    const { handler, configurationChanged } = await start({ q: webhook('q') }, send, {
      policy: { scheduleMs: [3_600_000, 7_200_000], jitter: 0, maxRetryAfterMs: 60_000 },
    })
    await handler(batchOf(commandFor('e1', 'q'), commandFor('e2', 'q')))
    const deadline = Date.now() + 5_000
    while (statusOf('e1', 'q') !== 'retrying') {
      if (Date.now() > deadline) assert.fail(`e1 is ${statusOf('e1', 'q')}`)
      await sleep(10)
    }
    const changedAt = Date.now()
    configurationChanged('q')
    while ((view.get(deliveryIdOf('e1', 'q'))?.attempts ?? 0) < 2) {
      if (Date.now() > deadline) assert.fail('not attempted again')
      await sleep(10)
    }
    await sleep(100)
    const e1 = view.get(deliveryIdOf('e1', 'q'))
    assert.equal(e1?.status, 'retrying')
    const waits = (e1?.nextAttemptAt ?? 0) - changedAt
    assert.ok(
      waits > 7_000_000 && waits < 7_300_000,
      `the schedule's second step, not its first: ${waits} ms`,
    )
    assert.equal(statusOf('e2', 'q'), 'pending', 'still behind it')
    assert.equal(calls.length, 2, 'once')
  })

  it('sends a head it was told to serve now when its configuration is enabled again by then', async () => {
    const statuses = [503]
    const { calls, send } = endpoints({ q: { status: () => statuses.shift() ?? 200 } })
    const { handler, configurationDisabled } = await start({ q: webhook('q') }, send, {
      policy: { scheduleMs: [3_600_000], jitter: 0, maxRetryAfterMs: 60_000 },
    })
    await handler(batchOf(commandFor('e1', 'q')))
    const deadline = Date.now() + 5_000
    while (statusOf('e1', 'q') !== 'retrying') {
      if (Date.now() > deadline) assert.fail(`e1 is ${statusOf('e1', 'q')}`)
      await sleep(10)
    }
    // Disabled and enabled again before the deliverer got to it: the attempt finds it enabled.
    configurationDisabled('q')
    assert.deepEqual(await settled([['e1', 'q']], 1_000), ['sent'])
    assert.equal(calls.length, 2)
  })

  it('sends a configuration’s next delivery once one is recorded, before the read model shows it; a failure still holds the queue', async () => {
    const statuses = [200, 503, 200, 200]
    const { calls, send } = endpoints({ q: { status: () => statuses.shift() ?? 200 } })
    // The read model shows nothing recorded until `show`: each attempt waits for it.
    const { promise: shown, resolve: show } = Promise.withResolvers<void>()
    const { handler } = await start(
      { q: webhook('q') },
      send,
      { policy: { scheduleMs: [100], jitter: 0, maxRetryAfterMs: 60_000 } },
      undefined,
      (inner) =>
        Object.assign(Object.create(inner) as DeliveryReadModel, {
          waitFor: async (position: number) => {
            await inner.waitFor(position)
            await shown
          },
        }),
    )
    await handler(batchOf(commandFor('e1', 'q'), commandFor('e2', 'q'), commandFor('e3', 'q')))
    await sleep(300)
    // Shown whatever the check finds, so that the engine can stop.
    setImmediate(show)
    assert.deepEqual(
      calls.map((c) => c.eventId),
      ['e1', 'e2'],
      'e2 went out while e1 waited to be shown; e3 waits behind e2, which failed, past its retry time',
    )
    await settled([
      ['e1', 'q'],
      ['e2', 'q'],
      ['e3', 'q'],
    ])
    assert.deepEqual(
      calls.map((c) => c.eventId),
      ['e1', 'e2', 'e2', 'e3'],
    )
    assert.equal(statusOf('e2', 'q'), 'sent')
  })

  it('spaces requests to one target by its rate limit, and other targets are not held', async () => {
    const { calls, send } = endpoints({})
    // Two configurations on one webhook URL share its limit; a third has its own.
    const configurations = {
      a: webhook('a', 'shared.example'),
      b: webhook('b', 'shared.example'),
      c: webhook('c'),
    }
    const { handler } = await start(configurations, send, {
      rateLimits: { ...DEFAULT_RATE_LIMITS, webhook: 120 },
    })
    await handler(
      batchOf(commandFor('a1', 'a'), commandFor('a2', 'a'), commandFor('b1', 'b'), commandFor('c1', 'c')),
    )
    await settled([
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
      ['c1', 'c'],
    ])
    const shared = calls.filter((c) => c.configurationId !== 'c').map((c) => c.at)
    assert.equal(shared.length, 3)
    const sorted = [...shared].sort((x, y) => x - y)
    for (let i = 1; i < sorted.length; i++) {
      const gap = (sorted[i] ?? 0) - (sorted[i - 1] ?? 0)
      assert.ok(gap >= 495, `requests to one target ${gap} ms apart`)
    }
    const c = calls.find((call) => call.configurationId === 'c')
    assert.ok(c && c.at - (sorted[0] ?? 0) < 400, 'another target went out without waiting its turn')
  })

  it('honours Retry-After over a shorter schedule step', async () => {
    let failures = 1
    const { calls, send } = endpoints({
      busy: { status: () => (failures-- > 0 ? 429 : 200), retryAfterMs: 200 },
    })
    const { handler } = await start({ busy: webhook('busy') }, send)
    await handler(batchOf(commandFor('e1', 'busy')))
    await settled([['e1', 'busy']], 3_000)
    const [first, second] = calls
    assert.ok(first && second)
    assert.ok(second.at - first.at >= 195, `${second.at - first.at} ms after the 429`)
    assert.equal(view.attemptsOf(deliveryIdOf('e1', 'busy'))[0]?.code, 'rate_limited')
  })

  it('does not retry a refusal, disables on 410, skips what cannot be sent, dead-letters when retries run out', async () => {
    const gone: string[] = []
    const { calls, send } = endpoints({
      bad: { status: () => 400 },
      gone: { status: () => 410 },
      down: { status: () => 502 },
    })
    const { handler } = await start(
      {
        bad: webhook('bad'),
        gone: webhook('gone'),
        down: webhook('down'),
        off: webhook('off', 'off.example', false),
      },
      send,
      { onGone: (f) => void gone.push(`${f.configurationId}: ${f.lastError}`) },
    )
    await handler(
      batchOf(
        commandFor('e1', 'bad'),
        commandFor('e2', 'gone'),
        commandFor('e3', 'down'),
        commandFor('e4', 'off'),
      ),
    )
    assert.deepEqual(
      await settled([
        ['e1', 'bad'],
        ['e2', 'gone'],
        ['e3', 'down'],
        ['e4', 'off'],
      ]),
      ['rejected', 'rejected', 'dead_lettered', 'skipped'],
    )
    const count = (c: string) => calls.filter((call) => call.configurationId === c).length
    assert.deepEqual([count('bad'), count('gone'), count('down'), count('off')], [1, 1, 4, 0])
    assert.deepEqual(gone, ['gone: HTTP 410'])
  })

  for (const [answer, status] of [
    ['fails', 503],
    ['succeeds', 200],
  ] as const)
    it(`sends a delivery replayed while its last attempt was in flight again, from the start of the schedule, when that attempt ${answer}`, async () => {
      let calls = 0
      let answerLast: ((status: number) => void) | undefined
      const send: DeliveryChannels['send'] = async () => {
        calls++
        // The fourth call is the schedule's last attempt: it waits until the replay is in.
        const answered =
          calls === 4 ? await new Promise<number>((resolve) => (answerLast = resolve)) : calls < 4 ? 503 : 200
        return answered === 200
          ? { ok: true, status: 200, response: 'ok', latencyMs: 1 }
          : {
              ok: false,
              kind: 'retriable',
              code: 'http_status',
              status: answered,
              error: 'HTTP 503',
              latencyMs: 1,
            }
      }
      const { handler, deliveries } = await start({ slow: webhook('slow') }, send)
      const id = deliveryIdOf('e1', 'slow')
      await handler(batchOf(commandFor('e1', 'slow')))
      const deadline = Date.now() + 5_000
      while (answerLast === undefined) {
        if (Date.now() > deadline) assert.fail(`the last attempt never began (${calls} calls)`)
        await sleep(5)
      }
      assert.equal(view.get(id)?.status, 'retrying')
      await view.waitFor(await deliveries.replay(id, 'acme/read-write'))
      assert.deepEqual([view.get(id)?.status, view.get(id)?.replays], ['pending', 1])
      answerLast(status)
      assert.deepEqual(await settled([['e1', 'slow']]), ['sent'])
      assert.equal(calls, 5, 'the replay sent it once more')
      const delivery = view.get(id)
      assert.deepEqual([delivery?.attempts, delivery?.replays], [5, 1])
      // The fourth attempt's answer is its own; only the replay's attempt settled the delivery.
      assert.deepEqual(
        view.attemptsOf(id).map((a) => [a.attempt, a.outcome]),
        [
          [1, 'failed'],
          [2, 'failed'],
          [3, 'failed'],
          [5, 'sent'],
        ],
      )
    })

  it('reports a configuration that failed for the whole sustained-failure period, once', async () => {
    const failures: ConfigurationFailure[] = []
    const { send } = endpoints({ down: { status: () => 503 } })
    const { handler } = await start({ down: webhook('down') }, send, {
      policy: { scheduleMs: [40, 40, 40, 40], jitter: 0, maxRetryAfterMs: 60_000 },
      sustainedFailureMs: 100,
      onSustainedFailure: (f) => {
        failures.push(f)
        return true
      },
    })
    await handler(batchOf(commandFor('e1', 'down'), commandFor('e2', 'down')))
    await settled(
      [
        ['e1', 'down'],
        ['e2', 'down'],
      ],
      5_000,
    )
    assert.equal(failures.length, 1)
    assert.equal(failures[0]?.configurationId, 'down')
    assert.equal(failures[0]?.lastError, 'HTTP 503')
  })

  it('reports a sustained failure again at the next failed attempt when it could not be dealt with (the disable failed)', async () => {
    const failures: ConfigurationFailure[] = []
    const { send } = endpoints({ down: { status: () => 503 } })
    const { handler } = await start({ down: webhook('down') }, send, {
      policy: { scheduleMs: [40, 40, 40, 40, 40, 40, 40, 40], jitter: 0, maxRetryAfterMs: 60_000 },
      sustainedFailureMs: 100,
      // The first report is not dealt with (the store refused the disable); the second is.
      onSustainedFailure: (f) => failures.push(f) > 1,
    })
    await handler(batchOf(commandFor('e1', 'down')))
    await settled([['e1', 'down']], 5_000)
    assert.equal(failures.length, 2, 'asked again once, then no more')
  })

  it('records an outcome the store could not take once it recovers, never sending the delivery again', async () => {
    // The store's answer to an attempt's outcome is lost twice: once before it was written, once
    // after (as when the store's writer thread stops mid-append and is started again).
    const faults = ['before', 'after']
    const flaky = (inner: EventStore): EventStore => ({
      ...inner,
      append: async (stream, events, options) => {
        const fault = events.some((e) => e.type === 'DeliveryAttempted') ? faults.shift() : undefined
        if (fault === 'after') await inner.append(stream, events, options)
        if (fault !== undefined) throw new UnavailableError(`the store's writer stopped (${fault} writing)`)
        return inner.append(stream, events, options)
      },
    })
    const lines: { event: string; fields: Record<string, unknown> }[] = []
    const { calls, send } = endpoints({})
    const { handler } = await start(
      { ok: webhook('ok') },
      send,
      { logger: (_level, event, fields = {}) => lines.push({ event, fields }) },
      flaky,
    )
    await handler(batchOf(commandFor('e1', 'ok')))
    assert.deepEqual(await settled([['e1', 'ok']]), ['sent'])
    assert.equal(calls.length, 1, 'sent once')
    assert.deepEqual(faults, [], 'both faults happened')
    assert.deepEqual(
      view.attemptsOf(deliveryIdOf('e1', 'ok')).map((a) => a.outcome),
      ['sent'],
      'the outcome written before its answer was lost is not written twice',
    )
    const retries = lines.filter((l) => l.event === 'delivery.webhook.record_retrying')
    assert.deepEqual(
      retries.map((l) => l.fields.retry_in_ms),
      [100, 200],
    )
  })

  it('lets an attempt in progress finish when stopping; one outlasting the grace is aborted and sent after the next start', async () => {
    const calls: string[] = []
    let latencyMs = 100
    const send: DeliveryChannels['send'] = async (delivery, _configuration, context) => {
      calls.push(delivery.event.id)
      try {
        await sleep(latencyMs, undefined, context.signal === undefined ? {} : { signal: context.signal })
      } catch {
        return {
          ok: false,
          kind: 'retriable',
          code: 'aborted',
          status: null,
          error: 'the send was aborted',
          latencyMs: 0,
        }
      }
      return { ok: true, status: 200, response: 'ok', latencyMs }
    }
    const configurations = { a: webhook('a'), b: webhook('b') }
    const first = await start(configurations, send)
    await first.handler(batchOf(commandFor('e1', 'a')))
    while (calls.length === 0) await sleep(5)
    await first.stop(1_000)
    assert.equal(statusOf('e1', 'a'), 'sent', 'finished within the grace, and recorded')

    latencyMs = 5_000
    const second = startDeliveryEngine({
      store,
      view,
      log,
      outcomesTopic: OUTCOMES,
      getConfiguration: (id) => configurations[id as 'a' | 'b'],
      send,
      uiUrl: null,
      timeoutMs: 10_000,
      logger: () => {},
      clock: Date.now,
      newId: randomUUID,
    })
    engine = second
    await second.handler(batchOf(commandFor('e2', 'b')))
    while (calls.length < 2) await sleep(5)
    const stopping = Date.now()
    await second.stop(100)
    assert.ok(Date.now() - stopping < 1_000, 'aborted after the grace')
    const row = view.get(deliveryIdOf('e2', 'b'))
    assert.deepEqual([row?.status, row?.attempts], ['pending', 0], 'nothing recorded for an aborted attempt')

    latencyMs = 1
    engine = startDeliveryEngine({
      store,
      view,
      log,
      outcomesTopic: OUTCOMES,
      getConfiguration: (id) => configurations[id as 'a' | 'b'],
      send,
      uiUrl: null,
      timeoutMs: 10_000,
      logger: () => {},
      clock: Date.now,
      newId: randomUUID,
    })
    assert.deepEqual(await settled([['e2', 'b']]), ['sent'])
    assert.deepEqual(calls, ['e1', 'e2', 'e2'])
  })
})
