import { isLeft } from 'fp-ts/lib/Either.js'
import { Hono } from 'hono'
import * as t from 'io-ts'
import { type AppEnv, actorOf, type RecordAction } from '../../access/index.ts'
import { errorText, HeraldError, ValidationError } from '../../errors/index.ts'
import { toFieldIssues } from '../../events/index.ts'
import { authorize } from '../../http/authorize.ts'
import { readJsonObject } from '../../http/body.ts'
import { noQueryParameters } from '../../http/query.ts'
import type { LogFields, Logger } from '../../observability/index.ts'
import { parseInstant } from '../context.ts'
import type { MetricsRecorder } from './recorder.ts'
import { DEFAULT_SETTLE_MS } from './schedule.ts'

/** A backfill was asked for while one runs. */
export class BackfillRunningError extends HeraldError {
  constructor() {
    super('backfill_running', 'a metric backfill is still running')
  }
}

export type BackfillState = 'idle' | 'running' | 'done' | 'failed'

export interface BackfillStatus {
  readonly state: BackfillState
  /** RFC 3339, the range asked for. */
  readonly start: string | null
  readonly end: string | null
  /** Interval boundaries in the range, and how many are recorded so far. */
  readonly instants: number
  readonly recorded: number
  readonly points: number
  readonly error: string | null
}

export interface BackfillRunnerOptions {
  readonly recorder: Pick<MetricsRecorder, 'backfill'>
  /** `reports.cycle_timers.metrics`. */
  readonly intervalSeconds: number
  readonly logger: Logger
  /** Most boundaries one backfill may cover (default 20,000: over two years of hourly points). */
  readonly maxInstants?: number
  /** Milliseconds since the epoch (default `Date.now`): a range may not end after it. */
  readonly clock?: () => number
  /**
   * The projection lag in seconds (`createProjectionLag`): a range must end before what the
   * report tables hold (now minus the lag, and a second for events appended just after a
   * boundary), or its points would be computed from a history still missing events, and never
   * corrected. Absent: nothing waits.
   */
  readonly lag?: () => Promise<number>
  /**
   * Why the report tables cannot say how current they are (`reports.enabled` is false: no
   * projector runs, and events wait unseen): every backfill is then refused with
   * `ReportsDisabledError`, since its points would miss those events for good.
   */
  readonly disabled?: string
}

export interface BackfillRunner {
  /**
   * Starts recording every boundary in `[start, end]` in the background; throws for a range that
   * ends after now or after what the projection has passed, and while one runs.
   */
  start(start: number, end: number, by?: LogFields): Promise<BackfillStatus>
  status(): BackfillStatus
  /** Stops between two boundaries and waits; what was recorded stays. */
  stop(): Promise<void>
}

/** The range ends after what the report tables hold: waiting events (data ingress off, a backlog) would be missed. */
export class ProjectionBehindError extends HeraldError {
  constructor(projectedBefore: number) {
    const at = new Date(projectedBefore).toISOString()
    super(
      'projection_behind',
      `the report tables hold events up to ${at} only (events wait to be projected: data ingress off, or a backlog); a backfill must end before then, or its points would miss them for good`,
      { retriable: true, context: { projectedBefore: at } },
    )
  }
}

/** The report tables are not kept (reports switched off): they cannot vouch for any range. */
export class ReportsDisabledError extends HeraldError {
  constructor(reason: string) {
    super(
      'reports_disabled',
      `${reason}: the report tables are not kept, so they cannot say which events they miss, and a backfill's points would miss them for good; backfill once reports run and the projection has caught up`,
    )
  }
}

const IDLE: BackfillStatus = {
  state: 'idle',
  start: null,
  end: null,
  instants: 0,
  recorded: 0,
  points: 0,
  error: null,
}

/**
 * Fills `metric_points` from the history tables for a past range, one boundary at a time, e.g.
 * after an upgrade added a metric definition: each point is computed as of its instant, exactly
 * as the live recorder would have. Points are not published to `reports.metrics` (downstream
 * consumers get live points only); recording a boundary again replaces its points.
 *
 * @example
 * const backfills = createBackfillRunner({ recorder, intervalSeconds: 3600, logger })
 * backfills.start(Date.parse('2026-01-01T00:00:00Z'), Date.now())
 */
export const createBackfillRunner = (options: BackfillRunnerOptions): BackfillRunner => {
  const intervalMs = options.intervalSeconds * 1000
  const maxInstants = options.maxInstants ?? 20_000
  const clock = options.clock ?? Date.now
  let current: BackfillStatus = IDLE
  let running: Promise<void> | undefined
  let stopping = false

  const run = async (first: number, end: number) => {
    for (let instant = first; instant <= end; instant += intervalMs) {
      if (stopping) throw new Error('Herald is shutting down')
      const points = await options.recorder.backfill(instant, instant)
      current = { ...current, recorded: current.recorded + 1, points: current.points + points }
      if (current.recorded % 100 === 0) {
        options.logger('info', 'reports.metrics_backfill_progress', {
          recorded: current.recorded,
          instants: current.instants,
        })
      }
    }
  }

  return {
    // The request is checked before whether one runs: a bad range is the caller's to fix either way.
    start: async (start, end, by = {}) => {
      if (end < start) {
        throw new ValidationError('end is before start', [
          { path: 'end', message: 'must not be before start' },
        ])
      }
      // History holds nothing after now: a point for a later instant would be made up, and
      // shown as the newest until its instant came.
      const now = clock()
      if (end > now) {
        const at = new Date(now).toISOString()
        throw new ValidationError(`end is after now (${at}): only past points can be backfilled`, [
          { path: 'end', message: `must not be after now (${at})` },
        ])
      }
      const first = Math.ceil(start / intervalMs) * intervalMs
      const instants = first > end ? 0 : Math.floor((end - first) / intervalMs) + 1
      if (instants > maxInstants) {
        throw new ValidationError(`the range holds ${instants} metric instants, more than ${maxInstants}`, [
          { path: 'start', message: `at most ${maxInstants} intervals of ${options.intervalSeconds} s` },
        ])
      }
      if (options.disabled !== undefined) throw new ReportsDisabledError(options.disabled)
      if (options.lag !== undefined) {
        // As the live schedule: events may still be appended a while after an instant with a time before it.
        const projectedBefore = clock() - (await options.lag()) * 1000 - DEFAULT_SETTLE_MS
        if (end > projectedBefore) throw new ProjectionBehindError(projectedBefore)
      }
      if (running !== undefined) throw new BackfillRunningError()
      stopping = false
      current = {
        ...IDLE,
        state: 'running',
        start: new Date(start).toISOString(),
        end: new Date(end).toISOString(),
        instants,
      }
      options.logger('info', 'reports.metrics_backfill_started', {
        start: current.start,
        end: current.end,
        instants,
        ...by,
      })
      running = run(first, end)
        .then(() => {
          current = { ...current, state: 'done' }
          options.logger('info', 'reports.metrics_backfill_done', { instants, points: current.points })
        })
        .catch((error: unknown) => {
          const message = errorText(error)
          current = { ...current, state: 'failed', error: message }
          options.logger('error', 'reports.metrics_backfill_failed', {
            error: message,
            recorded: current.recorded,
          })
        })
        .finally(() => {
          running = undefined
        })
      return current
    },
    status: () => current,
    stop: async () => {
      stopping = true
      await running
    },
  }
}

const BackfillBody = t.type({ start: t.string, end: t.string })

/**
 * `POST /v1/reports/metrics/backfill` `{start, end}` (RFC 3339; 202 with the status, 409 while
 * one runs, or while the report tables are behind or not kept) and `GET` (the status), for administrators.
 *
 * @example
 * app.route('/v1/reports/metrics/backfill', createBackfillRoutes(backfills, { recordAction }))
 */
export const createBackfillRoutes = (
  backfills: BackfillRunner,
  { recordAction }: { readonly recordAction?: RecordAction } = {},
) => {
  const app = new Hono<AppEnv>()
  app.use(authorize('manageReports'))
  app.get('/', noQueryParameters, (c) => c.json(backfills.status()))
  app.post('/', noQueryParameters, async (c) => {
    const json = await readJsonObject(c, { fields: ['start', 'end'] })
    const body = BackfillBody.decode(json)
    if (isLeft(body)) throw new ValidationError('invalid backfill request', toFieldIssues(body.left))
    const start = parseInstant(body.right.start, 'start')
    const end = parseInstant(body.right.end, 'end')
    const principal = c.get('principal')
    const started = await backfills.start(start, end, actorOf(principal))
    await recordAction?.(principal, {
      type: 'MetricsBackfillStarted',
      account: null,
      aggregate: { type: 'report_metrics', id: 'backfill' },
      details: { start: started.start, end: started.end, instants: started.instants },
    })
    return c.json(started, 202)
  })
  return app
}
