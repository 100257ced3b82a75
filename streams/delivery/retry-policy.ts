/**
 * When a failed delivery is tried again: plain data, as the configuration gives it
 * (`notifications.delivery.retry_schedule_ms`, `…retry_jitter_percent`).
 */
export interface RetryPolicy {
  /** The wait before each retry, in order: `[0, 5000]` retries once at once, then once 5 s later, then gives up. */
  readonly scheduleMs: readonly number[]
  /** Each wait varies by up to this fraction either way, so endpoints that failed together are not retried in lockstep (0.2: ±20 %). */
  readonly jitter: number
  /** The longest wait a `Retry-After` is honoured for; a longer one is cut to this. */
  readonly maxRetryAfterMs: number
}

/**
 * The longest wait before a retry, whatever the schedule, its jitter or a `Retry-After` say: the
 * next attempt's time is now plus the wait, and past about 8.64e15 ms that is no date at all
 * (recording it would throw, and the delivery be sent again and again). The configuration
 * refuses a longer step (`notifications.delivery.retry_schedule_ms`); this holds for any policy.
 */
export const MAX_RETRY_WAIT_MS = 7 * 86_400_000

/** Issue 6: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — about 28 hours in all. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
]

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  scheduleMs: DEFAULT_RETRY_SCHEDULE_MS,
  jitter: 0.2,
  maxRetryAfterMs: 10 * 3_600_000,
}

/**
 * The wait before the next attempt after a retriable failure, or undefined when the schedule
 * is exhausted (dead-letter it). `failures` counts the retriable failures before this one
 * since the delivery was requested or replayed. The wait is the schedule's step with jitter,
 * but never shorter than what the endpoint asked for with `Retry-After`, and never longer than
 * `MAX_RETRY_WAIT_MS`. Pure: `random`
 * returns a number in [0, 1).
 *
 * @example
 * retryDelay(DEFAULT_RETRY_POLICY, 1, undefined, () => 0.5) // 5000
 * retryDelay(DEFAULT_RETRY_POLICY, 0, 30_000, () => 0.5) // 30000: Retry-After wins over "immediately"
 * retryDelay(DEFAULT_RETRY_POLICY, 8, undefined, Math.random) // undefined: dead-letter
 */
export const retryDelay = (
  policy: RetryPolicy,
  failures: number,
  retryAfterMs: number | undefined,
  random: () => number,
): number | undefined => {
  const step = policy.scheduleMs[failures]
  if (step === undefined) return undefined
  const jittered = Math.round(step * (1 + policy.jitter * (2 * random() - 1)))
  const asked = retryAfterMs === undefined ? 0 : Math.min(Math.max(0, retryAfterMs), policy.maxRetryAfterMs)
  return Math.min(MAX_RETRY_WAIT_MS, Math.max(0, jittered, asked))
}

/**
 * The longest wait before a retry `policy` gives (`retryDelay`): its longest step with the most
 * jitter, or the longest `Retry-After` honoured, whichever is longer, within `MAX_RETRY_WAIT_MS`.
 * A retry recorded further off than this from now was timed by another clock.
 *
 * @example
 * longestRetryWait(DEFAULT_RETRY_POLICY) // 43_200_000: 10 h and 20 %
 */
export const longestRetryWait = (policy: RetryPolicy): number =>
  Math.min(
    MAX_RETRY_WAIT_MS,
    Math.max(Math.ceil(Math.max(0, ...policy.scheduleMs) * (1 + policy.jitter)), policy.maxRetryAfterMs),
  )
