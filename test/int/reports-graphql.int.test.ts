import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import { ACCOUNT_NAME_RULE, type Principal } from '../../src/access/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { type EngineEvent, encodeLogEvent, type Finding, type Severity } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { createMetrics, silentLogger } from '../../src/observability/index.ts'
import type { EventLog, LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import {
  createMetricsRecorder,
  createMetricsRoutes,
  createReportGraphqlRoutes,
} from '../../src/reports/index.ts'
import type { QueryLimits } from '../../src/reports/limits.ts'

const T0 = Date.UTC(2026, 10, 22, 10)
const HOUR = 3_600_000
const tokens: Record<string, Principal> = {
  'acme-reader': { account: 'acme', role: 'read-only' },
  'globex-reader': { account: 'globex', role: 'read-only' },
  admin: { account: 'admin', role: 'admin' },
}

// --- the oracle -------------------------------------------------------------------------

interface OracleFinding {
  readonly id: string
  readonly severity: Severity
  readonly package: string
  readonly version: string
  readonly fix: string | null
  readonly kev: boolean
  /** When this episode of the finding was first reported: listed without a break since. */
  readonly detected: number
}

interface OracleAccount {
  /** Active tags: `registry/repository:tag` → digest. */
  readonly tags: Map<string, string>
  /** Every digest each tag pointed at so far. */
  readonly ever: Map<string, Set<string>>
  /** Active images and their findings by `id package version`. */
  readonly images: Map<string, Map<string, OracleFinding>>
  /** Latest policy status of each tag. */
  readonly evaluations: Map<string, 'pass' | 'fail'>
}

const tagName = (t: { registry: string; repository: string; tag: string }) =>
  `${t.registry}/${t.repository}:${t.tag}`
/** A `tagName` as its parts (the generator's registries name no port). */
const tagParts = (name: string) => {
  const slash = name.indexOf('/')
  const colon = name.lastIndexOf(':')
  return {
    registry: name.slice(0, slash),
    repository: name.slice(slash + 1, colon),
    tag: name.slice(colon + 1),
  }
}
const timeOf = (e: EngineEvent) => Date.parse(e.time as string)
/** When an event changes the world: an inventory as of when it was taken, never after it was sent. */
const effectiveAt = (e: EngineEvent) =>
  e.type === 'herald.report.inventory.snapshot' ? Math.min(Date.parse(e.data.taken_at), timeOf(e)) : timeOf(e)

/**
 * The brute-force answer: the world as of instant `at`, by replaying every event up to it in
 * plain TypeScript — no offsets, periods, SQL or shared code with the projector. The activity
 * is in time order, so no event arrives after a newer one (reports-late-events covers those).
 */
const worldAt = (events: readonly EngineEvent[], at: number): Map<string, OracleAccount> => {
  const world = new Map<string, OracleAccount>()
  const of = (name: string) => {
    let a = world.get(name)
    if (a === undefined) {
      a = { tags: new Map(), ever: new Map(), images: new Map(), evaluations: new Map() }
      world.set(name, a)
    }
    return a
  }
  const point = (a: OracleAccount, name: string, digest: string) => {
    a.tags.set(name, digest)
    const ever = a.ever.get(name) ?? new Set<string>()
    ever.add(digest)
    a.ever.set(name, ever)
  }
  for (const e of events) {
    if (effectiveAt(e) > at) break
    const a = of(e.account)
    switch (e.type) {
      case 'herald.report.image.analyzed': {
        const before = a.images.get(e.data.digest)
        a.images.set(
          e.data.digest,
          new Map(
            e.data.findings.map((f) => {
              const key = `${f.id} ${f.package} ${f.version}`
              return [
                key,
                {
                  id: f.id,
                  severity: f.severity,
                  package: f.package,
                  version: f.version,
                  fix: f.fix_version,
                  kev: f.kev,
                  detected: before?.get(key)?.detected ?? timeOf(e),
                },
              ]
            }),
          ),
        )
        break
      }
      case 'herald.report.image.deleted':
        a.images.delete(e.data.digest)
        break
      case 'herald.report.tag.digest_changed':
        point(a, tagName(e.data), e.data.digest)
        break
      case 'herald.report.tag.deleted':
        a.tags.delete(tagName(e.data))
        break
      case 'herald.report.inventory.snapshot': {
        const listed = new Set(e.data.images.map((i) => i.digest))
        for (const digest of [...a.images.keys()]) if (!listed.has(digest)) a.images.delete(digest)
        const tags = new Set(e.data.tags.map(tagName))
        for (const name of [...a.tags.keys()]) if (!tags.has(name)) a.tags.delete(name)
        for (const t of e.data.tags) point(a, tagName(t), t.digest)
        break
      }
      case 'herald.report.policy.evaluated':
        a.evaluations.set(tagName(e.data), e.data.status)
        break
      default:
    }
  }
  return world
}

const empty: OracleAccount = { tags: new Map(), ever: new Map(), images: new Map(), evaluations: new Map() }

/** vulnerability id → sorted `tag@digest` (with ` old` when the tag no longer points there). */
const expectedTagsByVulnerability = (a: OracleAccount, currentOnly: boolean) => {
  const out = new Map<string, Set<string>>()
  for (const [name, digests] of currentOnly
    ? [...a.tags].map(([n, d]) => [n, new Set([d])] as const)
    : [...a.ever]) {
    for (const digest of digests) {
      for (const f of a.images.get(digest)?.values() ?? []) {
        const set = out.get(f.id) ?? new Set<string>()
        set.add(`${name}@${digest}${a.tags.get(name) === digest ? '' : ' old'}`)
        out.set(f.id, set)
      }
    }
  }
  return new Map([...out].sort(([x], [y]) => (x < y ? -1 : 1)).map(([id, set]) => [id, [...set].sort()]))
}

/** Registry, repository and tag filters: each given one must match. */
interface TagFilter {
  readonly registry?: string
  readonly repository?: string
  readonly tag?: string
}

/**
 * The digests a tag the filter matches points at (`currentOnly`), or ever pointed at: whatever
 * repository each image was analysed in.
 */
const taggedDigests = (a: OracleAccount, filter: TagFilter, currentOnly = true): Set<string> => {
  const digests = new Set<string>()
  for (const [name, ever] of a.ever) {
    const parts = tagParts(name)
    if (Object.entries(filter).some(([key, value]) => parts[key as keyof TagFilter] !== value)) continue
    for (const digest of currentOnly ? [a.tags.get(name)] : ever)
      if (digest !== undefined) digests.add(digest)
  }
  return digests
}

/** vulnerability id → sorted digests of active images with it (of `only` those, when given). */
const expectedImagesByVulnerability = (a: OracleAccount, only?: ReadonlySet<string>) => {
  const out = new Map<string, string[]>()
  for (const [digest, findings] of a.images) {
    if (only !== undefined && !only.has(digest)) continue
    for (const id of new Set([...findings.values()].map((f) => f.id)))
      out.set(id, [...(out.get(id) ?? []), digest])
  }
  return new Map([...out].sort(([x], [y]) => (x < y ? -1 : 1)).map(([id, list]) => [id, list.sort()]))
}

// --- the system under test ------------------------------------------------------------------

describe('report GraphQL API against a brute-force oracle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-reports-graphql-'))
  let warehouse: Warehouse
  let log: EventLog
  let app: ReturnType<typeof createHttpApp>
  /** The app with a GraphQL route of its own at `LIMITED_PATH`, under the query limits and clock given. */
  let withRoute: (options: {
    limits?: Partial<QueryLimits>
    clock?: () => number
  }) => ReturnType<typeof createHttpApp>
  const LIMITED_PATH = '/v1/limited/graphql'
  /** A digest of acme analysed (and tagged) in one repository, then tagged in another as well. */
  let promoted: { registry: string; repository: string; tag: string; digest: string; analysedIn: string }
  let events: EngineEvent[] = []
  let offset = 0
  let queries = 0
  /** The rows the warehouse handed back while answering the last request, each query's. */
  let served: (readonly unknown[])[] = []
  const last = () => timeOf(events.at(-1) as EngineEvent)

  /** Projects events as the log would deliver them, continuing the partition's offsets. */
  const project = async (batch: readonly EngineEvent[], size = 300) => {
    // Stored the instant they were appended: these batches add no lag, so the lag test's is
    // the only one.
    let appended = 0
    const handler = createProjectorHandler({ warehouse, clock: () => appended, logger: silentLogger })
    const messages: LogMessage[] = batch.map((event) => ({
      ...encodeLogEvent(event),
      headers: {},
      topic: 'engine.events',
      partition: 0,
      offset: offset++,
      timestamp: timeOf(event),
    }))
    for (let i = 0; i < messages.length; i += size) {
      const slice = messages.slice(i, i + size)
      appended = slice[0]?.timestamp ?? 0
      await handler({ topic: 'engine.events', partition: 0, messages: slice })
    }
    events = [...events, ...batch]
  }

  const graphql = async (
    token: string,
    query: string,
    variables: Record<string, unknown> = {},
    via: { app: ReturnType<typeof createHttpApp>; path: string } = { app, path: '/v1/reports/graphql' },
  ) => {
    served = []
    const response = await via.app.request(via.path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    })
    const body = (await response.json()) as {
      data?: Record<
        string,
        { pageInfo?: { nextToken: string | null; count: number } } & Record<string, unknown>
      >
      errors?: { message: string; extensions?: { code?: string } }[]
      extensions?: { projectionLagSeconds?: number }
    }
    return { status: response.status, body }
  }

  /** Every page of one root, following nextToken. */
  const allPages = async <R>(
    token: string,
    root: string,
    selection: string,
    args: Record<string, unknown>,
    limit = 7,
  ) => {
    const results: R[] = []
    let nextToken: string | null = null
    let pages = 0
    do {
      const { body } = await graphql(
        token,
        `query ($filter: ${filterType(root)}, $asOf: String, $limit: Int, $nextToken: String) {
          ${root}(filter: $filter, asOf: $asOf, limit: $limit, nextToken: $nextToken) {
            pageInfo { nextToken count } results { ${selection} } projectionLagSeconds } }`,
        { ...args, limit, nextToken },
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const page = body.data?.[root] as {
        pageInfo: { nextToken: string | null; count: number }
        results: R[]
      }
      assert.equal(page.pageInfo.count, page.results.length)
      results.push(...page.results)
      nextToken = page.pageInfo.nextToken
      pages++
    } while (nextToken !== null && pages < 1_000)
    return results
  }
  const filterType = (root: string) =>
    root === 'policyEvaluationsByTag' ? 'PolicyEvaluationFilter' : 'VulnerabilityFilter'

  type TagsResult = {
    account: string
    vulnerability: { vulnerabilityId: string }
    tags: { registry: string; repository: string; tag: string; digest: string; current: boolean }[]
    tagCount: number
  }
  const tagsByVulnerability = async (token: string, args: Record<string, unknown>) => {
    const results = await allPages<TagsResult>(
      token,
      'tagsByVulnerability',
      'account vulnerability { vulnerabilityId } tags { registry repository tag digest current } tagCount',
      args,
    )
    for (const r of results) assert.equal(r.tagCount, r.tags.length)
    return new Map(
      results.map((r) => [
        r.vulnerability.vulnerabilityId,
        r.tags.map((t) => `${tagName(t)}@${t.digest}${t.current ? '' : ' old'}`).sort(),
      ]),
    )
  }

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    // Every version of a row stays its own row (as between background merges): each query must
    // itself give the newest version only, never lean on a merge having happened.
    await warehouse.command('SYSTEM STOP MERGES')
    const counting: Warehouse = {
      ...warehouse,
      query: async <Row>(sql: string, params?: Readonly<Record<string, unknown>>) => {
        queries++
        const rows = await warehouse.query<Row>(sql, params)
        served.push(rows)
        return rows
      },
    }
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    const options = {
      log,
      eventsTopic: 'engine.events',
      warehouse: counting,
      readiness: {},
      authenticate: async (token: string) => tokens[token],
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      mounts: [{ path: '/v1/reports/metrics', app: createMetricsRoutes({ warehouse: counting }) }],
    }
    app = createHttpApp(options)
    withRoute = (route) =>
      createHttpApp({
        ...options,
        mounts: [
          ...options.mounts,
          {
            path: LIMITED_PATH,
            app: createReportGraphqlRoutes({
              warehouse: counting,
              graphiql: false,
              logger: silentLogger,
              endpoint: LIMITED_PATH,
              ...route,
            }),
          },
        ],
      })
    await project([
      ...generateActivity({
        seed: 42,
        accounts: ['acme', 'globex'],
        count: 2_500,
        clock: () => T0,
        systemEvents: false,
      }),
    ])
    // One digest in two repositories: an image of acme with findings, tagged where it was
    // analysed, is then tagged in another repository as well (promoted by digest). The roots'
    // registry, repository and tag filters must find it through either tag.
    const world = worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty
    const tagged = [...world.tags].filter(([, digest]) => (world.images.get(digest)?.size ?? 0) > 0)
    const [from, digest] = tagged[0] as [string, string]
    const analysed = events.find(
      (e) => e.account === 'acme' && e.type === 'herald.report.image.analyzed' && e.data.digest === digest,
    )
    const analysedIn = analysed?.type === 'herald.report.image.analyzed' ? analysed.data.repository : ''
    const target = tagged
      .map(([name]) => tagParts(name))
      .find((t) => t.repository !== analysedIn && t.repository !== tagParts(from).repository)
    assert.ok(target !== undefined && analysedIn !== '', 'acme has images tagged in two repositories')
    promoted = {
      registry: target.registry,
      repository: target.repository,
      tag: 'promoted',
      digest,
      analysedIn,
    }
    await project([
      {
        specversion: '1.0',
        id: 'promoted-by-digest',
        source: '/engine',
        type: 'herald.report.tag.digest_changed',
        account: 'acme',
        time: new Date(last() + 1_000).toISOString(),
        data: { registry: promoted.registry, repository: promoted.repository, tag: promoted.tag, digest },
      } as EngineEvent,
    ])
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers an admin across every account, page by page, as each account answers on its own', async () => {
    const worlds = worldAt(events, Number.POSITIVE_INFINITY)
    const expected = new Map<string, string[]>()
    const expectedImages = new Map<string, string[]>()
    for (const name of ['acme', 'globex']) {
      for (const [id, tags] of expectedTagsByVulnerability(worlds.get(name) ?? empty, true))
        expected.set(`${name}/${id}`, tags)
      for (const [id, digests] of expectedImagesByVulnerability(worlds.get(name) ?? empty))
        expectedImages.set(`${name}/${id}`, digests)
    }
    const tags = await allPages<TagsResult>(
      'admin',
      'tagsByVulnerability',
      'account vulnerability { vulnerabilityId } tags { registry repository tag digest current } tagCount',
      { filter: { allAccounts: true } },
      13,
    )
    const keys = tags.map((r) => `${r.account}/${r.vulnerability.vulnerabilityId}`)
    assert.deepEqual(keys, [...keys].sort(), 'in (account, vulnerability) order across pages')
    assert.deepEqual(
      new Map(
        tags.map((r) => [
          `${r.account}/${r.vulnerability.vulnerabilityId}`,
          r.tags.map((t) => `${tagName(t)}@${t.digest}`).sort(),
        ]),
      ),
      new Map([...expected].sort(([x], [y]) => (x < y ? -1 : 1))),
    )
    const images = await allPages<{
      account: string
      vulnerability: { vulnerabilityId: string }
      images: { digest: string }[]
    }>(
      'admin',
      'imagesByVulnerability',
      'account vulnerability { vulnerabilityId } images { digest }',
      { filter: { allAccounts: true } },
      17,
    )
    assert.deepEqual(
      new Map(
        images.map((r) => [
          `${r.account}/${r.vulnerability.vulnerabilityId}`,
          r.images.map((m) => m.digest).sort(),
        ]),
      ),
      new Map([...expectedImages].sort(([x], [y]) => (x < y ? -1 : 1))),
    )
  })

  it('answers tagsByVulnerability now and as of any instant, current tags or all, page by page', async () => {
    const now = worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty
    assert.deepEqual(await tagsByVulnerability('acme-reader', {}), expectedTagsByVulnerability(now, true))
    assert.deepEqual(
      await tagsByVulnerability('acme-reader', { filter: { currentOnly: false } }),
      expectedTagsByVulnerability(now, false),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: events.length - 1 }),
        fc.integer({ min: -1, max: 1 }),
        fc.boolean(),
        async (i, nudge, currentOnly) => {
          const at = timeOf(events[i] as EngineEvent) + nudge
          const world = worldAt(events, at).get('acme') ?? empty
          const asOf = new Date(at).toISOString()
          assert.deepEqual(
            await tagsByVulnerability('acme-reader', { asOf, filter: { currentOnly } }),
            expectedTagsByVulnerability(world, currentOnly),
            `as of ${asOf}, currentOnly ${currentOnly}`,
          )
        },
      ),
      { numRuns: 12 },
    )
  })

  it('answers imagesByVulnerability and its filters as of random instants', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: events.length - 1 }), async (i) => {
        const at = timeOf(events[i] as EngineEvent)
        const world = worldAt(events, at).get('globex') ?? empty
        const results = await allPages<{
          vulnerability: { vulnerabilityId: string; severity: Severity }
          images: {
            digest: string
            packages: { name: string; version: string }[]
            first: { name: string; version: string }[]
            packageCount: number
          }[]
          imageCount: number
        }>(
          'globex-reader',
          'imagesByVulnerability',
          'vulnerability { vulnerabilityId severity } images { digest packages { name version } first: packages(limit: 1) { name version } packageCount } imageCount',
          { asOf: new Date(at).toISOString() },
          25,
        )
        assert.deepEqual(
          new Map(
            results.map((r) => [r.vulnerability.vulnerabilityId, r.images.map((m) => m.digest).sort()]),
          ),
          expectedImagesByVulnerability(world),
        )
        for (const r of results) {
          for (const image of r.images) {
            const expected = [...(world.images.get(image.digest)?.values() ?? [])]
              .filter((f) => f.id === r.vulnerability.vulnerabilityId)
              .map((f) => `${f.package} ${f.version}`)
              .sort()
            assert.deepEqual(image.packages.map((p) => `${p.name} ${p.version}`).sort(), expected)
            assert.equal(image.packageCount, expected.length)
            assert.deepEqual(image.first, image.packages.slice(0, 1))
          }
        }
      }),
      { numRuns: 6 },
    )
    // Filters narrow: only criticals on CISA's KEV list, only what has a fix.
    const world = worldAt(events, Number.POSITIVE_INFINITY).get('globex') ?? empty
    const results = await allPages<{ vulnerability: { vulnerabilityId: string } }>(
      'globex-reader',
      'imagesByVulnerability',
      'vulnerability { vulnerabilityId }',
      { filter: { severity: ['critical'], kev: true, fixAvailable: true } },
    )
    const expected = new Set(
      [...world.images.values()].flatMap((m) =>
        [...m.values()].filter((f) => f.severity === 'critical' && f.kev && f.fix !== null).map((f) => f.id),
      ),
    )
    assert.deepEqual(new Set(results.map((r) => r.vulnerability.vulnerabilityId)), expected)
  })

  it('answers for one vulnerability (its own read path) as of random instants, and across accounts', async () => {
    // Ids that some image has at some point, plus one that none has.
    const ids = [
      ...new Set(
        [...worldAt(events, Number.POSITIVE_INFINITY).values()].flatMap((a) =>
          [...a.images.values()].flatMap((m) => [...m.values()].map((f) => f.id)),
        ),
      ),
    ]
    assert.ok(ids.length > 0, 'the generated history has findings')
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: events.length - 1 }),
        fc.oneof(fc.constantFrom(...ids), fc.constant('CVE-0000-0000')),
        async (i, vulnerabilityId) => {
          const at = timeOf(events[i] as EngineEvent)
          const worlds = worldAt(events, at)
          const world = worlds.get('globex') ?? empty
          const only = <V>(map: Map<string, V>) => new Map([...map].filter(([id]) => id === vulnerabilityId))
          const images = await allPages<{
            vulnerability: { vulnerabilityId: string }
            images: { digest: string }[]
          }>(
            'globex-reader',
            'imagesByVulnerability',
            'vulnerability { vulnerabilityId } images { digest }',
            { asOf: new Date(at).toISOString(), filter: { vulnerabilityId } },
          )
          assert.deepEqual(
            new Map(
              images.map((r) => [r.vulnerability.vulnerabilityId, r.images.map((m) => m.digest).sort()]),
            ),
            only(expectedImagesByVulnerability(world)),
          )
          const tags = await allPages<TagsResult>(
            'globex-reader',
            'tagsByVulnerability',
            'account vulnerability { vulnerabilityId } tags { registry repository tag digest current } tagCount',
            { asOf: new Date(at).toISOString(), filter: { vulnerabilityId, currentOnly: false } },
          )
          assert.deepEqual(
            new Map(
              tags.map((r) => [
                r.vulnerability.vulnerabilityId,
                r.tags.map((t) => `${tagName(t)}@${t.digest}${t.current ? '' : ' old'}`).sort(),
              ]),
            ),
            only(expectedTagsByVulnerability(world, false)),
          )
          // An admin across accounts: each account's answer for the id, in account order.
          const expected = new Map<string, string[]>()
          for (const name of ['acme', 'globex'])
            for (const [id, digests] of only(expectedImagesByVulnerability(worlds.get(name) ?? empty)))
              expected.set(`${name}/${id}`, digests)
          const across = await allPages<{
            account: string
            vulnerability: { vulnerabilityId: string }
            images: { digest: string }[]
          }>(
            'admin',
            'imagesByVulnerability',
            'account vulnerability { vulnerabilityId } images { digest }',
            { asOf: new Date(at).toISOString(), filter: { vulnerabilityId, allAccounts: true } },
            1,
          )
          assert.deepEqual(
            new Map(
              across.map((r) => [
                `${r.account}/${r.vulnerability.vulnerabilityId}`,
                r.images.map((m) => m.digest).sort(),
              ]),
            ),
            expected,
          )
        },
      ),
      { numRuns: 10 },
    )
  })

  it('answers policyEvaluationsByTag: latest of active tags now and as of, and the full history', async () => {
    for (const at of [T0 + 30_000, last()]) {
      const world = worldAt(events, at).get('acme') ?? empty
      const results = await allPages<{ registry: string; repository: string; tag: string; status: string }>(
        'acme-reader',
        'policyEvaluationsByTag',
        'registry repository tag status',
        { asOf: new Date(at).toISOString() },
      )
      const expected = [...world.evaluations].filter(([name]) => world.tags.has(name)).sort()
      assert.deepEqual(results.map((r) => [tagName(r), r.status]).sort(), expected)
    }
    const failing = await allPages<{ status: string }>('acme-reader', 'policyEvaluationsByTag', 'status', {
      filter: { result: 'fail' },
    })
    assert.ok(failing.length > 0 && failing.every((r) => r.status === 'fail'))

    const history = await allPages<{ tag: string; evaluatedAt: string }>(
      'acme-reader',
      'policyEvaluationsByTag',
      'registry repository tag evaluatedAt',
      { filter: { currentOnly: false } },
      50,
    )
    const evaluated = events.filter(
      (e) => e.account === 'acme' && e.type === 'herald.report.policy.evaluated',
    )
    assert.equal(history.length, evaluated.length)
  })

  it('takes as a tag’s current evaluation the one evaluated last, not the one received last, now, as of now and in the metrics', async () => {
    const t = last() + 1_000
    const iso = (ms: number) => new Date(ms).toISOString()
    let n = 0
    const event = (type: string, data: Record<string, unknown>): EngineEvent =>
      ({
        specversion: '1.0',
        id: `policy-order-${n++}`,
        source: '/engine',
        type,
        account: 'policy-order',
        time: iso(t + n),
        data,
      }) as EngineEvent
    const ref = (tag: string) => ({ registry: 'docker.io', repository: 'acme/api', tag })
    const digest = `sha256:${'e'.repeat(64)}`
    const evaluated = (tag: string, at: number, status: 'pass' | 'fail') =>
      event('herald.report.policy.evaluated', {
        ...ref(tag),
        digest,
        bundle_id: 'default',
        bundle_digest: 'sha256:bundle',
        status,
        reasons: [],
        evaluated_at: iso(at),
      })
    await project(
      ['across', 'within', 'tie', 'zero'].map((tag) =>
        event('herald.report.tag.digest_changed', { ...ref(tag), digest }),
      ),
    )
    // An evaluation time before 1900 (a producer's zero time) is the earliest of all.
    await project([evaluated('zero', Date.parse('0001-01-01T00:00:00Z'), 'fail')])
    await project([evaluated('zero', t + 60_000, 'fail')])
    // Each tag's later evaluation fails and its earlier one passes, but the earlier arrives
    // last: in a later batch (`across`) or later in one batch (`within`). Of two at one
    // instant (`tie`) the later in the log is the current one.
    await project([evaluated('across', t + 60_000, 'fail')])
    await project([evaluated('across', t + 30_000, 'pass')])
    await project([evaluated('within', t + 60_000, 'fail'), evaluated('within', t + 30_000, 'pass')])
    await project([evaluated('tie', t + 60_000, 'pass'), evaluated('tie', t + 60_000, 'fail')])

    const current = async (args: Record<string, unknown>) => {
      const { body } = await graphql(
        'admin',
        `query ($asOf: String) { policyEvaluationsByTag(filter: { account: "policy-order" }, asOf: $asOf) {
            results { tag status evaluatedAt } } }`,
        args,
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      return body.data?.policyEvaluationsByTag?.results
    }
    const latest = ['across', 'tie', 'within', 'zero'].map((tag) => ({
      tag,
      status: 'fail',
      evaluatedAt: iso(t + 60_000),
    }))
    assert.deepEqual(await current({}), latest, 'now')
    assert.deepEqual(await current({ asOf: iso(t + 120_000) }), latest, 'as of now')
    const { body } = await graphql(
      'admin',
      '{ metrics(filter: { account: "policy-order" }, limit: 1000) { results { id value } } }',
    )
    const values = new Map(
      ((body.data?.metrics?.results ?? []) as { id: string; value: number }[]).map((r) => [r.id, r.value]),
    )
    assert.deepEqual(
      ['current.fail', 'current.pass', 'all.fail', 'all.pass'].map((id) =>
        values.get(`policy_evaluations.${id}`),
      ),
      [4, 0, 4, 0],
    )
  })

  it('lists the new, fixed and changed findings of each tag between two instants', async () => {
    const to = last()
    const findingsOf = (w: OracleAccount) => {
      const out = new Map<string, OracleFinding>()
      for (const [name, digest] of w.tags) {
        for (const f of w.images.get(digest)?.values() ?? [])
          out.set(`${name} ${f.id} ${f.package} ${f.version}`, f)
      }
      return out
    }
    const afterwards = findingsOf(worldAt(events, to).get('acme') ?? empty)
    // Re-scoring is rare in the activity: `from` is the whole second that sees the most findings
    // change severity by `to`, so that the diff has some to list whatever the generator drew.
    const rescoredSince = (at: number) => {
      const then = findingsOf(worldAt(events, at).get('acme') ?? empty)
      return [...afterwards].filter(([key, f]) => {
        const old = then.get(key)
        return old !== undefined && old.severity !== f.severity
      }).length
    }
    let from = T0 + 5_000
    let most = rescoredSince(from)
    for (let at = from + 1_000; at < to - 5_000; at += 1_000) {
      const rescored = rescoredSince(at)
      if (rescored > most) [from, most] = [at, rescored]
    }
    const before = findingsOf(worldAt(events, from).get('acme') ?? empty)
    // A finding counts under a severity filter when it has one of them before or after.
    const expectedOf = (severities?: readonly string[]) => {
      const wanted = (...fs: (OracleFinding | undefined)[]) =>
        severities === undefined || fs.some((f) => f !== undefined && severities.includes(f.severity))
      const expected = new Set<string>()
      for (const [key, f] of afterwards) {
        const old = before.get(key)
        if (!wanted(old, f)) continue
        if (old === undefined) expected.add(`new ${key}`)
        else if (old.severity !== f.severity || old.fix !== f.fix || old.kev !== f.kev)
          expected.add(`changed ${key}`)
      }
      for (const [key, f] of before) if (!afterwards.has(key) && wanted(f)) expected.add(`fixed ${key}`)
      return expected
    }
    const diff = async (severities?: readonly string[]) => {
      const seen = new Set<string>()
      let nextToken: string | null = null
      do {
        const { body } = await graphql(
          'acme-reader',
          `query ($from: String!, $to: String!, $nextToken: String, $filter: DiffFilter) {
            vulnerabilityDiff(from: $from, to: $to, limit: 40, nextToken: $nextToken, filter: $filter) {
              pageInfo { nextToken } results { change registry repository tag vulnerabilityId package packageVersion } } }`,
          {
            from: new Date(from).toISOString(),
            to: new Date(to).toISOString(),
            nextToken,
            filter: severities === undefined ? null : { severity: severities },
          },
        )
        assert.equal(body.errors, undefined, JSON.stringify(body.errors))
        const page = body.data?.vulnerabilityDiff as unknown as {
          pageInfo: { nextToken: string | null }
          results: {
            change: string
            vulnerabilityId: string
            package: string
            packageVersion: string
            registry: string
            repository: string
            tag: string
          }[]
        }
        for (const r of page.results)
          seen.add(`${r.change} ${tagName(r)} ${r.vulnerabilityId} ${r.package} ${r.packageVersion}`)
        nextToken = page.pageInfo.nextToken
      } while (nextToken !== null)
      return seen
    }
    const all = expectedOf()
    assert.ok(all.size > 0)
    assert.deepEqual([...(await diff())].sort(), [...all].sort())
    // Re-scored findings: those that left or entered the filtered severities are still `changed`.
    const rescored = [...all].filter((k) => k.startsWith('changed ')).map((k) => k.slice('changed '.length))
    assert.ok(
      rescored.some((k) => before.get(k)?.severity !== afterwards.get(k)?.severity),
      'the activity re-scores no finding of acme: the diff cannot be checked for them',
    )
    for (const severities of [['critical'], ['high', 'medium']]) {
      const expected = expectedOf(severities)
      assert.ok(expected.size > 0, severities.join())
      assert.deepEqual([...(await diff(severities))].sort(), [...expected].sort(), severities.join())
    }
  })

  it('gives finding age, MTTR, SLA breaches and fix/KEV breakdowns consistent with the findings', async () => {
    const world = worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty
    const open = new Map<string, number>()
    const breakdown = new Map<string, { findings: number; fix: number; kev: number }>()
    for (const findings of world.images.values()) {
      for (const f of findings.values()) {
        open.set(f.severity, (open.get(f.severity) ?? 0) + 1)
        const b = breakdown.get(f.severity) ?? { findings: 0, fix: 0, kev: 0 }
        breakdown.set(f.severity, {
          findings: b.findings + 1,
          fix: b.fix + (f.fix ? 1 : 0),
          kev: b.kev + (f.kev ? 1 : 0),
        })
      }
    }
    const asOf = new Date(last() + 40 * 86_400_000).toISOString()
    const { body } = await graphql(
      'acme-reader',
      `query ($asOf: String) {
        findingAging(asOf: $asOf) { results { severity openCount meanOpenAgeSeconds resolvedCount mttrSeconds slaDays openBreaches } }
        vulnerabilityBreakdown { results { severity findings fixAvailable noFix kev } }
        slaBreaches(asOf: $asOf, limit: 1000) { pageInfo { count } results { severity ageSeconds slaDays } } }`,
      { asOf },
    )
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    const data = body.data as unknown as {
      findingAging: {
        results: {
          severity: string
          openCount: number
          meanOpenAgeSeconds: number | null
          slaDays: number | null
          openBreaches: number
          resolvedCount: number
          mttrSeconds: number | null
        }[]
      }
      vulnerabilityBreakdown: {
        results: { severity: string; findings: number; fixAvailable: number; noFix: number; kev: number }[]
      }
      slaBreaches: { results: { severity: string; ageSeconds: number; slaDays: number }[] }
    }
    for (const r of data.findingAging.results) {
      assert.equal(r.openCount, open.get(r.severity) ?? 0, `${r.severity} open`)
      // 40 days on, every open critical and high finding is past its 15- and 30-day SLA, no medium one.
      if (r.severity === 'critical' || r.severity === 'high') assert.equal(r.openBreaches, r.openCount)
      if (r.severity === 'medium') assert.equal(r.openBreaches, 0)
      if (r.openCount > 0) assert.ok((r.meanOpenAgeSeconds ?? 0) > 40 * 86_400)
      if (r.resolvedCount > 0) assert.ok((r.mttrSeconds ?? -1) >= 0 && (r.mttrSeconds ?? 0) < 3_600)
    }
    assert.equal(
      data.slaBreaches.results.length,
      data.findingAging.results.reduce((n, r) => n + r.openBreaches, 0),
    )
    assert.ok(data.slaBreaches.results.every((r) => r.ageSeconds > r.slaDays * 86_400))
    for (const r of data.vulnerabilityBreakdown.results) {
      const b = breakdown.get(r.severity) ?? { findings: 0, fix: 0, kev: 0 }
      assert.deepEqual(
        [r.findings, r.fixAvailable, r.noFix, r.kev],
        [b.findings, b.fix, b.findings - b.fix, b.kev],
      )
    }
  })

  it('filters every root by registry, repository and tag through the tags that point at an image, one digest in two repositories', async () => {
    const promotedAt = timeOf(events.find((e) => e.id === 'promoted-by-digest') as EngineEvent)
    const filters: TagFilter[] = [
      { repository: promoted.repository },
      { registry: promoted.registry, repository: promoted.repository, tag: promoted.tag },
      { repository: promoted.analysedIn },
      { registry: promoted.registry },
    ]
    const bySeverity = (a: OracleAccount, digests: ReadonlySet<string>, wanted = (_: Severity) => true) => {
      const counts = new Map<string, number>()
      for (const digest of digests)
        for (const f of a.images.get(digest)?.values() ?? [])
          if (wanted(f.severity)) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1)
      return counts
    }
    for (const at of [promotedAt - 1, promotedAt]) {
      const world = worldAt(events, at).get('acme') ?? empty
      const asOf = new Date(at).toISOString()
      for (const filter of filters) {
        const what = `${JSON.stringify(filter)} as of ${asOf}`
        for (const currentOnly of [true, false]) {
          const digests = taggedDigests(world, filter, currentOnly)
          const images = await allPages<{
            vulnerability: { vulnerabilityId: string }
            images: { digest: string }[]
          }>('acme-reader', 'imagesByVulnerability', 'vulnerability { vulnerabilityId } images { digest }', {
            asOf,
            filter: { ...filter, currentOnly },
          })
          assert.deepEqual(
            new Map(
              images.map((r) => [r.vulnerability.vulnerabilityId, r.images.map((m) => m.digest).sort()]),
            ),
            expectedImagesByVulnerability(world, digests),
            `images ${what}, currentOnly ${currentOnly}`,
          )
        }
        const digests = taggedDigests(world, filter)
        const artifacts = await allPages<{
          vulnerability: { vulnerabilityId: string }
          artifacts: { name: string; version: string }[]
        }>(
          'acme-reader',
          'artifactsByVulnerability',
          'vulnerability { vulnerabilityId } artifacts { name version }',
          { asOf, filter },
        )
        const expectedArtifacts = new Map<string, Set<string>>()
        for (const digest of digests)
          for (const f of world.images.get(digest)?.values() ?? [])
            expectedArtifacts.set(
              f.id,
              (expectedArtifacts.get(f.id) ?? new Set()).add(`${f.package} ${f.version}`),
            )
        assert.deepEqual(
          new Map(
            artifacts.map((r) => [
              r.vulnerability.vulnerabilityId,
              new Set(r.artifacts.map((x) => `${x.name} ${x.version}`)),
            ]),
          ),
          new Map([...expectedArtifacts].sort(([x], [y]) => (x < y ? -1 : 1))),
          `artifacts ${what}`,
        )
        const tags = await tagsByVulnerability('acme-reader', { asOf, filter })
        const expectedTags = new Map(
          [...expectedTagsByVulnerability(world, true)]
            .map(
              ([id, list]) =>
                [
                  id,
                  list.filter((t) => {
                    const parts = tagParts(t.split('@')[0] as string)
                    return Object.entries(filter).every(
                      ([key, value]) => parts[key as keyof TagFilter] === value,
                    )
                  }),
                ] as const,
            )
            .filter(([, list]) => list.length > 0),
        )
        assert.deepEqual(tags, expectedTags, `tags ${what}`)
        const { body } = await graphql(
          'acme-reader',
          `query ($asOf: String, $filter: VulnerabilityFilter) {
            vulnerabilityBreakdown(asOf: $asOf, filter: $filter) { results { severity findings } }
            findingAging(asOf: $asOf, filter: $filter) { results { severity openCount } } }`,
          { asOf, filter },
        )
        assert.equal(body.errors, undefined, JSON.stringify(body.errors))
        const expected = bySeverity(world, digests)
        const data = body.data as unknown as Record<
          string,
          { results: { severity: string; findings?: number; openCount?: number }[] }
        >
        assert.deepEqual(
          data.vulnerabilityBreakdown?.results.map((r) => [r.severity, r.findings]),
          data.vulnerabilityBreakdown?.results.map((r) => [r.severity, expected.get(r.severity) ?? 0]),
          `breakdown ${what}`,
        )
        assert.deepEqual(
          data.findingAging?.results.map((r) => [r.severity, r.openCount]),
          data.findingAging?.results.map((r) => [r.severity, expected.get(r.severity) ?? 0]),
          `aging ${what}`,
        )
      }
    }
    // A year on, every open finding with a deadline (critical to low) is past it.
    const world = worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty
    for (const filter of filters) {
      const { body } = await graphql(
        'acme-reader',
        `query ($filter: VulnerabilityFilter) {
          slaBreaches(asOf: "${new Date(last() + 365 * 86_400_000).toISOString()}", filter: $filter, limit: 1000) { results { digest } } }`,
        { filter },
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const digests = taggedDigests(world, filter)
      const breaches = ((body.data?.slaBreaches?.results ?? []) as { digest: string }[]).map((r) => r.digest)
      assert.ok(
        breaches.every((d) => digests.has(d)),
        `breaches ${JSON.stringify(filter)}`,
      )
      const deadline = (s: Severity) => s !== 'negligible' && s !== 'unknown'
      assert.equal(
        breaches.length,
        [...bySeverity(world, digests, deadline).values()].reduce((n, c) => n + c, 0),
        `breaches ${JSON.stringify(filter)}`,
      )
    }
    // The promoted digest is found through the tag it was promoted to, not only where it was analysed.
    assert.ok(taggedDigests(world, { repository: promoted.repository }).has(promoted.digest))
  })

  it('gives asOf back as the UTC instant it answered for, in every report that echoes it', async () => {
    const { body } = await graphql(
      'acme-reader',
      `{ vulnerabilityBreakdown(asOf: "2026-11-20T13:00:00+01:00") { asOf }
         findingAging(asOf: "2026-11-20T13:00:00+01:00") { asOf }
         current: vulnerabilityBreakdown { asOf } }`,
    )
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    const data = body.data as unknown as Record<string, { asOf: string | null }>
    assert.equal(data.vulnerabilityBreakdown?.asOf, '2026-11-20T12:00:00.000Z')
    assert.equal(data.findingAging?.asOf, '2026-11-20T12:00:00.000Z')
    assert.equal(data.current?.asOf, null, 'no asOf: the current state')
  })

  it('takes one instant for now per request: every alias of findingAging and slaBreaches answers as of it', async () => {
    // A clock that moves on by a second each time it is read.
    let now = last() + 40 * 86_400_000
    const via = { app: withRoute({ clock: () => (now += 1_000) }), path: LIMITED_PATH }
    const query = `{ a: findingAging { asOf results { openBreaches } } b: findingAging { asOf }
      c: slaBreaches { asOf } d: slaBreaches(limit: 1) { asOf } }`
    const instants = async () => {
      const { body } = await graphql('acme-reader', query, {}, via)
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      return Object.values(body.data ?? {}).map((page) => (page as unknown as { asOf: string }).asOf)
    }
    const first = await instants()
    assert.equal(new Set(first).size, 1, JSON.stringify(first))
    // The next request reads the clock again.
    const second = await instants()
    assert.equal(new Set(second).size, 1, JSON.stringify(second))
    assert.ok((second[0] as string) > (first[0] as string))
  })

  it('refuses a negative SLA deadline, naming it, rather than taking it as none', async () => {
    for (const root of ['findingAging', 'slaBreaches']) {
      const { body } = await graphql(
        'acme-reader',
        `{ ${root}(sla: { critical: -1, high: 30, low: -5 }) { results { severity } } }`,
      )
      assert.equal(body.data?.[root] ?? null, null, root)
      assert.equal(body.errors?.[0]?.extensions?.code, 'validation_failed', root)
      assert.match(
        body.errors?.[0]?.message ?? '',
        /sla\.critical, sla\.low must be 0 \(no deadline\) or more days/,
      )
    }
    const zero = await graphql(
      'acme-reader',
      '{ slaBreaches(sla: { critical: 0, high: 0 }) { results { severity } } }',
    )
    assert.equal(zero.body.errors, undefined, JSON.stringify(zero.body.errors))
    // Past 2^32 seconds (49,711 days) a deadline wrapped round to minutes, and every open finding was late.
    const far = await graphql(
      'acme-reader',
      '{ slaBreaches(sla: { critical: 49711, high: 49711, medium: 49711, low: 49711, negligible: 49711, unknown: 49711 }) { pageInfo { count } } }',
    )
    assert.equal(far.body.errors, undefined, JSON.stringify(far.body.errors))
    const breaches = far.body.data?.slaBreaches as { pageInfo: { count: number } } | undefined
    assert.equal(breaches?.pageInfo.count, 0)
  })

  it('counts open findings as of random instants by the severity they had then, within a detection window', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: events.length - 1 }),
        fc.integer({ min: 0, max: events.length - 1 }),
        async (i, j) => {
          const at = timeOf(events[Math.max(i, j)] as EngineEvent)
          const detectedFrom = timeOf(events[Math.min(i, j)] as EngineEvent)
          const world = worldAt(events, at).get('acme') ?? empty
          const expected = (from?: number) => {
            const open = new Map<string, number>()
            for (const findings of world.images.values())
              for (const f of findings.values())
                if (from === undefined || f.detected >= from)
                  open.set(f.severity, (open.get(f.severity) ?? 0) + 1)
            return open
          }
          const { body } = await graphql(
            'acme-reader',
            `query ($asOf: String!, $from: String!) {
              all: findingAging(asOf: $asOf) { results { severity openCount } }
              window: findingAging(asOf: $asOf, filter: { detected: { start: $from } }) { results { severity openCount } } }`,
            { asOf: new Date(at).toISOString(), from: new Date(detectedFrom).toISOString() },
          )
          assert.equal(body.errors, undefined, JSON.stringify(body.errors))
          const data = body.data as unknown as Record<
            'all' | 'window',
            { results: { severity: string; openCount: number }[] }
          >
          for (const [alias, from] of [
            ['all', undefined],
            ['window', detectedFrom],
          ] as const) {
            const open = expected(from)
            for (const r of data[alias].results)
              assert.equal(
                r.openCount,
                open.get(r.severity) ?? 0,
                `${alias} ${r.severity} as of ${new Date(at).toISOString()}`,
              )
          }
        },
      ),
      { numRuns: 12, seed: 7 },
    )
  })

  it('computes metric values, live and recorded as of an instant, as the oracle counts them', async () => {
    const expectedMetrics = (a: OracleAccount) => {
      const m = new Map<string, number>()
      const add = (id: string, n = 1) => m.set(id, (m.get(id) ?? 0) + n)
      for (const [name, digests] of a.ever) {
        for (const digest of digests) {
          const current = a.tags.get(name) === digest
          for (const f of a.images.get(digest)?.values() ?? []) {
            for (const scope of current ? ['current', 'all'] : ['all']) {
              add(`vulnerabilities.tags.${scope}.${f.severity}`)
              if (f.fix !== null) add(`vulnerabilities.tags.${scope}.fix_available`)
              if (f.kev) add(`vulnerabilities.tags.${scope}.kev`)
            }
          }
        }
      }
      for (const [name, status] of a.evaluations) {
        add(`policy_evaluations.all.${status}`)
        if (a.tags.has(name)) add(`policy_evaluations.current.${status}`)
      }
      m.set('images.current', a.images.size)
      m.set('tags.current', a.tags.size)
      m.set('tags.all', a.ever.size)
      return m
    }
    const compare = (actual: Map<string, number>, expected: Map<string, number>, what: string) => {
      for (const [id, value] of actual) {
        if (id === 'images.all') continue
        assert.equal(value, expected.get(id) ?? 0, `${what}: ${id}`)
      }
    }
    const { body } = await graphql('acme-reader', '{ metrics(limit: 1000) { results { id value } } }')
    const live = new Map(
      ((body.data?.metrics?.results ?? []) as { id: string; value: number }[]).map((r) => [r.id, r.value]),
    )
    compare(live, expectedMetrics(worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty), 'live')
    // One query, two accounts: each alias its own account's values.
    const both = await graphql(
      'admin',
      `{ a: metrics(filter: { account: "acme" }, limit: 1000) { results { id value } }
         g: metrics(filter: { account: "globex" }, limit: 1000) { results { id value } } }`,
    )
    for (const [alias, account] of [
      ['a', 'acme'],
      ['g', 'globex'],
    ] as const) {
      const values = new Map(
        ((both.body.data?.[alias]?.results ?? []) as { id: string; value: number }[]).map((r) => [
          r.id,
          r.value,
        ]),
      )
      assert.ok(values.size > 0, alias)
      compare(
        values,
        expectedMetrics(worldAt(events, Number.POSITIVE_INFINITY).get(account) ?? empty),
        account,
      )
    }

    const at = timeOf(events[Math.floor(events.length / 2)] as EngineEvent)
    const points = await createMetricsRecorder({ warehouse, intervalSeconds: 1 }).record(at)
    const recorded = new Map(points.filter((p) => p.account === 'acme').map((p) => [p.metric, p.value]))
    compare(
      recorded,
      expectedMetrics(worldAt(events, Math.floor(at / 1000) * 1000).get('acme') ?? empty),
      'recorded',
    )
  })

  it('never shows one account another’s data; only an admin may ask across accounts', async () => {
    const roots = [
      'tagsByVulnerability { results { account } }',
      'imagesByVulnerability { results { account } }',
      'artifactsByVulnerability { results { account } }',
      'policyEvaluationsByTag { results { account } }',
      'slaBreaches(asOf: "2030-01-01T00:00:00Z") { results { account } }',
      'metricData(filter: { metricId: "images.current" }) { results { account } }',
    ]
    await createMetricsRecorder({ warehouse, intervalSeconds: 3600 }).record(last())
    for (const root of roots) {
      const { body } = await graphql('globex-reader', `{ ${root} }`)
      assert.equal(body.errors, undefined, `${root}: ${JSON.stringify(body.errors)}`)
      const [page] = Object.values(body.data ?? {}) as unknown as { results: { account: string }[] }[]
      assert.ok((page?.results.length ?? 0) > 0, `${root} returned something`)
      assert.ok(
        page?.results.every((r) => r.account === 'globex'),
        root,
      )
    }
    const name = roots[0]?.split(' ')[0] as string
    for (const filter of ['{ account: "acme" }', '{ allAccounts: true }']) {
      const { body } = await graphql(
        'globex-reader',
        `{ ${name}(filter: ${filter}) { results { account } } }`,
      )
      assert.equal(body.errors?.[0]?.extensions?.code, 'forbidden', filter)
      // Refused as it ran: `data` is there, null, and the answer still carries the lag.
      assert.equal(body.data, null)
      assert.equal(typeof body.extensions?.projectionLagSeconds, 'number')
    }
    // Naming one account and asking for all of them is refused, not read as either.
    const both = await graphql(
      'admin',
      `{ ${name}(filter: { account: "acme", allAccounts: true }) { results { account } } }`,
    )
    assert.equal(both.body.errors?.[0]?.extensions?.code, 'validation_failed')
    assert.match(
      both.body.errors?.[0]?.message ?? '',
      /filter\.account and filter\.allAccounts: give one or the other/,
    )
    // A window whose start is after its end is refused, by the raw events and the metric points.
    for (const query of [
      '{ events(filter: { start: "2026-11-23T00:00:00Z", end: "2026-11-20T00:00:00Z" }) { results { id } } }',
      '{ metricData(filter: { metricId: "images.current", start: "2026-11-24T00:00:00Z", end: "2026-11-23T00:00:00Z" }) { results { value } } }',
    ]) {
      const { body } = await graphql('admin', query)
      assert.equal(body.errors?.[0]?.message, 'filter.start is after filter.end', query)
    }
    // A name no account can have is refused, naming the filter, by the raw events and the reports.
    for (const root of ['events', name]) {
      const { body } = await graphql(
        'admin',
        `query ($account: String) { ${root}(filter: { account: $account }) { results { account } } }`,
        { account: 'acme\u0000' },
      )
      assert.equal(body.errors?.[0]?.message, `filter.account ${ACCOUNT_NAME_RULE}`, root)
      assert.equal(body.errors?.[0]?.extensions?.code, 'validation_failed', root)
    }
    const { body } = await graphql(
      'admin',
      `{ tagsByVulnerability(filter: { allAccounts: true }, limit: 1000) { results { account } } }`,
    )
    const accounts = new Set(
      ((body.data?.tagsByVulnerability?.results ?? []) as { account: string }[]).map((r) => r.account),
    )
    assert.deepEqual([...accounts].sort(), ['acme', 'globex'])
  })

  it('rejects abusive queries before they touch the warehouse', async () => {
    const deep = `{ ${'tagsByVulnerability { results { vulnerability { '.repeat(1)}${'a { '.repeat(46)}b${' }'.repeat(46)} } } } }`
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: tagsByVulnerability(limit: 1) { pageInfo { count } }`).join(' ')} }`
    const cases: [string, string, string][] = [
      ['depth 50', deep, 'query_too_deep'],
      ['40 aliases', aliases(40), 'too_many_aliases'],
      ['1,000 aliases', aliases(1_000), ''],
      // More repeats than graphql checks can be merged: it gives up validating.
      [
        'a field repeated 1,000 times',
        `{ metrics { results { ${'id '.repeat(1_000)} } } }`,
        'query_too_complex',
      ],
      // A page of one still reads every finding in scope to rank the vulnerabilities.
      ['30 one-row pages of tagsByVulnerability', aliases(30), 'query_too_costly'],
      [
        '30 one-row pages of policyEvaluationsByTag',
        `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: policyEvaluationsByTag(limit: 1) { pageInfo { count } }`).join(' ')} }`,
        'query_too_costly',
      ],
      [
        'a huge limit',
        '{ tagsByVulnerability(limit: 1000000) { results { vulnerability { vulnerabilityId } tags { tag } } } }',
        'query_too_costly',
      ],
      [
        'big nested lists',
        `{ ${['a', 'b', 'c', 'd'].map((a) => `${a}: tagsByVulnerability(limit: 1000) { results { tags(limit: 1000) { tag digest } } }`).join(' ')} }`,
        'query_too_costly',
      ],
      [
        'many big lists',
        `{ ${['a', 'b', 'c', 'd', 'e'].map((a) => `${a}: imagesByVulnerability(limit: 1000) { results { images { packages { name } } } }`).join(' ')} }`,
        'query_too_costly',
      ],
      // Each of these reads every finding in scope, however little it answers.
      ...(
        [
          'findingAging { results { severity openCount } }',
          'vulnerabilityBreakdown { results { severity findings } }',
        ] as const
      ).map(
        (root) =>
          [
            `30 copies of ${root.split(' ')[0]}`,
            `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: ${root}`).join(' ')} }`,
            'query_too_costly',
          ] as [string, string, string],
      ),
      [
        "30 accounts' metric values",
        `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: metrics(filter: { account: "account-${i}" }) { results { value } }`).join(' ')} }`,
        'query_too_costly',
      ],
      [
        'a page of 1,000 evaluations with 1,000 reasons each',
        '{ policyEvaluationsByTag(limit: 1000) { results { reasons(limit: 1000) { gate } } } }',
        'query_too_costly',
      ],
    ]
    for (const [name, query, code] of cases) {
      const before = queries
      const { status, body } = await graphql('admin', query)
      assert.equal(status, 400, name)
      assert.equal(body.data, undefined, name)
      if (code !== '')
        assert.ok(
          body.errors?.some((e) => e.extensions?.code === code),
          `${name}: ${JSON.stringify(body.errors)}`,
        )
      else assert.ok((body.errors?.length ?? 0) > 0, name)
      assert.equal(queries, before, `${name} ran no query`)
    }
    // The same limit through a variable is seen too.
    const { body } = await graphql(
      'admin',
      'query ($n: Int) { tagsByVulnerability(limit: $n) { results { tags { tag } } } }',
      { n: 900_000 },
    )
    assert.equal(body.errors?.[0]?.extensions?.code, 'query_too_costly')
    // An ordinary query passes, and so does a dashboard of the whole-account reports.
    const ok = await graphql('admin', aliases(3))
    assert.equal(ok.status, 200, JSON.stringify(ok.body.errors))
    const dashboard = await graphql(
      'acme-reader',
      `{ findingAging { results { severity openCount } } vulnerabilityBreakdown { results { severity findings } }
         metrics { results { id value } } slaBreaches { results { digest } } }`,
    )
    assert.equal(dashboard.status, 200, JSON.stringify(dashboard.body.errors))
    assert.equal(dashboard.body.errors, undefined, JSON.stringify(dashboard.body.errors))
    // A nested list gives the first `limit`, its count says how many there are.
    const nested = await graphql(
      'admin',
      '{ tagsByVulnerability(filter: { allAccounts: true }, limit: 50) { results { tags(limit: 1) { tag } tagCount } } }',
    )
    assert.equal(nested.body.errors, undefined, JSON.stringify(nested.body.errors))
    const pages = (nested.body.data?.tagsByVulnerability?.results ?? []) as {
      tags: unknown[]
      tagCount: number
    }[]
    assert.ok(pages.some((r) => r.tagCount > 1))
    assert.ok(pages.every((r) => r.tags.length === Math.min(1, r.tagCount)))
    const zero = await graphql(
      'admin',
      '{ tagsByVulnerability(filter: { allAccounts: true }, limit: 1) { results { tags(limit: 0) { tag } } } }',
    )
    assert.match(JSON.stringify(zero.body.errors), /limit must be between 1 and 1000/)
  })

  it('lists the first reasons of each evaluation, reasonCount all of them, reading no more than it answers', async () => {
    const t = last() + 1_000
    const many = 1_500
    const message = (i: number) => `reason ${String(i).padStart(4, '0')}`
    const reasons = Array.from({ length: many }, (_, i) => ({
      gate: 'vulnerabilities',
      trigger: 'package',
      action: 'stop',
      message: message(i),
    }))
    // 40 active tags, each evaluated with 1,500 reasons listed out of their messages' order.
    const listed = [...reasons.slice(700), ...reasons.slice(0, 700)]
    const ref = (i: number) => ({
      registry: 'docker.io',
      repository: 'acme/api',
      tag: `tag-${String(i).padStart(2, '0')}`,
      digest: `sha256:${'f'.repeat(64)}`,
    })
    const event = (id: string, type: string, data: Record<string, unknown>): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine',
        type,
        account: 'many-reasons',
        time: new Date(t).toISOString(),
        data,
      }) as EngineEvent
    await project(
      Array.from({ length: 40 }, (_, i) => [
        event(`many-reasons-tag-${i}`, 'herald.report.tag.digest_changed', ref(i)),
        event(`many-reasons-${i}`, 'herald.report.policy.evaluated', {
          ...ref(i),
          bundle_id: 'default',
          bundle_digest: 'sha256:bundle',
          status: 'fail',
          reasons: listed,
          evaluated_at: new Date(t).toISOString(),
        }),
      ]).flat(),
      10,
    )
    const evaluations = async (selection: string) => {
      const { body } = await graphql(
        'admin',
        `{ policyEvaluationsByTag(limit: 40, filter: { account: "many-reasons", currentOnly: false }) {
            results { ${selection} } } }`,
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const results = (body.data?.policyEvaluationsByTag?.results ?? []) as Record<string, unknown>[]
      assert.equal(results.length, 40)
      return results
    }
    const messages = (list: unknown) => (list as { message: string }[]).map((r) => r.message)
    /** The most reasons the warehouse handed back for one evaluation: its rows' longest list. */
    const mostRead = () =>
      Math.max(
        0,
        ...served.flat().flatMap((row) =>
          Object.values(row as object)
            .filter(Array.isArray)
            .map((list) => list.length),
        ),
      )
    // By default the first 100 of each, in the order the evaluation listed them.
    for (const r of await evaluations('reasons { gate trigger action message }'))
      assert.deepEqual(r.reasons, listed.slice(0, 100))
    assert.equal(mostRead(), 100)
    // Each selection its own limit (up to 1,000), reasonCount all of them.
    for (const r of await evaluations(
      'reasonCount first: reasons(limit: 1) { message } reasons(limit: 1000) { message }',
    )) {
      assert.equal(r.reasonCount, many)
      assert.deepEqual(messages(r.first), [message(700)])
      assert.deepEqual(messages(r.reasons), messages(listed.slice(0, 1_000)))
    }
    assert.equal(mostRead(), 1_000)
    // None selected, none read.
    await evaluations('tag reasonCount')
    assert.equal(mostRead(), 0)
    // Each tag's current evaluation, now and as of an instant, selected through fragments.
    for (const asOf of [null, new Date(t + 1_000).toISOString()]) {
      const { body } = await graphql(
        'admin',
        `query ($asOf: String) {
          policyEvaluationsByTag(limit: 40, asOf: $asOf, filter: { account: "many-reasons" }) { ...page } }
        fragment page on PolicyEvaluationsByTagPage { results { ...reasons ...reasons reasonCount } }
        fragment reasons on TagPolicyEvaluation { ... on TagPolicyEvaluation { reasons(limit: 3) { message } } }`,
        { asOf },
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const results = (body.data?.policyEvaluationsByTag?.results ?? []) as Record<string, unknown>[]
      assert.equal(results.length, 40, `as of ${asOf}`)
      for (const r of results) {
        assert.deepEqual(messages(r.reasons), [700, 701, 702].map(message), `as of ${asOf}`)
        assert.equal(r.reasonCount, many)
      }
      assert.equal(mostRead(), 3, `as of ${asOf}`)
    }
    const { body } = await graphql(
      'admin',
      '{ policyEvaluationsByTag(filter: { account: "many-reasons", currentOnly: false }) { results { reasons(limit: 1001) { gate } } } }',
    )
    assert.match(JSON.stringify(body.errors), /limit must be between 1 and 1000/)
  })

  it('pages stably while new data arrives: no row twice, none that existed throughout missed', async () => {
    const world = () =>
      expectedTagsByVulnerability(worldAt(events, Number.POSITIVE_INFINITY).get('acme') ?? empty, true)
    const beforeIds = new Set(world().keys())
    const more = [
      ...generateActivity({
        seed: 43,
        accounts: ['acme'],
        count: 600,
        clock: () => last() + 1_000,
        systemEvents: false,
      }),
    ]
    const seen: string[] = []
    let nextToken: string | null = null
    let round = 0
    do {
      const { body } = await graphql(
        'acme-reader',
        'query ($t: String) { tagsByVulnerability(limit: 20, nextToken: $t) { pageInfo { nextToken } results { vulnerability { vulnerabilityId } } } }',
        { t: nextToken },
      )
      const page = body.data?.tagsByVulnerability as unknown as {
        pageInfo: { nextToken: string | null }
        results: { vulnerability: { vulnerabilityId: string } }[]
      }
      seen.push(...page.results.map((r) => r.vulnerability.vulnerabilityId))
      nextToken = page.pageInfo.nextToken
      // Between pages, another 100 events change the data being paged through.
      const chunk = more.slice(round * 100, ++round * 100)
      if (chunk.length > 0) await project(chunk, 50)
    } while (nextToken !== null)
    assert.ok(round > 2, 'data changed while paging')
    assert.equal(new Set(seen).size, seen.length, 'no vulnerability twice')
    const afterIds = new Set(world().keys())
    for (const id of beforeIds)
      if (afterIds.has(id)) assert.ok(seen.includes(id), `${id} was there throughout`)
    assert.deepEqual(seen, [...seen].sort(), 'in key order')

    const { body } = await graphql(
      'acme-reader',
      '{ policyEvaluationsByTag(nextToken: "not-a-token") { pageInfo { count } } }',
    )
    assert.equal(body.errors?.[0]?.extensions?.code, 'validation_failed')
  })

  it('lists events as (source, id) pairs newest first, page by page, and refuses forged tokens and loose times', async () => {
    // Two sources may use one id: two events (at one instant too: the next test). Not report
    // events, so no other answer changes.
    const at = (second: number) => new Date(T0 + second * 1_000).toISOString()
    const logged = (id: string, source: string, second: number): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source,
        type: 'user.image.analysis.completed',
        account: 'event-log',
        time: at(second),
        data: { digest: `sha256:${id}` },
      }) as EngineEvent
    await project([
      logged('same-id', '/src-one', 1),
      logged('same-id', '/src-two', 5),
      ...Array.from({ length: 9 }, (_, i) => logged(`e-${i}`, '/engine', 2 + (i % 3))),
    ])
    const query = `query ($filter: EventFilter, $t: String) {
      events(filter: $filter, limit: 4, nextToken: $t) { pageInfo { nextToken count } results { id source time } } }`
    const seen: string[] = []
    let nextToken: string | null = null
    do {
      const { body } = await graphql('admin', query, { filter: { account: 'event-log' }, t: nextToken })
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const page = body.data?.events as unknown as {
        pageInfo: { nextToken: string | null }
        results: { id: string; source: string; time: string }[]
      }
      seen.push(...page.results.map((r) => `${r.time} ${r.id} ${r.source}`))
      nextToken = page.pageInfo.nextToken
    } while (nextToken !== null)
    assert.equal(seen.length, 11)
    assert.deepEqual(seen, [...seen].sort().reverse(), 'newest first, then id and source')
    assert.ok(seen.includes(`${at(1)} same-id /src-one`) && seen.includes(`${at(5)} same-id /src-two`))

    // A token for another filter, one whose key is not what the API writes, and loose times.
    const first = await graphql('admin', query, { filter: { account: 'event-log' } })
    const token = (first.body.data?.events?.pageInfo?.nextToken ?? '') as string
    const other = await graphql('admin', query, { filter: { account: 'event-log', type: 'x' }, t: token })
    assert.match(other.body.errors?.[0]?.message ?? '', /belongs to another query or filter/)
    const { f } = JSON.parse(Buffer.from(token, 'base64url').toString()) as { f: string }
    const forged = Buffer.from(JSON.stringify({ f, k: ["x' OR 1=1 --", 'zzz', '/a'] })).toString('base64url')
    const refused = await graphql('admin', query, { filter: { account: 'event-log' }, t: forged })
    assert.equal(refused.body.errors?.[0]?.message, 'nextToken is not a token this API issued')
    for (const start of ['November 1, 2026', '2026-02-31T00:00:00Z', '2026-11-23 20:00:00Z']) {
      const { body } = await graphql('admin', query, { filter: { account: 'event-log', start } })
      assert.equal(body.errors?.[0]?.message, 'filter.start is not an RFC 3339 timestamp', start)
    }
    // A statement the warehouse fails: its code, not its SQL or where its data lives.
    await warehouse.command('RENAME TABLE events TO events_away')
    try {
      const { body } = await graphql('admin', query, { filter: { account: 'event-log' } })
      assert.deepEqual(body.errors?.[0]?.extensions, { code: 'warehouse_error' })
      assert.doesNotMatch(JSON.stringify(body.errors), /SELECT|events_away|herald-|\/tmp/)
    } finally {
      await warehouse.command('RENAME TABLE events_away TO events')
    }
  })

  it('refuses a page of events whose data would pass what one answer may carry, before reading that data', async () => {
    // Not report events: no other answer changes. Each holds about 100 kB of data.
    const blob = 'x'.repeat(100_000)
    // A field the event type does not name: producers may add their own.
    const data: Record<string, unknown> = { digest: 'sha256:big', blob }
    const stored = JSON.stringify(data)
    const big = (i: number): EngineEvent =>
      ({
        specversion: '1.0',
        id: `big-${String(i).padStart(2, '0')}`,
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'big-data',
        time: new Date(T0 + i * 1_000).toISOString(),
        data,
      }) as EngineEvent
    await project(
      Array.from({ length: 12 }, (_, i) => big(i)),
      4,
    )
    // Room for the data of four of them.
    const limit = 4 * stored.length
    const via = { app: withRoute({ limits: { maxDataBytes: limit } }), path: LIMITED_PATH }
    const page = (n: number, selection = 'id data', alias = '') =>
      `${alias}events(filter: { account: "big-data" }, limit: ${n}) { results { ${selection} } }`
    /** The longest string the warehouse handed back while answering the last request. */
    const longestRead = () =>
      Math.max(
        0,
        ...served
          .flat()
          .flatMap((row) => Object.values(row as object).map((v) => (typeof v === 'string' ? v.length : 0))),
      )
    const four = await graphql('admin', `{ ${page(4)} }`, {}, via)
    assert.equal(four.body.errors, undefined, JSON.stringify(four.body.errors))
    const results = four.body.data?.events?.results as { id: string; data: string }[]
    assert.deepEqual(
      results.map((r) => [r.id, r.data === stored]),
      ['big-11', 'big-10', 'big-09', 'big-08'].map((id) => [id, true]),
    )
    // Five pass the limit: refused, naming it, and none of their data was read.
    const five = await graphql('admin', `{ ${page(5)} }`, {}, via)
    assert.equal(five.status, 200)
    assert.equal(five.body.data, null)
    assert.deepEqual(five.body.errors?.[0]?.extensions, { code: 'response_too_large' })
    assert.equal(
      five.body.errors?.[0]?.message,
      `this page of events holds ${(5 * stored.length).toLocaleString('en-US')} bytes of data; one answer may carry at most ${limit.toLocaleString('en-US')} bytes of event data: lower the limit, select data in fewer aliases, or leave data out`,
    )
    assert.ok(longestRead() < 1_000, `read ${longestRead()} characters`)
    // Without data, any page; its data is not read.
    const ids = await graphql('admin', `{ ${page(12, 'id time')} }`, {}, via)
    assert.equal(ids.body.errors, undefined, JSON.stringify(ids.body.errors))
    assert.equal(((ids.body.data?.events?.results ?? []) as unknown[]).length, 12)
    assert.ok(longestRead() < 1_000, `read ${longestRead()} characters`)
    // The limit holds for the whole answer: two aliased pages of three do not fit. (Last of the
    // checks on what was read: the page that fitted is still read as the refusal is answered.)
    const aliases = await graphql(
      'admin',
      `{ ${page(3, 'id data', 'a: ')} ${page(3, 'id data', 'b: ')} }`,
      {},
      via,
    )
    assert.deepEqual(
      aliases.body.errors?.map((e) => e.extensions?.code),
      ['response_too_large'],
    )
    assert.match(
      aliases.body.errors?.[0]?.message ?? '',
      new RegExp(`and the rest of the query ${(3 * stored.length).toLocaleString('en-US')};`),
    )
    // The default limit (32 MiB) takes all twelve.
    const all = await graphql('admin', `{ ${page(12)} }`)
    assert.equal(all.body.errors, undefined, JSON.stringify(all.body.errors))
    const everything = (all.body.data?.events?.results ?? []) as { data: string }[]
    assert.equal(everything.length, 12)
    assert.ok(everything.every((r) => r.data === stored))
  })

  it("keeps two sources' events with one id at one instant apart once the table is merged", async () => {
    const logged = (source: string): EngineEvent =>
      ({
        specversion: '1.0',
        id: 'shared-id',
        source,
        type: 'user.image.analysis.completed',
        account: 'two-sources',
        time: new Date(T0).toISOString(),
        data: { digest: `sha256:${source.slice(1)}` },
      }) as EngineEvent
    // In two batches, so two parts: the merge, not the insert, is what must keep them apart.
    await project([logged('/scanner-a')])
    await project([logged('/scanner-b')])
    // This suite stops merges; the table is merged down here, as it is in the background.
    await warehouse.command('SYSTEM START MERGES events')
    try {
      await warehouse.command('OPTIMIZE TABLE events FINAL')
    } finally {
      await warehouse.command('SYSTEM STOP MERGES events')
    }
    assert.deepEqual(
      await warehouse.query(`SELECT source FROM events WHERE account = 'two-sources' ORDER BY source`),
      [{ source: '/scanner-a' }, { source: '/scanner-b' }],
    )
    const { body } = await graphql(
      'admin',
      `{ events(filter: { account: "two-sources" }) { results { id source data } } }`,
    )
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    assert.deepEqual(body.data?.events?.results, [
      { id: 'shared-id', source: '/scanner-b', data: JSON.stringify({ digest: 'sha256:scanner-b' }) },
      { id: 'shared-id', source: '/scanner-a', data: JSON.stringify({ digest: 'sha256:scanner-a' }) },
    ])
  })

  it('lists an event a producer sent again with a new time once, at its first time, on every page and window', async () => {
    const at = (second: number) => new Date(T0 + second * 1_000).toISOString()
    const sent = (id: string, second: number): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'resent',
        time: at(second),
        data: { digest: `sha256:${id}` },
      }) as EngineEvent
    // `again` first at 1 s, sent again at 30 s, 40 s and 50–61 s (in later batches, as a producer's
    // retries come), among others at 10–19 s: its copies sit pages apart.
    await project([sent('again', 1), ...Array.from({ length: 10 }, (_, i) => sent(`e-${i}`, 10 + i))])
    await project([sent('again', 30)])
    await project([sent('again', 40), sent('late', 41)])
    // And a run of copies newer than everything else, which each page must read past.
    for (let second = 50; second < 62; second++) await project([sent('again', second)])
    const stored = await warehouse.query(`SELECT time FROM events WHERE account = 'resent' AND id = 'again'`)
    assert.equal(stored.length, 15, 'the raw table keeps every copy')

    const listed = async (filter: Record<string, unknown>, limit: number) => {
      const seen: string[] = []
      let nextToken: string | null = null
      do {
        const { body } = await graphql(
          'admin',
          `query ($filter: EventFilter, $t: String, $limit: Int) {
            events(filter: $filter, limit: $limit, nextToken: $t) { pageInfo { nextToken } results { id time } } }`,
          { filter: { account: 'resent', ...filter }, t: nextToken, limit },
        )
        assert.equal(body.errors, undefined, JSON.stringify(body.errors))
        const page = body.data?.events as unknown as {
          pageInfo: { nextToken: string | null }
          results: { id: string; time: string }[]
        }
        seen.push(...page.results.map((r) => `${r.id}@${r.time}`))
        nextToken = page.pageInfo.nextToken
      } while (nextToken !== null)
      return seen
    }
    const everything = [`late@${at(41)}`, ...Array.from({ length: 10 }, (_, i) => `e-${9 - i}@${at(19 - i)}`)]
    for (const limit of [1, 2, 3, 5, 100]) {
      assert.deepEqual(await listed({}, limit), [...everything, `again@${at(1)}`], `limit ${limit}`)
    }
    // A window holding only the later copies does not show it; one holding the first does.
    assert.deepEqual(await listed({ start: at(25) }, 2), [`late@${at(41)}`])
    assert.deepEqual(await listed({ end: at(5) }, 2), [`again@${at(1)}`])
    assert.deepEqual(await listed({ id: 'again' }, 1), [`again@${at(1)}`])
  })

  it('lists the first tags, images, packages and artifacts in their order when a vulnerability has more than 1,000, reading no more of them than the query selects', async () => {
    const t = last() + 1_000
    let n = 0
    const event = (type: string, data: Record<string, unknown>): EngineEvent =>
      ({
        specversion: '1.0',
        id: `nested-${n++}`,
        source: '/engine',
        type,
        account: 'nested-lists',
        time: new Date(t + n).toISOString(),
        data,
      }) as EngineEvent
    const finding = (pkg: string): Finding => ({
      id: 'CVE-2026-1000',
      severity: 'high',
      package: pkg,
      version: '1.0',
      type: 'npm',
      fix_version: null,
      kev: false,
    })
    const analyzed = (digest: string, findings: Finding[]) =>
      event('herald.report.image.analyzed', {
        digest,
        registry: 'docker.io',
        repository: 'acme/many',
        distro: { name: 'debian', version: '12' },
        package_count: findings.length,
        findings,
      })
    // 1,100 images with the vulnerability, their digests in another order than their tags'
    // names, plus one (first by digest) with it in 1,100 packages.
    const many = 1_100
    const digestOf = (i: number) => `sha256:${createHash('sha256').update(`image-${i}`).digest('hex')}`
    const packed = `sha256:${'0'.repeat(64)}`
    const name = (prefix: string, i: number) => `${prefix}-${String(i).padStart(4, '0')}`
    await project(
      [
        analyzed(
          packed,
          Array.from({ length: many }, (_, i) => finding(name('pkg', many - 1 - i))),
        ),
        ...Array.from({ length: many }, (_, i) => analyzed(digestOf(i), [finding('zlib')])),
        ...Array.from({ length: many }, (_, i) =>
          event('herald.report.tag.digest_changed', {
            registry: 'docker.io',
            repository: 'acme/many',
            tag: name('tag', i),
            digest: digestOf(i),
          }),
        ),
      ],
      1_000,
    )
    const first = <T>(all: T[], limit: number) => all.sort().slice(0, limit)
    const tagNames = Array.from({ length: many }, (_, i) => name('tag', i))
    const digests = [packed, ...Array.from({ length: many }, (_, i) => digestOf(i))]
    const packages = Array.from({ length: many }, (_, i) => name('pkg', i))
    /** The one vulnerability's result of each root (aliases too) the selection names. */
    const query = async (selection: string, filter: Record<string, unknown> = {}) => {
      const ever = selection.includes('$ever')
      const { body } = await graphql(
        'admin',
        `query ($filter: VulnerabilityFilter${ever ? ', $ever: VulnerabilityFilter' : ''}) { ${selection} }`,
        {
          filter: { account: 'nested-lists', ...filter },
          ...(ever ? { ever: { account: 'nested-lists', currentOnly: false } } : {}),
        },
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const roots = Object.entries(body.data ?? {}).map(([root, page]) => {
        const results = (page as { results?: Record<string, unknown>[] }).results ?? []
        assert.equal(results.length, 1, root)
        return [root, results[0]] as const
      })
      return new Map(roots)
    }
    const listed = (result: Record<string, unknown> | undefined, list: string, field: string) =>
      ((result?.[list] ?? []) as Record<string, string>[]).map((item) => item[field])
    for (const limit of [1_000, 3]) {
      const data = await query(`
        tagsByVulnerability(filter: $filter, limit: 1) { results { tags(limit: ${limit}) { tag } tagCount } }
        ever: tagsByVulnerability(filter: $ever, limit: 1) { results { tags(limit: ${limit}) { tag } } }
        imagesByVulnerability(filter: $filter, limit: 1) { results { images(limit: ${limit}) { digest } imageCount } }
        artifactsByVulnerability(filter: $filter, limit: 1) { results { artifacts(limit: ${limit}) { name } artifactCount } }`)
      const tags = data.get('tagsByVulnerability')
      assert.deepEqual(listed(tags, 'tags', 'tag'), first(tagNames, limit), `tags, limit ${limit}`)
      assert.equal(tags?.tagCount, many)
      const ever = data.get('ever')
      assert.deepEqual(listed(ever, 'tags', 'tag'), first(tagNames, limit), `every tag, limit ${limit}`)
      const images = data.get('imagesByVulnerability')
      assert.deepEqual(listed(images, 'images', 'digest'), first(digests, limit), `images, limit ${limit}`)
      assert.equal(images?.imageCount, many + 1)
      const artifacts = data.get('artifactsByVulnerability')
      assert.deepEqual(
        listed(artifacts, 'artifacts', 'name'),
        first([...packages, 'zlib'], limit),
        `artifacts, limit ${limit}`,
      )
      assert.equal(artifacts?.artifactCount, many + 1)
      // One vulnerability has a read path of its own; the image with it in 1,100 packages is first.
      const one = await query(
        `imagesByVulnerability(filter: $filter) {
          results { images(limit: 1) { digest packages(limit: ${limit}) { name } packageCount } } }`,
        { vulnerabilityId: 'CVE-2026-1000' },
      )
      const [image] = (one.get('imagesByVulnerability')?.images ?? []) as Record<string, unknown>[]
      assert.equal(image?.digest, packed)
      assert.deepEqual(listed(image, 'packages', 'name'), first(packages, limit), `packages, limit ${limit}`)
      assert.equal(image?.packageCount, many)
    }
    // Each list is read as far as the query selects it (the largest limit of its aliases), and
    // not at all when it is not selected: the counts alone read no list.
    const longest = (column: string) =>
      Math.max(
        0,
        ...served
          .flat()
          .map((row) => ((row as Record<string, unknown>)[column] as unknown[] | undefined)?.length ?? 0),
      )
    const longestPackages = () =>
      Math.max(
        0,
        ...served
          .flat()
          .flatMap((row) =>
            ((row as { images?: unknown[][] }).images ?? []).map((image) => (image[3] as unknown[]).length),
          ),
      )
    const counts = await query(`
      tagsByVulnerability(filter: $filter, limit: 1) { results { tagCount } }
      imagesByVulnerability(filter: $filter, limit: 1) { results { imageCount } }
      artifactsByVulnerability(filter: $filter, limit: 1) { results { artifactCount } }`)
    assert.deepEqual(
      [...counts.values()].map((r) => Object.values(r ?? {})),
      [[many], [many + 1], [many + 1]],
    )
    assert.deepEqual([longest('tags'), longest('images'), longest('artifacts')], [0, 0, 0])
    await query(`
      tagsByVulnerability(filter: $filter, limit: 1) { results { a: tags(limit: 2) { tag } b: tags(limit: 5) { tag } } }
      imagesByVulnerability(filter: $filter, limit: 1) { results { images(limit: 3) { digest } } }
      artifactsByVulnerability(filter: $filter, limit: 1) { results { artifacts { name } } }`)
    assert.deepEqual(
      [longest('tags'), longest('images'), longest('artifacts'), longestPackages()],
      [5, 3, 100, 0],
    )
    const one = await query(
      `imagesByVulnerability(filter: $filter) { results { images(limit: 2) { digest packages(limit: 4) { name } } } }`,
      { vulnerabilityId: 'CVE-2026-1000' },
    )
    const [image] = (one.get('imagesByVulnerability')?.images ?? []) as Record<string, unknown>[]
    assert.deepEqual(listed(image, 'packages', 'name'), first(packages, 4))
    assert.deepEqual([longest('images'), longestPackages()], [2, 4])
  })

  it('lists an event sent again with an earlier time at its first copy’s time, the one received first', async () => {
    const at = (second: number) => new Date(T0 + second * 1_000).toISOString()
    const sent = (id: string, second: number): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'resent-earlier',
        time: at(second),
        data: { digest: `sha256:${id}` },
      }) as EngineEvent
    // `skewed` is received first stamped 30 s, then again stamped 5 s (a producer whose clock
    // was reset, a replay of an older export): the router delivered the 30 s copy.
    await project([sent('skewed', 30), sent('other', 20)])
    await project([sent('skewed', 5)])
    const listed = async (filter: Record<string, unknown>) => {
      const { body } = await graphql(
        'admin',
        'query ($filter: EventFilter) { events(filter: $filter, limit: 1) { results { id time } } }',
        { filter: { account: 'resent-earlier', ...filter } },
      )
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      const results = (body.data?.events?.results ?? []) as { id: string; time: string }[]
      const { body: rest } = await graphql(
        'admin',
        'query ($filter: EventFilter) { events(filter: $filter, limit: 100) { results { id time } } }',
        { filter: { account: 'resent-earlier', ...filter } },
      )
      const all = (rest.data?.events?.results ?? []) as { id: string; time: string }[]
      assert.deepEqual(all.slice(0, 1), results, 'a page of one is the first of the whole list')
      return all.map((r) => `${r.id}@${r.time}`)
    }
    assert.deepEqual(await listed({}), [`skewed@${at(30)}`, `other@${at(20)}`])
    assert.deepEqual(await listed({ id: 'skewed' }), [`skewed@${at(30)}`])
    // A window holding only the later-received copy does not show the event.
    assert.deepEqual(await listed({ end: at(10) }), [])
    assert.deepEqual(await listed({ start: at(25) }), [`skewed@${at(30)}`])
  })

  it('refuses a time bound finer than the millisecond times are stored with, naming it, and keeps millisecond bounds exact', async () => {
    const t = T0 + 250
    await project([
      {
        specversion: '1.0',
        id: 'bounded',
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'bounds',
        time: new Date(t).toISOString(),
        data: { digest: 'sha256:bounded' },
      } as EngineEvent,
    ])
    const listed = async (filter: Record<string, unknown>) => {
      const { body } = await graphql(
        'admin',
        'query ($filter: EventFilter) { events(filter: $filter) { results { id } } }',
        { filter: { account: 'bounds', ...filter } },
      )
      return body
    }
    // 10:00:00.250 is before 10:00:00.2501: a start cut to the millisecond admitted it.
    const finer = await listed({ start: '2026-11-22T10:00:00.2501Z' })
    assert.equal(finer.data?.events ?? null, null)
    assert.equal(finer.errors?.[0]?.extensions?.code, 'validation_failed')
    assert.equal(
      finer.errors?.[0]?.message,
      'filter.start is finer than a millisecond, the precision times are stored with',
    )
    // Digits past the millisecond that are all zeros name a millisecond exactly.
    const ids = async (filter: Record<string, unknown>) => {
      const body = await listed(filter)
      assert.equal(body.errors, undefined, JSON.stringify(body.errors))
      return ((body.data?.events?.results ?? []) as { id: string }[]).map((r) => r.id)
    }
    assert.deepEqual(await ids({ start: '2026-11-22T10:00:00.250000Z' }), ['bounded'], 'start is inclusive')
    assert.deepEqual(await ids({ start: '2026-11-22T10:00:00.251Z' }), [])
    assert.deepEqual(await ids({ end: '2026-11-22T10:00:00.250000000Z' }), [], 'end is exclusive')
    assert.deepEqual(await ids({ end: '2026-11-22T11:00:00.251+01:00' }), ['bounded'])

    // Every bound of every root, each named as the query gave it.
    const fine = '2026-11-22T10:00:00.0000001Z'
    for (const [query, path] of [
      [`{ tagsByVulnerability(asOf: "${fine}") { results { account } } }`, 'asOf'],
      [
        `{ imagesByVulnerability(filter: { detected: { start: "${fine}" } }) { results { account } } }`,
        'filter.detected.start',
      ],
      [
        `{ policyEvaluationsByTag(filter: { evaluated: { end: "${fine}" } }) { results { account } } }`,
        'filter.evaluated.end',
      ],
      [`{ vulnerabilityDiff(from: "2026-11-22T09:00:00Z", to: "${fine}") { results { account } } }`, 'to'],
      [`{ findingAging(resolved: { start: "${fine}" }) { results { severity } } }`, 'resolved.start'],
      [`{ slaBreaches(asOf: "${fine}") { results { account } } }`, 'asOf'],
      [`{ vulnerabilityBreakdown(asOf: "${fine}") { results { severity } } }`, 'asOf'],
      [
        `{ metricData(filter: { metricId: "images.all", end: "${fine}" }) { results { value } } }`,
        'filter.end',
      ],
    ] as const) {
      const { body } = await graphql('acme-reader', query)
      assert.equal(
        body.errors?.[0]?.message,
        `${path} is finer than a millisecond, the precision times are stored with`,
        query,
      )
      assert.equal(body.errors?.[0]?.extensions?.code, 'validation_failed', query)
    }
  })

  it('refuses an empty filter, naming it, on every root, rather than ignoring it', async () => {
    const vulnerabilityFields = ['account', 'vulnerabilityId', 'registry', 'repository', 'tag', 'severity']
    const roots: readonly (readonly [
      root: string,
      type: string,
      fields: readonly string[],
      rest?: string,
    ])[] = [
      ['events', 'EventFilter', ['type', 'id', 'start', 'end', 'account'], '{ results { id } }'],
      ['tagsByVulnerability', 'VulnerabilityFilter', vulnerabilityFields],
      ['imagesByVulnerability', 'VulnerabilityFilter', vulnerabilityFields],
      ['artifactsByVulnerability', 'VulnerabilityFilter', vulnerabilityFields],
      ['vulnerabilityBreakdown', 'VulnerabilityFilter', vulnerabilityFields, '{ asOf }'],
      ['findingAging', 'VulnerabilityFilter', vulnerabilityFields, '{ asOf }'],
      ['slaBreaches', 'VulnerabilityFilter', vulnerabilityFields],
      [
        'policyEvaluationsByTag',
        'PolicyEvaluationFilter',
        ['account', 'registry', 'repository', 'tag', 'bundleId'],
      ],
      ['metrics', 'MetricFilter', ['account', 'metricId', 'metricType'], '{ results { id } }'],
      ['metricData', 'MetricDataFilter!', ['metricId', 'start', 'end', 'account'], '{ results { value } }'],
      [
        'vulnerabilityDiff',
        'DiffFilter',
        ['account', 'registry', 'repository', 'tag', 'vulnerabilityId', 'severity'],
      ],
    ]
    const refusal = async (root: string, type: string, filter: Record<string, unknown>, rest: string) => {
      const args =
        root === 'vulnerabilityDiff' ? ', from: "2026-11-22T10:00:00Z", to: "2026-11-22T11:00:00Z"' : ''
      const { body } = await graphql(
        'admin',
        `query ($filter: ${type}) { ${root}(filter: $filter${args}) ${rest} }`,
        { filter: root === 'metricData' ? { metricId: 'images.all', ...filter } : filter },
      )
      assert.equal(body.data?.[root] ?? null, null, `${root} ${JSON.stringify(filter)}`)
      assert.equal(
        body.errors?.[0]?.extensions?.code,
        'validation_failed',
        `${root} ${JSON.stringify(filter)}`,
      )
      return body.errors?.[0]?.message
    }
    for (const [root, type, fields, rest = '{ results { account } }'] of roots) {
      for (const field of fields) {
        // An empty list of severities is no severity at all, as an empty string is no id.
        const empty = field === 'severity' ? [] : ''
        assert.equal(
          await refusal(root, type, { [field]: empty }, rest),
          `filter.${field} must not be empty`,
          `${root} filter.${field}`,
        )
      }
    }
    // Every empty one is named at once; within a window too.
    assert.equal(
      await refusal(
        'tagsByVulnerability',
        'VulnerabilityFilter',
        { registry: '', tag: '', detected: { start: '' } },
        '{ results { account } }',
      ),
      'filter.registry, filter.tag, filter.detected.start must not be empty',
    )
  })

  it('carries the projection lag in every answer', async () => {
    // A batch whose events were appended 2.5 s before the projector stored them.
    const handler = createProjectorHandler({
      warehouse,
      clock: () => T0 + 500 * HOUR + 2_500,
      logger: silentLogger,
    })
    const event = { ...(events.at(-1) as EngineEvent), id: 'lag-probe' }
    await handler({
      topic: 'engine.events',
      partition: 7,
      messages: [
        {
          ...encodeLogEvent(event),
          headers: {},
          topic: 'engine.events',
          partition: 7,
          offset: 0,
          timestamp: T0 + 500 * HOUR,
        },
      ],
    })
    const { body } = await graphql(
      'acme-reader',
      `{ a: tagsByVulnerability(limit: 1) { projectionLagSeconds }
         b: vulnerabilityBreakdown { projectionLagSeconds }
         c: metrics(limit: 1) { projectionLagSeconds } }`,
    )
    assert.equal(body.extensions?.projectionLagSeconds, 2.5)
    for (const root of ['a', 'b', 'c']) {
      assert.equal(
        (body.data?.[root] as unknown as { projectionLagSeconds: number } | undefined)?.projectionLagSeconds,
        2.5,
      )
    }
  })
})
