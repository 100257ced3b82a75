import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import { validDataOf } from '../../schemas/fixtures.ts'
import { eventually } from '../../test/support/eventually.ts'
import { ACCOUNT_NAME_RULE } from '../access/index.ts'
import { createChdbWarehouse } from '../adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { createTokenService } from '../auth/index.ts'
import { chainAuthenticators, createAdminTokenAuthenticator, createHttpApp } from '../http/index.ts'
import { MAX_PATTERN_DEPTH } from '../matching/index.ts'
import { createMetrics, silentLogger } from '../observability/index.ts'
import type { Consumer, EventLog } from '../ports/event-log.ts'
import type { EventStore, JsonObject } from '../ports/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { createSecretBox } from '../secrets/index.ts'
import { streamName } from './configuration.ts'
import { createEndpointStatusService } from './endpoints.ts'
import type { Principal } from './model.ts'
import { createSelectorToolsRoutes } from './preview-routes.ts'
import { createNotificationConfigService, type NotificationConfigService } from './service.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const TOPIC = 'engine.events'
type Json = Record<string, unknown>

const finding = (severity: string) => ({
  id: `CVE-2024-${severity.length}`,
  severity,
  package: 'openssl',
  version: '3.0.13',
  type: 'deb',
  fix_version: '3.0.14',
  kev: false,
  cvss: 7.5,
})

const cloudEvent = (id: string, account: string, type: string, time: string, data: Json) => ({
  specversion: '1.0',
  id,
  source: '/engine/catalog',
  type,
  account,
  subject: `subject-${id}`,
  time,
  data,
})

const vulnerabilities = (severity: string) => ({
  full_tag: 'docker.io/library/nginx:1.27',
  digest: `sha256:${'b'.repeat(64)}`,
  added: [finding(severity)],
  removed: [],
  updated: [],
})

/** Six events, a minute apart: five of acme's, the newest of globex's. */
const EVENTS = [
  cloudEvent('e1', 'acme', 'user.image.analysis.completed', '2026-03-01T10:00:00Z', { digest: 'sha256:a1' }),
  cloudEvent(
    'e2',
    'acme',
    'user.checks.tag.vulnerabilities.update',
    '2026-03-01T10:01:00Z',
    vulnerabilities('critical'),
  ),
  cloudEvent(
    'e3',
    'acme',
    'user.checks.tag.vulnerabilities.update',
    '2026-03-01T10:02:00Z',
    vulnerabilities('low'),
  ),
  cloudEvent('e4', 'acme', 'system.feeds.sync.failed', '2026-03-01T10:03:00Z', {
    feeds: ['vulnerabilities'],
    error: 'upstream returned 503',
  }),
  // With attributes the warehouse's columns do not hold: kept all the same.
  {
    ...cloudEvent('e5', 'acme', 'user.image.analysis.completed', '2026-03-01T10:04:00Z', {
      digest: 'sha256:a5',
    }),
    datacontenttype: 'application/json',
    region: 'eu-west-1',
  },
  cloudEvent('g1', 'globex', 'user.image.analysis.completed', '2026-03-01T10:05:00Z', {
    digest: 'sha256:g1',
  }),
]

describe('selector preview and event explanations over chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-preview-'))
  let log: EventLog
  let store: EventStore
  let warehouse: Warehouse
  let projector: Consumer
  let service: NotificationConfigService
  let app: ReturnType<typeof createHttpApp>
  const tokens: Record<'reader' | 'writer' | 'stranger', string> = { reader: '', writer: '', stranger: '' }
  const writer: Principal = { account: 'acme', role: 'read-write' }

  const call = async (token: string | undefined, method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, text, json: (text === '' ? {} : JSON.parse(text)) as Json }
  }
  const ids = (answer: { json: Json }) => (answer.json.items as Json[]).map((e) => e.id)
  const selector = (event: Json, extra: Json = {}) => ({
    scope: 'account',
    event: { level: '*', type: '*', resource_type: '*', ...event },
    ...extra,
  })

  before(async () => {
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 25 })
    await log.createTopics([{ topic: TOPIC, partitions: 1 }])
    store = createSqliteEventStore({ path: join(dir, 'store.sqlite') })
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
      readAll: (o) => store.readAll(o),
    })
    const endpoints = createEndpointStatusService({ store, clock: Date.now, newId: randomUUID })
    const tokenService = createTokenService({ store, clock: Date.now, newId: randomUUID })
    const admin = { account: 'admin', role: 'admin' } as const
    tokens.reader = (await tokenService.issue(admin, { account: 'acme', role: 'read-only' })).token
    tokens.writer = (await tokenService.issue(admin, { account: 'acme', role: 'read-write' })).token
    tokens.stranger = (await tokenService.issue(admin, { account: 'globex', role: 'read-only' })).token
    app = createHttpApp({
      log,
      eventsTopic: TOPIC,
      warehouse,
      readiness: {},
      authenticate: chainAuthenticators(
        createAdminTokenAuthenticator(ADMIN_TOKEN),
        tokenService.authenticate,
      ),
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      mounts: [
        { path: '/v1/notifications', app: createSelectorToolsRoutes({ service, warehouse, endpoints }) },
        // The same routes with a scan bound of one row, and without a warehouse.
        { path: '/v1/bounded', app: createSelectorToolsRoutes({ service, warehouse, maxScan: 1 }) },
        { path: '/v1/no-reports', app: createSelectorToolsRoutes({ service }) },
      ],
    })
    // The events arrive the way every event does: the ingest API, the log, the projector.
    projector = await log.consume(
      { groupId: 'herald-projector', topics: [TOPIC] },
      createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger }),
    )
    const published = await app.request('/v1/events', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        'content-type': 'application/cloudevents-batch+json',
      },
      body: JSON.stringify(EVENTS),
    })
    assert.equal(published.status, 202, await published.text())
    await eventually(async () => {
      const [row] = await warehouse.query<{ n: number }>('SELECT count() AS n FROM events')
      assert.equal(Number(row?.n), EVENTS.length)
    })
  })

  after(async () => {
    await projector.stop()
    await log.close()
    await store.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  describe('POST /v1/notifications/selectors/preview', () => {
    const PREVIEW = '/v1/notifications/selectors/preview'

    it('answers the recent events of the caller’s account that a selector matches, newest first', async () => {
      const answer = await call(tokens.reader, 'POST', PREVIEW, selector({ type: 'user.image.*' }))
      assert.equal(answer.status, 200, answer.text)
      assert.deepEqual(ids(answer), ['e5', 'e1'])
      assert.equal(answer.json.source, 'warehouse')
      assert.equal(answer.json.complete, true)
      const [newest] = answer.json.items as Json[]
      assert.deepEqual(newest, {
        specversion: '1.0',
        id: 'e5',
        source: '/engine/catalog',
        type: 'user.image.analysis.completed',
        account: 'acme',
        time: '2026-03-01T10:04:00Z',
        data: { digest: 'sha256:a5' },
        subject: 'subject-e5',
        level: 'info',
        resourcetype: 'image_tag',
        datacontenttype: 'application/json',
        region: 'eu-west-1',
      })
      // A pattern on an extension attribute previews as the router matches it.
      const byRegion = await call(
        tokens.reader,
        'POST',
        PREVIEW,
        selector(
          { type: '*' },
          { pattern: { region: ['eu-west-1'], datacontenttype: ['application/json'] } },
        ),
      )
      assert.equal(byRegion.status, 200, byRegion.text)
      assert.deepEqual(ids(byRegion), ['e5'])
    })

    it('applies the content pattern, the time range and the limit', async () => {
      const critical = selector(
        { type: 'user.checks.*' },
        { pattern: { data: { added: { severity: ['critical'] } } } },
      )
      assert.deepEqual(ids(await call(tokens.reader, 'POST', PREVIEW, critical)), ['e2'])
      assert.deepEqual(ids(await call(tokens.reader, 'POST', PREVIEW, { ...selector({}), limit: 2 })), [
        'e5',
        'e4',
      ])
      const range = { since: '2026-03-01T10:01:00Z', until: '2026-03-01T10:03:00Z' }
      assert.deepEqual(ids(await call(tokens.reader, 'POST', PREVIEW, { ...selector({}), ...range })), [
        'e3',
        'e2',
      ])
      assert.deepEqual(ids(await call(tokens.reader, 'POST', PREVIEW, selector({ level: 'error' }))), ['e4'])
      // `time` as the producer wrote it (no milliseconds), as the router matches it.
      const at = selector({}, { pattern: { time: ['2026-03-01T10:02:00Z'] } })
      assert.deepEqual(ids(await call(tokens.reader, 'POST', PREVIEW, at)), ['e3'])
    })

    it('orders and ranges an event sent without `time` by when it arrived', async () => {
      const untimed = {
        ...cloudEvent('nt1', 'globex', 'system.feeds.sync.failed', '', { feeds: [], error: 'x' }),
      }
      delete (untimed as { time?: string }).time
      const published = await app.request('/v1/events', {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify(untimed),
      })
      assert.equal(published.status, 202, await published.text())
      const byAll = selector({ level: '*' })
      await eventually(async () =>
        assert.deepEqual(ids(await call(tokens.stranger, 'POST', PREVIEW, byAll)), ['nt1', 'g1']),
      )
      const lately = { ...byAll, since: new Date(Date.now() - 3_600_000).toISOString() }
      assert.deepEqual(ids(await call(tokens.stranger, 'POST', PREVIEW, lately)), ['nt1'])
      const before = { ...byAll, until: '2026-03-02T00:00:00Z' }
      assert.deepEqual(ids(await call(tokens.stranger, 'POST', PREVIEW, before)), ['g1'])
    })

    it('shows another account nothing of acme’s, and the admin every account through a global selector', async () => {
      assert.deepEqual(
        ids(await call(tokens.stranger, 'POST', PREVIEW, selector({ type: 'user.image.*' }))),
        ['g1'],
      )
      const global = { ...selector({ type: 'user.image.*' }), scope: 'global' }
      assert.deepEqual(ids(await call(ADMIN_TOKEN, 'POST', PREVIEW, global)), ['g1', 'e5', 'e1'])
      assert.equal((await call(tokens.writer, 'POST', PREVIEW, global)).status, 403)
    })

    it('refuses an invalid selector with 400 naming the path', async () => {
      const pattern = await call(
        tokens.reader,
        'POST',
        PREVIEW,
        selector({}, { pattern: { data: { severity: [{ numeric: ['>'] }] } } }),
      )
      assert.equal(pattern.status, 400)
      assert.equal(pattern.json.code, 'validation_failed')
      assert.deepEqual(
        (pattern.json.errors as Json[]).map((e) => e.path),
        ['pattern.data.severity[0].numeric'],
      )
      const event = await call(tokens.reader, 'POST', PREVIEW, selector({ type: 'bad type!' }))
      assert.equal(event.status, 400)
      assert.deepEqual(
        (event.json.errors as Json[]).map((e) => e.path),
        ['event.type'],
      )
      assert.equal((await call(tokens.reader, 'POST', PREVIEW, '[1]')).status, 400)
    })

    it('refuses a preview with a field it does not know, naming it', async () => {
      const answer = await call(
        tokens.reader,
        'POST',
        PREVIEW,
        selector({ resourcetype: 'image' }, { limt: 1, patern: { data: { severity: ['critical'] } } }),
      )
      assert.equal(answer.status, 400, answer.text)
      assert.deepEqual(
        (answer.json.errors as Json[]).map((e) => e.path),
        ['limt', 'patern', 'event.resourcetype'],
      )
    })

    it('says when the scan bound was reached before the range was exhausted', async () => {
      const answer = await call(tokens.reader, 'POST', '/v1/bounded/selectors/preview', selector({}))
      assert.deepEqual([answer.json.scanned, answer.json.complete, ids(answer)], [1, false, ['e5']])
    })

    it('previews a posted sample instead, and requires one without a warehouse', async () => {
      const completed = validDataOf('user.image.analysis.completed')
      const feedFailed = validDataOf('system.feeds.sync.failed')
      const sample = [
        cloudEvent('s1', 'acme', 'user.image.analysis.completed', '2026-03-01T09:00:00Z', completed),
        cloudEvent('s2', 'acme', 'system.feeds.sync.failed', '2026-03-01T09:01:00Z', feedFailed),
        cloudEvent('s3', 'globex', 'user.image.analysis.completed', '2026-03-01T09:02:00Z', completed),
      ]
      for (const base of ['/v1/notifications', '/v1/no-reports']) {
        const answer = await call(tokens.reader, 'POST', `${base}/selectors/preview`, {
          ...selector({ type: 'user.image.*' }),
          sample,
        })
        assert.equal(answer.status, 200, answer.text)
        assert.deepEqual([answer.json.source, ids(answer)], ['sample', ['s1']])
      }
      // Judged as the router judges it: the feed failure carries no level, the catalog's
      // (error) is filled in, and a selector on it matches.
      const byLevel = await call(tokens.reader, 'POST', '/v1/no-reports/selectors/preview', {
        scope: 'account',
        event: { level: 'error', type: 'system.feeds.*', resource_type: 'feeds' },
        sample,
      })
      assert.equal(byLevel.status, 200, byLevel.text)
      assert.deepEqual(ids(byLevel), ['s2'])
      const without = await call(tokens.reader, 'POST', '/v1/no-reports/selectors/preview', selector({}))
      assert.equal(without.status, 400)
      assert.deepEqual(
        (without.json.errors as Json[]).map((e) => e.path),
        ['sample'],
      )
      const bad = await call(tokens.reader, 'POST', PREVIEW, {
        ...selector({}),
        sample: [sample[0], { id: 7 }],
      })
      assert.equal(bad.status, 400)
      assert.ok(
        (bad.json.errors as Json[]).some((e) => e.path === 'sample[1].id'),
        bad.text,
      )
    })

    it('refuses a sample event nested too deeply to be written out, naming it, as ingest would', async () => {
      const ok = cloudEvent('s1', 'acme', 'user.image.analysis.completed', '2026-03-01T09:00:00Z', {
        digest: 'sha256:a1',
      })
      // Written out by hand: JSON.stringify itself cannot write data this deep.
      const deep = JSON.stringify({ ...ok, id: 's2' }).replace(
        /"data":\{[^}]*\}/,
        `"data":{"digest":"sha256:a2","deep":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`,
      )
      const body = `{"scope":"account","event":{"level":"*","type":"*","resource_type":"*"},"sample":[${JSON.stringify(ok)},${deep}]}`
      const response = await app.request('/v1/no-reports/selectors/preview', {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.reader}`, 'content-type': 'application/json' },
        body,
      })
      assert.equal(response.status, 400)
      assert.deepEqual(((await response.json()) as Json).errors, [
        { path: 'sample[1].data', message: 'is nested more than 64 levels deep' },
      ])
    })

    it('needs a token', async () => {
      assert.equal((await call(undefined, 'POST', PREVIEW, selector({}))).status, 401)
    })
  })

  describe('GET /v1/notifications/events/{id}/explain', () => {
    let slackId = ''
    const selectorIds: Record<string, string> = {}

    before(async () => {
      const slack = await service.createConfiguration(writer, 'slack', {
        fields: { url: 'https://hooks.slack.com/services/T0/B0/explain-canary' },
        options: {},
      })
      slackId = slack.value.id
      const add = async (
        name: string,
        configurationId: string,
        endpoint: 'slack' | 'webhook',
        body: Json,
      ) => {
        const { value } = await service.addSelector(writer, endpoint, configurationId, {
          scope: 'account',
          event: { level: '*', type: '*', resource_type: '*', ...(body.event as Json) },
          pattern: (body.pattern ?? null) as null,
        })
        selectorIds[name] = value.id
      }
      await add('critical', slackId, 'slack', {
        event: { type: 'user.checks.*' },
        pattern: { data: { added: { severity: ['critical'] } } },
      })
      await add('images', slackId, 'slack', { event: { type: 'user.image.*' } })
      const off = await service.createConfiguration(writer, 'webhook', {
        fields: { url: 'https://hooks.example.com/explain' },
        options: { enabled: false },
      })
      await add('everything', off.value.id, 'webhook', {})
    })

    const explain = (token: string, id: string) =>
      call(token, 'GET', `/v1/notifications/events/${id}/explain`)

    it('tells which selectors matched and, for the others, the first condition that failed', async () => {
      const answer = await explain(tokens.reader, 'e3')
      assert.equal(answer.status, 200, answer.text)
      assert.deepEqual(answer.json.event, {
        id: 'e3',
        type: 'user.checks.tag.vulnerabilities.update',
        source: '/engine/catalog',
        account: 'acme',
        // As the producer wrote it, which is what a selector on `time` matches.
        time: '2026-03-01T10:02:00Z',
        level: 'info',
        resourcetype: 'image_tag',
        subject: 'subject-e3',
      })
      const matched = answer.json.matched as Json[]
      assert.deepEqual(
        matched.map((m) => [m.selector_id, m.endpoint, m.routed, m.reason]),
        [
          [
            selectorIds.everything,
            'webhook',
            true,
            'the configuration is disabled: its delivery is recorded as skipped (configuration_disabled), to be replayed once it is enabled again',
          ],
        ],
      )
      const unmatched = Object.fromEntries(
        (answer.json.unmatched as Json[]).map((u) => [u.selector_id, (u.failure as Json).message]),
      )
      assert.deepEqual(unmatched, {
        [selectorIds.critical as string]: 'pattern.data.added.severity: none of ["critical"] matched "low"',
        [selectorIds.images as string]:
          'event.type: expected "user.image.*", got "user.checks.tag.vulnerabilities.update"',
      })
      assert.ok(!answer.text.includes('explain-canary'))
    })

    it('says a match is not routed while its endpoint type is switched off', async () => {
      const critical = await explain(tokens.reader, 'e2')
      const routed = (critical.json.matched as Json[]).find((m) => m.selector_id === selectorIds.critical)
      assert.deepEqual([routed?.configuration_id, routed?.routed], [slackId, true])
      const endpoints = createEndpointStatusService({ store, clock: Date.now, newId: randomUUID })
      await endpoints.set({ account: 'admin', role: 'admin' }, 'slack', false)
      await endpoints.set({ account: 'admin', role: 'admin' }, 'webhook', false)
      try {
        const off = await explain(tokens.reader, 'e2')
        const reasons = (off.json.matched as Json[]).map((m) => [m.selector_id, m.routed, m.reason])
        // A disabled configuration of a switched-off type is not routed either.
        assert.deepEqual(
          reasons.sort(),
          [
            [selectorIds.critical, false, 'the slack endpoint type is disabled'],
            [selectorIds.everything, false, 'the webhook endpoint type is disabled'],
          ].sort(),
        )
      } finally {
        await endpoints.set({ account: 'admin', role: 'admin' }, 'slack', true)
        await endpoints.set({ account: 'admin', role: 'admin' }, 'webhook', true)
      }
    })

    it('finds only the caller’s own events; the admin finds any', async () => {
      assert.equal((await explain(tokens.reader, 'g1')).status, 404)
      assert.equal((await explain(tokens.reader, 'no-such-event')).status, 404)
      for (const id of ['e'.repeat(200), 'e'.repeat(10_000)]) {
        const long = await explain(tokens.reader, id)
        assert.equal(long.status, 404)
        assert.equal(long.json.detail, `event ${'e'.repeat(64)}… not found`)
      }
      const stranger = await explain(tokens.stranger, 'g1')
      assert.equal(stranger.status, 200)
      assert.deepEqual([stranger.json.matched, stranger.json.unmatched], [[], []])
      assert.equal((await explain(ADMIN_TOKEN, 'g1')).status, 200)
    })

    it('asks which event an id names when two sources (for the admin, two accounts) used it, and explains the one named', async () => {
      const dup = (account: string, source: string, minute: number) => ({
        ...cloudEvent('dup', account, 'user.image.analysis.completed', `2026-03-01T11:0${minute}:00Z`, {
          digest: `sha256:d${minute}`,
        }),
        source,
      })
      // Ids are unique per source: one batch may not hold the same source and id twice.
      for (const batch of [
        [dup('acme', '/engine/a', 1), dup('acme', '/engine/b', 2)],
        [dup('globex', '/engine/a', 3)],
      ]) {
        const published = await app.request('/v1/events', {
          method: 'POST',
          headers: {
            authorization: `Bearer ${ADMIN_TOKEN}`,
            'content-type': 'application/cloudevents-batch+json',
          },
          body: JSON.stringify(batch),
        })
        assert.equal(published.status, 202, await published.text())
      }
      await eventually(async () => {
        const [row] = await warehouse.query<{ n: number }>("SELECT count() AS n FROM events WHERE id = 'dup'")
        assert.equal(Number(row?.n), 3)
      })
      const explainWith = (token: string, query: Record<string, string>) =>
        call(token, 'GET', `/v1/notifications/events/dup/explain?${new URLSearchParams(query)}`)
      const summary = (answer: { json: Json }) => {
        const event = answer.json.event as Json
        return [event.account, event.source, event.time]
      }

      const ambiguous = await explain(tokens.reader, 'dup')
      assert.equal(ambiguous.status, 409, ambiguous.text)
      assert.equal(ambiguous.json.code, 'ambiguous')
      assert.equal(
        ambiguous.json.detail,
        'event dup is ambiguous: more than one event has this id (account acme, source "/engine/a"; account acme, source "/engine/b"); name one with source',
      )
      assert.deepEqual(ambiguous.json.errors, [
        { path: 'source', message: 'names which event: sent by "/engine/a", "/engine/b"' },
      ])
      const fromB = await explainWith(tokens.reader, { source: '/engine/b' })
      assert.equal(fromB.status, 200, fromB.text)
      assert.deepEqual(summary(fromB), ['acme', '/engine/b', '2026-03-01T11:02:00Z'])
      assert.deepEqual(summary(await explainWith(tokens.reader, { source: '/engine/a' })), [
        'acme',
        '/engine/a',
        '2026-03-01T11:01:00Z',
      ])
      const elsewhere = await explainWith(tokens.reader, { source: '/engine/c' })
      assert.deepEqual(
        [elsewhere.status, elsewhere.json.detail],
        [404, 'event dup not found from source "/engine/c"'],
      )
      // One event of globex's has the id: no need to narrow.
      assert.deepEqual(summary(await explain(tokens.stranger, 'dup')), [
        'globex',
        '/engine/a',
        '2026-03-01T11:03:00Z',
      ])

      // The admin sees every account's: what tells them apart is the account, the source, or both.
      const everywhere = await explain(ADMIN_TOKEN, 'dup')
      assert.equal(everywhere.status, 409)
      assert.deepEqual(everywhere.json.errors, [
        { path: 'source', message: 'names which event: sent by "/engine/a", "/engine/b"' },
        { path: 'account', message: 'names which event: of acme, globex' },
      ])
      const bySource = await explainWith(ADMIN_TOKEN, { source: '/engine/a' })
      assert.deepEqual(bySource.json.errors, [
        { path: 'account', message: 'names which event: of acme, globex' },
      ])
      assert.deepEqual(summary(await explainWith(ADMIN_TOKEN, { account: 'globex' })), [
        'globex',
        '/engine/a',
        '2026-03-01T11:03:00Z',
      ])
      assert.deepEqual(summary(await explainWith(ADMIN_TOKEN, { account: 'acme', source: '/engine/b' })), [
        'acme',
        '/engine/b',
        '2026-03-01T11:02:00Z',
      ])

      // Only the admin may name another account; anyone may name their own.
      const refusals: [string, Record<string, string>, Json[]][] = [
        [
          tokens.reader,
          { account: 'globex' },
          [{ path: 'account', message: 'only an admin may name another account' }],
        ],
        [tokens.reader, { source: '' }, [{ path: 'source', message: 'must be a non-empty string' }]],
        [ADMIN_TOKEN, { account: 'not an account' }, [{ path: 'account', message: ACCOUNT_NAME_RULE }]],
        [
          tokens.reader,
          { sources: '/engine/a' },
          [{ path: 'sources', message: 'is not a known query parameter; expected source, account' }],
        ],
      ]
      for (const [token, query, errors] of refusals) {
        const refused = await explainWith(token, query)
        assert.deepEqual([refused.status, refused.json.errors], [400, errors], JSON.stringify(query))
      }
      // However many sources used the id, the refusal names ten of them.
      const many = Array.from({ length: 12 }, (_, i) => ({ ...dup('acme', `/engine/m${i}`, 4), id: 'many' }))
      const published = await app.request('/v1/events', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          'content-type': 'application/cloudevents-batch+json',
        },
        body: JSON.stringify(many),
      })
      assert.equal(published.status, 202, await published.text())
      await eventually(async () => {
        const [row] = await warehouse.query<{ n: number }>(
          "SELECT count() AS n FROM events WHERE id = 'many'",
        )
        assert.equal(Number(row?.n), 12)
      })
      const crowded = await explain(tokens.reader, 'many')
      assert.equal(crowded.status, 409)
      const sources = [
        '/engine/m0',
        '/engine/m1',
        '/engine/m10',
        '/engine/m11',
        ...[2, 3, 4, 5, 6, 7].map((i) => `/engine/m${i}`),
      ]
      assert.deepEqual(crowded.json.errors, [
        {
          path: 'source',
          message: `names which event: sent by ${sources.map((x) => `"${x}"`).join(', ')} and more`,
        },
      ])

      assert.deepEqual(summary(await explainWith(tokens.reader, { account: 'acme', source: '/engine/a' })), [
        'acme',
        '/engine/a',
        '2026-03-01T11:01:00Z',
      ])
    })

    it('judges `time` as the producer wrote it, as the router does', async () => {
      const { value } = await service.addSelector(writer, 'slack', slackId, {
        scope: 'account',
        event: { level: '*', type: '*', resource_type: '*' },
        pattern: { time: ['2026-03-01T10:02:00Z'] },
      })
      try {
        const answer = await explain(tokens.reader, 'e3')
        assert.ok(
          (answer.json.matched as Json[]).some((m) => m.selector_id === value.id),
          JSON.stringify(answer.json.unmatched),
        )
      } finally {
        await service.removeSelector(writer, 'slack', slackId, value.id)
      }
    })

    it('answers 503 without a warehouse', async () => {
      assert.equal((await call(tokens.reader, 'GET', '/v1/no-reports/events/e1/explain')).status, 503)
    })

    it('answers 200 with a stored selector nested too deeply, reporting it as that selector’s failure', async () => {
      // As an older version, without the nesting limit, stored it: below the API's validation.
      const stream = streamName(slackId)
      const stored = (await store.readStream(stream)).find((e) => e.type === 'SelectorAdded')
      assert.ok(stored !== undefined)
      const deepId = randomUUID()
      let pattern: Json = { digest: ['sha256:a1'] }
      for (let level = 0; level < 3_000; level++) pattern = { a: pattern }
      await store.append(stream, [
        {
          id: randomUUID(),
          type: 'SelectorAdded',
          data: { ...(stored.data as Json), selectorId: deepId, pattern: { data: pattern } } as JsonObject,
        },
      ])
      await eventually(async () => {
        const listed = await service.listSelectors('acme')
        assert.ok(listed.some((s) => s.id === deepId))
      })
      try {
        for (let attempt = 0; attempt < 5; attempt++) {
          const answer = await explain(tokens.reader, 'e1')
          assert.equal(answer.status, 200, answer.text.slice(0, 300))
          const deep = (answer.json.unmatched as Json[]).find((u) => u.selector_id === deepId)
          assert.deepEqual(deep?.failure, {
            path: 'pattern',
            expected: 'a valid pattern',
            actual: 'an invalid one',
            message: `pattern: is nested more than ${MAX_PATTERN_DEPTH} levels deep (objects and arrays); at most ${MAX_PATTERN_DEPTH} are allowed`,
          })
          // The other selectors are judged as ever.
          assert.deepEqual(
            (answer.json.matched as Json[]).map((m) => m.selector_id).sort(),
            [selectorIds.everything, selectorIds.images].sort(),
          )
        }
      } finally {
        await service.removeSelector(writer, 'slack', slackId, deepId)
      }
    })
  })
})
