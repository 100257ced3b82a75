import { randomBytes, randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { type ServerType, serve } from '@hono/node-server'
import { Hono } from 'hono'
import { expireLeases, migrate, warehouseMigrations } from '../projections/migrations/index.ts'
import {
  createProjectorHandler,
  createSwapGate,
  isLogReset,
  type LogReset,
  LogResetError,
  openProjectedIds,
  openSharedProjectedIds,
  REBUILD_LEASE,
  startProjectorThread,
} from '../projections/projector/index.ts'
import { createKafkaEventLog, type KafkaEventLogLogger } from './adapters/kafka-event-log/index.ts'
import { createKurrentDbEventStore } from './adapters/kurrentdb-event-store/index.ts'
import { onCheckpointThreadStopped } from './adapters/sqlite-checkpointer.ts'
import { createSqliteEventLog } from './adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from './adapters/sqlite-event-store/index.ts'
import { createActionRecorder, createAuditRoutes } from './audit/index.ts'
import { createTokenRoutes, createTokenService } from './auth/index.ts'
import {
  ADMIN_TOKEN_MIN_LENGTH,
  bearerTokenIssue,
  type Config,
  secretFree,
  topicPartitions,
} from './config/index.ts'
import { ConfigError, errorText, HeraldError, isHeraldError } from './errors/index.ts'
import {
  type Authorizer,
  chainAuthenticators,
  createAdminTokenAuthenticator,
  createExternalAuthorizer,
  createHttpApp,
} from './http/index.ts'
import { problem } from './http/problem.ts'
import type { ProcessedIds } from './ingress/index.ts'
import { createMetrics, type Logger, lagOfGroups, type Metrics } from './observability/index.ts'
import { createOutboundGuard, type OutboundGuardOptions } from './outbound/index.ts'
import type { Consumer, EventLog } from './ports/event-log.ts'
import type { EventStore } from './ports/event-store.ts'
import type { Warehouse } from './ports/warehouse.ts'
import {
  createBackfillRoutes,
  createBackfillRunner,
  createBoundaryClaims,
  createLogResetRoutes,
  createMetricsRecorder,
  createMetricsRoutes,
  createProgressView,
  createProjectionLag,
  createRebuildRoutes,
  createRebuildRunner,
  type LateNotes,
  METRIC_POINTS_LEASE,
  type MetricsSchedule,
  metricPointMessage,
  openLateNotes,
  type PausableProjector,
  settleRebuildLeftovers,
  startMetricsSchedule,
} from './reports/index.ts'
import { warnIfOpenToOthers } from './secrets/index.ts'
import { lockDataDir } from './wiring/data-dir-lock.ts'
import { sharesProcessedIds, wireIngress } from './wiring/ingress.ts'
import { wireNotifications } from './wiring/notifications.ts'
import { logStoreMigration } from './wiring/store-migration.ts'
import { openWarehouse } from './wiring/warehouse.ts'

export interface HeraldDependencies {
  readonly logger: Logger
  readonly clock?: () => number
  /** Replaces DNS resolution for outbound targets (tests). */
  readonly lookup?: OutboundGuardOptions['lookup']
  /**
   * `/metrics` also carries the process's own metrics (memory, CPU, heap, event-loop delay,
   * garbage collection): for the one Herald that owns its process, as `herald start` is.
   */
  readonly processMetrics?: boolean
  /**
   * A part Herald cannot go on without stopped (the projector's thread): the owner stops this
   * Herald and exits with a failure, so that whatever runs it starts it again. Default: logged only.
   */
  readonly onFatal?: (error: Error) => void
  /**
   * Abandons the start-up when aborted (a signal came meanwhile): what had started is stopped
   * again and `startHerald` rejects with the signal's reason.
   */
  readonly signal?: AbortSignal
}

export interface Herald {
  /** The address the API listens on, once started. */
  readonly url: string
  readonly metrics: Metrics
  /** Stops taking requests and consuming, finishes in-flight batches, commits, closes every port. */
  stop(): Promise<void>
}

const openEventLog = async (config: Config, logger: Logger): Promise<EventLog> => {
  if (config.event_log.kind === 'embedded') {
    return createSqliteEventLog({
      path: join(config.data_dir, 'eventlog.sqlite'),
      retentionMs: config.event_log.embedded.retention_hours * 3_600_000,
      tailBytes: config.event_log.embedded.tail_mib * 1024 * 1024,
      onRetention: ({ topic, partition, deleted, throughOffset, unconsumed }) => {
        logger('info', 'eventlog.retention_deleted', {
          topic,
          partition,
          deleted,
          through_offset: throughOffset,
        })
        for (const { group, messages } of unconsumed)
          logger('warn', 'eventlog.retention_unconsumed', { group, topic, partition, messages })
      },
      onRetentionError: (error) =>
        logger('error', 'eventlog.retention_failed', {
          error: errorText(error),
        }),
      onHandlerError: (error, batch, groupId) => {
        // Refused for a log reset: said once by the projector, not again at each try.
        if (isLogReset(error)) return
        logger('error', 'eventlog.handler_failed', {
          group: groupId,
          topic: batch.topic,
          partition: batch.partition,
          error: errorText(error),
        })
      },
      onCommitError: (error, batch, groupId) =>
        logger('error', 'eventlog.commit_failed', {
          group: groupId,
          topic: batch.topic,
          partition: batch.partition,
          offset: (batch.messages.at(-1)?.offset ?? -1) + 1,
          error: errorText(error),
          sqlite_code: isHeraldError(error) ? error.context.sqliteCode : undefined,
          redelivered: true,
        }),
      onReadError: (error, { topic, partition }, groupId) =>
        logger('error', 'eventlog.read_failed', {
          group: groupId,
          topic,
          partition,
          error: errorText(error),
          sqlite_code: isHeraldError(error) ? error.context.sqliteCode : undefined,
          retried: true,
        }),
    })
  }
  const { kafka } = config.event_log
  return createKafkaEventLog({
    brokers: kafka.brokers,
    clientId: kafka.client_id,
    ssl: kafka.ssl,
    ...(kafka.sasl === null ? {} : { sasl: kafka.sasl }),
    idempotent: kafka.idempotent,
    maxRequestBytes: kafka.max_request_bytes,
    // kafkajs's own lines from Herald's level up (its levels are named as Herald's).
    logLevel: config.log_level,
    consumer: {
      maxWaitTimeMs: kafka.consumer.max_wait_ms,
      commitIntervalMs: kafka.consumer.commit_interval_ms,
      partitionsConsumedConcurrently: kafka.consumer.partitions_consumed_concurrently,
      maxBytesPerPartition: kafka.consumer.max_bytes_per_partition,
      maxBytes: kafka.consumer.max_bytes,
    },
    logger: kafkaLogLines(logger),
  })
}

/**
 * The Kafka event log's lines as Herald's, each error among their fields as its text, as the
 * embedded log's are: pino writes an Error's enumerable properties only, so the reason a
 * handler, commit or metadata request failed was lost.
 */
export const kafkaLogLines =
  (logger: Logger): KafkaEventLogLogger =>
  (entry) => {
    // As on the embedded log: a batch refused for a log reset is not reported at each try.
    if (entry.event === 'kafka_event_log.handler_failed' && isLogReset(entry.fields.error)) return
    const fields: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(entry.fields))
      fields[name] = value instanceof Error ? errorText(value) : value
    logger(entry.level, entry.event, { ...fields, message: entry.message })
  }

const openEventStore = async (config: Config, logger: Logger): Promise<EventStore> => {
  if (config.event_store.kind === 'embedded') {
    const path = join(config.data_dir, 'eventstore.sqlite')
    return createSqliteEventStore({ path, onMigration: logStoreMigration(logger, path) })
  }
  const connectionString = config.event_store.kurrentdb.connection_string
  if (connectionString === null) {
    throw new ConfigError([
      {
        path: 'event_store.kurrentdb.connection_string',
        message: 'is required when event_store.kind is kurrentdb',
      },
    ])
  }
  return createKurrentDbEventStore({ connectionString })
}

/**
 * Records a metric data point for every account at each multiple of
 * `reports.cycle_timers.metrics`, once the projection has passed that instant (from start-up,
 * the boundaries since the latest one recorded before, that one included, or the latest), and
 * publishes it to the metrics topic. Recording is idempotent per instant, so a restart writes
 * the same points. Instances sharing a ClickHouse server claim each boundary
 * (`createBoundaryClaims`): one records and publishes it, another takes it over should that one
 * die midway. The boundaries recorded before the projector stored events of before them are
 * recorded again, the notes saying so kept in `notes` until they are.
 */
const startMetricsRecorder = (
  config: Config,
  {
    warehouse,
    log,
    logger,
    clock,
    lag,
    notes,
  }: {
    warehouse: Warehouse
    log: EventLog
    logger: Logger
    clock: () => number
    lag: () => Promise<number>
    notes: LateNotes
  },
): MetricsSchedule => {
  const intervalSeconds = config.reports.cycle_timers.metrics
  const recorder = createMetricsRecorder({
    warehouse,
    intervalSeconds,
    clock,
    logger,
    publish: async (points) => {
      await log.publish(config.event_log.topics.metrics, points.map(metricPointMessage))
    },
  })
  return startMetricsSchedule({
    record: recorder.record,
    // The embedded warehouse has this process alone: no one else records.
    ...(config.warehouse.kind === 'clickhouse'
      ? { claim: createBoundaryClaims(warehouse, { intervalSeconds }) }
      : {}),
    correct: recorder.correct,
    correctBoundaries: config.reports.metric_corrections,
    recorded: recorder.recorded,
    notes,
    intervalSeconds,
    lag,
    // The warehouse's clock bounds the boundaries recorded: a process clock stepped ahead
    // records no point of an instant still to come.
    now: async () => {
      const [row] = await warehouse.query<{ now: number | string }>(
        'SELECT toUnixTimestamp64Milli(now64(3)) AS now',
      )
      return Number(row?.now)
    },
    clock,
    logger,
  })
}

/** `authorization_handler: external` names an HTTP authorizer; `native` keeps the role table. */
const openAuthorizer = (config: Config): Authorizer | undefined => {
  if (config.authorization_handler === 'native') return undefined
  const { endpoint, timeout_ms } = config.authorization_handler_config
  if (endpoint === null) {
    throw new ConfigError([
      {
        path: 'authorization_handler_config.endpoint',
        message: 'is required when authorization_handler is external',
      },
    ])
  }
  return createExternalAuthorizer({ endpoint, timeoutMs: timeout_ms })
}

/**
 * Without a configured admin token, the first start generates one into the data directory
 * (mode 0600) rather than printing it, so a newcomer can authenticate and no secret reaches a
 * log.
 */
const resolveAdminToken = (config: Config, logger: Logger): string | null => {
  if (config.admin_token !== null || !config.require_auth) return config.admin_token
  const file = join(config.data_dir, 'admin-token')
  if (!existsSync(file)) {
    writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 })
    chmodSync(file, 0o600)
    logger('warn', 'auth.admin_token_generated', { file, hint: 'set HERALD_ADMIN_TOKEN to choose your own' })
  }
  // Checked as HERALD_ADMIN_TOKEN is: an empty or short file would be a token anyone could guess.
  const token = readFileSync(file, 'utf8')
  warnIfOpenToOthers(file, logger)
  const issue = bearerTokenIssue(token, ADMIN_TOKEN_MIN_LENGTH)
  if (issue !== undefined)
    throw new ConfigError([
      {
        path: file,
        message: `the admin token in this file ${issue}; write one there, delete the file for one to be generated, or set HERALD_ADMIN_TOKEN`,
      },
    ])
  return token.trim()
}

/**
 * The share of `shutdown_timeout_ms` that requests in flight when Herald stops get to finish
 * (a client still sending its body, say); their connections are then dropped, unanswered.
 */
export const HTTP_GRACE_SHARE = 0.25

export const httpGraceMs = (shutdownTimeoutMs: number): number =>
  Math.floor(shutdownTimeoutMs * HTTP_GRACE_SHARE)

/**
 * Stops taking connections, closes the idle ones at once and, after `graceMs`, those still
 * busy; resolves once every connection is gone.
 */
const closeServer = (server: ServerType, graceMs: number, logger: Logger): Promise<void> =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if (!('closeAllConnections' in server)) return
      server.getConnections((_, count) => {
        if (count > 0) logger('warn', 'http.connections_dropped', { connections: count, grace_ms: graceMs })
        server.closeAllConnections()
      })
    }, graceMs)
    server.close(() => {
      clearTimeout(timer)
      resolve()
    })
    if ('closeIdleConnections' in server) server.closeIdleConnections()
  })

/** Bytes of a request Herald serves: the API once started, `startingApp` until then. */
type Fetch = (request: Request, env?: unknown) => Response | Promise<Response>

/**
 * What the HTTP port answers while Herald starts: alive (`/health`), not ready (`/ready`), and
 * 503 with Retry-After to anything else.
 */
const startingApp = (): Fetch => {
  const app = new Hono()
  app.get('/health', (c) => c.json({ status: 'starting' }))
  app.get('/ready', (c) => c.json({ status: 'starting', checks: {} }, 503))
  app.all('*', (c) =>
    c.json(problem(503, 'starting', 'Herald is starting; try again in a moment'), 503, {
      'content-type': 'application/problem+json',
      'retry-after': '1',
    }),
  )
  return (request, env) => app.fetch(request, env)
}

/** Listens on `port` of `hostname`, answering with whatever `fetch` is at each request. */
const listen = (port: number, hostname: string, fetch: () => Fetch): Promise<ServerType> =>
  new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: (request, env) => fetch()(request, env), port, hostname }, () => resolve(s))
    s.once('error', reject)
  })

/** `/ready`'s projector check: the first partition refused for a reset log, and any others. */
const refuseIfHalted = (halted: readonly LogReset[]): void => {
  const [reset, ...others] = halted
  if (reset === undefined) return
  const more =
    others.length === 0 ? '' : ` (${others.map((r) => `${r.topic}/${r.partition}`).join(', ')} likewise)`
  throw new HeraldError('event_log_reset', `${new LogResetError(reset).message}${more}`)
}

/**
 * The composition root: opens every port from the configuration, applies migrations, creates
 * topics, starts the router, deliverer and projector consumers and the HTTP server. Nothing
 * else in Herald subscribes to a pipeline or starts a consumer.
 *
 * @example
 * const herald = await startHerald(loadConfigFromProcess(), { logger })
 * process.on('SIGTERM', () => herald.stop())
 */
export const startHerald = async (config: Config, dependencies: HeraldDependencies): Promise<Herald> => {
  const { logger } = dependencies
  const clock = dependencies.clock ?? Date.now
  const metrics = createMetrics({
    process: dependencies.processMetrics === true,
    accountSeriesLimit: config.metrics.account_series_limit,
  })
  const started = clock()
  // Its files hold event payloads and token hashes: for Herald's user only (with `herald start`'s
  // umask, the files in it too). An existing folder keeps its mode.
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 })
  // Between the steps of the start-up: an abort stops there, and what started is closed.
  const goOn = (): void => dependencies.signal?.throwIfAborted()

  const closers: (() => Promise<void>)[] = []
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close()
      } catch (error) {
        logger('error', 'herald.close_failed', { error: String(error) })
      }
    }
  }

  try {
    const lock = lockDataDir(config.data_dir)
    closers.push(async () => lock.release())
    // The process's WAL checkpoint thread, started again when it stops.
    onCheckpointThreadStopped((error) =>
      logger('error', 'sqlite.checkpoint_thread_stopped', { error: error.message, restarting: true }),
    )
    // Before anything starts: a bad token file stops the start-up at once.
    const adminToken = resolveAdminToken(config, logger)
    // Bound before anything else starts, so a port in use fails the start-up before migrations
    // run or consumers start; until the start-up completes it answers that Herald is starting.
    let serving: Fetch = startingApp()
    const server = await listen(config.port, config.listen, () => serving)
    // Once: at once if the start-up fails, with a grace for requests in flight when Herald stops.
    let serverClosed: Promise<void> | undefined
    const closeServerOnce = (graceMs: number) => (serverClosed ??= closeServer(server, graceMs, logger))
    closers.push(() => closeServerOnce(0))
    goOn()
    const log = await openEventLog(config, logger)
    closers.push(() => log.close())
    goOn()
    const store = await openEventStore(config, logger)
    closers.push(() => store.close())
    goOn()
    const warehouse = await openWarehouse(config)
    closers.push(() => warehouse.close())

    goOn()
    // The embedded warehouse is this process's alone (the data directory's lock): a lease claim
    // still running in it was left by an earlier run killed while holding it, which would keep
    // a migration waiting, or a rebuild refused as running elsewhere, until the claim ran out.
    if (config.warehouse.kind === 'embedded') {
      const leases = ['schema_migrations_lock', REBUILD_LEASE, METRIC_POINTS_LEASE]
      for (const [table, claims] of await expireLeases(warehouse, leases))
        logger('info', 'warehouse.lease_expired', { table, claims })
    }
    const migration = await migrate(warehouse, warehouseMigrations, {
      log: (event, fields) => logger('info', `warehouse.${event}`, fields),
    })
    // Before the projector runs: a rebuild whose swap a killed run began is finished, and the
    // fresh tables of one killed before its swap are dropped, unless another instance sharing
    // the warehouse holds the rebuild lease (they are its rebuild's).
    await settleRebuildLeftovers(warehouse, logger)
    const { topics } = config.event_log
    const partitions = topicPartitions(config.event_log)
    goOn()
    await log.createTopics(Object.values(topics).map((topic) => ({ topic, partitions })))
    goOn()

    // Before the consumers' closer, so it closes after they stopped: an in-flight batch still uses it.
    const ingress = await wireIngress({ config, warehouse, logger })
    closers.push(() => ingress.close())
    goOn()
    // With reports on and data ingress on, the projector consumes and metric points are recorded.
    const ingesting = config.reports.enabled && config.reports.enable_data_ingress
    // The embedded warehouse's projection_progress changes only by this process's projector.
    const progress = config.warehouse.kind === 'embedded' ? createProgressView(warehouse) : undefined
    const onProjected = (n: number): void => {
      progress?.changed()
      metrics.eventsProjected.inc(n)
    }
    const onInvalid = (n: number): void => metrics.invalidLogEvents.inc({ consumer: 'projector' }, n)
    // The partitions the projector refuses because their log was reset under the report tables:
    // `/ready` names them until the reset is accepted (`/v1/reports/log-reset`).
    let halted: readonly LogReset[] = []
    const onHalted = (resets: readonly LogReset[]): void => {
      halted = resets
    }
    // Events the projector stored with a time before metric boundaries already recorded: the
    // metrics schedule (started below, before the projector) records those boundaries again for
    // their accounts.
    let metricsSchedule: MetricsSchedule | undefined
    const onEventTimes = (earliest: ReadonlyMap<string, number>): void => metricsSchedule?.projected(earliest)
    // The metric corrections still due (`startMetricsRecorder`): closed after the projector and
    // its consumer, as a batch they finish may note some.
    const lateNotes = ingesting
      ? openLateNotes(join(config.data_dir, 'metric-corrections.sqlite'))
      : undefined
    if (lateNotes !== undefined) closers.push(async () => lateNotes.close())
    // The projector's thread, or its window of projected events (an event sent again is
    // projected once) when it runs on the event loop. Closed after the consumers.
    const projectorThread =
      ingesting && config.reports.projector_thread
        ? startProjectorThread({
            config,
            logger,
            onProjected,
            onInvalid,
            onHalted,
            onEventTimes,
            onStopped: (error) => {
              logger('error', 'projector.thread_stopped', { error: error.message })
              dependencies.onFatal?.(error)
            },
          })
        : undefined
    if (projectorThread !== undefined) closers.push(() => projectorThread.close())
    // Distributed, the window every instance shares, as the router's.
    const projected =
      ingesting && projectorThread === undefined
        ? sharesProcessedIds(config)
          ? await openSharedProjectedIds(warehouse)
          : openProjectedIds(config.data_dir)
        : undefined
    if (projected !== undefined) closers.push(() => projected.close())
    // On a ClickHouse server other instances' rebuilds hold this projector still for their swaps
    // (the thread keeps its own).
    const swapGate =
      ingesting && projectorThread === undefined && config.warehouse.kind === 'clickhouse'
        ? createSwapGate({ warehouse, logger })
        : undefined
    const projectedIds: Pick<ProcessedIds, 'ping'> | undefined = projectorThread ?? projected

    // Closed after the consumers (closers run in reverse): in-flight deliveries keep their sockets.
    const outbound = createOutboundGuard({
      allowlist: config.outbound.allowlist,
      senderThread: config.outbound.sender_thread,
      onSenderStopped: (error) =>
        logger('error', 'outbound.sender_thread_stopped', { error: error.message, restarting: true }),
      ...(dependencies.lookup === undefined ? {} : { lookup: dependencies.lookup }),
    })
    closers.push(async () => outbound.close())
    // Stopped first of all by stop(), beside the HTTP server's close; here again (a no-op) if
    // start-up fails.
    const consumers: Consumer[] = []
    let consuming = true
    closers.push(async () => {
      await Promise.all(consumers.map((consumer) => consumer.stop()))
    })

    // Actions that change no configuration but belong in the audit, beside its streams.
    const recordAction = createActionRecorder({ store, clock, newId: randomUUID, logger })
    const notifications = await wireNotifications({
      ingress,
      warehouse,
      config,
      log,
      store,
      logger,
      metrics,
      clock,
      outbound,
      recordAction,
    })
    closers.push(notifications.close)
    consumers.push(...notifications.consumers)
    goOn()

    // The lag every report answer carries: a projector that stalls shows in it, and so do the
    // events that wait while data ingress is off (the answers are that much behind).
    const reportLag = !config.reports.enabled
      ? undefined
      : createProjectionLag({
          warehouse,
          clock,
          positions: () => log.lag('herald-projector', [topics.events]),
          ...(progress === undefined ? {} : { projected: progress.read }),
        })
    // Started before the projector consumes, so that it notes every event stored with a time
    // before boundaries already recorded. The notes go to a file of this instance's before the
    // projector commits those events, and a start-up corrects those a crash left.
    if (lateNotes !== undefined) {
      const recorder = startMetricsRecorder(config, {
        warehouse,
        log,
        logger,
        clock,
        lag: reportLag ?? (async () => 0),
        notes: lateNotes,
      })
      metricsSchedule = recorder
      closers.push(() => recorder.stop())
    }

    let projector: PausableProjector | undefined
    if (ingesting) {
      // A new run checks its partitions afresh, and says again which it refuses.
      const startProjector = () => {
        halted = []
        return log.consume(
          {
            groupId: 'herald-projector',
            topics: [topics.events],
            maxBatchSize: config.reports.batch_size,
            maxBatchBytes: config.reports.batch_bytes,
            maxWaitMs: Math.round(config.reports.cycle_timers.load * 1000),
          },
          metrics.timeBatches(
            'projector',
            projectorThread?.handler() ??
              createProjectorHandler({
                decoder: ingress.decoder,
                ...(projected === undefined ? {} : { processed: projected }),
                ...(swapGate === undefined ? {} : { gate: swapGate }),
                warehouse,
                clock,
                logger,
                onProjected,
                onInvalid,
                onHalted,
                onEventTimes,
              }),
          ),
        )
      }
      // A rebuild holds the projector still for its swap; it rejoins from its committed offsets.
      let running: Consumer | undefined = await startProjector()
      projector = {
        pause: async () => {
          const stopping = running
          running = undefined
          await stopping?.stop()
        },
        resume: async () => {
          // A rebuild's swap that ends while Herald stops leaves the projector stopped.
          if (consuming) running ??= await startProjector()
        },
      }
      consumers.push({
        // A batch a rebuild's swap holds back fails at once (it is delivered again), where the
        // consumer's stop would wait for the swap; the gate's claim is withdrawn once none runs.
        stop: async () => {
          await Promise.all([running?.stop(), swapGate?.close()])
        },
        holdsSince: (topic, key) => running?.holdsSince(topic, key),
      })
    } else {
      logger('info', 'projector.ingress_disabled', { reason: 'reports.enable_data_ingress is false' })
    }
    // Each consumer group's lag, read from the log for /metrics (at most every 5 s, one read at a time).
    metrics.watchLag(
      lagOfGroups(log, [
        ['herald-router', topics.events],
        ...(config.notifications.enabled ? [['herald-deliverer', topics.deliveries] as const] : []),
        ...(config.reports.enabled ? [['herald-projector', topics.events] as const] : []),
      ]),
    )
    const rebuilds = createRebuildRunner({
      warehouse,
      logger,
      clock,
      ...(projector === undefined ? {} : { projector }),
    })
    closers.push(() => rebuilds.stop())
    goOn()
    // Past metric points from history, e.g. for a metric definition an upgrade added.
    const backfills = createBackfillRunner({
      recorder: createMetricsRecorder({
        warehouse,
        intervalSeconds: config.reports.cycle_timers.metrics,
        clock,
        logger,
      }),
      intervalSeconds: config.reports.cycle_timers.metrics,
      logger,
      clock,
      ...(reportLag === undefined ? { disabled: 'reports.enabled is false' } : { lag: reportLag }),
    })
    closers.push(() => backfills.stop())

    const tokens = createTokenService({ store, clock, newId: randomUUID })
    const authorizer = openAuthorizer(config)
    const app = createHttpApp({
      log,
      eventsTopic: topics.events,
      rememberEvent: ingress.decoder.remember,
      warehouse,
      readiness: {
        event_log: () => log.ping(),
        event_store: () => store.ping(),
        warehouse: () => warehouse.ping(),
        // The router's digest buffer, a file of this process's in every deployment.
        digest_store: () => ingress.digests.ping(),
        // The router's processed-id window: a file of this process's, or with Kafka and a
        // ClickHouse server the table every router instance shares.
        processed_ids: () => ingress.processed.ping(),
        // The projector's, a file of this process's, asked of its thread when it has one.
        ...(projectedIds === undefined ? {} : { projected_ids: () => projectedIds.ping() }),
        // The projector, unready while it refuses a partition whose log was reset.
        ...(ingesting ? { projector: async () => refuseIfHalted(halted) } : {}),
        ...notifications.readiness,
      },
      authenticate: chainAuthenticators(createAdminTokenAuthenticator(adminToken), tokens.authenticate),
      requireAuth: config.require_auth,
      // The admin token too when it comes from data_dir/admin-token, which the configuration lacks.
      hideSecrets: secretFree({ ...config, admin_token: adminToken }),
      ...(authorizer === undefined ? {} : { authorizer }),
      metrics,
      logger,
      graphiql: config.reports.graphiql,
      ...(reportLag === undefined ? {} : { reportLag }),
      mounts: [
        ...notifications.mounts,
        { path: '/v1/auth', app: createTokenRoutes({ tokens }) },
        { path: '/v1/audit', app: createAuditRoutes({ store }) },
        // Before the metrics routes, whose `/:id` would otherwise take `GET …/backfill`.
        { path: '/v1/reports/metrics/backfill', app: createBackfillRoutes(backfills, { recordAction }) },
        {
          path: '/v1/reports/metrics',
          app: createMetricsRoutes({ warehouse, ...(reportLag === undefined ? {} : { lag: reportLag }) }),
        },
        { path: '/v1/reports/rebuild', app: createRebuildRoutes(rebuilds, { recordAction }) },
        {
          path: '/v1/reports/log-reset',
          app: createLogResetRoutes({ warehouse, clock, logger, recordAction }),
        },
      ],
    })

    // Started only once the projector's thread has opened its warehouse and window: until then
    // the ping /ready asks of it waits on that opening, and readiness would fail at first.
    if (projectorThread !== undefined) await projectorThread.ping()
    // Waited for once the consumers stopped and before the ports they and the requests use close.
    closers.push(() => closeServerOnce(0))
    goOn()
    serving = (request, env) => app.fetch(request, env as never)
    metrics.up.set(1)
    const address = server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    const url = `http://${host}:${address.port}`
    // Development only: anyone who reaches the address is every account's admin. Said at every
    // start, since the default address is every interface.
    if (!config.require_auth)
      logger('warn', 'auth.not_required', {
        url,
        listen: config.listen,
        hint: `require_auth is false: every request without a token to ${url} (listening on ${config.listen}) acts as the admin of every account; set require_auth (HERALD_REQUIRE_AUTH) to true outside development`,
      })
    logger('info', 'herald.started', {
      url,
      event_log: config.event_log.kind,
      event_store: config.event_store.kind,
      warehouse: config.warehouse.kind,
      migrations_applied: migration.applied,
      startup_ms: clock() - started,
    })

    let stopping: Promise<void> | undefined
    return {
      url,
      metrics,
      stop: () => {
        stopping ??= (async () => {
          logger('info', 'herald.stopping', {})
          metrics.up.set(0)
          // No new connections; requests in flight get their grace. Meanwhile, and whatever a
          // slow client does, the consumers finish their batches and commit.
          void closeServerOnce(httpGraceMs(config.shutdown_timeout_ms))
          consuming = false
          await Promise.all(
            consumers.map((consumer) =>
              consumer.stop().catch((error: unknown) => {
                logger('error', 'herald.close_failed', { error: errorText(error) })
              }),
            ),
          )
          await closeAll()
          logger('info', 'herald.stopped', {})
        })()
        return stopping
      },
    }
  } catch (error) {
    await closeAll()
    throw error
  }
}
