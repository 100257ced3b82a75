import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createTokenService } from '../../src/auth/index.ts'
import { type Config, loadConfig } from '../../src/config/index.ts'
import { chainAuthenticators, createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { TEST_EVENT_TYPE } from '../../src/notifications/index.ts'
import { createMetrics, silentLogger } from '../../src/observability/index.ts'
import { createOutboundGuard, type OutboundGuard } from '../../src/outbound/index.ts'
import type { Consumer, EventLog } from '../../src/ports/event-log.ts'
import type { EventStore } from '../../src/ports/index.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { type IngressWiring, wireIngress } from '../../src/wiring/ingress.ts'
import { type NotificationsWiring, wireNotifications } from '../../src/wiring/notifications.ts'
import { eventually } from '../support/eventually.ts'
import { type SlackStandIn, startSlackStandIn } from '../support/slack-stand-in.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const UI_URL = 'https://herald.example.com'
const BASE = '/v1/notifications/endpoints'
type Json = Record<string, unknown>

/**
 * The notification tools through the HTTP API, on the composition the process runs — the
 * notifications wiring (router and deliverer consumer groups), the projector, the embedded
 * log, event store and chDB — with the routes the wiring mounts: a stored configuration is
 * tested, a test event goes through the whole pipeline to Slack, and preview and explain find
 * it in the warehouse.
 */
describe('endpoint tests, test events, preview and explain through the pipeline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tools-e2e-'))
  let config: Config
  let log: EventLog
  let store: EventStore
  let warehouse: Warehouse
  let ingress: IngressWiring
  let outbound: OutboundGuard
  let notifications: NotificationsWiring
  let projector: Consumer
  let slack: SlackStandIn
  let app: ReturnType<typeof createHttpApp>
  let writerToken = ''

  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, text, json: (text === '' ? {} : JSON.parse(text)) as Json }
  }

  before(async () => {
    slack = await startSlackStandIn()
    config = loadConfig({
      env: { HERALD_DATA_DIR: dir, HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1', HERALD_UI_URL: UI_URL },
    })
    const { topics } = config.event_log
    log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 25 })
    await log.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })))
    store = createSqliteEventStore({ path: join(dir, 'eventstore.sqlite') })
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    ingress = await wireIngress({ config, warehouse, logger: silentLogger })
    outbound = createOutboundGuard({ allowlist: config.outbound.allowlist })
    const metrics = createMetrics()
    notifications = await wireNotifications({
      config,
      log,
      store,
      logger: silentLogger,
      metrics,
      clock: Date.now,
      outbound,
      ingress,
      warehouse,
    })
    projector = await log.consume(
      { groupId: 'herald-projector', topics: [topics.events] },
      createProjectorHandler({ decoder: ingress.decoder, warehouse, clock: Date.now, logger: silentLogger }),
    )

    const tokens = createTokenService({ store, clock: Date.now, newId: randomUUID })
    writerToken = (
      await tokens.issue({ account: 'admin', role: 'admin' }, { account: 'acme', role: 'read-write' })
    ).token
    app = createHttpApp({
      log,
      eventsTopic: topics.events,
      warehouse,
      readiness: {},
      authenticate: chainAuthenticators(createAdminTokenAuthenticator(ADMIN_TOKEN), tokens.authenticate),
      requireAuth: true,
      metrics,
      logger: silentLogger,
      graphiql: false,
      mounts: notifications.mounts,
    })
  })

  after(async () => {
    await projector?.stop()
    await Promise.all((notifications?.consumers ?? []).map((c) => c.stop()))
    await notifications?.close()
    await ingress?.close()
    outbound?.close()
    await log?.close()
    await store?.close()
    await warehouse?.close()
    await slack?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('tests a stored Slack configuration, then routes a test event to it and explains why', async () => {
    const created = await call(writerToken, 'POST', `${BASE}/slack/configurations`, { url: slack.webhookUrl })
    assert.equal(created.status, 201, created.text)
    const configurationId = String(created.json.uuid)
    const selector = await call(
      writerToken,
      'POST',
      `${BASE}/slack/configurations/${configurationId}/selectors`,
      {
        scope: 'account',
        event: { level: '*', type: 'com.ibm.cloud.compliance.*', resource_type: '*' },
        pattern: { data: { action: ['test'] } },
      },
    )
    assert.equal(selector.status, 201, selector.text)
    const selectorId = String(selector.json.uuid)

    const tested = await call(writerToken, 'POST', `${BASE}/slack/configurations/${configurationId}/test`)
    assert.equal(tested.status, 200, tested.text)
    assert.deepEqual([tested.json.status, tested.json.response], ['sent', { status_code: 200, body: 'ok' }])
    assert.equal(slack.messages.length, 1)

    const published = await call(writerToken, 'POST', '/v1/test_event')
    assert.equal(published.status, 202, published.text)
    const eventId = String(published.json.id)
    assert.equal(published.json.type, TEST_EVENT_TYPE)

    // Router, delivery topic, deliverer, Slack: the link in the message names the event.
    await eventually(() => {
      assert.ok(
        JSON.stringify(slack.messages).includes(`${UI_URL}/events/${eventId}`),
        `Slack received ${slack.messages.length} messages`,
      )
    })
    assert.deepEqual(slack.problems, [])

    const explained = await eventually(async () => {
      const answer = await call(writerToken, 'GET', `/v1/notifications/events/${eventId}/explain`)
      assert.equal(answer.status, 200, answer.text)
      return answer
    })
    assert.deepEqual(explained.json.matched, [
      { configuration_id: configurationId, endpoint: 'slack', selector_id: selectorId, routed: true },
    ])

    const preview = await call(writerToken, 'POST', '/v1/notifications/selectors/preview', {
      scope: 'account',
      event: { level: '*', type: 'com.ibm.cloud.compliance.*', resource_type: '*' },
      pattern: { data: { action: ['test'] } },
    })
    assert.equal(preview.status, 200, preview.text)
    assert.deepEqual(
      (preview.json.items as Json[]).map((e) => e.id),
      [eventId],
    )
    const other = await call(writerToken, 'POST', '/v1/notifications/selectors/preview', {
      scope: 'account',
      event: { level: 'error', type: 'com.ibm.cloud.compliance.*', resource_type: '*' },
    })
    assert.deepEqual(other.json.items, [])
    for (const answer of [created, tested, explained, preview])
      assert.ok(!answer.text.includes('xoxSecretToken4f9c2a7e81b3d6'), answer.text)
  })
})
