import { setTimeout as sleep } from 'node:timers/promises'
import {
  createDeliveryLog,
  type DeliveryLog,
  type DeliveryReadModel,
  type OutcomePublisher,
  type StoredDelivery,
  startOutcomePublisher,
} from '../../src/deliveries/index.ts'
import { errorText, UnavailableError } from '../../src/errors/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { BatchHandler, EventLog, EventStore } from '../../src/ports/index.ts'
import { createDeliveryRequestHandler } from '../deliverer.ts'
import { type AttemptRunnerOptions, createAttemptRunner, type DeliverableConfiguration } from './attempt.ts'
import { boundWaits } from './bounded-waits.ts'
import { createRateLimiter, DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limit.ts'
import { DEFAULT_RETRY_POLICY, longestRetryWait, type RetryPolicy } from './retry-policy.ts'
import { type QueueScheduler, startQueueScheduler } from './scheduler.ts'

export interface DeliveryEngineOptions
  extends Pick<
    AttemptRunnerOptions,
    'send' | 'uiUrl' | 'timeoutMs' | 'attemptTimeoutMs' | 'onOutcome' | 'onGone' | 'onSustainedFailure'
  > {
  /**
   * The configuration as of now; undefined when it does not exist (any more). Synchronous (the
   * wiring reads the selector set it holds in memory): it also says how many of the
   * configuration's deliveries may be in flight, which the queues ask without waiting.
   */
  readonly getConfiguration: (configurationId: string) => DeliverableConfiguration | undefined
  /** Where the delivery log is appended. */
  readonly store: Pick<EventStore, 'append' | 'appendMany' | 'readStream'>
  /** The delivery log's read model, following `store`. */
  readonly view: DeliveryReadModel
  /** Where outcomes are published, and the topic (`event_log.topics.outcomes`). */
  readonly log: Pick<EventLog, 'publish'>
  readonly outcomesTopic: string
  readonly logger: Logger
  /** Wall-clock milliseconds: what is recorded, and what recorded due times are compared with. */
  readonly clock: () => number
  /**
   * Milliseconds of a clock that never steps (default `performance.now`): what rate limits and
   * the queues' own waits are timed by.
   */
  readonly monotonic?: () => number
  readonly newId: () => string
  readonly random?: () => number
  readonly policy?: RetryPolicy
  readonly rateLimits?: RateLimits
  /** Deliveries sending at the same time, over all configurations (default 256, as `notifications.delivery.concurrency`). */
  readonly concurrency?: number
  /**
   * Deliveries of one configuration in flight at once, by endpoint type
   * (`notifications.delivery.max_in_flight`), where the configuration names none of its own
   * (`DeliverableConfiguration.maxInFlight`); absent, and always for GitHub and Jira: 1, one
   * at a time and in order.
   */
  readonly maxInFlight?: Partial<Record<'webhook' | 'email' | 'slack' | 'teams', number>>
  /** 0 (the default): a failing configuration is never disabled for it. */
  readonly sustainedFailureMs?: number
  /**
   * Where several deliverers share one delivery log (instances in one consumer group on
   * `notifications.deliveries`): from when this one may attempt a configuration's queue, or
   * `undefined` while another one owns it. Absent: every queue is this deliverer's.
   */
  readonly queueOwnedFrom?: (configurationId: string) => number | undefined
  /**
   * Where the configurations `getConfiguration` reads are as of. The router stamps each command
   * with the position of the selector set it routed with (`selectorSetPosition`); on Kafka that
   * may be another instance's, ahead of this one's. A batch is recorded only once `position()`
   * has reached the highest stamp of its commands, so a configuration just created or enabled
   * again is not skipped, nor a changed one sent with what it was, for want of this instance
   * having read it. Absent (or where router and deliverer share one set): nothing waits.
   */
  readonly snapshot?: ConfigurationSnapshot
  /**
   * How long a batch waits for `snapshot` (default 10 000 ms). Still behind then, the batch
   * fails, recording nothing, and is consumed again after the consumer's back-off; unless the
   * snapshot is `current`, when it is recorded with the configurations as they are.
   */
  readonly snapshotWaitMs?: number
}

/** The configurations a deliverer reads, as of a position of the configuration store. */
export interface ConfigurationSnapshot {
  /** `SelectorSet.position` of the set `getConfiguration` reads. */
  position(): number
  /**
   * Whether it holds everything its feed has read (the feed not failing, no newer set being
   * built): then one still behind a command's stamp after the wait will not reach it (the store
   * was restored from a backup after the command was routed, say), and the batch is recorded
   * rather than consumed again for good. Absent: never.
   */
  current?(): boolean
}

const SNAPSHOT_WAIT_MS = 10_000
/** How long a queue named at start-up waits to be this deliverer's (a Kafka join, its rebalances). */
export const START_OWNERSHIP_WAIT_MS = 60_000
// How often a batch waiting for the snapshot looks at it again.
const SNAPSHOT_POLL_MS = 20

export interface DeliveryEngine {
  /** The `notifications.deliveries` consumer's handler: records, then commits. */
  readonly handler: BatchHandler
  readonly deliveries: DeliveryLog
  readonly scheduler: QueueScheduler
  readonly publisher: OutcomePublisher
  /**
   * A configuration was disabled: its queue's head is attempted at once, a retry hours away
   * included, and settles as skipped (`configuration_disabled`), and the deliveries behind it
   * follow, those waiting for their retries too (with `maxInFlight` above 1). Enabled again
   * before an attempt runs, that delivery is sent instead.
   */
  configurationDisabled(configurationId: string): void
  /**
   * At start-up: the configurations disabled or deleted while Herald was down, whose queues
   * settle as `configurationDisabled` says. Where deliverers share the queues (Kafka), this one's
   * share is not known yet: a queue it comes to serve within `START_OWNERSHIP_WAIT_MS` settles then.
   */
  settleAtStart(configurationIds: Iterable<string>): void
  /**
   * A configuration changed in what its deliveries are sent to or with (its owner fixed its
   * URL, say): a delivery of it waiting for a retry, however far off, is attempted at once,
   * once, and the deliveries behind it follow. One that fails again waits for its schedule's
   * next step, as it would have.
   */
  configurationChanged(configurationId: string): void
  /**
   * Shutdown begins: a batch waiting for the configurations (`snapshot`) stops waiting and
   * fails retriably, recording nothing (it is consumed again after the next start). Called
   * before `handler`'s consumer is stopped, which waits for the batch in progress; `stop` does
   * it too.
   */
  halt(): void
  /**
   * Takes no more work, lets attempts in progress finish for up to `graceMs` (aborting the
   * rest, which are attempted again after the next start), then publishes what they recorded.
   */
  stop(graceMs: number): Promise<void>
}

/**
 * The deliverer: the batch handler that records deliveries, the per-configuration queues
 * that attempt them from the delivery log, and the outcome publisher. The read model must
 * follow the store (`view.follow(store)`); every change it commits wakes the queues, so due
 * retries left by a previous run start as soon as it has caught up.
 *
 * @example
 * view.follow(deliveryStore)
 * const engine = startDeliveryEngine({ store: deliveryStore, view, log, outcomesTopic: 'notifications.outcomes',
 *   getConfiguration, send: channels.send, uiUrl: null, timeoutMs: 15_000, logger, clock: Date.now, newId: randomUUID })
 * await log.consume({ groupId: 'herald-deliverer', topics: ['notifications.deliveries'] }, engine.handler)
 */
export const startDeliveryEngine = (options: DeliveryEngineOptions): DeliveryEngine => {
  const { view, logger, clock, maxInFlight } = options
  const monotonic = options.monotonic ?? (() => performance.now())
  const policy = options.policy ?? DEFAULT_RETRY_POLICY
  // A queue's window is asked of the delivery it handed out last, synchronously, each time the
  // scheduler looks for work. Looking the configuration up there would open its secrets at
  // every look; instead, every attempt's own lookup (the first thing it does, so done by the
  // time the scheduler asks right after handing the delivery out) leaves the configuration's
  // `maxInFlight` here. A queue's window is thus what its configuration said when its latest
  // delivery was handed out, and a change applies to every delivery sent after it, those queued
  // before it included; recorded on each delivery when it was requested, it would hold a queued
  // backlog to the old value.
  const ownWindows = new Map<string, number>()
  const getConfiguration = (configurationId: string): DeliverableConfiguration | undefined => {
    const found = options.getConfiguration(configurationId)
    if (found?.maxInFlight === undefined) ownWindows.delete(configurationId)
    else ownWindows.set(configurationId, found.maxInFlight)
    return found
  }
  const windowOf = ({ endpoint, configurationId }: StoredDelivery): number =>
    // Tickets go one at a time whatever is configured: filing them in turn is what finds the
    // open issue of a ticket key before a repeat could file a second one.
    endpoint === 'github' || endpoint === 'jira'
      ? 1
      : (ownWindows.get(configurationId) ?? maxInFlight?.[endpoint] ?? 1)
  const deliveries = createDeliveryLog({
    store: options.store,
    clock,
    newId: options.newId,
    origin: view.instanceId,
  })
  const attempt = createAttemptRunner({
    ...options,
    getConfiguration,
    view,
    log: deliveries,
    policy,
    monotonic,
    rateLimits: options.rateLimits ?? DEFAULT_RATE_LIMITS,
    limiter: createRateLimiter(),
    random: options.random ?? Math.random,
    sustainedFailureMs: options.sustainedFailureMs ?? 0,
  })
  const scheduler = startQueueScheduler<StoredDelivery>({
    // No retry waits longer than the policy's longest wait, whatever clock recorded it.
    source: boundWaits(view, { maxWaitMs: longestRetryWait(policy), clock, monotonic }),
    queueOf: (delivery) => delivery.configurationId,
    attempt,
    concurrency: options.concurrency ?? 256,
    window: windowOf,
    clock,
    monotonic,
    ...(options.queueOwnedFrom === undefined ? {} : { queueOwnedFrom: options.queueOwnedFrom }),
    onError: (error, delivery) =>
      logger('error', 'delivery.attempt_failed', {
        delivery_id: delivery.deliveryId,
        configuration_id: delivery.configurationId,
        error: errorText(error),
      }),
    onReadError: (error) => logger('error', 'delivery.queues_unreadable', { error: errorText(error) }),
  })
  const stopWaking = view.onChange(() => scheduler.wake())
  const publisher = startOutcomePublisher({
    view,
    log: options.log,
    topic: options.outcomesTopic,
    onError: (error) =>
      logger('error', 'delivery.outcomes_publish_failed', {
        topic: options.outcomesTopic,
        error: errorText(error),
      }),
  })
  const { snapshot } = options
  const snapshotWaitMs = options.snapshotWaitMs ?? SNAPSHOT_WAIT_MS
  // Ends the waits of batches in progress when the engine stops: they fail, recording nothing.
  const halted = new AbortController()
  /** Resolves once `snapshot` has reached `routedAt`, or rejects retriably after `snapshotWaitMs`. */
  const awaitConfigurations = async (routedAt: number): Promise<void> => {
    if (snapshot === undefined || snapshot.position() >= routedAt) return
    const started = performance.now()
    while (performance.now() - started < snapshotWaitMs && !halted.signal.aborted) {
      await sleep(SNAPSHOT_POLL_MS, undefined, { signal: halted.signal }).catch(() => undefined)
      if (snapshot.position() >= routedAt) return
    }
    const at = snapshot.position()
    if (at >= routedAt) return
    const recorded = !halted.signal.aborted && snapshot.current?.() === true
    logger('warn', 'delivery.configurations_behind', {
      configurations_at: at,
      routed_at: routedAt,
      waited_ms: Math.round(performance.now() - started),
      recorded,
      ...(recorded
        ? {
            hint: 'the configurations read are current, yet older than those the batch was routed with (a restored store?): recorded with them',
          }
        : {}),
    })
    if (!recorded)
      throw new UnavailableError(
        `the configurations this deliverer reads are as of store position ${at}, behind position ${routedAt} the batch was routed with: it is consumed again`,
        { context: { configurationsAt: at, routedAt } },
      )
  }
  const handler = createDeliveryRequestHandler({ deliveries, logger, awaitConfigurations })
  let stopping: Promise<void> | undefined
  return {
    handler,
    deliveries,
    scheduler,
    publisher,
    configurationDisabled: (configurationId) => scheduler.serveHeadNow(configurationId),
    settleAtStart: (configurationIds) => {
      for (const configurationId of configurationIds)
        scheduler.serveHeadNow(configurationId, { waitForOwnerMs: START_OWNERSHIP_WAIT_MS })
    },
    configurationChanged: (configurationId) => scheduler.serveHeadNow(configurationId),
    halt: () => halted.abort(),
    stop: (graceMs) => {
      stopping ??= (async () => {
        halted.abort()
        stopWaking()
        // Each attempt returns once the read model shows its outcome, so all are there to publish.
        await scheduler.stop(graceMs)
        await publisher.stop()
      })()
      return stopping
    },
  }
}
