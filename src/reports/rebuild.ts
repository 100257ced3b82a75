import { setTimeout as sleep } from 'node:timers/promises'
import { Hono } from 'hono'
import {
  discardRebuild,
  finishRebuildSwap,
  type RebuildProgress,
  RebuildSwapUnfinishedError,
  startRebuild,
} from '../../projections/projector/index.ts'
import { type AppEnv, actorOf, type RecordAction } from '../access/index.ts'
import { type Backoff, backoffDelay } from '../backoff.ts'
import { errorText, HeraldError } from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { noQueryParameters } from '../http/query.ts'
import type { LogFields, Logger } from '../observability/index.ts'
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
  /**
   * Why it failed, or (while `swapping`) why the swap is being finished again. A rebuild that
   * failed before its swap began left the live tables as they were. Once begun, a swap is
   * finished, never undone, the projector held still until it is: should this process stop
   * first, or a fresh table be gone, the error says the live tables are partly rebuilt, and
   * Herald finishes the swap at its next start (or a new rebuild puts them right).
   */
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
  /** Between tries to finish a swap that stopped midway (default 1 s doubling to 30 s; the first at once). */
  readonly swapRetry?: Backoff
}

export interface RebuildRunner {
  /**
   * Starts a rebuild in the background and answers its first status; throws while one runs.
   * `by` names who asked in its log line (`actorOf`).
   */
  start(by?: LogFields): RebuildStatus
  status(): RebuildStatus
  /**
   * Stops a running rebuild between two steps and waits for it: the live tables stay as they
   * are, unless its swap has begun, which is finished first (or, should that fail, left for
   * the next start).
   */
  stop(): Promise<void>
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
  const swapRetry = options.swapRetry ?? { min: 1_000, max: 30_000 }
  let current: RebuildStatus = IDLE
  let running: Promise<void> | undefined
  let abort = new AbortController()
  const now = () => new Date(clock()).toISOString()
  const update = (patch: Partial<RebuildStatus>) => {
    current = { ...current, ...patch }
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
    // A swap that began is finished before the projector runs again: what it projected into
    // a table not exchanged yet would be dropped with the old data.
    let holdProjector = false
    try {
      await rebuild.swap(onProgress)
    } catch (error) {
      if (!(error instanceof RebuildSwapUnfinishedError)) throw error
      const left = await finishSwap(error)
      if (left === undefined) return
      // Herald is stopping: the projector stays still, and the next start finishes the swap.
      // One that cannot be finished is left to a new rebuild, the projector running meanwhile.
      holdProjector = left.retriable
      throw left
    } finally {
      if (!holdProjector) await options.projector?.resume()
    }
  }

  /**
   * Finishes the swap that stopped with `stopped`, trying again while that fails (the status
   * saying why) until it is finished (`undefined`), cannot be, or Herald stops (what stopped it).
   */
  const finishSwap = async (
    stopped: RebuildSwapUnfinishedError,
  ): Promise<RebuildSwapUnfinishedError | undefined> => {
    let error = stopped
    for (let attempt = 1; error.retriable; attempt++) {
      logger('warn', 'reports.rebuild_swap_retrying', { attempt, error: error.message })
      update({ error: `finishing the swap, try ${attempt}, after: ${error.message}` })
      try {
        if (attempt > 1)
          await sleep(backoffDelay(swapRetry, attempt - 1), undefined, { signal: abort.signal })
        const exchanged = await finishRebuildSwap(warehouse)
        logger('info', 'reports.rebuild_swap_finished', { tables: exchanged ?? [] })
        update({ error: null })
        return undefined
      } catch (failure) {
        if (abort.signal.aborted) return error
        error =
          failure instanceof RebuildSwapUnfinishedError
            ? failure
            : new RebuildSwapUnfinishedError(failure, true)
      }
    }
    return error
  }

  return {
    start: (by = {}) => {
      if (running !== undefined) throw new RebuildRunningError(current.startedAt ?? now())
      current = { ...IDLE, state: 'catching_up', startedAt: now() }
      abort = new AbortController()
      logger('info', 'reports.rebuild_started', by)
      running = run()
        .then(
          () => {
            update({ state: 'done', finishedAt: now() })
            logger('info', 'reports.rebuild_done', { replayed: current.replayed, total: current.total })
          },
          async (error: unknown) => {
            const message = errorText(error)
            update({ state: 'failed', finishedAt: now(), error: message })
            logger('error', 'reports.rebuild_failed', { error: message })
            // Before its swap began: its fresh tables hold a copy of the reports, no longer needed.
            if (!(error instanceof RebuildSwapUnfinishedError))
              await settleRebuildLeftovers(warehouse, logger)
          },
        )
        .finally(() => {
          running = undefined
        })
      return current
    },
    status: () => current,
    stop: async () => {
      abort.abort(new Error('Herald is shutting down'))
      await running
    },
  }
}

/**
 * Puts away what a rebuild an earlier run of Herald did not finish left behind: finishes its
 * swap if that began (`finishRebuildSwap`), and with `discard`, otherwise drops its fresh
 * tables (`discardRebuild`). For the start of a process, before its projector runs; `discard`
 * only where no other process may be rebuilding, as with the embedded warehouse. A failed
 * rebuild puts away its own. Logs what it did, and a failure, which it does not throw.
 *
 * @example
 * await settleRebuildLeftovers(warehouse, logger, { discard: config.warehouse.kind === 'embedded' })
 */
export const settleRebuildLeftovers = async (
  warehouse: Warehouse,
  logger: Logger,
  { discard = true }: { readonly discard?: boolean } = {},
): Promise<void> => {
  try {
    const { exchanged, dropped } = discard
      ? await discardRebuild(warehouse)
      : { exchanged: (await finishRebuildSwap(warehouse)) ?? [], dropped: [] }
    if (exchanged.length > 0) logger('info', 'reports.rebuild_swap_finished', { tables: exchanged })
    if (dropped.length > 0) logger('info', 'reports.rebuild_discarded', { tables: dropped })
  } catch (error) {
    logger('warn', 'reports.rebuild_discard_failed', { error: errorText(error) })
  }
}

/**
 * `POST /v1/reports/rebuild` (202 with the new rebuild's status; 409 while one runs) and
 * `GET /v1/reports/rebuild` (the status), for administrators, mounted at `/v1/reports/rebuild`.
 *
 * @example
 * app.route('/v1/reports/rebuild', createRebuildRoutes(rebuilds, { recordAction }))
 */
export const createRebuildRoutes = (
  rebuilds: RebuildRunner,
  { recordAction }: { readonly recordAction?: RecordAction } = {},
) => {
  const app = new Hono<AppEnv>()
  app.use(authorize('manageReports'))
  app.get('/', noQueryParameters, (c) => c.json(rebuilds.status()))
  app.post('/', noQueryParameters, async (c) => {
    const principal = c.get('principal')
    const started = rebuilds.start(actorOf(principal))
    await recordAction?.(principal, {
      type: 'ReportRebuildStarted',
      account: null,
      aggregate: { type: 'report_tables', id: 'rebuild' },
      details: { started_at: started.startedAt },
    })
    return c.json(started, 202)
  })
  return app
}
