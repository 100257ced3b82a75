import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { map, retry, switchMap, take, timer } from 'rxjs'
import {
  type ConfigurationFailure,
  createDeliveryChannels,
  createSqliteRecentTickets,
  DEFAULT_RETRY_POLICY,
  type DeliverableConfiguration,
  type DeliveryEngine,
  ownedAfterHandover,
  type RetryPolicy,
  startDeliveryEngine,
  startDisableAnnouncer,
  validateTemplates,
} from '../../streams/delivery/index.ts'
import {
  createSelectorIndexBuilder,
  emptySelectorIndex,
  type SelectorIndex,
} from '../../streams/routing/index.ts'
import type { RecordAction } from '../access/index.ts'
import { sqliteErrorIn } from '../adapters/sqlite-errors.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { type Backoff, backoffDelay } from '../backoff.ts'
import { attemptTimeoutOf, type Config, type DeliveryConfig } from '../config/index.ts'
import {
  createDeliveryLog,
  createDeliveryReadModel,
  createDeliveryRoutes,
  createThreadedDeliveryReadModel,
  type DeliveryReadModelOptions,
  startDeliveryRetention,
} from '../deliveries/index.ts'
import { errorText } from '../errors/index.ts'
import { createEventTypeRoutes } from '../http/event-types.ts'
import type { AppEnv } from '../http/index.ts'
import {
  changedForDelivery,
  createDeliveryHealth,
  createEndpointRoutes,
  createEndpointStatusService,
  createEndpointTestRoutes,
  createNotificationConfigService,
  createNotificationRoutes,
  createSelectorToolsRoutes,
  createSkipCheck,
  createTestEventRoutes,
  emptySelectorSet,
  newlyDisabled,
  type SelectorSet,
  type SendTest,
  type Target,
} from '../notifications/index.ts'
import type { Logger, Metrics } from '../observability/index.ts'
import { OutboundBlockedError, type OutboundGuard, OutboundUnresolvableError } from '../outbound/index.ts'
import type { Consumer, EventLog } from '../ports/event-log.ts'
import type { EventStore } from '../ports/event-store.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { deliverableConfiguration, toChannelConfiguration } from './channel-configuration.ts'
import { type IngressWiring, startRouter } from './ingress.ts'
import { openSecretBox, startResealing } from './secret-keys.ts'
import { logReadModelUpgrade, logStoreMigration } from './store-migration.ts'
import { reportViewRebuild } from './view-rebuild.ts'

export interface NotificationsWiring {
  readonly consumers: readonly Consumer[]
  readonly mounts: readonly { readonly path: string; readonly app: Hono<AppEnv> }[]
  /** `/ready` probes of the stores notifications keep beside the shared ones (the embedded delivery log). */
  readonly readiness: Readonly<Record<string, () => Promise<void>>>
  close(): Promise<void>
}

export interface WireNotificationsOptions {
  readonly config: Config
  readonly log: EventLog
  readonly store: EventStore
  readonly logger: Logger
  readonly metrics: Metrics
  readonly clock: () => number
  /** Every delivery and target check goes through the SSRF guard. */
  readonly outbound: OutboundGuard
  /** The engine-event decoder and processed-id window the router uses. */
  readonly ingress: IngressWiring
  /** The reports warehouse, whose `events` table selector previews and explanations read. */
  readonly warehouse?: Warehouse
  /**
   * Wait before the selector feed is read again after it failed, once it had loaded: doubles
   * from `min` up to `max` ms with each failure in a row (default 1 000 → 30 000).
   */
  readonly selectorFeedRetryMs?: Backoff
  /**
   * Wait before an announcement of a disable is tried again after it failed: doubles from
   * `min` up to `max` ms (default 1 000 → 60 000).
   */
  readonly announceRetryMs?: Backoff
  /** Puts each test of a stored configuration in the audit. */
  readonly recordAction?: RecordAction
}

/** The retry policy the configuration describes; a `Retry-After` is honoured up to the longest step, 10 h at least. */
const retryPolicyOf = (delivery: DeliveryConfig): RetryPolicy => ({
  scheduleMs: delivery.retry_schedule_ms,
  jitter: delivery.retry_jitter_percent / 100,
  maxRetryAfterMs: Math.max(DEFAULT_RETRY_POLICY.maxRetryAfterMs, ...delivery.retry_schedule_ms),
})

/**
 * The longest a retrying delivery can wait between two attempts (its longest step or
 * Retry-After, with jitter), and an hour to spare: failures further apart are two streaks.
 */
const failureGapOf = (policy: RetryPolicy): number =>
  Math.max(policy.maxRetryAfterMs, ...policy.scheduleMs) * (1 + policy.jitter) + 3_600_000

const deliveryStorePath = (config: Config): string => join(config.data_dir, 'deliveries.sqlite')

/**
 * Where the delivery log is kept. Embedded: a file of its own beside the configuration store,
 * so reading every configuration at start-up and the audit trail never wade through delivery
 * history. KurrentDB: the one store (its streams are named `delivery-<id>`).
 */
const openDeliveryStore = (
  config: Config,
  store: EventStore,
  logger: Logger,
): { store: EventStore; owned: boolean } =>
  config.event_store.kind === 'embedded'
    ? {
        // Many deliveries record their attempts at once, each to its own stream: a writer
        // thread writes them, group-committing all that arrive while it writes (one sync to
        // disk for many), off the event loop. The configuration store keeps a transaction per
        // append.
        store: createSqliteEventStore({
          path: deliveryStorePath(config),
          groupCommit: true,
          writerThread: true,
          onWriterStopped: (error) =>
            logger('error', 'delivery.store_writer_stopped', { error: error.message, restarting: true }),
          onMigration: logStoreMigration(logger, deliveryStorePath(config)),
        }),
        owned: true,
      }
    : { store, owned: false }

/**
 * Notifications' part of the composition root: the configuration service on the event store,
 * the live selector index the router reads (swapped whole on every change), the router, the
 * deliverer (its consumer group records deliveries; its queues send, retry and dead-letter
 * them from the delivery log) and the delivery log's API.
 */
export const wireNotifications = async (options: WireNotificationsOptions): Promise<NotificationsWiring> => {
  const { config, log, store, logger, clock } = options
  const box = await openSecretBox({ config, readAll: (o) => store.readAll(o), logger, clock })
  const deliveryStore = openDeliveryStore(config, store, logger)
  const viewPath = join(config.data_dir, 'deliveries-view.sqlite')
  const viewOptions: DeliveryReadModelOptions = {
    path: viewPath,
    newId: randomUUID,
    failureGapMs: failureGapOf(retryPolicyOf(config.notifications.delivery)),
    onUpgrade: logReadModelUpgrade(logger, viewPath),
    onInvalidEvent: (event, issues) =>
      logger('error', 'delivery.stored_event_invalid', {
        stream: event.stream,
        revision: event.revision,
        type: event.type,
        issues: issues.slice(0, 10),
      }),
    // A write that failed (a full disk) names its SQLite code; the model folds it again later.
    onFollowError: (error) =>
      logger('error', 'delivery.read_model_failed', {
        error: errorText(error),
        sqlite_code: sqliteErrorIn(error)?.errcode,
      }),
  }
  // Without its file, the read model folds the whole delivery log again: said, as it can take long.
  const viewMissing = !existsSync(viewPath)
  // Over its own file, the read model is folded by a thread of its own, which reads the file
  // too; the event loop only reads the model. Over a shared store (KurrentDB), it folds here.
  const view = deliveryStore.owned
    ? createThreadedDeliveryReadModel({ ...viewOptions, storePath: deliveryStorePath(config) })
    : createDeliveryReadModel(viewOptions)
  const rebuild = viewMissing
    ? reportViewRebuild({ view, store: deliveryStore.store, logger, path: viewPath })
    : undefined
  view.follow(deliveryStore.store)
  // A delivery log of its own answers for itself (a shared store is already `event_store`); the
  // read model's file is this process's either way.
  const readiness: NotificationsWiring['readiness'] = {
    ...(deliveryStore.owned ? { delivery_store: () => deliveryStore.store.ping() } : {}),
    delivery_read_model: () => view.ping(),
  }
  // Jira's lately filed issues, for its lagging search: kept across restarts.
  const recentTickets = createSqliteRecentTickets(join(config.data_dir, 'recent-tickets.sqlite'))
  const closeDeliveryLog = async () => {
    // The configuration read model the listings keep subscribed, too.
    service.close()
    rebuild?.stop()
    await view.close()
    recentTickets.close()
    if (deliveryStore.owned) await deliveryStore.store.close()
  }
  // The configuration status comes from the delivery log: it survives restarts and covers every deliverer.
  const health = createDeliveryHealth({ source: view })
  const channels = createDeliveryChannels({
    guard: options.outbound,
    clock,
    logger,
    recentTickets,
    searchLagMs: config.notifications.delivery.jira_search_lag_ms,
  })
  const service = createNotificationConfigService({
    store,
    box,
    clock,
    newId: randomUUID,
    onInvalidEvent: (event, issues) =>
      logger('error', 'notifications.stored_event_invalid', {
        stream: event.stream,
        revision: event.revision,
        type: event.type,
        issues: issues.slice(0, 10),
      }),
    // A full read first, so the router's first index holds every selector ever added.
    readAll: (o) => store.readAll(o),
    limits: {
      selectorsPerConfiguration: config.notifications.limits.selectors_per_configuration,
      configurationsPerAccount: config.notifications.limits.configurations_per_account,
    },
  })
  const endpoints = createEndpointStatusService({ store, clock, newId: randomUUID })
  const checkTarget = async (target: Target) => {
    try {
      if ('url' in target) await options.outbound.checkUrl(target.url)
      else await options.outbound.checkSmtpHost(target.smtpHost, target.port)
    } catch (error) {
      // The client is told one sentence for a host name that does not resolve and one that
      // resolves to a forbidden address; the log says which (never what a name resolved to).
      if (error instanceof OutboundBlockedError || error instanceof OutboundUnresolvableError)
        logger('info', 'outbound.target_refused', { ...error.context, retriable: error.retriable })
      throw error
    }
  }
  const checkTemplates = (templates: unknown, endpoint: Parameters<typeof validateTemplates>[1]) =>
    validateTemplates(templates, endpoint)
  // A test delivery goes through the same channel, guard and timeout as a real one, and is not logged as one.
  const sendTest: SendTest = ({ configuration, open, signingSecrets, event, deliveryId, createdAt }) =>
    channels.send(
      { deliveryId, account: configuration.account, configurationId: configuration.id, event, createdAt },
      toChannelConfiguration(configuration, open, () => signingSecrets),
      { uiUrl: config.ui_url, timeoutMs: config.notifications.webhook_timeout_ms },
    )
  const mounts = [
    { path: '/v1/notifications', app: createEndpointRoutes({ endpoints }) },
    { path: '/v1/notifications', app: createEventTypeRoutes() },
    {
      path: '/v1/notifications',
      app: createNotificationRoutes({ service, health, checkTemplates, checkTarget }),
    },
    {
      path: '/v1/notifications',
      app: createSelectorToolsRoutes({
        service,
        endpoints,
        ...(options.warehouse === undefined ? {} : { warehouse: options.warehouse }),
      }),
    },
    {
      path: '/v1/notifications',
      app: createEndpointTestRoutes({
        service,
        send: sendTest,
        clock,
        newId: randomUUID,
        checkTarget,
        checkTemplates,
        endpoints,
        logger,
        ...(options.recordAction === undefined ? {} : { recordAction: options.recordAction }),
      }),
    },
    {
      path: '/v1',
      app: createTestEventRoutes({
        log,
        topic: config.event_log.topics.events,
        clock,
        newId: randomUUID,
        onPublished: (event) => options.metrics.countIngested(event.account),
      }),
    },
    {
      path: '/v1/notifications',
      app: createDeliveryRoutes({
        view,
        log: createDeliveryLog({
          store: deliveryStore.store,
          clock,
          newId: randomUUID,
          origin: view.instanceId,
        }),
        replayLimit: config.notifications.delivery.replay_limit,
        skipReason: createSkipCheck({ service, endpoints }),
        ...(options.recordAction === undefined ? {} : { recordAction: options.recordAction }),
        logger,
      }),
    },
  ]
  const routerOptions = { config, log, ingress: options.ingress, metrics: options.metrics, logger, clock }
  if (!config.notifications.enabled) {
    logger('info', 'notifications.disabled', { reason: 'notifications.enabled is false' })
    // The router is the one group that dead-letters bad input, so it keeps validating.
    const router = await startRouter({ ...routerOptions, getIndex: () => emptySelectorIndex, route: false })
    // Nothing is delivered, but the configuration API still stores secrets, so a key rotated
    // meanwhile re-seals them and `secrets.keys_in_use` says when the old key may go, as it
    // does with notifications on: the stored configurations are read once, in the background.
    let resealing: { stop(): Promise<void> } | undefined
    const reading = service
      .selectors$()
      .pipe(take(1))
      .subscribe({
        next: (set) => {
          resealing = startResealing({
            service,
            configurations: set.configurations.values(),
            box,
            logger,
            clock,
          })
        },
        error: (error: unknown) =>
          logger('error', 'secrets.reseal_failed', {
            error: errorText(error),
            hint: 'the stored configurations could not be read; the next start re-seals them',
          }),
      })
    return {
      consumers: [router],
      mounts,
      readiness,
      close: async () => {
        reading.unsubscribe()
        await resealing?.stop()
        await closeDeliveryLog()
      },
    }
  }

  // One reference, replaced whole: a batch in flight sees the old index or the new, never a mix.
  let index: SelectorIndex = emptySelectorIndex
  let selectors: SelectorSet = emptySelectorSet
  // Told of each configuration disabled, once the deliverer runs: its queue settles at once.
  let onDisabled: (configurationId: string) => void = () => {}
  // Told of each configuration changed in what it sends to or with: a waiting retry goes now.
  let onChanged: (configurationId: string) => void = () => {}
  // Handed Herald's disables not announced yet, from each snapshot, once the announcer runs.
  let onUnannounced: (set: SelectorSet) => void = () => {}
  // The router must not see an event before the index holds every stored selector: an event
  // routed against a partial index would be committed with deliveries missing.
  let markLoaded: () => void = () => {}
  let failLoad: (error: unknown) => void = () => {}
  const loaded = new Promise<void>((resolve, reject) => {
    markLoaded = resolve
    failLoad = reject
  })
  // A new snapshot rebuilds only the accounts it changed, in slices between which consumers
  // keep routing with the index they have; a newer snapshot abandons a build in progress (keeping
  // what it built). Until the first index is in, the router does not start.
  const builder = createSelectorIndexBuilder({
    onUncompilable: (selector, error) =>
      logger('error', 'router.selector_uncompilable', { selector_id: selector.id, error: String(error) }),
  })
  // Once loaded, a feed that fails (the store could not be read) is read again, whole, after a
  // back-off, for as long as it fails: meanwhile the router routes with the index it has, and
  // picks up every change since once the store answers. Before the first load it fails the start.
  let everLoaded = false
  // The newest set the feed read, and whether it is failing: `selectors` is current when it is
  // that set and the feed is not failing (what the deliverer asks of a snapshot behind a command).
  let newest: SelectorSet = emptySelectorSet
  let feedFailing = false
  const backoff = options.selectorFeedRetryMs ?? { min: 1_000, max: 30_000 }
  const subscription = service
    .selectors$()
    .pipe(
      switchMap((set) => {
        newest = set
        feedFailing = false
        const started = performance.now()
        return builder.build$(set).pipe(map((built) => ({ set, built, ms: performance.now() - started })))
      }),
      retry({
        resetOnSuccess: true,
        delay: (error: unknown, attempt: number) => {
          if (!everLoaded) throw error
          feedFailing = true
          const retryInMs = backoffDelay(backoff, attempt)
          logger('error', 'notifications.selector_feed_failed', {
            error: errorText(error),
            attempt,
            retry_in_ms: retryInMs,
          })
          return timer(retryInMs)
        },
      }),
    )
    .subscribe({
      next: ({ set, built, ms }) => {
        const disabled = newlyDisabled(selectors, set)
        const changed = changedForDelivery(selectors, set)
        selectors = set
        index = built
        everLoaded = true
        markLoaded()
        // After `selectors`, so the attempts it starts find the configuration disabled.
        for (const configurationId of disabled) onDisabled(configurationId)
        for (const configurationId of changed) onChanged(configurationId)
        onUnannounced(set)
        logger('debug', 'router.index_swapped', {
          configurations: set.configurations.size,
          selectors: built.size,
          trees: builder.lastBuild.partitions,
          rebuilt: builder.lastBuild.rebuilt,
          ms: Math.round(ms),
        })
      },
      error: (error: unknown) => {
        failLoad(error)
        logger('error', 'notifications.selector_feed_failed', { error: errorText(error), retried: false })
      },
    })
  try {
    await loaded
  } catch (error) {
    subscription.unsubscribe()
    await closeDeliveryLog()
    throw error
  }

  const { topics } = config.event_log
  const delivery = config.notifications.delivery
  /**
   * Disables a configuration for `reason`, unless it changed after the attempt that decided it
   * read it (`failure.changedAt`: its owner may have just fixed it). The disable records the
   * failure, and the announcer announces it from there (see `startDisableAnnouncer`). Resolves
   * whether that was dealt with: false when the store failed (logged), so the deliverer asks
   * again at the configuration's next failed attempt.
   */
  const disable = async (failure: ConfigurationFailure, reason: string): Promise<boolean> => {
    const { configurationId, endpoint } = failure
    const fields = { configuration_id: configurationId, endpoint, reason }
    try {
      const disabled = await service.disableConfiguration(configurationId, reason, {
        unchangedSince: failure.changedAt,
        failure: { failingSince: failure.failingSince, lastError: failure.lastError },
      })
      if (disabled) logger('warn', 'delivery.configuration_disabled', fields)
      else
        logger('info', 'delivery.configuration_disable_skipped', {
          ...fields,
          why: 'changed since the attempt',
        })
      return true
    } catch (error) {
      logger('error', 'delivery.configuration_disable_failed', { ...fields, error: errorText(error) })
      return false
    }
  }
  const announcer = startDisableAnnouncer({
    log,
    topic: topics.events,
    markAnnounced: (d) => service.markAnnounced(d),
    logger,
    ...(options.announceRetryMs === undefined ? {} : { retryMs: options.announceRetryMs }),
  })
  // On Kafka, instances of one group share the queues: each configuration's belongs to the
  // instance that reads its partition of the deliveries topic (commands are keyed by
  // configuration), and a queue taken over waits out the attempt time limit first, so the
  // previous owner's attempt in flight is over (aborted at that limit if not done) before the
  // queue is served again. The embedded log has one process, which serves every queue.
  let deliverer: Consumer | undefined
  const handoverMs = attemptTimeoutOf(config.notifications)
  const sharing =
    config.event_log.kind === 'kafka'
      ? {
          queueOwnedFrom: ownedAfterHandover({
            holdsSince: (configurationId) => deliverer?.holdsSince(topics.deliveries, configurationId),
            handoverMs,
            clock,
          }),
        }
      : {}
  const engine: DeliveryEngine = startDeliveryEngine({
    ...sharing,
    // A command another instance's router routed with configurations this one has not read yet
    // (it lags, or its feed is failing) is recorded once they are here. The embedded log's
    // router routes with this very set, so nothing waits there.
    snapshot: {
      position: () => selectors.position,
      current: () => !feedFailing && selectors === newest,
    },
    store: deliveryStore.store,
    view,
    log,
    outcomesTopic: topics.outcomes,
    getConfiguration: (id): DeliverableConfiguration | undefined => {
      const configuration = selectors.configurations.get(id)
      if (configuration === undefined) return undefined
      return {
        ...deliverableConfiguration(service, configuration, clock),
        endpointEnabled: !selectors.disabledEndpoints.has(configuration.endpoint),
      }
    },
    send: channels.send,
    uiUrl: config.ui_url,
    timeoutMs: config.notifications.webhook_timeout_ms,
    attemptTimeoutMs: handoverMs,
    logger,
    clock,
    newId: randomUUID,
    policy: retryPolicyOf(delivery),
    rateLimits: delivery.rate_limits,
    concurrency: delivery.concurrency,
    maxInFlight: delivery.max_in_flight,
    sustainedFailureMs: delivery.disable_after_failing_ms,
    onOutcome: (outcome, d) => options.metrics.deliveries.inc({ endpoint: d.endpoint, outcome }),
    // The endpoint says it no longer exists: stop sending to it, visibly in the audit trail,
    // and tell the admin. One the store refused is disabled at the next 410 of its queue.
    onGone: async (failure) => {
      await disable(failure, 'endpoint_gone')
    },
    // Failing all along: switch it off and tell the admin, rather than retry into the void.
    onSustainedFailure: (failure) => disable(failure, 'sustained_failure'),
  })

  // Settled deliveries past their retention leave the store and the read model.
  const retention =
    delivery.retention_days === 0
      ? undefined
      : startDeliveryRetention({
          store: deliveryStore.store,
          view,
          retentionMs: delivery.retention_days * 86_400_000,
          clock,
          logger,
        })

  onDisabled = engine.configurationDisabled
  onChanged = engine.configurationChanged
  // Those disabled or deleted before it started (while Herald was down, say) settle now too:
  // of the configurations the delivery log has deliveries of waiting, those disabled (their
  // endpoint type switched off included) and those that no longer exist. One with nothing
  // waiting has nothing to settle, and is not named.
  const disabledAtStart = new Set(newlyDisabled(emptySelectorSet, selectors))
  engine.settleAtStart(
    view.queuedConfigurations().filter((id) => disabledAtStart.has(id) || !selectors.configurations.has(id)),
  )
  // Those disabled but never announced (a crash in between, a publish that kept failing) now too.
  onUnannounced = (set) => announcer.announce(set.unannounced)
  onUnannounced(selectors)

  // Whatever started is stopped again if the rest cannot start: the caller only closes what it got.
  let router: Consumer | undefined
  let consumer: Consumer
  try {
    router = await startRouter({ ...routerOptions, getIndex: () => index, route: true })
    consumer = await log.consume(
      { groupId: 'herald-deliverer', topics: [topics.deliveries] },
      options.metrics.timeBatches('deliverer', engine.handler),
    )
    deliverer = consumer
  } catch (error) {
    await router?.stop()
    await retention?.stop()
    await announcer.stop()
    await engine.stop(0)
    subscription.unsubscribe()
    await closeDeliveryLog()
    throw error
  }
  // Stored secrets a previous key sealed are sealed again with the current one, meanwhile.
  const resealing = startResealing({
    service,
    configurations: selectors.configurations.values(),
    box,
    logger,
    clock,
  })
  // Stopped here first, then again (a no-op) with the other consumers. A batch waiting for the
  // configurations stops waiting first (it fails, and is consumed again after the next start):
  // the consumer's stop waits for it, which held shutdown for the whole wait.
  let stopped: Promise<void> | undefined
  const stopOnce: Consumer = {
    stop: () => {
      if (stopped === undefined) engine.halt()
      stopped ??= consumer.stop()
      return stopped
    },
    holdsSince: consumer.holdsSince,
  }
  // An attempt in progress may finish within this before shutdown aborts it (it is then sent again after the next start).
  const graceMs = Math.min(config.notifications.webhook_timeout_ms, config.shutdown_timeout_ms / 3)
  return {
    consumers: [router, stopOnce],
    mounts,
    readiness,
    close: async () => {
      await resealing.stop()
      await stopOnce.stop()
      await retention?.stop()
      await announcer.stop()
      await engine.stop(graceMs)
      subscription.unsubscribe()
      await closeDeliveryLog()
    },
  }
}
