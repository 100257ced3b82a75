import { setTimeout as sleep } from 'node:timers/promises'
import { isLeft } from 'fp-ts/lib/Either.js'
import {
  type AttemptDetails,
  type AttemptOutcome,
  type DeliveryLog,
  type DeliveryReadModel,
  DeliveryStateError,
  type RecordedAttempt,
  type Resolution,
  type StoredDelivery,
} from '../../src/deliveries/index.ts'
import { errorText, isHeraldError, isRetriable } from '../../src/errors/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import { DeliveryDigestCodec } from '../routing/index.ts'
import type {
  ChannelConfiguration,
  ChannelDelivery,
  ChannelFailure,
  ChannelResult,
  DeliveryChannels,
  FailureCode,
} from './channels/index.ts'
import { type RateLimiter, type RateLimits, rateLimitTarget } from './rate-limit.ts'
import { type RetryPolicy, retryDelay } from './retry-policy.ts'
import type { AttemptAnswer } from './scheduler.ts'

/** A configuration as the deliverer needs it: the channel's view with secrets opened, and its switch. */
export interface DeliverableConfiguration {
  readonly enabled: boolean
  /** false: an admin switched its endpoint type off system-wide, and nothing is sent to it (absent: on). */
  readonly endpointEnabled?: boolean
  readonly channel: ChannelConfiguration
  /** When it was last changed (ms): a failure streak counts from here at the earliest, so a fixed or re-enabled configuration gets a fresh start. */
  readonly changedAt?: number
  /**
   * Its own deliveries in flight at once (api: `max_in_flight`), over the engine's default for
   * its endpoint type (`maxInFlight`); ignored for GitHub and Jira, which go one at a time.
   */
  readonly maxInFlight?: number
  /**
   * Why nothing can be sent with it (a stored secret no key decrypts): each attempt fails so
   * without a send, and is retried, dead-lettered and counted toward a sustained failure as a
   * failed send is.
   */
  readonly unusable?: {
    readonly kind: 'retriable' | 'permanent'
    readonly code: FailureCode
    readonly error: string
  }
}

/**
 * A configuration to switch off for how it failed: for the whole sustained-failure period, or
 * its endpoint answered 410 Gone.
 */
export interface ConfigurationFailure {
  readonly configurationId: string
  readonly account: string
  readonly endpoint: string
  /** Ms: the first failure after its last success (or its last change); a 410 with none before it: its own time. */
  readonly failingSince: number
  /** Ms: when the configuration the failing attempt used was last changed (`DeliverableConfiguration.changedAt`). */
  readonly changedAt?: number
  /** The last attempt's scrubbed error. */
  readonly lastError: string | null
}

export interface AttemptRunnerOptions {
  readonly view: Pick<DeliveryReadModel, 'waitFor' | 'failingSince'>
  readonly log: Pick<DeliveryLog, 'record'>
  /** The configuration as of now; undefined when it does not exist (any more). */
  readonly getConfiguration: (
    configurationId: string,
  ) => DeliverableConfiguration | undefined | Promise<DeliverableConfiguration | undefined>
  /** The channel port (`createDeliveryChannels(...).send`). */
  readonly send: DeliveryChannels['send']
  /** `ui_url`: messages link into the UI when set. */
  readonly uiUrl: string | null
  /** The time limit of one request (`notifications.webhook_timeout_ms`). */
  readonly timeoutMs: number
  /**
   * The time limit of one attempt, all its requests together
   * (`notifications.delivery.attempt_timeout_ms`; default `timeoutMs`): past it the send is
   * aborted and the attempt fails as a retriable `timeout`.
   */
  readonly attemptTimeoutMs?: number
  readonly policy: RetryPolicy
  readonly rateLimits: RateLimits
  readonly limiter: RateLimiter
  /** Wall-clock milliseconds: what is recorded (when an attempt was made, when the next is due). */
  readonly clock: () => number
  /**
   * Milliseconds of a clock that never steps (default `performance.now`): what rate limits and
   * `Retry-After` holds are timed by, so a step of the wall clock neither stretches nor cuts them.
   */
  readonly monotonic?: () => number
  /** [0, 1): the retry jitter. */
  readonly random: () => number
  readonly logger: Logger
  /** After each recorded outcome: metrics (`herald_deliveries_total{endpoint,outcome}`). */
  readonly onOutcome?: (outcome: AttemptOutcome, delivery: StoredDelivery) => void
  /**
   * The endpoint answered that it no longer exists (HTTP 410): its configuration should be
   * disabled, unless it changed since `failure.changedAt` (what the attempt sent with).
   */
  readonly onGone?: (failure: ConfigurationFailure) => void | Promise<void>
  /** Failing for this long, with no success in between, disables a configuration; 0 never does. */
  readonly sustainedFailureMs: number
  /**
   * Resolves whether the failure was dealt with (the configuration disabled, or left alone on
   * purpose): then it is not reported again for this streak. false (the store could not take
   * the disable) reports it again at the configuration's next failed attempt.
   */
  readonly onSustainedFailure?: (failure: ConfigurationFailure) => boolean | Promise<boolean>
}

const skipReason = (configuration: DeliverableConfiguration | undefined, delivery: StoredDelivery) =>
  configuration === undefined
    ? 'configuration_missing'
    : !configuration.enabled
      ? 'configuration_disabled'
      : configuration.endpointEnabled === false
        ? 'endpoint_disabled'
        : configuration.channel.account !== delivery.account ||
            configuration.channel.endpoint !== delivery.endpoint
          ? 'configuration_mismatch'
          : undefined

/** What a channel is handed for a delivery read back from the read model (`event` parsed only if read). */
export const channelDelivery = (delivery: StoredDelivery): ChannelDelivery => {
  const digest = delivery.digest === undefined ? undefined : DeliveryDigestCodec.decode(delivery.digest)
  return {
    deliveryId: delivery.deliveryId,
    account: delivery.account,
    configurationId: delivery.configurationId,
    // Read (and so parsed) only by a channel that needs it: a webhook sends `eventText`.
    get event() {
      return delivery.event
    },
    eventText: delivery.eventText,
    createdAt: delivery.createdAt,
    // The router wrote it with this codec; one that no longer reads is sent as its first event.
    ...(digest === undefined || isLeft(digest) ? {} : { digest: digest.right }),
  }
}

// Waits between tries to record an outcome the store could not take: from the first, doubling to the last.
const RECORD_RETRY_FIRST_MS = 100
const RECORD_RETRY_MAX_MS = 5_000

/**
 * Runs `record` (an attempt's outcome, already sent) until the store takes it: a retriable
 * failure (the store's writer stopped and is being started again, a store server unreachable)
 * is tried again after 100 ms, doubling up to 5 s, for as long as it lasts. Giving up would
 * leave the delivery at its head to be sent again; a delivery's event ids are derived from its
 * attempt, so a try whose answer was lost but which was written is not written twice. Stopping
 * (`signal`) ends the wait with the last error: the next start sends it again.
 */
export const recordWhileStoreRecovers = async <T>(
  record: () => Promise<T>,
  { signal, onRetry }: { signal: AbortSignal; onRetry: (error: unknown, waitMs: number) => void },
): Promise<T> => {
  for (let waitMs = RECORD_RETRY_FIRST_MS; ; waitMs = Math.min(waitMs * 2, RECORD_RETRY_MAX_MS)) {
    try {
      return await record()
    } catch (error) {
      if (!isRetriable(error) || signal.aborted) throw error
      onRetry(error, waitMs)
      await sleep(waitMs, undefined, { signal }).catch(() => undefined)
      if (signal.aborted) throw error
    }
  }
}

/** What a channel threw (it should not: channels classify) as a failure naming no detail that could hold a secret. */
const thrown = (error: unknown): ChannelResult => ({
  ok: false,
  kind: isRetriable(error) ? 'retriable' : 'permanent',
  code: 'internal',
  status: null,
  error: `internal error: ${isHeraldError(error) ? error.code : error instanceof Error ? error.name : typeof error}`,
  latencyMs: 0,
})

/**
 * A send's signal: aborted when `stop` is (the deliverer stopping) or after `ms`. A timer
 * cleared when the send is done, where `AbortSignal.timeout` and `AbortSignal.any` would cost
 * four times as much per attempt (its timer lives on for the whole limit).
 */
const timeLimited = (stop: AbortSignal, ms: number) => {
  const controller = new AbortController()
  let overran = false
  const timer = setTimeout(() => {
    overran = true
    controller.abort(new DOMException('the attempt reached its time limit', 'TimeoutError'))
  }, ms)
  timer.unref()
  const onStop = () => controller.abort(stop.reason)
  if (stop.aborted) onStop()
  else stop.addEventListener('abort', onStop, { once: true })
  return {
    signal: controller.signal,
    overran: () => overran,
    done: () => {
      clearTimeout(timer)
      stop.removeEventListener('abort', onStop)
    },
  }
}

/**
 * A send aborted at the attempt's time limit: a retriable timeout, whatever the abort made of
 * it, keeping the tickets it settled first (a retry finds them and does not file them again).
 */
const overran = (result: ChannelFailure, attemptTimeoutMs: number): ChannelFailure => ({
  ok: false,
  kind: 'retriable',
  code: 'timeout',
  status: null,
  error: `the attempt took longer than ${attemptTimeoutMs} ms (notifications.delivery.attempt_timeout_ms)`,
  latencyMs: result.latencyMs,
  ...(result.tickets === undefined ? {} : { tickets: result.tickets }),
})

const detailsOf = (result: ChannelResult): AttemptDetails =>
  result.ok
    ? {
        ok: true,
        status: result.status,
        latencyMs: result.latencyMs,
        code: null,
        error: null,
        response: result.response,
      }
    : {
        ok: false,
        status: result.status,
        latencyMs: result.latencyMs,
        code: result.code,
        error: result.error,
        response: null,
      }

/**
 * One attempt of one delivery, as the queue scheduler hands it out: checks the configuration,
 * waits its turn under the target's rate limit, sends through the channel, decides what comes
 * next by the retry policy (honouring `Retry-After`), records it in the delivery log and waits
 * until the read model shows it; a delivery sent (or skipped) lets its queue go on as soon as
 * it is recorded (`release`), without that wait. Nothing recorded, logged or published holds a
 * secret: the channels scrub what they return.
 *
 * @example
 * const attempt = createAttemptRunner({ view, log, getConfiguration, send: channels.send, uiUrl: null,
 *   timeoutMs: 15_000, policy: DEFAULT_RETRY_POLICY, rateLimits: DEFAULT_RATE_LIMITS,
 *   limiter: createRateLimiter(), clock: Date.now, random: Math.random, logger, sustainedFailureMs: 0 })
 */
export const createAttemptRunner = (options: AttemptRunnerOptions) => {
  const { view, log, send, clock, logger, policy } = options
  const monotonic = options.monotonic ?? (() => performance.now())
  const attemptTimeoutMs = options.attemptTimeoutMs ?? options.timeoutMs
  // Configurations whose streak was dealt with, by the change they were at: reported once.
  const reported = new Map<string, number>()
  // Being reported: attempts of one configuration in flight together report it once.
  const reporting = new Set<string>()

  const fields = (delivery: StoredDelivery) => ({
    delivery_id: delivery.deliveryId,
    configuration_id: delivery.configurationId,
    account: delivery.account,
    event_id: delivery.eventId,
    event_type: delivery.eventType,
    attempt: delivery.attempts + 1,
  })

  const failureOf = (
    delivery: StoredDelivery,
    configuration: DeliverableConfiguration,
    failingSince: number,
    lastError: string | null,
  ): ConfigurationFailure => ({
    configurationId: delivery.configurationId,
    account: delivery.account,
    endpoint: delivery.endpoint,
    failingSince,
    lastError,
    ...(configuration.changedAt === undefined ? {} : { changedAt: configuration.changedAt }),
  })

  /** What a failure comes to: retried by the policy until it is used up, or refused for good. */
  const failedAs = (result: ChannelFailure, delivery: StoredDelivery): Resolution => {
    if (result.kind !== 'retriable')
      return { outcome: 'rejected', reason: result.kind === 'gone' ? 'gone' : result.code }
    const delay = retryDelay(policy, delivery.roundFailures, result.retryAfterMs, options.random)
    return delay === undefined
      ? { outcome: 'dead_lettered', reason: result.code }
      : {
          outcome: 'failed',
          reason: result.code,
          nextAttemptAt: clock() + delay,
          retryAfterMs: result.retryAfterMs ?? null,
        }
  }

  const checkSustained = async (
    delivery: StoredDelivery,
    configuration: DeliverableConfiguration,
    lastError: string | null,
  ) => {
    if (options.sustainedFailureMs <= 0 || options.onSustainedFailure === undefined) return
    const since = view.failingSince(delivery.configurationId)
    if (since === null) return
    const changedAt = configuration.changedAt ?? 0
    const streakStart = Math.max(since, changedAt)
    if (clock() - streakStart < options.sustainedFailureMs) return
    const id = delivery.configurationId
    if (reported.get(id) === changedAt || reporting.has(id)) return
    reporting.add(id)
    try {
      // Marked only once dealt with: a disable the store refused is asked for again.
      if (await options.onSustainedFailure(failureOf(delivery, configuration, streakStart, lastError)))
        reported.set(id, changedAt)
    } finally {
      reporting.delete(id)
    }
  }

  return async (
    delivery: StoredDelivery,
    signal: AbortSignal,
    release: () => void = () => undefined,
  ): Promise<AttemptAnswer> => {
    const endpoint = delivery.endpoint
    // First, before any wait: the engine's lookup notes the configuration's window for the
    // queue, which the scheduler asks as soon as this attempt has started.
    const configuration = await options.getConfiguration(delivery.configurationId)
    const skipped = skipReason(configuration, delivery)
    let details: AttemptDetails | null = null
    let resolution: Resolution
    let target: string | undefined
    if (skipped !== undefined || configuration === undefined) {
      resolution = { outcome: 'skipped', reason: skipped ?? 'configuration_missing' }
    } else if (configuration.unusable !== undefined) {
      const result: ChannelResult = { ok: false, ...configuration.unusable, status: null, latencyMs: 0 }
      details = detailsOf(result)
      resolution = failedAs(result, delivery)
    } else {
      const limited = rateLimitTarget(configuration.channel)
      target = limited
      const perMinute = options.rateLimits[configuration.channel.endpoint]
      const wait = options.limiter.take(limited, perMinute, monotonic())
      if (wait > 0) {
        logger('debug', `delivery.${endpoint}.rate_limited`, { ...fields(delivery), wait_ms: wait })
        return { deferMs: wait }
      }
      let result: ChannelResult
      const limit = timeLimited(signal, attemptTimeoutMs)
      const pace = async (): Promise<void> => {
        for (let untilFree = options.limiter.take(limited, perMinute, monotonic()); untilFree > 0; ) {
          await sleep(untilFree, undefined, { signal: limit.signal })
          untilFree = options.limiter.take(limited, perMinute, monotonic())
        }
      }
      try {
        result = await send(channelDelivery(delivery), configuration.channel, {
          uiUrl: options.uiUrl,
          timeoutMs: options.timeoutMs,
          signal: limit.signal,
          pace,
        })
      } catch (error) {
        result = thrown(error)
      } finally {
        limit.done()
      }
      // Stopping: nothing is recorded, so the next start attempts it again.
      if (signal.aborted) {
        logger('info', `delivery.${endpoint}.interrupted`, fields(delivery))
        return undefined
      }
      if (limit.overran() && !result.ok) result = overran(result, attemptTimeoutMs)
      details = detailsOf(result)
      // What went wrong although the send succeeded (a template override replaced by the
      // default, a label GitHub dropped, so repeats would file new issues): for the operator.
      if (result.ok && result.notes !== undefined && result.notes.length > 0)
        logger('warn', `delivery.${endpoint}.noted`, { ...fields(delivery), notes: result.notes })
      if (result.ok) resolution = { outcome: 'sent' }
      else {
        const retryAfter = result.kind === 'retriable' ? result.retryAfterMs : undefined
        // An endpoint that asked for a wait (429, `Retry-After`, GitHub's reset) holds every
        // configuration sending to it; a wait of Herald's own (a ticket filing not confirmed
        // yet, no answer behind it) holds only this delivery.
        if (retryAfter !== undefined && result.status !== null)
          options.limiter.holdUntil(target, monotonic() + Math.min(retryAfter, policy.maxRetryAfterMs))
        resolution = failedAs(result, delivery)
      }
    }

    let recorded: RecordedAttempt
    try {
      recorded = await recordWhileStoreRecovers(() => log.record(delivery, details, resolution), {
        signal,
        onRetry: (error, waitMs) =>
          logger('warn', `delivery.${endpoint}.record_retrying`, {
            ...fields(delivery),
            outcome: resolution.outcome,
            error: errorText(error),
            retry_in_ms: waitMs,
          }),
      })
    } catch (error) {
      if (!(error instanceof DeliveryStateError)) throw error
      // Replayed or recorded elsewhere meanwhile: the read model is about to show it.
      logger('warn', `delivery.${endpoint}.superseded`, { ...fields(delivery), reason: error.message })
      return { deferMs: 250 }
    }
    if (recorded.superseded) {
      // Replayed while it was in flight: the answer is recorded as this attempt's, and the
      // delivery waits, pending, for the replay's first attempt, which its queue makes next.
      await view.waitFor(recorded.position)
      logger('warn', `delivery.${endpoint}.superseded`, {
        ...fields(delivery),
        reason: 'replayed while this attempt was in flight; it is sent again',
        ...(details === null
          ? {}
          : {
              status: details.status,
              latency_ms: details.latencyMs,
              code: details.code,
              error: details.error,
            }),
      })
      return undefined
    }
    const { position } = recorded
    // Settled for good once recorded: the queue's next delivery need not wait for the read
    // model to show it (a crash from here on sends nothing again). An outcome that may change
    // the configuration (a refusal, a retry, dead letters) holds the queue until it is shown.
    if (resolution.outcome === 'sent' || resolution.outcome === 'skipped') release()
    await view.waitFor(position)

    const line = {
      ...fields(delivery),
      ...(details === null
        ? { reason: resolution.outcome === 'skipped' ? resolution.reason : null }
        : {
            status: details.status,
            latency_ms: details.latencyMs,
            code: details.code,
            error: details.error,
          }),
      ...(resolution.outcome === 'failed'
        ? {
            next_attempt_at: new Date(resolution.nextAttemptAt).toISOString(),
            retry_after_ms: resolution.retryAfterMs,
          }
        : {}),
    }
    logger(
      resolution.outcome === 'sent' ? 'info' : 'warn',
      `delivery.${endpoint}.${resolution.outcome}`,
      line,
    )
    options.onOutcome?.(resolution.outcome, delivery)

    if (configuration === undefined || resolution.outcome === 'sent' || resolution.outcome === 'skipped')
      return undefined
    if (resolution.outcome === 'rejected' && resolution.reason === 'gone')
      await options.onGone?.(
        failureOf(
          delivery,
          configuration,
          view.failingSince(delivery.configurationId) ?? clock(),
          details?.error ?? null,
        ),
      )
    await checkSustained(delivery, configuration, details?.error ?? null)
    return undefined
  }
}

export type AttemptRunner = ReturnType<typeof createAttemptRunner>
