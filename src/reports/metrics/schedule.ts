import type { Logger } from '../../observability/index.ts'

/** How long past an instant events may still be appended with a time before it, by default. */
export const DEFAULT_SETTLE_MS = 1_000

export interface MetricsScheduleOptions {
  /** Records every metric as of `instant` (a boundary), e.g. `MetricsRecorder.record`. */
  readonly record: (instant: number) => Promise<unknown>
  /** Seconds between boundaries: `reports.cycle_timers.metrics`. */
  readonly intervalSeconds: number
  /**
   * The projection lag in seconds (`createProjectionLag`): everything appended to the log
   * before now minus the lag is in the report tables.
   */
  readonly lag: () => Promise<number>
  readonly clock: () => number
  readonly logger: Logger
  /** How long past a boundary events may still be appended with a time before it (default 1 s). */
  readonly settleMs?: number
  /** How often a boundary waiting for the projection (or a failed recording) is tried again (default 5 s). */
  readonly retryMs?: number
  /**
   * How many boundaries may wait to be recorded (default 1,000): past that, the oldest are
   * dropped with a `reports.metrics_dropped` warning (`POST /v1/reports/metrics/backfill`
   * records them from history).
   */
  readonly maxDue?: number
}

export interface MetricsSchedule {
  /** Stops scheduling; waits for a recording in progress (the warehouse closes after this). */
  stop(): Promise<void>
}

/**
 * Records a data point of every metric at start-up (as of the latest boundary) and at each
 * multiple of the interval after it, each once the projection has passed the boundary: a
 * point recorded while the projector still had events of before the boundary to project
 * would miss them for good. The values are computed as of the boundary from the history
 * tables, so recording late is exact. Boundaries wait in order, every one a late timer or a
 * long recording spanned included; a recording that fails is tried again, never skipped.
 *
 * @example
 * const schedule = startMetricsSchedule({ record: recorder.record, intervalSeconds: 3600, lag, clock: Date.now, logger })
 * await schedule.stop()
 */
export const startMetricsSchedule = (options: MetricsScheduleOptions): MetricsSchedule => {
  const { record, clock, logger, lag } = options
  const intervalMs = options.intervalSeconds * 1000
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS
  const retryMs = options.retryMs ?? 5_000
  const maxDue = options.maxDue ?? 1_000
  const boundaryOf = (ms: number) => Math.floor(ms / intervalMs) * intervalMs

  const due: number[] = []
  let lastQueued = Number.NEGATIVE_INFINITY
  let waitingFor: number | undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let stopped = false

  /**
   * Queues every boundary since the last one queued (at start-up, the latest only). The queue
   * is always consecutive boundaries; past `maxDue` the oldest go, with a warning.
   */
  const queueBoundaries = () => {
    const latest = boundaryOf(clock())
    if (latest <= lastQueued) return
    const next = lastQueued === Number.NEGATIVE_INFINITY ? latest : lastQueued + intervalMs
    const lostFrom = due[0] ?? next
    for (
      let boundary = Math.max(next, latest - (maxDue - 1) * intervalMs);
      boundary <= latest;
      boundary += intervalMs
    )
      due.push(boundary)
    lastQueued = latest
    if (due.length > maxDue) due.splice(0, due.length - maxDue)
    const kept = due[0] as number
    if (kept > lostFrom) {
      logger('warn', 'reports.metrics_dropped', {
        from: new Date(lostFrom).toISOString(),
        to: new Date(kept - intervalMs).toISOString(),
        boundaries: (kept - lostFrom) / intervalMs,
      })
    }
  }

  /** Records the due boundaries the projection has passed, oldest first. */
  const recordDue = async (): Promise<void> => {
    while (due.length > 0 && !stopped) {
      const instant = due[0] as number
      let projectedBefore: number
      try {
        projectedBefore = clock() - (await lag()) * 1000
      } catch (error) {
        logger('warn', 'reports.metrics_lag_unknown', { error: String(error) })
        return
      }
      if (projectedBefore < instant + settleMs) {
        if (waitingFor !== instant)
          logger('info', 'reports.metrics_waiting', {
            collected_at: new Date(instant).toISOString(),
            projected_before: new Date(projectedBefore).toISOString(),
          })
        waitingFor = instant
        return
      }
      try {
        await record(instant)
      } catch (error) {
        logger('error', 'reports.metrics_failed', {
          collected_at: new Date(instant).toISOString(),
          error: String(error),
        })
        return
      }
      due.shift()
    }
  }

  const schedule = () => {
    if (stopped) return
    const now = clock()
    const nextBoundary = boundaryOf(now) + intervalMs
    const untilNext = nextBoundary - now + settleMs
    timer = setTimeout(
      () => {
        queueBoundaries()
        running = recordDue().finally(schedule)
      },
      due.length > 0 ? Math.min(retryMs, untilNext) : untilNext,
    )
    timer.unref()
  }

  queueBoundaries()
  running = recordDue().finally(schedule)
  return {
    stop: async () => {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}
