import { acquireLease, LeaseHeldError } from '../../../projections/migrations/index.ts'
import type { Warehouse } from '../../ports/warehouse.ts'

/** The lease an instance holds while it records a boundary: one recording at a time. */
export const METRIC_POINTS_LEASE = 'metric_points_lock'

/** The boundaries recorded and published, by interval: what the others skip. */
const RECORDED = 'metric_boundaries'

/** A boundary this instance may record: no one else records it while the claim holds. */
export interface BoundaryClaim {
  /** Throws unless the claim certainly still holds: checked before the points are published. */
  assertHeld(): void
  /** Marks the boundary recorded and published, for the others to skip. */
  recorded(): Promise<void>
  /** Gives the claim up (best effort: it runs out by itself otherwise). */
  release(): Promise<void>
}

export type BoundaryClaimResult =
  /** This instance records the boundary, then marks it (`recorded`) and releases the claim. */
  | { readonly claim: BoundaryClaim }
  /**
   * Another instance recorded and published it already; it began reading the tables at or
   * after `beganAt` (the warehouse's clock, milliseconds), so every event stored before then
   * is in its points.
   */
  | { readonly recorded: { readonly beganAt: number } }
  /** Another instance is recording a boundary now: ask again later (its claim runs out should it have died). */
  | { readonly busy: { readonly holder: string; readonly remainingMs: number } }

export interface BoundaryClaimsOptions {
  /** Seconds between boundaries: `reports.cycle_timers.metrics`. */
  readonly intervalSeconds: number
  /**
   * How long a claim lasts unless renewed (default 60 s): how long a boundary waits for
   * another instance should the one recording it die midway.
   */
  readonly leaseMs?: number
}

/**
 * Claims of metric boundaries for Herald instances sharing one warehouse (a ClickHouse
 * server), so that exactly one records and publishes each: without them every instance would
 * record every boundary and publish its points to `reports.metrics` once each.
 *
 * A claim is the warehouse lease `metric_points_lock` (`acquireLease`), asked for without
 * waiting, and a boundary counts as recorded once its row is in `metric_boundaries`, written
 * after its points were stored and published. An instance that dies while it records one
 * leaves it unmarked, and its claim runs out after `leaseMs`: another then records it again,
 * and publishes its points again (at-least-once, as a crash between storing and publishing
 * always did). Marks are kept for 1,000 intervals, as far back as a start-up resumes.
 *
 * @example
 * const claim = createBoundaryClaims(warehouse, { intervalSeconds: 3600 })
 * startMetricsSchedule({ ..., claim })
 */
export const createBoundaryClaims = (
  warehouse: Warehouse,
  options: BoundaryClaimsOptions,
): ((instant: number) => Promise<BoundaryClaimResult>) => {
  const { intervalSeconds } = options
  let created: Promise<void> | undefined
  const ensureTable = () =>
    (created ??= warehouse
      .command(
        `CREATE TABLE IF NOT EXISTS ${RECORDED} (
          interval_seconds UInt32,
          collected_at DateTime64(3, 'UTC'),
          recorded_by String,
          began_at DateTime64(3, 'UTC')
        ) ENGINE = ReplacingMergeTree ORDER BY (interval_seconds, collected_at)
        TTL toDateTime(collected_at) + toIntervalSecond(interval_seconds * 1000)`,
      )
      .catch((error: unknown) => {
        created = undefined
        throw error
      }))

  const markOf = async (instant: number) =>
    (
      await warehouse.query<{ began_at: number | string }>(
        `SELECT toUnixTimestamp64Milli(min(began_at)) AS began_at FROM ${RECORDED}
          WHERE interval_seconds = {interval:UInt32}
            AND collected_at = fromUnixTimestamp64Milli({instant:Int64}, 'UTC')
         HAVING count() > 0`,
        { interval: intervalSeconds, instant },
      )
    )[0]

  return async (instant) => {
    await ensureTable()
    // Marked already: no claim needed to skip it.
    const marked = await markOf(instant)
    if (marked !== undefined) return { recorded: { beganAt: Number(marked.began_at) } }
    let lease: Awaited<ReturnType<typeof acquireLease>>
    try {
      lease = await acquireLease(warehouse, {
        table: METRIC_POINTS_LEASE,
        wait: false,
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      })
    } catch (error) {
      if (error instanceof LeaseHeldError)
        return { busy: { holder: error.holder, remainingMs: error.remainingMs } }
      throw error
    }
    try {
      // Marked by a holder that released the lease since the look above.
      const since = await markOf(instant)
      if (since !== undefined) {
        await lease.release()
        return { recorded: { beganAt: Number(since.began_at) } }
      }
      const [now] = await warehouse.query<{ at: number | string }>(
        'SELECT toUnixTimestamp64Milli(now64(3)) AS at',
      )
      const beganAt = Number(now?.at)
      return {
        claim: {
          assertHeld: () => lease.assertHeld(),
          recorded: () =>
            warehouse.command(
              `INSERT INTO ${RECORDED} (interval_seconds, collected_at, recorded_by, began_at)
               SETTINGS async_insert = 0
               SELECT {interval:UInt32}, fromUnixTimestamp64Milli({instant:Int64}, 'UTC'), {owner:String},
                      fromUnixTimestamp64Milli({began:Int64}, 'UTC')`,
              { interval: intervalSeconds, instant, owner: lease.owner, began: beganAt },
            ),
          release: () => lease.release(),
        },
      }
    } catch (error) {
      await lease.release()
      throw error
    }
  }
}
