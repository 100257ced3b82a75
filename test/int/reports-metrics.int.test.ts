import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import type { Principal } from '../../src/access/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { type EngineEvent, encodeLogEvent, type Finding } from '../../src/events/index.ts'
import { type Herald, startHerald } from '../../src/herald.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { compileJsonSchema } from '../../src/ingress/index.ts'
import { createMetrics, type LogFields, silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import {
  type BackfillRunner,
  createBackfillRoutes,
  createBackfillRunner,
  createBoundaryClaims,
  createMetricsRecorder,
  createMetricsRoutes,
  METRICS,
  type MetricDataPoint,
  type MetricsSchedule,
  metricPointMessage,
  startMetricsSchedule,
} from '../../src/reports/index.ts'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'

const T0 = Date.UTC(2026, 10, 22, 10)
const MIN = 60_000
const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`
const finding = (id: string, severity: Finding['severity'], extra: Partial<Finding> = {}): Finding => ({
  id,
  severity,
  package: 'openssl',
  version: '3.0.1',
  type: 'deb',
  fix_version: null,
  kev: false,
  ...extra,
})

let seq = 0
const event = (minute: number, type: string, data: Record<string, unknown>, account = 'acme'): EngineEvent =>
  ({
    specversion: '1.0',
    id: `scenario-${++seq}`,
    source: '/engine',
    type,
    account,
    time: new Date(T0 + minute * MIN).toISOString(),
    data,
  }) as unknown as EngineEvent
const repo = { registry: 'docker.io', repository: 'acme/api' }
const analyzed = (minute: number, n: number, findings: Finding[]) =>
  event(minute, 'herald.report.image.analyzed', {
    digest: digest(n),
    ...repo,
    distro: { name: 'debian', version: '12' },
    package_count: 10,
    findings,
  })
const tagged = (minute: number, tag: string, n: number) =>
  event(minute, 'herald.report.tag.digest_changed', { ...repo, tag, digest: digest(n) })
const evaluated = (minute: number, tag: string, n: number, status: 'pass' | 'fail') =>
  event(minute, 'herald.report.policy.evaluated', {
    ...repo,
    tag,
    digest: digest(n),
    bundle_id: 'bundle-1',
    bundle_digest: 'sha256:bundle',
    status,
    reasons: [],
  })

/**
 * A small history with known answers:
 * - m1: image 1 analysed (CVE-1 critical, CVE-2 high with a fix); m2: image 2 analysed (CVE-3
 *   medium, KEV), not tagged yet; m3: `latest` → 1, evaluated fail; m4: `stable` → 1;
 * - m10: metric point A;
 * - m12: image 9 analysed (CVE-9 critical), tagged `canary`, evaluated fail; m14: `canary` deleted, image 9
 *   deleted — added and gone between two points;
 * - m20: metric point B; m21: `latest` → 2, evaluated pass.
 */
const history: EngineEvent[] = [
  analyzed(1, 1, [finding('CVE-1', 'critical'), finding('CVE-2', 'high', { fix_version: '3.0.2' })]),
  analyzed(2, 2, [finding('CVE-3', 'medium', { kev: true })]),
  tagged(3, 'latest', 1),
  evaluated(3, 'latest', 1, 'fail'),
  tagged(4, 'stable', 1),
  analyzed(12, 9, [finding('CVE-9', 'critical')]),
  tagged(12, 'canary', 9),
  evaluated(12, 'canary', 9, 'fail'),
  event(14, 'herald.report.tag.deleted', { ...repo, tag: 'canary' }),
  event(14, 'herald.report.image.deleted', { digest: digest(9) }),
  tagged(21, 'latest', 2),
  evaluated(21, 'latest', 2, 'pass'),
]

describe('metrics and history on chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-reports-metrics-'))
  let warehouse: Warehouse
  let log: EventLog
  let app: ReturnType<typeof createHttpApp>
  const published: MetricDataPoint[] = []
  const tokens: Record<string, Principal> = {
    acme: { account: 'acme', role: 'read-only' },
    globex: { account: 'globex', role: 'read-only' },
    admin: { account: 'admin', role: 'admin' },
  }
  let backfills: BackfillRunner
  const get = async (path: string, token = 'acme') => {
    const response = await app.request(path, { headers: { authorization: `Bearer ${token}` } })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }
  const graphql = async (query: string) => {
    const response = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { authorization: 'Bearer acme', 'content-type': 'application/json' },
      body: JSON.stringify({ query }),
    })
    const body = (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] }
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    return body.data as Record<string, { results: unknown[] }>
  }
  const recorder = () =>
    createMetricsRecorder({
      warehouse,
      intervalSeconds: 600,
      publish: async (points) => {
        published.push(...points)
      },
    })

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    backfills = createBackfillRunner({
      recorder: createMetricsRecorder({ warehouse, intervalSeconds: 600 }),
      intervalSeconds: 600,
      logger: silentLogger,
    })
    app = createHttpApp({
      log,
      eventsTopic: 'engine.events',
      warehouse,
      readiness: {},
      authenticate: async (token) => tokens[token],
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      mounts: [
        { path: '/v1/reports/metrics/backfill', app: createBackfillRoutes(backfills) },
        { path: '/v1/reports/metrics', app: createMetricsRoutes({ warehouse }) },
      ],
    })
    const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    // Points are recorded as the projection goes, as the scheduled job would see it.
    const upTo = (minute: number) => history.filter((e) => Date.parse(e.time as string) <= T0 + minute * MIN)
    let offset = 0
    const feed = async (events: EngineEvent[]) => {
      await project({
        topic: 'engine.events',
        partition: 0,
        messages: events.map((e) => ({
          ...encodeLogEvent(e),
          headers: {},
          topic: 'engine.events',
          partition: 0,
          offset: offset++,
          timestamp: Date.parse(e.time as string),
        })),
      })
    }
    await feed(upTo(10))
    await recorder().record(T0 + 10 * MIN)
    await feed(upTo(20).slice(upTo(10).length))
    await recorder().record(T0 + 20 * MIN)
    await feed(history.slice(upTo(20).length))
  })
  after(async () => {
    await backfills.stop()
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists the canned metrics with Anchore’s ids and their current values', async () => {
    const { status, body } = await get('/v1/reports/metrics')
    assert.equal(status, 200)
    const metrics = body.metrics as {
      id: string
      name: string
      description: string
      metricType: string
      value: number
    }[]
    assert.deepEqual(
      metrics.map((m) => m.id),
      METRICS.map((m) => m.id),
    )
    for (const severity of ['critical', 'high', 'medium', 'low', 'negligible', 'unknown']) {
      for (const scope of ['current', 'all'])
        assert.ok(metrics.some((m) => m.id === `vulnerabilities.tags.${scope}.${severity}`))
    }
    assert.ok(metrics.every((m) => m.name !== '' && m.description !== '' && m.metricType === 'counter'))
    const value = Object.fromEntries(metrics.map((m) => [m.id, m.value]))
    // Now: latest → 2 (CVE-3 medium KEV), stable → 1 (CVE-1 critical, CVE-2 high with a fix).
    assert.deepEqual(
      [
        value['vulnerabilities.tags.current.critical'],
        value['vulnerabilities.tags.current.high'],
        value['vulnerabilities.tags.current.medium'],
        value['vulnerabilities.tags.current.fix_available'],
        value['vulnerabilities.tags.current.kev'],
      ],
      [1, 1, 1, 1, 1],
    )
    // All tags: latest also pointed at 1 (2 more), canary at 9, which is gone (no findings).
    assert.deepEqual(
      [
        value['vulnerabilities.tags.all.critical'],
        value['vulnerabilities.tags.all.high'],
        value['vulnerabilities.tags.all.medium'],
      ],
      [2, 2, 1],
    )
    assert.deepEqual(
      [value['images.current'], value['images.all'], value['tags.current'], value['tags.all']],
      [2, 3, 2, 3],
    )
    // The deleted canary's failing evaluation counts among all tags', not the current ones'.
    assert.deepEqual(
      [
        value['policy_evaluations.current.pass'],
        value['policy_evaluations.current.fail'],
        value['policy_evaluations.all.pass'],
        value['policy_evaluations.all.fail'],
      ],
      [1, 0, 1, 1],
    )
  })

  it('keeps in history an image added and deleted between two data points', async () => {
    const series = async (id: string) => {
      const { status, body } = await get(
        `/v1/reports/metrics/${id}?start=${new Date(T0).toISOString()}&end=${new Date(T0 + 30 * MIN).toISOString()}`,
      )
      assert.equal(status, 200)
      return (body.points as { value: number; collectedAt: string }[]).map((p) => [p.collectedAt, p.value])
    }
    const a = new Date(T0 + 10 * MIN).toISOString()
    const b = new Date(T0 + 20 * MIN).toISOString()
    // Newest first. The two points cannot tell image 9 ever existed…
    assert.deepEqual(await series('images.current'), [
      [b, 2],
      [a, 2],
    ])
    // …but the history can: "all" counts it, and an as-of query between them finds it.
    assert.deepEqual(await series('images.all'), [
      [b, 3],
      [a, 2],
    ])
    const between = new Date(T0 + 13 * MIN).toISOString()
    const data = await graphql(`{
      imagesByVulnerability(asOf: "${between}", filter: { vulnerabilityId: "CVE-9" }) { results { images { digest } } }
      tagsByVulnerability(asOf: "${between}", filter: { vulnerabilityId: "CVE-9" }) { results { tags { tag } } }
    }`)
    assert.deepEqual(data.imagesByVulnerability?.results, [{ images: [{ digest: digest(9) }] }])
    assert.deepEqual(data.tagsByVulnerability?.results, [{ tags: [{ tag: 'canary' }] }])
  })

  it('answers as of an instant from when it was true, not from what was tagged later', async () => {
    // At m3.5, latest points at 1; image 2 exists but no tag has pointed at it yet.
    const at = new Date(T0 + 3.5 * MIN).toISOString()
    const data = await graphql(`{
      tagsByVulnerability(asOf: "${at}", filter: { currentOnly: false }) { results { vulnerability { vulnerabilityId } tags { tag current } } }
      policyEvaluationsByTag(asOf: "${at}") { results { tag status } }
    }`)
    assert.deepEqual(data.tagsByVulnerability?.results, [
      { vulnerability: { vulnerabilityId: 'CVE-1' }, tags: [{ tag: 'latest', current: true }] },
      { vulnerability: { vulnerabilityId: 'CVE-2' }, tags: [{ tag: 'latest', current: true }] },
    ])
    assert.deepEqual(data.policyEvaluationsByTag?.results, [{ tag: 'latest', status: 'fail' }])
    // Now, latest has moved on: its old image shows under "all" as no longer current.
    const now = await graphql(`{
      tagsByVulnerability(filter: { currentOnly: false, vulnerabilityId: "CVE-1" }) { results { tags { tag current } } }
    }`)
    assert.deepEqual(now.tagsByVulnerability?.results, [
      {
        tags: [
          { tag: 'latest', current: false },
          { tag: 'stable', current: true },
        ],
      },
    ])
  })

  it('records each interval once, publishes the points, and backfills from history', async () => {
    const points = (instant: number) =>
      published.filter((p) => p.collectedAt === new Date(instant).toISOString())
    assert.equal(points(T0 + 10 * MIN).length, METRICS.length)
    assert.ok(published.every((p) => p.account === 'acme' && p.interval === 600))

    // The wire contract of `reports.metrics`.
    const schema = JSON.parse(
      readFileSync(new URL('../../schemas/topics/reports.metrics.schema.json', import.meta.url), 'utf8'),
    )
    const validate = compileJsonSchema(schema)
    for (const point of published) {
      const message = metricPointMessage(point)
      assert.equal(message.key, 'acme')
      assert.ok(
        validate(JSON.parse(new TextDecoder().decode(message.value))),
        JSON.stringify(validate.errors),
      )
    }

    // Recording the same interval again (a retry, a second instance) keeps one point each.
    await recorder().record(T0 + 20 * MIN + 5_000)
    const [dupes] = await warehouse.query<{ n: number }>(
      `SELECT count() AS n FROM metric_points FINAL WHERE collected_at = fromUnixTimestamp64Milli({at:Int64}, 'UTC')`,
      { at: T0 + 20 * MIN },
    )
    assert.equal(dupes?.n, METRICS.length)

    // Backfill: every 10-minute boundary, computed from history as of that instant.
    const count = await createMetricsRecorder({ warehouse, intervalSeconds: 600 }).backfill(T0, T0 + 30 * MIN)
    assert.equal(count, 3 * METRICS.length, 'm10, m20 and m30 (m0 had no data yet)')
    const series = async (id: string) => {
      const { body } = await get(`/v1/reports/metrics/${id}?start=${new Date(T0).toISOString()}`)
      return (body.points as { value: number }[]).map((p) => p.value)
    }
    // At m10, m20 and m30, newest first: latest failed until m21; canary failed from m12 until
    // it was deleted at m14.
    assert.deepEqual(await series('policy_evaluations.current.fail'), [0, 1, 1])
    assert.deepEqual(await series('policy_evaluations.all.fail'), [1, 2, 1])
    assert.deepEqual(await series('tags.current'), [2, 2, 2])
    assert.deepEqual(await series('tags.all'), [3, 3, 2])
  })

  it('serves points page by page, and refuses unknown metrics and other accounts', async () => {
    const first = await get('/v1/reports/metrics/images.all?limit=2')
    const page = first.body.pageInfo as { nextToken: string | null; count: number }
    assert.equal(page.count, 2)
    assert.ok(page.nextToken !== null)
    const second = await get(`/v1/reports/metrics/images.all?limit=2&nextToken=${page.nextToken}`)
    const times = [
      ...(first.body.points as { collectedAt: string }[]),
      ...(second.body.points as { collectedAt: string }[]),
    ].map((p) => p.collectedAt)
    assert.deepEqual(times, [...new Set(times)].sort().reverse())

    const unknown = await get('/v1/reports/metrics/vulnerabilities.tags.someday.critical')
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.code, 'not_found')
    const long = await get(`/v1/reports/metrics/${'m'.repeat(10_000)}`)
    assert.equal(long.status, 404)
    assert.equal(long.body.detail, `no metric "${'m'.repeat(64)}…"; GET /v1/reports/metrics lists them`)
    assert.equal((await get('/v1/reports/metrics/images.all?account=acme', 'globex')).status, 403)
    const theirs = await get('/v1/reports/metrics/images.all', 'globex')
    assert.deepEqual(theirs.body.points, [])
    assert.equal((await get('/v1/reports/metrics/images.all?limit=5000')).status, 400)

    // GraphQL's metrics refuses an id or type no metric has, as metricData and this route do,
    // rather than answering an empty list.
    const refusal = async (filter: string) => {
      const response = await app.request('/v1/reports/graphql', {
        method: 'POST',
        headers: { authorization: 'Bearer acme', 'content-type': 'application/json' },
        body: JSON.stringify({ query: `{ metrics(filter: ${filter}) { results { id } } }` }),
      })
      const body = (await response.json()) as {
        errors?: { message: string; extensions?: { code?: string } }[]
      }
      return body.errors?.map((e) => [e.extensions?.code, e.message])
    }
    assert.deepEqual(await refusal('{ metricId: "images.al" }'), [
      ['not_found', 'no metric "images.al"; GET /v1/reports/metrics lists them'],
    ])
    assert.deepEqual(await refusal('{ metricType: "gauge" }'), [
      ['validation_failed', 'filter.metricType must be one of counter'],
    ])
    const named = await graphql(
      '{ metrics(filter: { metricId: "images.all", metricType: "counter" }) { results { id } } }',
    )
    assert.deepEqual(named.metrics?.results, [{ id: 'images.all' }])
  })

  it('refuses a backfill request with a field it does not know, starting nothing', async () => {
    const response = await app.request('/v1/reports/metrics/backfill', {
      method: 'POST',
      headers: { authorization: 'Bearer admin', 'content-type': 'application/json' },
      body: JSON.stringify({
        start: new Date(T0).toISOString(),
        end: new Date(T0).toISOString(),
        account: 'acme',
      }),
    })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { errors: { path: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['account'],
    )
    assert.equal(backfills.status().state, 'idle')
  })

  it('refuses a backfill that ends after now, recording nothing', async () => {
    const before = await warehouse.query<{ n: string }>('SELECT count() AS n FROM metric_points')
    const response = await app.request('/v1/reports/metrics/backfill', {
      method: 'POST',
      headers: { authorization: 'Bearer admin', 'content-type': 'application/json' },
      body: JSON.stringify({
        start: new Date(Date.now() - 3_600_000).toISOString(),
        end: new Date(Date.now() + 365 * 86_400_000).toISOString(),
      }),
    })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { detail: string; errors: { path: string; message: string }[] }
    assert.match(problem.detail, /end is after now .*: only past points can be backfilled/)
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['end'],
    )
    assert.equal(backfills.status().state, 'idle')
    assert.deepEqual(await warehouse.query('SELECT count() AS n FROM metric_points'), before)
  })

  it('refuses bad query parameters of a metric’s points, naming each by its parameter', async () => {
    const refused = async (query: string) => {
      const answer = await get(`/v1/reports/metrics/images.all?${query}`)
      assert.equal(answer.status, 400, `${query}: ${JSON.stringify(answer.body)}`)
      return (answer.body.errors as { path: string }[]).map((e) => e.path)
    }
    assert.deepEqual(await refused('start=yesterday'), ['start'])
    assert.deepEqual(await refused('end=2026-02-30T00:00:00Z'), ['end'])
    assert.deepEqual(await refused('start=2026-11-22T10:00:00'), ['start'])
    // A URL's query reads + as a space: an offset sent unencoded is named as such, and %2B taken.
    const plus = await get('/v1/reports/metrics/images.all?start=2026-11-22T12:00:00+02:00')
    assert.equal(plus.status, 400)
    assert.deepEqual(plus.body.errors, [
      {
        path: 'start',
        message:
          'must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z; it holds a space where its offset has a +, which a URL reads as a space: send + as %2B',
      },
    ])
    assert.equal((await get('/v1/reports/metrics/images.all?end=2026-11-22T12:00:00%2B02:00')).status, 200)
    // Times are stored to the millisecond: a finer bound cannot be answered exactly.
    assert.deepEqual(await refused('start=2026-11-22T10:00:00.0001Z'), ['start'])
    assert.deepEqual(await refused('end=2026-11-22T10:00:00.123456Z'), ['end'])
    assert.equal((await get('/v1/reports/metrics/images.all?start=2026-11-22T10:00:00.123000Z')).status, 200)
    assert.deepEqual(await refused('limit=1e2'), ['limit'])
    assert.deepEqual(await refused('limit=5&limit=6'), ['limit'])
    assert.deepEqual(await refused('sart=2026-11-22T10:00:00Z'), ['sart'])
    // Anything but true or false would quietly answer for the caller's own account.
    assert.deepEqual(await refused('allAccounts=yes'), ['allAccounts'])
    // A name no account can have, which would otherwise answer with nothing.
    assert.deepEqual(await refused('account=acme%00'), ['account'])
    assert.deepEqual(await refused('account=-acme'), ['account'])
    assert.deepEqual(await refused('account=acme&allAccounts=true'), ['allAccounts'])
    assert.deepEqual(await refused('start=2026-11-25T00:00:00Z&end=2026-11-20T00:00:00Z'), ['start'])
    assert.equal((await get('/v1/reports/metrics?allAccounts=1')).status, 400)
    assert.equal((await get('/v1/reports/metrics?acount=globex')).status, 400)
  })

  it('refuses a backfill or a GraphQL instant that is not RFC 3339: no 30 February, no time without an offset', async () => {
    for (const [start, end] of [
      ['2026-02-30T00:00:00Z', '2026-03-01T00:00:00Z'],
      // Finer than the millisecond times are stored with.
      ['2026-02-28T00:00:00.0001Z', '2026-03-01T00:00:00Z'],
    ]) {
      const backfill = await app.request('/v1/reports/metrics/backfill', {
        method: 'POST',
        headers: { authorization: 'Bearer admin', 'content-type': 'application/json' },
        body: JSON.stringify({ start, end }),
      })
      assert.equal(backfill.status, 400, start)
      assert.deepEqual(
        ((await backfill.json()) as { errors: { path: string }[] }).errors.map((e) => e.path),
        ['start'],
      )
    }
    assert.equal(backfills.status().state, 'idle')
    const response = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { authorization: 'Bearer acme', 'content-type': 'application/json' },
      body: JSON.stringify({
        query:
          '{ metricData(filter: { metricId: "images.all", start: "2026-11-22T10:00:00" }) { results { value } } }',
      }),
    })
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] }
    assert.equal(body.errors?.[0]?.extensions?.code, 'validation_failed', JSON.stringify(body))
  })
})

/**
 * The live schedule (1 s boundaries) beside the projector on chDB: an image report appended
 * after boundaries with a time before them, as from a producer's backlog.
 */
describe('metric points of events projected after their instant, on chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-reports-metrics-late-'))
  const ACCOUNT = 'backlog'
  let warehouse: Warehouse
  let schedule: MetricsSchedule
  let offset = 0
  const published: MetricDataPoint[] = []
  const logged: { event: string; fields: LogFields }[] = []
  let project: ReturnType<typeof createProjectorHandler>

  const analysedAt = (at: number, n: number) =>
    ({
      ...analyzed(0, n, [finding(`CVE-L${n}`, 'high')]),
      id: `backlog-${n}`,
      account: ACCOUNT,
      time: new Date(at).toISOString(),
    }) as EngineEvent
  const feed = (event: EngineEvent) =>
    project({
      topic: 'engine.events',
      partition: 0,
      messages: [
        {
          ...encodeLogEvent(event),
          headers: {},
          topic: 'engine.events',
          partition: 0,
          offset: offset++,
          timestamp: Date.now(),
        },
      ],
    })
  /** `images.all` of the account at each boundary recorded from `from`, oldest first. */
  const imagesFrom = async (from: number) =>
    (
      await warehouse.query<{ at: number; value: number }>(
        `SELECT toUnixTimestamp64Milli(collected_at) AS at, value FROM metric_points FINAL
          WHERE account = {account:String} AND metric_id = 'images.all'
            AND collected_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC')
          ORDER BY collected_at`,
        { account: ACCOUNT, from },
      )
    ).map((row) => [Number(row.at), row.value] as const)
  /** The first boundary after `after` recorded with the account's points, as published. */
  const recordedAfter = (after: number) =>
    eventually(() => {
      const point = published.find(
        (p) => p.account === ACCOUNT && p.metric === 'images.all' && Date.parse(p.collectedAt) > after,
      )
      assert.ok(point, `no point after ${new Date(after).toISOString()} yet`)
      return Date.parse(point.collectedAt)
    })

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    const recorder = createMetricsRecorder({
      warehouse,
      intervalSeconds: 1,
      publish: async (points) => {
        published.push(...points)
      },
    })
    schedule = startMetricsSchedule({
      record: recorder.record,
      correct: recorder.correct,
      correctBoundaries: 3,
      intervalSeconds: 1,
      lag: async () => 0,
      clock: Date.now,
      logger: (_level, event, fields = {}) => {
        logged.push({ event, fields })
      },
      settleMs: 50,
      retryMs: 20,
    })
    project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onEventTimes: (earliest) => schedule.projected(earliest),
    })
  })
  after(async () => {
    await schedule.stop()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('records again each boundary recorded since the event’s time, publishing the corrected points', async () => {
    await feed(analysedAt(Date.now() - 100, 1))
    const recorded = await recordedAfter(Date.now())
    assert.deepEqual((await imagesFrom(recorded))[0], [recorded, 1])

    // Appended after that boundary was recorded, analysed before it.
    await feed(analysedAt(recorded - 300, 2))
    await eventually(async () => {
      const points = await imagesFrom(recorded)
      assert.ok(points.length > 0)
      for (const [at, value] of points) assert.equal(value, 2, `the point at ${new Date(at).toISOString()}`)
    })
    assert.ok(
      published.some(
        (p) =>
          p.account === ACCOUNT &&
          p.metric === 'images.all' &&
          p.collectedAt === new Date(recorded).toISOString() &&
          p.value === 2,
      ),
      'the corrected point is published',
    )
    assert.ok(logged.some(({ event }) => event === 'reports.metrics_corrected'))
  })

  it('leaves the boundaries past its bound to a backfill, and names them', async () => {
    const recorded = await recordedAfter(Date.now() + 3_000)
    // Five boundaries before the latest recorded: the three latest are corrected.
    const at = recorded - 4_500
    await feed(analysedAt(at, 3))
    const warning = await eventually(() => {
      const found = logged.find(({ event }) => event === 'reports.metrics_late_uncorrected')
      assert.ok(found)
      return found.fields
    })
    const from = Date.parse(String(warning.from))
    const to = Date.parse(String(warning.to))
    assert.deepEqual([from, warning.accounts], [at + 500, [ACCOUNT]])
    assert.ok(to >= from && to < recorded, String(warning.to))
    await eventually(async () => {
      for (const [instant, value] of await imagesFrom(to + 1_000))
        assert.equal(value, 3, new Date(instant).toISOString())
    })
    for (const [instant, value] of await imagesFrom(from))
      if (instant <= to) assert.equal(value, 2, `left for a backfill: ${new Date(instant).toISOString()}`)

    // The route the warning names records them from history.
    await createMetricsRecorder({ warehouse, intervalSeconds: 1 }).backfill(from, to)
    for (const [instant, value] of await imagesFrom(from))
      assert.equal(value, 3, new Date(instant).toISOString())
  })
})

for (const thread of [true, false])
  describe(`a Herald whose projector (${thread ? 'on its thread' : 'on the event loop'}) stores an event after the metric boundaries it falls before`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-late-'))
    const token = `admin-${randomBytes(12).toString('hex')}`
    let herald: Herald | undefined
    after(async () => {
      await herald?.stop()
      rmSync(dir, { recursive: true, force: true })
    })
    const call = async (path: string, init: RequestInit = {}) => {
      const response = await fetch(`${herald?.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...init.headers },
      })
      return {
        status: response.status,
        body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
      }
    }
    const publish = async (at: number, n: number) => {
      const { status } = await call('/v1/events', {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: JSON.stringify({
          ...analyzed(0, n, [finding(`CVE-H${n}`, 'low')]),
          id: `herald-late-${n}`,
          time: new Date(at).toISOString(),
        }),
      })
      assert.equal(status, 202)
    }
    /** The account's `images.all` points from `start`, oldest first. */
    const points = async (start: number) => {
      const { status, body } = await call(
        `/v1/reports/metrics/images.all?account=acme&start=${new Date(start).toISOString()}`,
      )
      assert.equal(status, 200, JSON.stringify(body))
      return (body.points as { collectedAt: string; value: number }[])
        .map((p) => [Date.parse(p.collectedAt), p.value] as const)
        .reverse()
    }

    it('records those boundaries again', async () => {
      const config = loadConfig({
        env: {
          HERALD_DATA_DIR: dir,
          HERALD_LISTEN: '127.0.0.1',
          HERALD_PORT: '0',
          HERALD_ADMIN_TOKEN: token,
          HERALD_REPORTS__CYCLE_TIMERS__LOAD: '0.05',
          HERALD_REPORTS__CYCLE_TIMERS__METRICS: '1',
          HERALD_REPORTS__PROJECTOR_THREAD: String(thread),
        },
      })
      herald = await startHerald(config, { logger: silentLogger })
      const sent = Date.now()
      await publish(sent - 100, 1)
      const [recorded] = await eventually(
        async () => {
          const [first] = await points(sent)
          assert.deepEqual(first?.[1], 1)
          return first
        },
        { timeoutMs: 30_000 },
      )
      await publish(recorded - 300, 2)
      await eventually(
        async () => {
          const [first, ...rest] = await points(recorded)
          assert.deepEqual(first, [recorded, 2])
          for (const [, value] of rest) assert.equal(value, 2)
        },
        { timeoutMs: 30_000 },
      )
    })
  })

describe('a Herald killed once its projector committed an event of before recorded metric boundaries, before it corrected them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-crash-'))
  const token = `admin-${randomBytes(12).toString('hex')}`
  const INTERVAL = 3_000
  const env = {
    HERALD_DATA_DIR: dir,
    HERALD_ADMIN_TOKEN: token,
    HERALD_REPORTS__CYCLE_TIMERS__LOAD: '0.05',
    HERALD_REPORTS__CYCLE_TIMERS__METRICS: String(INTERVAL / 1000),
  }
  let herald: HeraldProcess | undefined
  after(async () => {
    await herald?.stop('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  const call = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${herald?.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...init.headers },
    })
    return {
      status: response.status,
      body: (await response.json().catch(() => ({}))) as Record<string, unknown>,
    }
  }
  const publish = async (at: number, n: number) => {
    const { status } = await call('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify({
        ...analyzed(0, n, [finding(`CVE-K${n}`, 'low')]),
        id: `herald-killed-${n}`,
        time: new Date(at).toISOString(),
      }),
    })
    assert.equal(status, 202)
  }
  /** The account's `images.all` points from `start` and before `end`, oldest first. */
  const points = async (start: number, end: number) => {
    const { status, body } = await call(
      `/v1/reports/metrics/images.all?account=acme&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`,
    )
    assert.equal(status, 200, JSON.stringify(body))
    return (body.points as { collectedAt: string; value: number }[])
      .map((p) => [Date.parse(p.collectedAt), p.value] as const)
      .reverse()
  }
  /** The events the projector committed, read from the embedded log's file as another process may. */
  const committed = () => {
    const db = new DatabaseSync(join(dir, 'eventlog.sqlite'), { readOnly: true })
    try {
      const row = db
        .prepare(
          `SELECT coalesce(sum(next_offset), 0) AS n FROM group_offsets
            WHERE group_id = 'herald-projector' AND topic = 'engine.events'`,
        )
        .get() as { n: number }
      return Number(row.n)
    } finally {
      db.close()
    }
  }

  it('corrects them once started again', async () => {
    const first = await startHeraldProcess(env)
    herald = first
    const sent = Date.now()
    await publish(sent - 100, 1)
    const [recorded] = await eventually(
      async () => {
        const [point] = await points(sent, sent + 60_000)
        assert.deepEqual(point?.[1], 1)
        return point
      },
      { timeoutMs: 30_000 },
    )
    // Just after the next boundary is recorded: a start-up records the latest one again anyway,
    // and the next tick, which would correct, is an interval away.
    const seen = first.lines.length
    await eventually(
      () =>
        assert.ok(
          first.lines
            .slice(seen)
            .some(
              (line) =>
                line.event === 'reports.metrics_recorded' && Date.parse(String(line.collected_at)) > recorded,
            ),
        ),
      { timeoutMs: 30_000, intervalMs: 1 },
    )
    const mark = first.lines.length
    await publish(recorded - 300, 2)
    await eventually(() => assert.equal(committed(), 2), { timeoutMs: 10_000, intervalMs: 1 })
    await first.stop('SIGKILL')
    const killed = Date.now()
    assert.ok(
      !first.lines.slice(mark).some((line) => line.event === 'reports.metrics_corrected'),
      'killed before the correction',
    )

    herald = await startHeraldProcess(env)
    await eventually(
      async () => {
        const before = await points(recorded, killed)
        assert.ok(before.length >= 2)
        for (const [instant, value] of before) assert.equal(value, 2, new Date(instant).toISOString())
      },
      { timeoutMs: 30_000 },
    )
    const restarted = herald
    await eventually(() =>
      assert.ok(restarted.lines.some((line) => line.event === 'reports.metrics_corrected')),
    )
  })
})

describe('a metric backfill while reports are switched off', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-disabled-'))
  const token = `admin-${randomBytes(12).toString('hex')}`
  let herald: Herald | undefined
  after(async () => {
    await herald?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('is refused, 409 reports_disabled: no projection vouches for its range', async () => {
    const config = loadConfig({
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_LISTEN: '127.0.0.1',
        HERALD_PORT: '0',
        HERALD_ADMIN_TOKEN: token,
        HERALD_REPORTS__ENABLED: 'false',
      },
    })
    herald = await startHerald(config, { logger: silentLogger })
    const response = await fetch(`${herald.url}/v1/reports/metrics/backfill`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        start: new Date(Date.now() - 7_200_000).toISOString(),
        end: new Date(Date.now() - 3_600_000).toISOString(),
      }),
    })
    const problem = (await response.json()) as { code: string; detail: string }
    assert.equal(response.status, 409, JSON.stringify(problem))
    assert.equal(problem.code, 'reports_disabled')
    assert.match(problem.detail, /reports\.enabled is false/)
    const status = (await (
      await fetch(`${herald.url}/v1/reports/metrics/backfill`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { state: string }
    assert.equal(status.state, 'idle')
  })
})

describe('a metrics schedule started after earlier runs recorded boundaries, on chDB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-restart-'))
  const HOUR = 3_600_000
  /** Boundaries of hours past, far enough apart for each test to have its own; each later test the later ones, as a schedule reads the latest recorded. */
  const hoursAgo = (n: number) => Math.floor(Date.now() / HOUR) * HOUR - n * HOUR
  let warehouse: Warehouse
  let project: ReturnType<typeof createProjectorHandler>
  let onEventTimes: (earliest: ReadonlyMap<string, number>) => void = () => {}
  let offset = 0
  const feed = (account: string, at: number, n: number) =>
    project({
      topic: 'engine.events',
      partition: 0,
      messages: [
        {
          ...encodeLogEvent({
            ...analyzed(0, n, [finding(`CVE-R${n}`, 'low')]),
            id: `restart-${account}-${n}`,
            account,
            time: new Date(at).toISOString(),
          } as EngineEvent),
          headers: {},
          topic: 'engine.events',
          partition: 0,
          offset: offset++,
          timestamp: Date.now(),
        },
      ],
    })
  /** The account's stored `images.all` at `instant`. */
  const imagesAt = async (account: string, instant: number) =>
    (
      await warehouse.query<{ value: number }>(
        `SELECT value FROM metric_points FINAL WHERE account = {account:String} AND metric_id = 'images.all'
            AND collected_at = fromUnixTimestamp64Milli({at:Int64}, 'UTC')`,
        { account, at: instant },
      )
    ).map((row) => row.value)

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onEventTimes: (earliest) => onEventTimes(earliest),
    })
  })
  after(async () => {
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('keeps a correction recorded with a clock behind the one of the points it corrects', async () => {
    const B = hoursAgo(50)
    await feed('skewed', B - 40 * MIN, 1)
    await createMetricsRecorder({ warehouse, intervalSeconds: 3600, clock: () => B + 1_000 }).record(B)
    await feed('skewed', B - 30 * MIN, 2) // late
    // The clock was stepped back 2 s since (NTP), or this is another instance's, 2 s behind.
    const recorder = createMetricsRecorder({ warehouse, intervalSeconds: 3600, clock: () => B - 1_000 })
    const corrected = await recorder.correct(B, ['skewed'])
    assert.equal(corrected.find((p) => p.metric === 'images.all')?.value, 2)
    assert.deepEqual(await imagesAt('skewed', B), [2])
    // And once more, at the same (stepped back) time: the latest recording still wins.
    await feed('skewed', B - 20 * MIN, 3)
    await recorder.correct(B, ['skewed'])
    assert.deepEqual(await imagesAt('skewed', B), [3])
  })

  it('corrects a boundary an earlier run recorded for events projected before this run recorded any', async () => {
    const B = hoursAgo(40)
    await feed('earlier', B - 40 * MIN, 1)
    await createMetricsRecorder({ warehouse, intervalSeconds: 3600, clock: () => B + 1_000 }).record(B)
    assert.deepEqual(await imagesAt('earlier', B), [1])

    const published: MetricDataPoint[] = []
    const now = B + 30 * MIN
    const recorder = createMetricsRecorder({
      warehouse,
      intervalSeconds: 3600,
      clock: () => now,
      publish: async (points) => void published.push(...points),
    })
    const schedule = startMetricsSchedule({
      record: recorder.record,
      correct: recorder.correct,
      recorded: recorder.recorded,
      intervalSeconds: 3600,
      lag: async () => 3_600, // a backlog at start-up: nothing is recorded yet
      clock: () => now,
      logger: silentLogger,
      retryMs: 20,
    })
    onEventTimes = (earliest) => schedule.projected(earliest)
    try {
      // The backlog holds an event of before B, which the earlier run recorded without it.
      await feed('earlier', B - 10 * MIN, 2)
      await eventually(async () => assert.deepEqual(await imagesAt('earlier', B), [2]), { timeoutMs: 5_000 })
      assert.ok(
        published.some(
          (p) =>
            p.account === 'earlier' &&
            p.metric === 'images.all' &&
            p.collectedAt === new Date(B).toISOString() &&
            p.value === 2,
        ),
        'the corrected point is published',
      )
    } finally {
      onEventTimes = () => {}
      await schedule.stop()
    }
  })

  it('records at start every boundary since the latest one recorded, publishing that one again', async () => {
    const B = hoursAgo(20)
    await feed('resumed', B - 40 * MIN, 1)
    // The earlier run stored B and stopped (or crashed before publishing it).
    await createMetricsRecorder({ warehouse, intervalSeconds: 3600, clock: () => B + 1_000 }).record(B)
    const published: MetricDataPoint[] = []
    const now = B + 3 * HOUR + 30 * MIN
    const recorder = createMetricsRecorder({
      warehouse,
      intervalSeconds: 3600,
      clock: () => now,
      publish: async (points) => void published.push(...points),
    })
    const schedule = startMetricsSchedule({
      record: recorder.record,
      recorded: recorder.recorded,
      intervalSeconds: 3600,
      lag: async () => 0,
      clock: () => now,
      logger: silentLogger,
      retryMs: 20,
    })
    const expected = [0, 1, 2, 3].map((h) => new Date(B + h * HOUR).toISOString())
    try {
      await eventually(
        () =>
          assert.deepEqual(
            published
              .filter((p) => p.account === 'resumed' && p.metric === 'images.all')
              .map((p) => p.collectedAt),
            expected,
          ),
        { timeoutMs: 5_000 },
      )
    } finally {
      await schedule.stop()
    }
    for (const at of expected) assert.deepEqual(await imagesAt('resumed', Date.parse(at)), [1], at)
  })
})

describe('two Herald instances recording metrics on one warehouse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-shared-'))
  const HOUR = 3_600_000
  let warehouse: Warehouse
  let offset = 0
  const now = async () =>
    Number((await warehouse.query<{ now: number }>('SELECT toUnixTimestamp64Milli(now64(3)) AS now'))[0]?.now)
  /** Stores an event of `account` timed `at` through `project`, as an instance's projector would. */
  const feed = (project: ReturnType<typeof createProjectorHandler>, account: string, at: number, n: number) =>
    project({
      topic: 'engine.events',
      partition: 0,
      messages: [
        {
          ...encodeLogEvent({
            ...analyzed(0, n, [finding(`CVE-S${n}`, 'low')]),
            id: `shared-${account}-${n}`,
            account,
            time: new Date(at).toISOString(),
          } as EngineEvent),
          headers: {},
          topic: 'engine.events',
          partition: 0,
          offset: offset++,
          timestamp: Date.now(),
        },
      ],
    })
  const imagesAt = async (account: string, instant: number) =>
    (
      await warehouse.query<{ value: number }>(
        `SELECT value FROM metric_points FINAL WHERE account = {account:String} AND metric_id = 'images.all'
            AND collected_at = fromUnixTimestamp64Milli({at:Int64}, 'UTC')`,
        { account, at: instant },
      )
    ).map((row) => row.value)
  /** One instance's recorder and schedule, publishing to its own list. */
  const instance = (options: {
    intervalSeconds: number
    clock: () => number
    lag?: () => Promise<number>
    logger?: (level: string, event: string, fields?: LogFields) => void
  }) => {
    const published: MetricDataPoint[] = []
    const recorder = createMetricsRecorder({
      warehouse,
      intervalSeconds: options.intervalSeconds,
      clock: options.clock,
      publish: async (points) => void published.push(...points),
    })
    const schedule = startMetricsSchedule({
      record: recorder.record,
      correct: recorder.correct,
      recorded: recorder.recorded,
      claim: createBoundaryClaims(warehouse, { intervalSeconds: options.intervalSeconds }),
      intervalSeconds: options.intervalSeconds,
      lag: options.lag ?? (async () => 0),
      now,
      clock: options.clock,
      logger: options.logger ?? silentLogger,
      settleMs: 0,
      retryMs: 50,
    })
    return { published, schedule }
  }
  const of = (published: readonly MetricDataPoint[], account: string) =>
    published.filter((p) => p.account === account && p.metric === 'images.all')

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
  })
  after(async () => {
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('records and publishes each boundary once between them, none missing', async () => {
    const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    await feed(project, 'each-once', Date.now() - HOUR, 1)
    const a = instance({ intervalSeconds: 1, clock: Date.now })
    const b = instance({ intervalSeconds: 1, clock: Date.now })
    await new Promise((resolve) => setTimeout(resolve, 3_500))
    await Promise.all([a.schedule.stop(), b.schedule.stop()])
    const instants = [...of(a.published, 'each-once'), ...of(b.published, 'each-once')]
      .map((p) => Date.parse(p.collectedAt))
      .sort((x, y) => x - y)
    assert.ok(instants.length >= 3, `${instants.length} points`)
    for (let i = 1; i < instants.length; i++)
      assert.equal(
        (instants[i] as number) - (instants[i - 1] as number),
        1_000,
        'each boundary once, in turn',
      )
  })

  it('records a boundary whose recording instance died midway once its claim ran out', async () => {
    const B = Math.floor(Date.now() / HOUR) * HOUR - 30 * HOUR
    const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    await feed(project, 'taken-over', B - 10 * MIN, 2)
    // An instance claimed B, stored its points and died before publishing them.
    await createMetricsRecorder({ warehouse, intervalSeconds: 3600, clock: () => B + 1_000 }).record(B)
    await warehouse.command(`CREATE TABLE IF NOT EXISTS metric_points_lock (owner String, seq UInt64,
      expires_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (owner, seq)`)
    await warehouse.command(
      `INSERT INTO metric_points_lock SELECT 'died', 1, now64(3) + toIntervalMillisecond(1500)`,
    )
    const skew = Date.now() - (B + 20 * MIN)
    const lines: string[] = []
    const c = instance({
      intervalSeconds: 3600,
      clock: () => Date.now() - skew,
      logger: (_level, event) => void lines.push(event),
    })
    try {
      await eventually(() => assert.equal(of(c.published, 'taken-over').length, 1), { timeoutMs: 10_000 })
      assert.equal(of(c.published, 'taken-over')[0]?.collectedAt, new Date(B).toISOString())
      assert.ok(lines.includes('reports.metrics_recording_elsewhere'))
    } finally {
      await c.schedule.stop()
    }
    // A later instance finds it recorded, and publishes nothing again.
    const d = instance({ intervalSeconds: 3600, clock: () => Date.now() - skew })
    await new Promise((resolve) => setTimeout(resolve, 500))
    await d.schedule.stop()
    assert.deepEqual(of(d.published, 'taken-over'), [])
  })

  it('corrects a boundary another instance recorded before its projector stored an event of before it', async () => {
    const B = Math.floor(Date.now() / HOUR) * HOUR - 20 * HOUR
    const skew = Date.now() - (B + 20 * MIN)
    const clock = () => Date.now() - skew
    let behind = 3_600 // this instance's view: the projection has not passed B yet
    await feed(
      createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger }),
      'stored-after',
      B - 40 * MIN,
      3,
    )
    const c = instance({ intervalSeconds: 3600, clock, lag: async () => behind })
    // This instance's projector, which tells its schedule what it stored.
    const project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onEventTimes: (earliest) => c.schedule.projected(earliest),
    })
    const a = instance({ intervalSeconds: 3600, clock })
    try {
      await eventually(() => assert.equal(of(a.published, 'stored-after').length, 1), { timeoutMs: 10_000 })
      await a.schedule.stop()
      assert.deepEqual(await imagesAt('stored-after', B), [1])
      // Stored by the other instance's projector after A's recording of B read the tables.
      await feed(project, 'stored-after', B - 10 * MIN, 4)
      behind = 0
      await eventually(async () => assert.deepEqual(await imagesAt('stored-after', B), [2]), {
        timeoutMs: 10_000,
      })
      assert.deepEqual(
        of(c.published, 'stored-after').map((p) => [p.collectedAt, p.value]),
        [[new Date(B).toISOString(), 2]],
      )
    } finally {
      await Promise.all([a.schedule.stop(), c.schedule.stop()])
    }
  })

  it('corrects nothing for events another instance’s recording had counted', async () => {
    const B = Math.floor(Date.now() / HOUR) * HOUR - 10 * HOUR
    const skew = Date.now() - (B + 20 * MIN)
    const clock = () => Date.now() - skew
    let behind = 3_600
    const c = instance({ intervalSeconds: 3600, clock, lag: async () => behind })
    const project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onEventTimes: (earliest) => c.schedule.projected(earliest),
    })
    await feed(project, 'counted', B - 40 * MIN, 5)
    // Noted by this instance before another one begins recording B.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const a = instance({ intervalSeconds: 3600, clock })
    try {
      await eventually(() => assert.equal(of(a.published, 'counted').length, 1), { timeoutMs: 10_000 })
      assert.deepEqual(await imagesAt('counted', B), [1])
      behind = 0
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      assert.deepEqual(of(c.published, 'counted'), [])
    } finally {
      await Promise.all([a.schedule.stop(), c.schedule.stop()])
    }
  })
})
