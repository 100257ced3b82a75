/** The bounds of a doubling back-off, in milliseconds. */
export interface Backoff {
  readonly min: number
  readonly max: number
}

/**
 * The wait before retry `attempt` (1 for the first): `min`, doubling with each attempt, never
 * more than `max`. An attempt below 1 waits `min`.
 *
 * @example
 * backoffDelay({ min: 1_000, max: 60_000 }, 3) // 4_000
 */
export const backoffDelay = (bounds: Backoff, attempt: number): number =>
  Math.min(bounds.max, bounds.min * 2 ** Math.max(0, attempt - 1))
