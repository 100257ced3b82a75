import { backoffDelay } from '../backoff.ts'

/** Default `--retry-for`: longer than Herald takes to start again, so a restart is ridden out. */
export const DEFAULT_RETRY_FOR_MS = 60_000
/** Default `--timeout`: how long one request may go without an answer. */
export const DEFAULT_TIMEOUT_MS = 30_000

const BACKOFF = { min: 250, max: 5_000 }

/**
 * How long a client command keeps trying an unreachable or overloaded Herald: retries wait a
 * doubling back-off (250 ms to 5 s) or what Herald's Retry-After says, for as long as
 * `retryForMs` after the first attempt allows.
 */
export interface RetryPolicy {
  /** 0: no retry. */
  readonly retryForMs: number
  readonly sleep: (ms: number) => Promise<void>
  readonly clock: () => number
  /** Told before each wait: why, how long, and how much of the budget is left after it. */
  readonly onRetry?: (reason: string, delayMs: number, leftMs: number) => void
}

/** The statuses worth another attempt: overloaded, starting, or a proxy that found no Herald. */
export const RETRIABLE: ReadonlySet<number> = new Set([429, 502, 503, 504])

/** A Retry-After header (seconds or an HTTP date) in milliseconds, if there is one. */
export const retryAfterMs = (header: string | null): number | undefined => {
  if (header === null) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/** A failure worth another attempt: Herald unreachable, overloaded or starting (429, 502-504). */
export class Retriable extends Error {
  /** How long Herald asked to wait (Retry-After), if it did. */
  readonly delayMs: number | undefined

  constructor(reason: string, delayMs?: number) {
    super(reason)
    this.name = 'Retriable'
    this.delayMs = delayMs
  }
}

/** The retries ran out: the last failure's reason, with how many attempts over how long. */
export class GaveUpError extends Error {
  constructor(reason: string, attempts: number, elapsedMs: number, retryForMs: number) {
    super(
      attempts === 1
        ? `${reason}; not retried (--retry-for ${seconds(retryForMs)})`
        : `${reason}; gave up after ${attempts} attempts over ${seconds(elapsedMs)} (--retry-for ${seconds(retryForMs)})`,
    )
    this.name = 'GaveUpError'
  }
}

/** `1500` → `1.5 s`. */
export const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`

/**
 * Runs `attempt` until it resolves, again after each `Retriable` it throws until `retryForMs`
 * after the first attempt (the last wait cut short to end then); then a `GaveUpError`.
 * Anything else it throws is thrown at once.
 *
 * @example
 * const status = await withRetries(policy, async () => poll())
 */
export const withRetries = async <T>(policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> => {
  const started = policy.clock()
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (error) {
      if (!(error instanceof Retriable)) throw error
      const elapsed = policy.clock() - started
      if (elapsed >= policy.retryForMs) throw new GaveUpError(error.message, n, elapsed, policy.retryForMs)
      // The last wait is cut short, so the last attempt comes as the time runs out.
      const delayMs = Math.min(error.delayMs ?? backoffDelay(BACKOFF, n), policy.retryForMs - elapsed)
      policy.onRetry?.(error.message, delayMs, policy.retryForMs - elapsed - delayMs)
      await policy.sleep(delayMs)
    }
  }
}

/** The words of a retry, for a progress line: `… ; retrying in 500 ms (for up to 59 s more)`. */
export const retryLine = (reason: string, delayMs: number, leftMs: number): string =>
  `${reason}; retrying in ${Math.round(delayMs)} ms (for up to ${seconds(leftMs)} more)`

/**
 * The `fetch` options that bound a request to `timeoutMs`, and the reason to give when it ran
 * out: fetch's own message ("The operation was aborted due to timeout") names no time.
 */
export const timeoutOf = (timeoutMs: number) => ({
  signal: AbortSignal.timeout(timeoutMs),
  reason: `no answer within ${seconds(timeoutMs)} (--timeout)`,
})

/** Whether fetch failed because `timeoutOf`'s signal fired. */
export const isTimeout = (error: unknown): boolean =>
  error instanceof Error &&
  (error.name === 'TimeoutError' || (error.cause as Error | undefined)?.name === 'TimeoutError')
