import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { BatchHandler, EventLog } from '../ports/event-log.ts'

/** One consumer group's lag on one topic: messages not consumed yet, over all its partitions. */
export interface GroupLag {
  readonly group: string
  readonly topic: string
  readonly messages: number
}

export interface MetricsOptions {
  /** Also carry prom-client's process and Node.js metrics: only the instance that owns the process. */
  readonly process?: boolean
  /**
   * How many accounts `herald_events_ingested_total` counts under an `account` label of their
   * own (`metrics.account_series_limit`): the first ones seen; later ones share
   * `account="_other"`. 0, the default, puts no account label on the counter at all.
   */
  readonly accountSeriesLimit?: number
  /**
   * How long lag read from the event log is served before a scrape reads it again. Default
   * 5000: however often `/metrics` is scraped, and by however many, the log is asked at most
   * once per this and never twice at a time.
   */
  readonly lagMaxAgeMs?: number
  /**
   * How long a scrape waits for a lag read before it answers with the last values read (their
   * age in `herald_consumer_lag_age_seconds`), the read going on for the next scrape. Default 1000.
   */
  readonly lagTimeoutMs?: number
}

/** The `account` of the events of accounts past the limit: `_` cannot start an account name. */
export const OTHER_ACCOUNTS = '_other'

/**
 * Herald's instruments, on a registry of their own (never prom-client's global one), so two
 * Herald instances in one process — as in the tests — never share counters. With `process`,
 * the registry also carries prom-client's process and Node.js metrics under their usual names
 * (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`,
 * `nodejs_eventloop_lag_p99_seconds`, `nodejs_gc_duration_seconds`, …), which only the one
 * instance that owns the process should ask for.
 *
 * `/metrics` is served without a token, so no series names a tenant unless
 * `accountSeriesLimit` asks for it, and then for that many accounts at most: a label value
 * per account would tell anyone who can reach the port which accounts exist and how active
 * they are, and add series with every account.
 */
export const createMetrics = (options: MetricsOptions = {}) => {
  const registry = new Registry()
  if (options.process === true) collectDefaultMetrics({ register: registry })
  const accountLimit = options.accountSeriesLimit ?? 0
  const labelledAccounts = new Set<string>()
  // Where consumer lag is read; set once the consumers run (`watchLag`).
  let lagSource: (() => Promise<readonly GroupLag[]>) | undefined
  const lagMaxAgeMs = options.lagMaxAgeMs ?? 5_000
  const lagTimeoutMs = options.lagTimeoutMs ?? 1_000
  // The last lag read and when; the read under way; when the last one began (failed ones count,
  // so an unreachable log is not asked again at every scrape).
  let lastLag: { readonly lags: readonly GroupLag[]; readonly at: number } | undefined
  let lagRead: Promise<void> | undefined
  let lagReadBegan = Number.NEGATIVE_INFINITY
  /** The lag to serve: read again when due, waited for at most `lagTimeoutMs`. */
  const currentLag = async (): Promise<typeof lastLag> => {
    const source = lagSource
    if (source === undefined) return undefined
    const now = Date.now()
    if (lagRead === undefined && now - lagReadBegan >= lagMaxAgeMs) {
      lagReadBegan = now
      lagRead = Promise.resolve()
        .then(source)
        .then(
          (lags) => {
            lastLag = { lags, at: Date.now() }
          },
          // An unreachable log leaves the last values served, their age growing.
          () => undefined,
        )
      void lagRead.finally(() => {
        lagRead = undefined
      })
    }
    if (lagRead !== undefined) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        lagRead,
        new Promise((resolve) => {
          timer = setTimeout(resolve, lagTimeoutMs)
          timer.unref()
        }),
      ])
      clearTimeout(timer)
    }
    return lastLag
  }
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] })
  const batchSeconds = new Histogram({
    name: 'herald_batch_duration_seconds',
    help: 'Time a consumer took to handle one log batch, by consumer (router, projector, deliverer)',
    labelNames: ['consumer'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
  const eventsIngested =
    accountLimit === 0
      ? counter(
          'herald_events_ingested_total',
          'Events accepted by POST /v1/events or published by POST /v1/test_event (not events producers write to the topic themselves)',
        )
      : counter(
          'herald_events_ingested_total',
          `Events accepted by POST /v1/events or published by POST /v1/test_event (not events producers write to the topic themselves), by account (the first ${accountLimit} seen; the others as "${OTHER_ACCOUNTS}")`,
          ['account'],
        )
  return {
    registry,
    /** Counts one event of `account` accepted by the ingest API (or published as a test event). */
    countIngested: (account: string): void => {
      if (accountLimit === 0) {
        eventsIngested.inc()
        return
      }
      if (labelledAccounts.size < accountLimit) labelledAccounts.add(account)
      eventsIngested.inc({ account: labelledAccounts.has(account) ? account : OTHER_ACCOUNTS })
    },
    eventsRejected: counter(
      'herald_events_rejected_total',
      'POST /v1/events requests answered 400 because the event contract refused an event of theirs, one per request however many it refused',
    ),
    eventsRouted: counter(
      'herald_router_events_total',
      'Engine events the router routed (matched against selectors), whatever wrote them: neither refused nor already routed',
    ),
    deliveryCommands: counter('herald_router_delivery_commands_total', 'Delivery commands emitted'),
    deliveries: counter('herald_deliveries_total', 'Delivery attempts by endpoint and outcome', [
      'endpoint',
      'outcome',
    ]),
    eventsProjected: counter('herald_projector_events_total', 'Events inserted into the warehouse'),
    invalidLogEvents: counter('herald_log_events_invalid_total', 'Log messages that failed to decode', [
      'consumer',
    ]),
    deadLettered: counter(
      'herald_ingress_dead_lettered_total',
      'Messages set aside on the dead-letter topic, by reason: engine events the router could not take, digest windows given up (digest_undeliverable)',
      ['reason'],
    ),
    duplicateEvents: counter(
      'herald_router_duplicate_events_total',
      'Engine events skipped because their (account, source, id) was already routed',
    ),
    httpRequests: counter('herald_http_requests_total', 'HTTP requests by route and status', [
      'method',
      'route',
      'status',
    ]),
    up: new Gauge({ name: 'herald_up', help: '1 while Herald is serving', registers: [registry] }),
    consumerLag: new Gauge({
      name: 'herald_consumer_lag_messages',
      help: 'Messages of a topic its consumer group has not consumed yet (end offset minus committed offset, over all partitions), read from the event log at most every few seconds; herald_consumer_lag_age_seconds says how long ago',
      labelNames: ['group', 'topic'],
      registers: [registry],
      async collect() {
        this.reset()
        // Never read yet (or never answered): the gauge stays empty rather than failing the scrape.
        for (const lag of (await currentLag())?.lags ?? [])
          this.set({ group: lag.group, topic: lag.topic }, lag.messages)
      },
    }),
    consumerLagAge: new Gauge({
      name: 'herald_consumer_lag_age_seconds',
      help: 'How long ago herald_consumer_lag_messages was read from the event log: past a few seconds, the log did not answer the last reads and the values are stale',
      registers: [registry],
      async collect() {
        this.reset()
        const lag = await currentLag()
        if (lag !== undefined) this.set((Date.now() - lag.at) / 1000)
      },
    }),
    /**
     * `handler`, with the time each batch takes (failed ones too) observed in
     * `herald_batch_duration_seconds{consumer}`.
     *
     * @example
     * await log.consume({ groupId: 'herald-router', topics }, metrics.timeBatches('router', handler))
     */
    timeBatches: (consumer: string, handler: BatchHandler): BatchHandler => {
      const observe = batchSeconds.labels(consumer)
      return async (batch) => {
        const end = observe.startTimer()
        try {
          await handler(batch)
        } finally {
          end()
        }
      }
    },
    /**
     * Reads consumer lag from `source` for `herald_consumer_lag_messages`: when a scrape finds
     * the last read older than `lagMaxAgeMs`, one read at a time.
     */
    watchLag: (source: () => Promise<readonly GroupLag[]>): void => {
      lagSource = source
    },
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/**
 * The lag of each (group, topic) in `groups`, from the event log: what `watchLag` reads.
 *
 * @example
 * metrics.watchLag(lagOfGroups(log, [['herald-router', 'engine.events']]))
 */
export const lagOfGroups =
  (log: Pick<EventLog, 'lag'>, groups: readonly (readonly [group: string, topic: string])[]) =>
  (): Promise<GroupLag[]> =>
    Promise.all(
      groups.map(async ([group, topic]) => ({
        group,
        topic,
        messages: (await log.lag(group, [topic])).reduce((n, p) => n + Math.max(0, p.end - p.committed), 0),
      })),
    )
