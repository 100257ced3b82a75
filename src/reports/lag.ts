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

export interface ProjectionLagOptions {
  readonly warehouse: Warehouse
  /** The projector group's position in the events topic (`EventLog.lag` for it). */
  readonly positions: () => Promise<readonly PartitionLag[]>
  readonly clock: () => number
}

/**
 * The projection lag with the log's head taken into account, so a stopped or stalled projector
 * shows: the larger of the warehouse's view (`projectionLagSeconds`) and, for each partition
 * with messages not projected yet, the age of the oldest of them. Where the log cannot tell
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
  // Per partition: the committed offset it was stuck at, and since when.
  const stuck = new Map<string, { committed: number; since: number }>()
  return async () => {
    const [projected, heads] = await Promise.all([
      projectionLagSeconds(warehouse),
      positions().catch(() => undefined),
    ])
    if (heads === undefined) return projected
    const now = clock()
    let worstMs = 0
    for (const { topic, partition, committed, end, oldestAt } of heads) {
      const key = `${topic}/${partition}`
      if (committed >= end) {
        stuck.delete(key)
        continue
      }
      if (oldestAt !== undefined) {
        worstMs = Math.max(worstMs, now - oldestAt)
        continue
      }
      const seen = stuck.get(key)
      if (seen === undefined || seen.committed !== committed) stuck.set(key, { committed, since: now })
      else worstMs = Math.max(worstMs, now - seen.since)
    }
    return Math.max(projected, worstMs / 1000)
  }
}
