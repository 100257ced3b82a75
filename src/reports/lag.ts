import type { Warehouse } from '../ports/warehouse.ts'

/**
 * How far behind the reports are, in seconds, from what the warehouse knows: for each
 * partition, how long the oldest event of its latest projected batch waited between being
 * appended to the log and being stored; the worst partition wins. When the projector keeps up
 * this is a fraction of a second; when it falls behind, it grows with the backlog it works
 * through. (A projector that has stopped altogether is invisible from here; `/ready` and the
 * consumer lag of the log tell that.)
 */
export const projectionLagSeconds = async (warehouse: Warehouse): Promise<number> => {
  const [row] = await warehouse.query<{ lag_ms: number | null }>(
    `SELECT max(dateDiff('millisecond', first_appended_at, projected_at)) AS lag_ms
       FROM projection_progress FINAL`,
  )
  return Math.max(0, row?.lag_ms ?? 0) / 1000
}
