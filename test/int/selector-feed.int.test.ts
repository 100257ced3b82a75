import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it } from 'node:test'
import { validDataOf } from '../../schemas/fixtures.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { createMetrics, type LogFields, type Logger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { wireIngress } from '../../src/wiring/ingress.ts'
import { wireNotifications } from '../../src/wiring/notifications.ts'
import { damageTablePage } from '../support/damaged-page.ts'
import { eventually } from '../support/eventually.ts'
import { startHttpStandIn } from '../support/http-stand-in.ts'
import { unusedWarehouse } from '../support/unused-warehouse.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const EVENT_TYPE = 'user.image.analysis.completed'
type Json = Record<string, unknown>

/**
 * The router's selector index follows the configuration store through `wireNotifications`, on
 * the embedded store and log, behind the HTTP API, delivering to a real HTTP endpoint.
 */
describe('the selector feed', () => {
  it('resubscribes after the store fails to read, logging each failure, and routes by selectors added once it reads again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-selector-feed-'))
    const delivered: string[] = []
    const endpoint = await startHttpStandIn((request) => {
      delivered.push(String((JSON.parse(request.body) as { data: Json }).data.id))
      return { status: 204 }
    })
    const config = loadConfig({
      env: { HERALD_DATA_DIR: dir, HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1' },
    })
    const { topics } = config.event_log
    const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 25 })
    await log.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })))
    // The store's file is made, and closed, before Herald opens it: its pages are in the file.
    const storePath = join(dir, 'eventstore.sqlite')
    await createSqliteEventStore({ path: storePath }).close()
    const store = createSqliteEventStore({ path: storePath, pollIntervalMs: 20 })
    const warehouse = unusedWarehouse
    const failures: LogFields[] = []
    // The configurations of each index the router swapped in.
    const swaps: unknown[] = []
    const logger: Logger = (_level, event, fields = {}) => {
      if (event === 'notifications.selector_feed_failed') failures.push(fields)
      if (event === 'router.index_swapped') swaps.push(fields.configurations)
    }
    const ingress = await wireIngress({ config, warehouse, logger })
    const outbound = createOutboundGuard({ allowlist: config.outbound.allowlist })
    const metrics = createMetrics()
    const notifications = await wireNotifications({
      config,
      log,
      store,
      logger,
      metrics,
      clock: Date.now,
      outbound,
      ingress,
      selectorFeedRetryMs: { min: 50, max: 400 },
    })
    const app = createHttpApp({
      log,
      eventsTopic: topics.events,
      warehouse,
      readiness: {},
      authenticate: createAdminTokenAuthenticator(ADMIN_TOKEN),
      requireAuth: true,
      metrics,
      logger,
      graphiql: false,
      mounts: notifications.mounts,
    })
    const call = async (method: string, path: string, body: unknown, type = 'application/json') => {
      const response = await app.request(path, {
        method,
        headers: { 'content-type': type, authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify(body),
      })
      const text = await response.text()
      return { status: response.status, text, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Json }
    }

    try {
      // The page holding the store's events goes bad (a failing disk) after the first load: the
      // next read of the feed, woken by another process writing to the file, fails.
      const damaged = damageTablePage(storePath, 'events')
      try {
        const other = new DatabaseSync(storePath)
        other.exec('PRAGMA user_version = 7')
        other.close()
        await eventually(() =>
          assert.ok(failures.length >= 2, 'the feed failed, and failed again on resubscribing'),
        )
        assert.equal(failures[0]?.error, 'event store readAll: database disk image is malformed')
        assert.deepEqual(
          failures.slice(0, 2).map((f) => [f.attempt, f.retry_in_ms]),
          [
            [1, 50],
            [2, 100],
          ],
        )
        damaged.repair()
      } finally {
        damaged.close()
      }

      // Readable again: a configuration added now reaches the router, which routes by it.
      const created = await call('POST', '/v1/notifications/endpoints/webhook/configurations', {
        url: endpoint.url('/hook'),
      })
      assert.equal(created.status, 201, created.text)
      const selector = await call(
        'POST',
        `/v1/notifications/endpoints/webhook/configurations/${String(created.json.uuid)}/selectors`,
        { scope: 'account', event: { level: '*', type: EVENT_TYPE, resource_type: '*' } },
      )
      assert.equal(selector.status, 201, selector.text)
      await eventually(() => assert.ok(swaps.includes(1), 'the router’s index holds the new configuration'), {
        timeoutMs: 10_000,
      })
      const id = `after-${randomUUID()}`
      const accepted = await call(
        'POST',
        '/v1/events',
        {
          specversion: '1.0',
          id,
          source: '/engine/analyzer',
          type: EVENT_TYPE,
          account: 'admin',
          level: 'info',
          resourcetype: 'image',
          data: validDataOf(EVENT_TYPE),
        },
        'application/cloudevents+json',
      )
      assert.equal(accepted.status, 202, accepted.text)
      await eventually(() => assert.deepEqual(delivered, [id]))
    } finally {
      await Promise.all(notifications.consumers.map((c) => c.stop()))
      await notifications.close()
      await ingress.close()
      outbound.close()
      await log.close()
      await store.close()
      await endpoint.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('fails the start, without retrying, when the store cannot be read for the first load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-selector-feed-'))
    // A key given: without one (and without secret.key), the start reads the store before the
    // feed does, to see whether a key may be generated, and fails there.
    const config = loadConfig({
      env: { HERALD_DATA_DIR: dir, HERALD_SECRETS__ENCRYPTION_KEY: randomBytes(32).toString('base64') },
    })
    const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite') })
    await log.createTopics(Object.values(config.event_log.topics).map((topic) => ({ topic, partitions: 1 })))
    const storePath = join(dir, 'eventstore.sqlite')
    await createSqliteEventStore({ path: storePath }).close()
    const damaged = damageTablePage(storePath, 'events')
    const store = createSqliteEventStore({ path: storePath })
    const warehouse = unusedWarehouse
    const failures: LogFields[] = []
    const logger: Logger = (_level, event, fields = {}) => {
      if (event === 'notifications.selector_feed_failed') failures.push(fields)
    }
    const ingress = await wireIngress({ config, warehouse, logger })
    const outbound = createOutboundGuard({ allowlist: config.outbound.allowlist })
    try {
      await assert.rejects(
        wireNotifications({
          config,
          log,
          store,
          logger,
          metrics: createMetrics(),
          clock: Date.now,
          outbound,
          ingress,
          selectorFeedRetryMs: { min: 50, max: 400 },
        }),
        { message: 'event store readAll: database disk image is malformed' },
      )
      assert.deepEqual(failures, [
        { error: 'event store readAll: database disk image is malformed', retried: false },
      ])
    } finally {
      damaged.close()
      await ingress.close()
      outbound.close()
      await log.close()
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
