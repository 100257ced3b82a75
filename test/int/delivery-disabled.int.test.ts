import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { validDataOf } from '../../schemas/fixtures.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { UnavailableError } from '../../src/errors/index.ts'
import { createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { createNotificationConfigService } from '../../src/notifications/index.ts'
import { createMetrics, type Logger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import type { EventLog, EventStore } from '../../src/ports/index.ts'
import { createSecretBox, loadOrCreateKeyFile } from '../../src/secrets/index.ts'
import { type IngressWiring, wireIngress } from '../../src/wiring/ingress.ts'
import { wireNotifications } from '../../src/wiring/notifications.ts'
import { eventually } from '../support/eventually.ts'
import { type HttpStandIn, startHttpStandIn } from '../support/http-stand-in.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const EVENT_TYPE = 'user.image.analysis.completed'
const BASE = '/v1/notifications/endpoints/webhook/configurations'
type Json = Record<string, unknown>

/**
 * Herald's notifications as the process composes them (`wireIngress`, `wireNotifications`:
 * the router and deliverer consumer groups, the delivery log's writer and read-model threads)
 * on the embedded log and store, behind the HTTP API, delivering to a real HTTP endpoint that
 * answers `respond()`. Retries: at once, then after 10 minutes, so a failing head is
 * `retrying` for far longer than any test waits; `env` overrides these and other settings.
 *
 * Faults on demand: `failPublishes(n)` makes the next n publishes of Herald's system events to
 * the log fail, `failDisables(n)` the next n appends of a disable Herald decided itself.
 */
const startWorld = async (name: string, env: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), `herald-${name}-`))
  let respond = 204
  // The event id of each request the endpoint answered with a success, and each digest's events.
  const delivered: string[] = []
  const digests: string[][] = []
  let answerAfterMs = 0
  // Every request the endpoint received, whatever it answered.
  let received = 0
  const endpoint: HttpStandIn = await startHttpStandIn(async (request) => {
    received++
    if (answerAfterMs > 0) await sleep(answerAfterMs)
    if (respond < 300) {
      const body = JSON.parse(request.body) as { type: string; data: Json }
      if (body.type === 'herald.notification.digest')
        digests.push((body.data.events as Json[]).map((e) => String(e.id)))
      else delivered.push(String(body.data.id))
    }
    return { status: respond }
  })
  const config = loadConfig({
    env: {
      HERALD_DATA_DIR: dir,
      HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
      HERALD_NOTIFICATIONS__DELIVERY__RETRY_SCHEDULE_MS: '0,600000',
      HERALD_NOTIFICATIONS__DELIVERY__RETRY_JITTER_PERCENT: '0',
      ...env,
    },
  })
  const { topics } = config.event_log
  const realLog = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 25 })
  await realLog.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })))
  const faults = { publishes: 0, disables: 0 }
  // Every system event that reached the log, as published.
  const systemEvents: Json[] = []
  const log: EventLog = {
    ...realLog,
    publish: async (topic, messages) => {
      // Herald's system events go to the engine events topic alone, one at a time.
      const system =
        topic === topics.events && messages.length === 1
          ? messages
              .map((m) => JSON.parse(Buffer.from(m.value).toString()) as Json)
              .filter((e) => String(e.type).startsWith('system.notifications.'))
          : []
      if (system.length > 0 && faults.publishes > 0) {
        faults.publishes--
        throw new UnavailableError('the log is unreachable (a fault of the test)')
      }
      const published = await realLog.publish(topic, messages)
      systemEvents.push(...system)
      return published
    },
  }
  const realStore = createSqliteEventStore({ path: join(dir, 'eventstore.sqlite') })
  const store: EventStore = {
    ...realStore,
    append: async (stream, events, options) => {
      const bySystem = events.some((e) => String(e.data.by).startsWith('system/'))
      if (bySystem && faults.disables > 0) {
        faults.disables--
        throw new UnavailableError('the store is unreachable (a fault of the test)')
      }
      return realStore.append(stream, events, options)
    },
  }
  const warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
  // Index swaps, by the configurations they saw: a change has reached the router and deliverer.
  let swaps = 0
  const logged: { event: string; fields: Json }[] = []
  const logger: Logger = (_level, event, fields = {}) => {
    if (event === 'router.index_swapped') swaps++
    else logged.push({ event, fields })
  }
  const ingress: IngressWiring = await wireIngress({ config, warehouse, logger })
  const outbound = createOutboundGuard({ allowlist: config.outbound.allowlist })
  const metrics = createMetrics()
  const startNotifications = async () => {
    const wired = await wireNotifications({
      config,
      log,
      store,
      logger,
      metrics,
      clock: Date.now,
      outbound,
      ingress,
    })
    const api = createHttpApp({
      log,
      eventsTopic: topics.events,
      warehouse,
      readiness: {},
      authenticate: createAdminTokenAuthenticator(ADMIN_TOKEN),
      requireAuth: true,
      metrics,
      logger,
      graphiql: false,
      mounts: wired.mounts,
    })
    return { wired, api }
  }
  let { wired: notifications, api: app } = await startNotifications()
  const stopNotifications = async () => {
    await Promise.all(notifications.consumers.map((c) => c.stop()))
    await notifications.close()
  }

  const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
    const response = await app.request(path, {
      method,
      headers: { 'content-type': type, authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, text, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Json }
  }

  /** Runs `change` and resolves once the router and deliverer work from the snapshot it made. */
  const applied = async <T>(change: () => Promise<T>): Promise<T> => {
    const seen = swaps
    const result = await change()
    await eventually(() => assert.ok(swaps > seen, 'the change has not reached the router yet'))
    return result
  }

  /** A webhook configuration for the endpoint, with a selector for the test's events; its id. */
  const configure = (path: string, fields: Json = {}) =>
    applied(async () => {
      const created = await call('POST', BASE, { url: endpoint.url(path), description: name, ...fields })
      assert.equal(created.status, 201, created.text)
      const id = String(created.json.uuid)
      const selector = await call('POST', `${BASE}/${id}/selectors`, {
        scope: 'account',
        event: { level: '*', type: EVENT_TYPE, resource_type: '*' },
      })
      assert.equal(selector.status, 201, selector.text)
      return id
    })

  const setEnabled = (id: string, enabled: boolean) =>
    applied(async () => {
      const put = await call('PUT', `${BASE}/${id}`, { enabled })
      assert.equal(put.status, 200, put.text)
      assert.equal(put.json.enabled, enabled)
    })

  /** Changes the configuration's `fields` (PUT), as its owner does. */
  const update = (id: string, fields: Json) =>
    applied(async () => {
      const put = await call('PUT', `${BASE}/${id}`, fields)
      assert.equal(put.status, 200, put.text)
    })

  /** An admin switches the webhook endpoint type off or on, system-wide. */
  const setWebhooks = (enabled: boolean) =>
    applied(async () => {
      const put = await call('PUT', '/v1/notifications/endpoints/webhook', { enabled })
      assert.equal(put.status, 200, put.text)
    })

  const remove = (id: string) =>
    applied(async () => {
      const deleted = await call('DELETE', `${BASE}/${id}`)
      assert.equal(deleted.status, 204, deleted.text)
    })

  /** Publishes one matching event; its id. */
  const post = async (label: string): Promise<string> => {
    const id = `${label}-${randomUUID()}`
    const accepted = await call(
      'POST',
      '/v1/events',
      {
        specversion: '1.0',
        id,
        source: '/engine/analyzer',
        type: EVENT_TYPE,
        account: 'admin',
        time: new Date().toISOString(),
        level: 'info',
        resourcetype: 'image',
        data: validDataOf(EVENT_TYPE),
      },
      'application/cloudevents+json',
    )
    assert.equal(accepted.status, 202, accepted.text)
    return id
  }

  /** The configuration's deliveries, by event id: status and the last attempt's error. */
  const deliveries = async (id: string, status?: string) => {
    const page = await call(
      'GET',
      `/v1/notifications/deliveries?configuration_id=${id}${status === undefined ? '' : `&status=${status}`}`,
    )
    assert.equal(page.status, 200, page.text)
    return new Map(
      (page.json.items as Json[]).map((d) => [
        String(d.event_id),
        {
          status: String(d.status),
          attempts: Number(d.attempts),
          nextAttemptAt: d.next_attempt_at === null ? null : Date.parse(String(d.next_attempt_at)),
          error: (d.last_attempt as Json | null)?.error ?? null,
        },
      ]),
    )
  }

  const replaySkipped = async (id: string, since: string) => {
    const replayed = await call('POST', '/v1/notifications/deliveries/replay', {
      configuration_id: id,
      status: 'skipped',
      since,
    })
    assert.equal(replayed.status, 202, replayed.text)
    return replayed.json
  }

  /**
   * Waits until the queue's head (`queued[0]`) failed twice, its next try minutes away, with
   * the rest pending behind it.
   */
  const retrying = (id: string, queued: readonly string[]) =>
    eventually(async () => {
      const all = await deliveries(id)
      const [head, ...behind] = queued
      const first = all.get(head as string)
      assert.deepEqual([first?.status, first?.attempts], ['retrying', 2])
      assert.ok((first?.nextAttemptAt ?? 0) > Date.now() + 5 * 60_000)
      for (const eventId of behind) assert.equal(all.get(eventId)?.status, 'pending', eventId)
    })

  /**
   * Waits until every one of `queued` is skipped for `reason`, and asserts it took under 8 s
   * from `since`: "at once", set against the retry head's next attempt 5 minutes away, with
   * room for a loaded machine (a restart's start-up included).
   */
  const settledSkipped = async (id: string, queued: readonly string[], reason: string, since: number) => {
    await eventually(
      async () => {
        const all = await deliveries(id)
        for (const eventId of queued)
          assert.deepEqual([all.get(eventId)?.status, all.get(eventId)?.error], ['skipped', reason], eventId)
      },
      { timeoutMs: 10_000 },
    )
    const ms = Date.now() - since
    assert.ok(ms < 8_000, `settled ${ms} ms after the change`)
  }

  /** `herald_deliveries_total` of webhook deliveries with `outcome`. */
  const attemptsCounted = async (outcome: string): Promise<number> => {
    const text = await (await app.request('/metrics')).text()
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`herald_deliveries_total{endpoint="webhook",outcome="${outcome}"}`))
    return line === undefined ? 0 : Number(line.split(' ').at(-1))
  }

  /**
   * Stops the router and deliverer, runs `whileDown` (the configuration API still writes to the
   * store), and starts them again on the same files, as a restart of Herald does.
   */
  const restart = async (whileDown: () => Promise<void>) => {
    await stopNotifications()
    await whileDown()
    ;({ wired: notifications, api: app } = await startNotifications())
  }

  /**
   * What the system events a webhook configuration at `path` received say (the admin's
   * selector for them), in arrival order.
   */
  const announcementsAt = (path: string): Json[] =>
    endpoint.requests
      .filter((r) => r.path === path)
      .map((r) => (JSON.parse(r.body) as { data: Json }).data)
      .filter((e) => e.type === 'system.notifications.configuration_disabled')

  /** The admin's configuration for Herald's system events, at `path`. */
  const watch = (path: string) =>
    applied(async () => {
      const created = await call('POST', BASE, { url: endpoint.url(path), description: 'system events' })
      assert.equal(created.status, 201, created.text)
      const id = String(created.json.uuid)
      const selector = await call('POST', `${BASE}/${id}/selectors`, {
        scope: 'account',
        event: { level: '*', type: 'system.notifications.*', resource_type: '*' },
      })
      assert.equal(selector.status, 201, selector.text)
      return id
    })

  /** The configuration service on the world's store, as Herald's own would be. */
  const configService = () =>
    createNotificationConfigService({
      store: realStore,
      box: createSecretBox({ current: loadOrCreateKeyFile(join(dir, 'secret.key')) }),
      clock: Date.now,
      newId: randomUUID,
    })

  const close = async () => {
    await stopNotifications()
    await ingress.close()
    outbound.close()
    await realLog.close()
    await realStore.close()
    await warehouse.close()
    await endpoint.close()
    rmSync(dir, { recursive: true, force: true })
  }

  return {
    configure,
    watch,
    announcementsAt,
    configService,
    endpoint,
    logged,
    systemEvents,
    failPublishes: (times: number) => {
      faults.publishes = times
    },
    failDisables: (times: number) => {
      faults.disables = times
    },
    setEnabled,
    update,
    call,
    restart,
    setWebhooks,
    remove,
    post,
    deliveries,
    retrying,
    settledSkipped,
    replaySkipped,
    attemptsCounted,
    delivered,
    digests,
    respond: (status: number, afterMs = 0) => {
      respond = status
      answerAfterMs = afterMs
    },
    received: () => received,
    close,
  }
}

type World = Awaited<ReturnType<typeof startWorld>>

/** A suite with a world of its own, started before its tests and closed after them. */
const describeWorld = (
  title: string,
  name: string,
  tests: (world: () => World) => void,
  env: Record<string, string> = {},
) =>
  describe(title, () => {
    let world: World | undefined
    before(async () => {
      world = await startWorld(name, env)
    })
    after(async () => {
      await world?.close()
    })
    tests(() => world as World)
  })

/** How often each event id was delivered successfully. */
const counts = (ids: readonly string[]) => {
  const out: Record<string, number> = {}
  for (const id of ids) out[id] = (out[id] ?? 0) + 1
  return out
}

describeWorld(
  'a configuration disabled by its owner: events that arrive meanwhile',
  'disabled-arrivals',
  (w) => {
    it('are recorded as skipped (configuration_disabled), not sent, and a skipped replay sends each once after it is enabled again', async () => {
      const world = w()
      const id = await world.configure('/hook')
      const early = await world.post('early')
      await eventually(async () => assert.equal((await world.deliveries(id)).get(early)?.status, 'sent'))

      const disabledAt = new Date().toISOString()
      await world.setEnabled(id, false)
      const missed = [
        await world.post('missed-1'),
        await world.post('missed-2'),
        await world.post('missed-3'),
      ]
      const skipped = await eventually(async () => {
        const found = await world.deliveries(id, 'skipped')
        assert.deepEqual([...found.keys()].sort(), [...missed].sort())
        return found
      })
      for (const eventId of missed) assert.equal(skipped.get(eventId)?.error, 'configuration_disabled')
      assert.equal(await world.attemptsCounted('skipped'), 3)
      await sleep(200)
      assert.deepEqual(world.delivered, [early], 'nothing is sent while it is disabled')

      await world.setEnabled(id, true)
      const later = await world.post('later')
      await eventually(async () => assert.equal((await world.deliveries(id)).get(later)?.status, 'sent'))

      const replay = await world.replaySkipped(id, disabledAt)
      assert.equal(replay.replayed, 3)
      await eventually(async () => {
        const all = await world.deliveries(id)
        for (const eventId of missed) assert.equal(all.get(eventId)?.status, 'sent', eventId)
      })
      await sleep(300)
      assert.deepEqual(
        counts(world.delivered),
        counts([early, later, ...missed]),
        'what it missed, each once; nothing else again',
      )
    })
  },
)

describeWorld('an endpoint type switched off, or a configuration deleted', 'switched-off', (w) => {
  it('routes nothing to it: no delivery is recorded, so there is nothing to replay', async () => {
    const world = w()
    const id = await world.configure('/hook')
    const routed = await world.post('routed')
    await eventually(async () => assert.equal((await world.deliveries(id)).get(routed)?.status, 'sent'))
    const since = new Date().toISOString()
    await world.setWebhooks(false)
    await world.post('switched-off')
    await world.setWebhooks(true)
    await world.remove(id)
    await world.post('deleted')
    await sleep(500)
    assert.deepEqual([...(await world.deliveries(id)).keys()], [routed])
    assert.deepEqual(await world.replaySkipped(id, since), {
      replayed: 0,
      not_replayed: {},
      truncated: false,
      next_token: null,
    })
    assert.deepEqual(world.delivered, [routed])
  })
})

describeWorld('a configuration disabled while its queue waits for a retry', 'disabled-queue', (w) => {
  it('settles the retrying head and the deliveries behind it as skipped at once; a skipped replay sends them and the later arrivals, each once', async () => {
    const world = w()
    world.respond(503)
    const id = await world.configure('/hook')
    const queuedSince = new Date().toISOString()
    const queued = [await world.post('queued-1'), await world.post('queued-2'), await world.post('queued-3')]
    // Failed at once and again: the head's next try is ten minutes away, the others wait behind it.
    await world.retrying(id, queued)

    const disabledAt = Date.now()
    await world.setEnabled(id, false)
    await world.settledSkipped(id, queued, 'configuration_disabled', disabledAt)
    const during = [await world.post('during-1'), await world.post('during-2')]
    await eventually(async () => {
      const all = await world.deliveries(id)
      for (const eventId of during) assert.equal(all.get(eventId)?.status, 'skipped', eventId)
    })
    assert.deepEqual(world.delivered, [], 'nothing went out')

    world.respond(204)
    await world.setEnabled(id, true)
    const replay = await world.replaySkipped(id, queuedSince)
    assert.equal(replay.replayed, 5)
    await eventually(async () => {
      const all = await world.deliveries(id)
      for (const eventId of [...queued, ...during]) assert.equal(all.get(eventId)?.status, 'sent', eventId)
    })
    await sleep(300)
    assert.deepEqual(counts(world.delivered), counts([...queued, ...during]), 'each once')
  })
})

describeWorld('a configuration changed while its queue waits for a retry', 'changed-queue', (w) => {
  it('tries the head again at once when where it sends changes, and the deliveries behind it follow; a new description changes nothing', async () => {
    const world = w()
    world.respond(503)
    const id = await world.configure('/broken')
    const queued = [await world.post('fixed-1'), await world.post('fixed-2')]
    await world.retrying(id, queued)
    world.respond(204)

    await world.update(id, { description: 'renamed' })
    await sleep(1_000)
    assert.deepEqual(world.delivered, [], 'the head keeps its retry, ten minutes away')

    const fixedAt = Date.now()
    await world.update(id, { url: world.endpoint.url('/fixed') })
    await eventually(
      async () => {
        const all = await world.deliveries(id)
        for (const eventId of queued) assert.equal(all.get(eventId)?.status, 'sent', eventId)
      },
      { timeoutMs: 10_000 },
    )
    const ms = Date.now() - fixedAt
    assert.ok(ms < 8_000, `sent ${ms} ms after the change`)
    assert.deepEqual(world.delivered, queued, 'each once, in order')
    assert.equal((await world.deliveries(id)).get(queued[0] as string)?.attempts, 3, 'one attempt more')
    assert.deepEqual(
      world.endpoint.requests.slice(-2).map((r) => r.path),
      ['/fixed', '/fixed'],
    )
  })
})

describeWorld(
  'an endpoint type switched off while a queue of it waits for a retry',
  'switched-off-queue',
  (w) => {
    it('settles the queue as skipped (endpoint_disabled) at once, sending nothing; a skipped replay sends it once the type is on again', async () => {
      const world = w()
      world.respond(503)
      const id = await world.configure('/hook')
      const queuedSince = new Date().toISOString()
      const queued = [await world.post('queued-1'), await world.post('queued-2')]
      await world.retrying(id, queued)

      const switchedOffAt = Date.now()
      await world.setWebhooks(false)
      await world.settledSkipped(id, queued, 'endpoint_disabled', switchedOffAt)
      assert.deepEqual(world.delivered, [], 'nothing went out')

      world.respond(204)
      await world.setWebhooks(true)
      assert.equal((await world.replaySkipped(id, queuedSince)).replayed, 2)
      await eventually(async () => {
        const all = await world.deliveries(id)
        for (const eventId of queued) assert.equal(all.get(eventId)?.status, 'sent', eventId)
      })
      await sleep(300)
      assert.deepEqual(counts(world.delivered), counts(queued), 'each once')
    })

    it('settles the queue of a configuration deleted as skipped (configuration_missing) at once', async () => {
      const world = w()
      world.respond(503)
      const id = await world.configure('/deleted')
      const queued = [await world.post('gone-1'), await world.post('gone-2')]
      await world.retrying(id, queued)
      const sent = world.delivered.length
      const deletedAt = Date.now()
      await world.remove(id)
      await world.settledSkipped(id, queued, 'configuration_missing', deletedAt)
      assert.equal(world.delivered.length, sent, 'nothing went out')
    })
  },
)

describeWorld('a skipped replay right after the configuration is enabled again', 'replay-at-once', (w) => {
  it('sends what it missed, even asked in the same moment as the enable', async () => {
    const world = w()
    const id = await world.configure('/hook')
    const disabledAt = new Date().toISOString()
    await world.setEnabled(id, false)
    const missed = [await world.post('missed-1'), await world.post('missed-2')]
    await eventually(async () => {
      const skipped = await world.deliveries(id, 'skipped')
      assert.deepEqual([...skipped.keys()].sort(), [...missed].sort())
    })
    // No wait for the change to reach the deliverer: a script's enable, then its replay.
    const put = await world.call('PUT', `${BASE}/${id}`, { enabled: true })
    assert.equal(put.status, 200, put.text)
    assert.equal((await world.replaySkipped(id, disabledAt)).replayed, 2)
    await eventually(async () => {
      const all = await world.deliveries(id)
      for (const eventId of missed) assert.equal(all.get(eventId)?.status, 'sent', eventId)
    })
    assert.deepEqual(counts(world.delivered), counts(missed))
  })
})

describeWorld('a configuration whose endpoint answers 410 Gone', 'gone', (w) => {
  it('is disabled by the first 410, and the deliveries queued behind it are skipped, not sent', async () => {
    const world = w()
    // Slow to answer, so the rest queue behind the first while it waits.
    world.respond(410, 300)
    const id = await world.configure('/gone')
    const events = [await world.post('gone-1'), await world.post('gone-2'), await world.post('gone-3')]
    await eventually(async () => {
      const all = await world.deliveries(id)
      assert.equal(all.get(events[0] as string)?.status, 'rejected')
      for (const eventId of events.slice(1))
        assert.deepEqual(
          [all.get(eventId)?.status, all.get(eventId)?.error],
          ['skipped', 'configuration_disabled'],
        )
    })
    assert.equal(world.received(), 1, 'one request to an endpoint that is gone')
  })
})

describeWorld('a digest configuration disabled by its owner', 'disabled-digest', (w) => {
  it('records each window that closes meanwhile as a skipped digest, which a skipped replay sends once', async () => {
    const world = w()
    const id = await world.configure('/digest', { digest: true, digest_window_seconds: 1 })
    const disabledAt = new Date().toISOString()
    await world.setEnabled(id, false)
    const missed = [await world.post('held-1'), await world.post('held-2'), await world.post('held-3')]
    // Their window (or two, should they straddle one's end) has closed and been flushed by now.
    await sleep(2_500)
    // One digest per window, named by its first event, each recorded as skipped.
    await eventually(async () => {
      const all = await world.deliveries(id)
      assert.ok(all.has(missed[0] as string), JSON.stringify([...all]))
      for (const delivery of all.values())
        assert.deepEqual([delivery.status, delivery.error], ['skipped', 'configuration_disabled'])
    })
    assert.deepEqual(world.digests, [], 'nothing is sent while it is disabled')

    await world.setEnabled(id, true)
    const replay = await world.replaySkipped(id, disabledAt)
    const windows = (await world.deliveries(id)).size
    assert.equal(replay.replayed, windows)
    await eventually(() => assert.equal(world.digests.length, windows))
    await sleep(300)
    assert.deepEqual(counts(world.digests.flat()), counts(missed), 'every event it missed, once')
  })
})

describeWorld(
  'a configuration disabled or deleted while Herald was down, its queue waiting for a retry',
  'disabled-while-down',
  (w) => {
    it('settles the retrying head and the deliveries behind it as skipped at start-up', async () => {
      const world = w()
      world.respond(503)
      const id = await world.configure('/hook')
      const queued = [await world.post('queued-1'), await world.post('queued-2')]
      await world.retrying(id, queued)
      await world.restart(async () => {
        const put = await world.call('PUT', `${BASE}/${id}`, { enabled: false })
        assert.equal(put.status, 200, put.text)
      })
      await world.settledSkipped(id, queued, 'configuration_disabled', Date.now())
      assert.deepEqual(world.delivered, [])
    })

    it('settles those of a configuration deleted meanwhile as skipped (configuration_missing) at start-up', async () => {
      const world = w()
      world.respond(503)
      const id = await world.configure('/deleted-while-down')
      const queued = [await world.post('gone-1'), await world.post('gone-2')]
      await world.retrying(id, queued)
      const sent = world.delivered.length
      await world.restart(async () => {
        const deleted = await world.call('DELETE', `${BASE}/${id}`)
        assert.equal(deleted.status, 204, deleted.text)
      })
      await world.settledSkipped(id, queued, 'configuration_missing', Date.now())
      assert.equal(world.delivered.length, sent, 'nothing went out')
    })
  },
)

/**
 * Retries every 50 ms, and a configuration failing for 300 ms is disabled: Herald's own disables
 * happen within a test's wait.
 */
const FAST_DISABLE = {
  HERALD_NOTIFICATIONS__DELIVERY__RETRY_SCHEDULE_MS: Array.from({ length: 40 }, (_, i) =>
    i === 0 ? 0 : 50,
  ).join(','),
  HERALD_NOTIFICATIONS__DELIVERY__DISABLE_AFTER_FAILING_MS: '300',
}

/** The configuration's announcements among `announcements`: what each says, in order. */
const about = (announcements: readonly Json[], id: string) =>
  announcements
    .map((e) => e.data as Json)
    .filter((d) => d.configuration_id === id)
    .map((d) => [d.reason, d.last_error])

describeWorld(
  'a configuration Herald disables itself',
  'announced',
  (w) => {
    it('is announced to the admin once, though publishing the announcement failed at first', async () => {
      const world = w()
      await world.watch('/watch')
      const id = await world.configure('/broken-publish')
      world.endpoint.failWhen((r) => r.path === '/broken-publish', { status: 503 }, 1_000)
      world.failPublishes(1)
      await world.post('fails')
      await eventually(async () => {
        assert.deepEqual(about(world.announcementsAt('/watch'), id), [['sustained_failure', 'HTTP 503']])
      })
      assert.equal(
        world.logged.filter((l) => l.event === 'delivery.system_event_failed').length,
        1,
        'the failed publish was logged',
      )
      const { value } = await world.configService().getConfiguration('admin', 'webhook', id)
      assert.equal(value.configuration.enabled, false)
      await sleep(500)
      assert.equal(about(world.systemEvents, id).length, 1, 'published once')
    })

    it('is disabled and announced when storing the disable failed at first: the next failed attempt tries again', async () => {
      const world = w()
      const id = await world.configure('/broken-store')
      world.endpoint.failWhen((r) => r.path === '/broken-store', { status: 503 }, 1_000)
      world.failDisables(1)
      await world.post('fails')
      await eventually(async () => {
        assert.deepEqual(about(world.announcementsAt('/watch'), id), [['sustained_failure', 'HTTP 503']])
      })
      assert.ok(world.logged.some((l) => l.event === 'delivery.configuration_disable_failed'))
    })

    it('is announced, with its reason, when its endpoint answered 410 Gone', async () => {
      const world = w()
      const id = await world.configure('/gone-for-good')
      world.endpoint.failWhen((r) => r.path === '/gone-for-good', { status: 410 }, 1_000)
      await world.post('gone')
      await eventually(async () => {
        assert.deepEqual(about(world.announcementsAt('/watch'), id), [['endpoint_gone', 'HTTP 410']])
      })
    })

    it('disabled but not announced when Herald stopped (a crash between the two) is announced after the next start, once', async () => {
      const world = w()
      const id = await world.configure('/crashed')
      const failingSince = Date.now() - 60_000
      await world.restart(async () => {
        // What Herald stored before it went down: the disable, and nothing after it.
        const disabled = await world
          .configService()
          .disableConfiguration(id, 'sustained_failure', { failure: { failingSince, lastError: 'HTTP 502' } })
        assert.equal(disabled, true)
      })
      await eventually(async () => {
        assert.deepEqual(about(world.announcementsAt('/watch'), id), [['sustained_failure', 'HTTP 502']])
      })
      const [announced] = world.systemEvents.filter((e) => (e.data as Json).configuration_id === id)
      assert.equal((announced?.data as Json | undefined)?.failing_since, new Date(failingSince).toISOString())
      // Started again: what was announced is not announced again.
      await world.restart(async () => {})
      await sleep(1_000)
      assert.equal(about(world.systemEvents, id).length, 1, 'published once')
      assert.equal(about(world.announcementsAt('/watch'), id).length, 1, 'delivered once')
    })
  },
  FAST_DISABLE,
)
