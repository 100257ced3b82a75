import { ValidationError } from '../../errors/index.ts'
import type { Logger } from '../../observability/index.ts'
import type { OutgoingMessage } from '../../ports/event-log.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import type { AccountScope } from '../sql.ts'
import { computeMetricValues } from './compute.ts'
import { METRICS } from './definitions.ts'

/** One value of one metric for one account: the `reports.metrics` topic's `MetricDataPoint`. */
export interface MetricDataPoint {
  readonly account: string
  readonly metric: string
  readonly value: number
  /** The instant the value describes, RFC 3339. */
  readonly collectedAt: string
  /** Seconds between points. */
  readonly interval: number
}

export interface MetricsRecorderOptions {
  readonly warehouse: Warehouse
  /** Seconds between data points: `reports.cycle_timers.metrics`. */
  readonly intervalSeconds: number
  readonly clock?: () => number
  /** Receives each instant's points once they are stored, e.g. to publish them to `reports.metrics`. */
  readonly publish?: (points: readonly MetricDataPoint[]) => Promise<void>
  readonly logger?: Logger
}

export interface MetricsRecorder {
  /**
   * Records every metric for every account as of the latest interval boundary at or before
   * `at` (default: now), and returns the points. Boundaries are multiples of the interval
   * since the epoch, so two recorders, or a retry, write the same instant and ReplacingMergeTree
   * keeps one (the later recording: its `recorded_at` is past every earlier one's, whatever
   * the clock says). With `claim`, it is checked before the points are published: a recording
   * whose claim on the boundary may have passed to another instance publishes nothing.
   */
  record(at?: number, claim?: { assertHeld(): void }): Promise<readonly MetricDataPoint[]>
  /**
   * Records the points of `accounts` as of the boundary at or before `at` again, and publishes
   * them: events with a time before it were projected after it was recorded
   * (`startMetricsSchedule`'s correction). The new points replace the old ones.
   */
  correct(at: number, accounts: readonly string[]): Promise<readonly MetricDataPoint[]>
  /**
   * Records the points of every boundary in `[from, to]` from history, e.g. after a metric was
   * added. Publishes nothing: downstream consumers get live points only.
   */
  backfill(from: number, to: number): Promise<number>
  /**
   * The latest `limit` boundaries of this interval `metric_points` holds points of (recorded by
   * an earlier run, another instance or a backfill), newest first, in milliseconds.
   */
  recorded(limit: number): Promise<readonly number[]>
}

const toTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '')

/**
 * The metric data point job, for the composition root to schedule every `intervalSeconds`
 * (and not at all while data ingress is off). Values are computed as of the boundary instant
 * from the history tables, so a point describes exactly that instant whenever it is recorded
 * and however late the projection was.
 *
 * @example
 * const recorder = createMetricsRecorder({ warehouse, intervalSeconds: 3600, publish })
 * setInterval(() => recorder.record().catch(report), 3600_000).unref()
 */
export const createMetricsRecorder = (options: MetricsRecorderOptions): MetricsRecorder => {
  const { warehouse, intervalSeconds } = options
  if (!Number.isInteger(intervalSeconds) || intervalSeconds < 1) {
    throw new ValidationError('the metrics interval must be a whole number of seconds', [
      { path: 'intervalSeconds', message: 'must be an integer of at least 1' },
    ])
  }
  const clock = options.clock ?? Date.now
  const intervalMs = intervalSeconds * 1000
  const boundary = (ms: number) => Math.floor(ms / intervalMs) * intervalMs

  /** The latest `recorded_at` of the points of `scope` at `instant`, in milliseconds (0: none). */
  const lastRecordedAt = async (instant: number, scope: AccountScope): Promise<number> => {
    const accounts = 'all' in scope ? '' : 'AND account IN {accounts:Array(String)}'
    const [row] = await warehouse.query<{ at: number | string }>(
      `SELECT toUnixTimestamp64Milli(max(recorded_at)) AS at FROM metric_points
        WHERE collected_at = fromUnixTimestamp64Milli({instant:Int64}, 'UTC') ${accounts}`,
      { instant, ...('all' in scope ? {} : { accounts: scope.accounts }) },
    )
    return Number(row?.at ?? 0)
  }

  const store = async (instant: number, scope: AccountScope = { all: true }): Promise<MetricDataPoint[]> => {
    // Taken before the tables are read: of two recordings of an instant (a correction, another
    // instance), the table keeps the one that read them later, which saw every event the other did.
    // Past every earlier recording of these points, whatever the clock says: a clock stepped back,
    // or another instance's behind, would otherwise have the table keep the older points.
    const recordedAt = toTime(Math.max(clock(), (await lastRecordedAt(instant, scope)) + 1))
    const values = await computeMetricValues(warehouse, scope, instant)
    const collectedAt = new Date(instant).toISOString()
    const points: MetricDataPoint[] = []
    const rows: object[] = []
    for (const [account, metrics] of values) {
      for (const definition of METRICS) {
        const value = metrics.get(definition.id) ?? 0
        points.push({ account, metric: definition.id, value, collectedAt, interval: intervalSeconds })
        rows.push({
          account,
          metric_id: definition.id,
          collected_at: toTime(instant),
          value,
          interval_seconds: intervalSeconds,
          recorded_at: recordedAt,
        })
      }
    }
    await warehouse.insert('metric_points', rows)
    return points
  }

  /** Stores and publishes the points of `scope` as of the boundary at or before `at`. */
  const recordAt = async (at: number, scope?: AccountScope, claim?: { assertHeld(): void }) => {
    const started = clock()
    const instant = boundary(at)
    const points = await store(instant, scope)
    claim?.assertHeld()
    await options.publish?.(points)
    options.logger?.('info', 'reports.metrics_recorded', {
      collected_at: new Date(instant).toISOString(),
      points: points.length,
      ...(scope === undefined ? {} : { corrected: true }),
      ms: clock() - started,
    })
    return points
  }

  return {
    record: (at, claim) => recordAt(at ?? clock(), undefined, claim),
    correct: (at, accounts) => recordAt(at, { accounts }),
    backfill: async (from, to) => {
      let count = 0
      for (
        let instant = boundary(from) + (boundary(from) < from ? intervalMs : 0);
        instant <= to;
        instant += intervalMs
      ) {
        count += (await store(instant)).length
      }
      return count
    },
    recorded: async (limit) => {
      const rows = await warehouse.query<{ at: number | string }>(
        `SELECT DISTINCT toUnixTimestamp64Milli(collected_at) AS at FROM metric_points
          WHERE interval_seconds = {interval:UInt32} ORDER BY at DESC LIMIT {limit:UInt32}`,
        { interval: intervalSeconds, limit },
      )
      return rows.map((row) => Number(row.at))
    },
  }
}

const encoder = new TextEncoder()

/** A point as a `reports.metrics` message: keyed by account, JSON value. */
export const metricPointMessage = (point: MetricDataPoint): OutgoingMessage => ({
  key: point.account,
  value: encoder.encode(JSON.stringify(point)),
  headers: { 'content-type': 'application/json', 'herald-type': 'MetricDataPoint' },
})
