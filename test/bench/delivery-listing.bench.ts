/**
 * Listing deliveries (`GET /v1/notifications/deliveries`) from a large read model, filter by
 * filter: `npx node test/bench/delivery-listing.bench.ts [--deliveries N] [--configurations K]
 * [--late F]` (defaults 200,000, 100, 0).
 *
 * The read model is filled through its own fold (`follow`), from the events the delivery's
 * decider (`decide`) makes for each request and attempt, given to it by an in-memory source a
 * few thousand a turn rather than by the event store (whose cost the fold and retention benches
 * measure): the same rows, catalogue and request-time lag Herald's fold writes, in about a
 * minute for 200,000 deliveries (160 µs of CPU each). The configurations belong to 10
 * accounts in turn, each account's tenth of them of every endpoint type (two each of Slack,
 * Teams, email and webhook, one GitHub and one Jira per ten); deliveries go to webhooks 48%,
 * Slack 30%, Teams and email 10% each, GitHub and Jira 1% each, to a configuration of that type
 * picked at random. Requests span 30 days in seq order, each stamped up to two deliveries'
 * spacing before or after its place (concurrent writers' clocks), and a fraction `F` of them six
 * hours behind (a writer whose clock is off). 1% are dead-lettered, the newest 50 still pending, the rest sent.
 *
 * Printed for each filter combination (`limit` 100, the API's default page): CPU of this thread
 * per page averaged over 20 calls after one unmeasured call, the fastest wall time of those 20,
 * the rows the page returned, and the first step of SQLite's plan for the listing's statement
 * (for an endpoint type, the statement run per configuration whose deliveries are merged). Then
 * the time to open the same file set back to schema version 3, which the open brings up to date.
 * Figures are printed, never asserted; each row is a table row `ab.ts` can compare, CPU first.
 */
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { parseArgs } from 'node:util'
import { Observable } from 'rxjs'
import {
  createDeliveryReadModel,
  type DeliveryQuery,
  decide,
  deliveryStream,
  initialState,
  type NewDeliveryEvent,
} from '../../src/deliveries/index.ts'
import {
  createDeliveryQueries,
  listStatement,
  openDeliveryViewFile,
} from '../../src/deliveries/read-model.ts'
import type { EndpointType } from '../../src/notifications/index.ts'
import type { EventStore, RecordedEvent } from '../../src/ports/index.ts'
import { deliveryIdFor } from '../../streams/routing/index.ts'
import { fraction, positiveWholeNumber } from './args.ts'
import { calibrationLine } from './calibration.ts'

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '200000' },
    configurations: { type: 'string', default: '100' },
    late: { type: 'string', default: '0' },
  },
})
const DELIVERIES = positiveWholeNumber('--deliveries', values.deliveries)
const CONFIGURATIONS = positiveWholeNumber('--configurations', values.configurations)
const LATE = fraction('--late', values.late)
const ACCOUNTS = 10
const ORIGIN = 'bench-instance'
const START = Date.parse('2026-10-01T00:00:00Z')
const SPAN = 30 * 86_400_000
const LATE_BY = 6 * 3_600_000
const PENDING = 50
const PAGE = 100
const CALLS = 20
/** Each configuration's kind, by its place among its account's: ten kinds in turn. */
const KINDS: readonly EndpointType[] = ['slack', 'teams', 'email', 'webhook', 'github', 'jira']
/** Deliveries per hundred, by endpoint type. */
const SHARES: Readonly<Record<EndpointType, number>> = {
  webhook: 48,
  slack: 30,
  teams: 10,
  email: 10,
  github: 1,
  jira: 1,
}

const out = (line: string) => process.stdout.write(`${line}\n`)
out(calibrationLine())

interface Configuration {
  readonly id: string
  readonly account: string
  readonly endpoint: EndpointType
}
const configurations: Configuration[] = Array.from({ length: CONFIGURATIONS }, (_, k) => ({
  id: randomUUID(),
  account: `acct-${k % ACCOUNTS}`,
  endpoint: KINDS[Math.floor(k / ACCOUNTS) % KINDS.length] as EndpointType,
}))
const ofType = (endpoint: EndpointType) => configurations.filter((c) => c.endpoint === endpoint)
/** A hundred slots by share, of the types some configuration has. */
const wheel = KINDS.flatMap((endpoint) =>
  ofType(endpoint).length === 0 ? [] : Array.from({ length: SHARES[endpoint] }, () => endpoint),
)
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T
const spacing = SPAN / DELIVERIES

/** When delivery `i` was requested, by its writer's clock. */
const requestedAt = (i: number): number =>
  START + Math.floor(i * spacing + (Math.random() * 4 - 2) * spacing) - (Math.random() < LATE ? LATE_BY : 0)

/**
 * The store events of delivery `i`, as the deliverer appends them: its request, and (unless it
 * is among the newest `PENDING`) its attempt with how it ended, which the source appends a
 * hundred deliveries later.
 */
const eventsOf = (i: number): { request: NewDeliveryEvent[]; attempt: NewDeliveryEvent[]; id: string } => {
  const configuration = pick(ofType(wheel[i % wheel.length] as EndpointType))
  const at = requestedAt(i)
  const event = {
    specversion: '1.0' as const,
    id: randomUUID(),
    source: '/engine/analyzer',
    type: 'user.image.analysis.completed',
    account: configuration.account,
    level: 'info' as const,
    resourcetype: 'image',
    time: new Date(at).toISOString(),
    data: { digest: `sha256:${'ab'.repeat(32)}` },
  }
  const id = deliveryIdFor(event, configuration.id)
  const request = decide(
    {
      type: 'RequestDelivery',
      request: {
        deliveryId: id,
        account: configuration.account,
        endpoint: configuration.endpoint,
        configurationId: configuration.id,
        event,
        matchedSelectorIds: ['sel-1'],
        createdAt: new Date(at).toISOString(),
      },
      now: at,
    },
    initialState,
  )
  if (i >= DELIVERIES - PENDING) return { request, attempt: [], id }
  const dead = Math.random() < 0.01
  const attempt = decide(
    {
      type: 'RecordAttempt',
      deliveryId: id,
      attempt: 1,
      replays: 0,
      details: dead
        ? { ok: false, status: 503, latencyMs: 40, code: 'http_status', error: 'HTTP 503', response: null }
        : { ok: true, status: 204, latencyMs: 7, code: null, error: null, response: 'ok' },
      resolution: dead ? { outcome: 'dead_lettered', reason: 'http_status' } : { outcome: 'sent' },
      now: at + 2_000,
    },
    { ...initialState, status: 'pending' },
  )
  return { request, attempt, id }
}

/** Every delivery's events in append order, numbered from position 1, `PER_TURN` a turn. */
const PER_TURN = 3_000
const source = (): { source: Pick<EventStore, 'subscribeToAll'>; last: Promise<number> } => {
  let position = 0
  const { promise: last, resolve: ended } = Promise.withResolvers<number>()
  const recorded = (id: string, events: NewDeliveryEvent[], from: number): RecordedEvent[] =>
    events.map((e, k) => ({
      stream: deliveryStream(id),
      id: randomUUID(),
      type: e.type,
      data: e.data,
      metadata: { origin: ORIGIN },
      revision: from + k,
      position: ++position,
      recordedAt: START,
    }))
  return {
    last,
    source: {
      subscribeToAll: () =>
        new Observable<RecordedEvent>((subscriber) => {
          const attempts: { id: string; events: NewDeliveryEvent[] }[] = []
          let i = 0
          let stopped = false
          const turn = () => {
            if (stopped) return
            const batch: RecordedEvent[] = []
            while (batch.length < PER_TURN && (i < DELIVERIES || attempts.length > 0)) {
              if (i < DELIVERIES) {
                const { request, attempt, id } = eventsOf(i++)
                batch.push(...recorded(id, request, 0))
                attempts.push({ id, events: attempt })
              }
              if (attempts.length > 100 || i >= DELIVERIES) {
                const due = attempts.shift()
                if (due !== undefined) batch.push(...recorded(due.id, due.events, 1))
              }
            }
            for (const e of batch) subscriber.next(e)
            if (i < DELIVERIES || attempts.length > 0) setImmediate(turn)
            else {
              ended(position)
              subscriber.complete()
            }
          }
          setImmediate(turn)
          return () => {
            stopped = true
          }
        }),
    },
  }
}

const mib = (path: string) => `${(statSync(path).size / 1_048_576).toFixed(1)} MiB`
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-listing-'))
const viewPath = join(dir, 'deliveries-view.sqlite')

/** The filter combinations, `at(f)` being the time a fraction `f` into the requests' span. */
const cases = (): [string, Omit<DeliveryQuery, 'limit'>][] => {
  const at = (f: number) => START + Math.floor(SPAN * f)
  const webhookOf3 = configurations.find((c) => c.account === 'acct-3' && c.endpoint === 'webhook')
  return [
    ['all (admin)', {}],
    ['account', { account: 'acct-3' }],
    ['account + since 90%', { account: 'acct-3', since: at(0.9) }],
    ['account + since 99.99%', { account: 'acct-3', since: at(0.9999) }],
    ['account + until 90%', { account: 'acct-3', until: at(0.9) }],
    ['account + until 50%', { account: 'acct-3', until: at(0.5) }],
    ['account + until 10%', { account: 'acct-3', until: at(0.1) }],
    ['account + since 40% + until 50%', { account: 'acct-3', since: at(0.4), until: at(0.5) }],
    ['until 10% (admin)', { until: at(0.1) }],
    ['since 99.99% (admin)', { since: at(0.9999) }],
    ['account + webhook', { account: 'acct-3', endpoint: 'webhook' }],
    ['account + github', { account: 'acct-3', endpoint: 'github' }],
    ['webhook (admin)', { endpoint: 'webhook' }],
    ['github (admin)', { endpoint: 'github' }],
    ['account + github + until 50%', { account: 'acct-3', endpoint: 'github', until: at(0.5) }],
    ['jira + until 10% (admin)', { endpoint: 'jira', until: at(0.1) }],
    ...(webhookOf3 === undefined
      ? []
      : ([
          [
            'account + configuration + until 10%',
            { account: 'acct-3', configurationId: webhookOf3.id, until: at(0.1) },
          ],
        ] as [string, Omit<DeliveryQuery, 'limit'>][])),
    ['account + dead_lettered + until 10%', { account: 'acct-3', status: 'dead_lettered', until: at(0.1) }],
    ['account + pending', { account: 'acct-3', status: 'pending' }],
  ]
}

try {
  const filling = performance.now()
  const fillCpu = process.threadCpuUsage()
  const view = createDeliveryReadModel({ path: viewPath, newId: () => ORIGIN, checkpointHere: true })
  const fill = source()
  view.follow(fill.source)
  const last = await fill.last
  await view.waitFor(last)
  const f = process.threadCpuUsage(fillCpu)
  out(
    `\n## Delivery listing: ${DELIVERIES} deliveries, ${CONFIGURATIONS} configurations of ${ACCOUNTS} accounts, ` +
      `${(LATE * 100).toFixed(2)}% of requests ${LATE_BY / 3_600_000} h late; pages of ${PAGE}, ${CALLS} calls each\n`,
  )
  const db = new DatabaseSync(viewPath, { readOnly: true })
  const queries = createDeliveryQueries(db)
  out(
    `filled through the fold in ${((performance.now() - filling) / 1_000).toFixed(1)} s ` +
      `(${((f.user + f.system) / DELIVERIES).toFixed(0)} µs CPU a delivery), ${last} events; ` +
      `read model ${mib(viewPath)}; request times lag at most ${(Number(queries.meta('request_time_lag') ?? 0) / 1_000).toFixed(1)} s; ` +
      `load average ${loadavg()[0]?.toFixed(1)} on this machine\n`,
  )
  out('| listing | CPU ms a page | fastest wall ms | rows | first step of the plan |')
  out('|---|---|---|---|---|')
  for (const [name, filters] of cases()) {
    const query: DeliveryQuery = { ...filters, limit: PAGE }
    const shape = queries.listShape(query)
    const { sql, params } = listStatement(query, shape)
    const [first] = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]
    const plan =
      shape.configurations === undefined
        ? (first?.detail ?? '')
        : `per configuration (${shape.configurations.length}): ${first?.detail ?? ''}`
    let rows = view.list(query).items.length
    let fastest = Number.POSITIVE_INFINITY
    const cpu = process.threadCpuUsage()
    for (let call = 0; call < CALLS; call++) {
      const started = performance.now()
      rows = view.list(query).items.length
      fastest = Math.min(fastest, performance.now() - started)
    }
    const c = process.threadCpuUsage(cpu)
    out(
      `| ${name} | ${((c.user + c.system) / 1_000 / CALLS).toFixed(2)} | ${fastest.toFixed(2)} | ${rows} | ${plan} |`,
    )
  }
  db.close()
  await view.close()

  // The same file as schema version 3 left it (no catalogue of configurations, no request-time
  // lag), copied so the listings above read the file the fold wrote.
  const oldPath = join(dir, 'deliveries-view-v3.sqlite')
  for (const suffix of ['', '-wal'])
    if (existsSync(viewPath + suffix)) cpSync(viewPath + suffix, oldPath + suffix)
  const old = new DatabaseSync(oldPath)
  old.exec(`DROP TABLE IF EXISTS configurations;
    DELETE FROM meta WHERE key IN ('request_time_lag', 'latest_requested_at');
    PRAGMA user_version = 3`)
  old.close()
  const opening = performance.now()
  openDeliveryViewFile(oldPath, () => ORIGIN).db.close()
  out(`| opening a version-3 file (upgrade) | ${(performance.now() - opening).toFixed(0)} ms | | | |`)
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}
