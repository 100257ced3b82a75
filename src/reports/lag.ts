import type { PartitionLag } from '../ports/event-log.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/**
 * How far behind the reports are, in seconds, from what the warehouse knows: for each
 * partition, how long the oldest event of its latest projected batch waited between being
 * appended to the log and being stored; the worst partition wins. When the projector keeps up
 * this is a fraction of a second; when it falls behind, it grows with the backlog it works
 * through. A projector that has stopped altogether is invisible from here; `createProjectionLag`
 * also asks the log.
 */
export const projectionLagSeconds = async (warehouse: Warehouse): Promise<number> => {
  const [row] = await warehouse.query<{ lag_ms: number | null }>(
    `SELECT max(dateDiff('millisecond', first_appended_at, projected_at)) AS lag_ms
       FROM projection_progress FINAL`,
  )
  return Math.max(0, row?.lag_ms ?? 0) / 1000
}

/**
 * `projectionLagSeconds` read once and kept until `changed()`, for a warehouse whose
 * `projection_progress` only this process's projector writes (the embedded one: no other
 * process can open its directory), which calls `changed()` after each batch. Every report
 * answer carries the lag, so this spares each request a query of its own (3–5 ms of chDB).
 * A read that fails is not kept.
 *
 * @example
 * const progress = createProgressView(warehouse)
 * createProjectorHandler({ ..., onProjected: () => progress.changed() })
 * createProjectionLag({ warehouse, clock, positions, projected: progress.read })
 */
export const createProgressView = (warehouse: Warehouse) => {
  let kept: Promise<number> | undefined
  const read = (): Promise<number> => {
    if (kept === undefined) {
      const reading = projectionLagSeconds(warehouse)
      kept = reading
      reading.catch(() => {
        if (kept === reading) kept = undefined
      })
    }
    return kept
  }
  return {
    read,
    changed: (): void => {
      kept = undefined
    },
  }
}

export interface ProjectionLagOptions {
  readonly warehouse: Warehouse
  /** The projector group's position in the events topic (`EventLog.lag` for it). */
  readonly positions: () => Promise<readonly PartitionLag[]>
  readonly clock: () => number
  /** The warehouse's view of the lag; default `projectionLagSeconds(warehouse)` at every call. */
  readonly projected?: () => Promise<number>
}

/**
 * The projection lag with the log's head taken into account, so a stopped or stalled projector
 * (or data ingress switched off) shows: while messages wait, the larger of the warehouse's view
 * (`projectionLagSeconds`) and, for each partition with messages not projected yet, the age of
 * the oldest of them; when none waits, 0, since every event published is in the tables. Where the log cannot tell
 * that age (Kafka), a backlog counts from the first time this function saw the partition stuck
 * at its position — a lower bound that grows while the projector makes no progress. If the log
 * cannot be asked, the warehouse's view is answered alone.
 *
 * @example
 * const lag = createProjectionLag({ warehouse, clock: Date.now,
 *   positions: () => log.lag('herald-projector', ['engine.events']) })
 * await lag() // 0.4
 */
export const createProjectionLag = (options: ProjectionLagOptions): (() => Promise<number>) => {
  const { warehouse, positions, clock } = options
  const projectedLag = options.projected ?? (() => projectionLagSeconds(warehouse))
  // Per partition: the committed offset it was stuck at, and since when.
  const stuck = new Map<string, { committed: number; since: number }>()
  return async () => {
    const [projected, heads] = await Promise.all([projectedLag(), positions().catch(() => undefined)])
    // A log that cannot be asked, or knows no partition, leaves the warehouse's view.
    if (heads === undefined || heads.length === 0) return projected
    const now = clock()
    let worstMs = 0
    let waiting = false
    for (const { topic, partition, committed, end, oldestAt } of heads) {
      const key = `${topic}/${partition}`
      if (committed >= end) {
        stuck.delete(key)
        continue
      }
      waiting = true
      if (oldestAt !== undefined) {
        worstMs = Math.max(worstMs, now - oldestAt)
        continue
      }
      const seen = stuck.get(key)
      if (seen === undefined || seen.committed !== committed) stuck.set(key, { committed, since: now })
      else worstMs = Math.max(worstMs, now - seen.since)
    }
    // Nothing waits in the log: every event published is in the tables, however long the
    // last of them waited (after a pause, that wait would otherwise stay the answer).
    if (!waiting) return 0
    return Math.max(projected, worstMs / 1000)
  }
}
