import { Hono } from 'hono'
import { discardRebuild, type RebuildProgress, startRebuild } from '../../projections/projector/index.ts'
import type { AppEnv } from '../access/index.ts'
import { errorText, HeraldError } from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { noQueryParameters } from '../http/query.ts'
import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/** A rebuild was asked for while one runs; the running one is not disturbed. */
export class RebuildRunningError extends HeraldError {
  constructor(startedAt: string) {
    super('rebuild_running', `a rebuild started at ${startedAt} is still running`, { context: { startedAt } })
  }
}

export type RebuildState = 'idle' | 'catching_up' | 'swapping' | 'done' | 'failed'

/** What `GET /v1/reports/rebuild` answers: the last rebuild this process ran, or `idle`. */
export interface RebuildStatus {
  readonly state: RebuildState
  readonly startedAt: string | null
  readonly finishedAt: string | null
  /** Report events replayed into the fresh tables so far. */
  readonly replayed: number
  /**
   * Report events to replay in all, counted when each catch-up pass begins (so it grows with
   * the events that arrive meanwhile); `null` until the first count.
   */
  readonly total: number | null
  /** `replayed` of `total`, 0–100 to one decimal; `null` until the first count. */
  readonly percent: number | null
  /** Seconds left at the rate so far; `null` until something was replayed. */
  readonly etaSeconds: number | null
  /** Why it failed; the live tables are untouched then. */
  readonly error: string | null
}

/** The live projector, which a rebuild holds still for the moment of its swap. */
export interface PausableProjector {
  pause(): Promise<void>
  resume(): Promise<void>
}

export interface RebuildRunnerOptions {
  readonly warehouse: Warehouse
  readonly logger: Logger
  readonly clock: () => number
  /** Absent when the projector does not run (`reports.enable_data_ingress: false`): nothing to pause. */
  readonly projector?: PausableProjector
  /** Events replayed per step (default 5,000). */
  readonly batchSize?: number
}

export interface RebuildRunner {
  /** Starts a rebuild in the background and answers its first status; throws while one runs. */
  start(): RebuildStatus
  status(): RebuildStatus
  /** Stops a running rebuild between two steps (the live tables stay as they are) and waits for it. */
  stop(): Promise<void>
  /**
   * Drops the fresh tables of a rebuild an earlier run of Herald did not finish (killed during
   * it): for the start of a process that alone uses its warehouse, as the embedded one is. A
   * failed rebuild drops its own.
   */
  discardLeftovers(): Promise<void>
}

const IDLE: RebuildStatus = {
  state: 'idle',
  startedAt: null,
  finishedAt: null,
  replayed: 0,
  total: null,
  percent: null,
  etaSeconds: null,
  error: null,
}

/**
 * Runs report rebuilds inside the process that owns the warehouse (chDB allows one process per
 * data directory, so the embedded deployment cannot rebuild from a second process). A rebuild
 * replays the raw `events` table into fresh tables while everything keeps running, catching up
 * until a pass finds little left; then it pauses the projector, replays the last events,
 * exchanges the tables and resumes the projector, which continues from its committed offsets.
 * Readers answer from the old tables until the exchange, from the new ones after it.
 *
 * @example
 * const rebuilds = createRebuildRunner({ warehouse, logger, clock: Date.now, projector })
 * rebuilds.start() // { state: 'catching_up', … }
 */
export const createRebuildRunner = (options: RebuildRunnerOptions): RebuildRunner => {
  const { warehouse, logger, clock } = options
  const batchSize = options.batchSize ?? 5_000
  let current: RebuildStatus = IDLE
  let running: Promise<void> | undefined
  let abort = new AbortController()
  const now = () => new Date(clock()).toISOString()
  const update = (patch: Partial<RebuildStatus>) => {
    current = { ...current, ...patch }
  }

  /** The fresh tables of a rebuild that did not finish: dropped, so they hold no copy of the reports. */
  const discardLeftovers = async () => {
    try {
      const dropped = await discardRebuild(warehouse)
      if (dropped.length > 0) logger('info', 'reports.rebuild_discarded', { tables: dropped })
    } catch (error) {
      logger('warn', 'reports.rebuild_discard_failed', { error: errorText(error) })
    }
  }

  const run = async () => {
    const rebuild = await startRebuild({
      warehouse,
      logger,
      clock,
      batchSize,
    })
    const onProgress = ({ replayed, total, percent, etaSeconds }: RebuildProgress) =>
      update({ replayed, total, percent, etaSeconds })
    // Catch up while the projector runs — the whole history, then what arrived meanwhile —
    // so the pause for the swap covers only the last moments' events.
    for (let pass = 0; pass < 3; pass++) {
      const replayed = await rebuild.catchUp(onProgress, abort.signal)
      if (replayed < batchSize) break
    }
    abort.signal.throwIfAborted()
    update({ state: 'swapping' })
    await options.projector?.pause()
    try {
      await rebuild.swap(onProgress)
    } finally {
      await options.projector?.resume()
    }
  }

  return {
    start: () => {
      if (running !== undefined) throw new RebuildRunningError(current.startedAt ?? now())
      current = { ...IDLE, state: 'catching_up', startedAt: now() }
      abort = new AbortController()
      logger('info', 'reports.rebuild_started', {})
      running = run()
        .then(() => {
          update({ state: 'done', finishedAt: now() })
          logger('info', 'reports.rebuild_done', { replayed: current.replayed, total: current.total })
        })
        .catch(async (error: unknown) => {
          const message = errorText(error)
          update({ state: 'failed', finishedAt: now(), error: message })
          logger('error', 'reports.rebuild_failed', { error: message })
          await discardLeftovers()
        })
        .finally(() => {
          running = undefined
        })
      return current
    },
    status: () => current,
    discardLeftovers: async () => {
      if (running === undefined) await discardLeftovers()
    },
    stop: async () => {
      abort.abort(new Error('Herald is shutting down'))
      await running
    },
  }
}

/**
 * `POST /v1/reports/rebuild` (202 with the new rebuild's status; 409 while one runs) and
 * `GET /v1/reports/rebuild` (the status), for administrators, mounted at `/v1/reports/rebuild`.
 *
 * @example
 * app.route('/v1/reports/rebuild', createRebuildRoutes(rebuilds))
 */
export const createRebuildRoutes = (rebuilds: RebuildRunner) => {
  const app = new Hono<AppEnv>()
  app.use(authorize('manageReports'))
  app.get('/', noQueryParameters, (c) => c.json(rebuilds.status()))
  app.post('/', noQueryParameters, (c) => c.json(rebuilds.start(), 202))
  return app
}
