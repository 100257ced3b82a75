import { setTimeout as sleep } from 'node:timers/promises'
import { Hono } from 'hono'
import {
  discardRebuild,
  finishRebuildSwap,
  type Rebuild,
  RebuildElsewhereError,
  type RebuildProgress,
  RebuildSwapUnfinishedError,
  rebuildLeaseHolders,
  startRebuild,
} from '../../projections/projector/index.ts'
import { type AppEnv, actorOf, type RecordAction } from '../access/index.ts'
import { type Backoff, backoffDelay } from '../backoff.ts'
import { errorText, HeraldError } from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { noQueryParameters } from '../http/query.ts'
import type { LogFields, Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/**
 * A rebuild was asked for while one runs, in this process or (`elsewhere`) on another Herald
 * instance sharing the warehouse; the running one is not disturbed.
 */
export class RebuildRunningError extends HeraldError {
  constructor(startedAt: string | null, elsewhere?: RebuildElsewhereError) {
    super(
      'rebuild_running',
      elsewhere === undefined
        ? `a rebuild started at ${startedAt} is still running`
        : `a rebuild${startedAt === null ? '' : ` started at ${startedAt}`} is running on another Herald instance sharing the warehouse (GET /v1/reports/rebuild on any instance follows it)`,
      { context: { startedAt, ...(elsewhere === undefined ? {} : { elsewhere: true }) }, cause: elsewhere },
    )
  }
}

export type RebuildState = 'idle' | 'catching_up' | 'swapping' | 'done' | 'failed'

/**
 * What `GET /v1/reports/rebuild` answers: the rebuild this process runs, else the latest any
 * Herald instance sharing the warehouse ran (`RebuildRunner.current`), or `idle`.
 */
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
  /** The rebuild lease's length (default 60 s; see `RebuildOptions.leaseMs`). */
  readonly leaseMs?: number
}

export interface RebuildRunner {
  /**
   * Starts a rebuild in the background once it holds the rebuild lease, and answers its first
   * status; throws `RebuildRunningError` while one runs, here or on another instance sharing
   * the warehouse. `by` names who asked in its log line (`actorOf`).
   */
  start(by?: LogFields): Promise<RebuildStatus>
  /** The status of the last rebuild this process ran, or `idle`. */
  status(): RebuildStatus
  /**
   * What `GET /v1/reports/rebuild` answers: the rebuild this process runs; else the latest
   * status any instance sharing the warehouse wrote of its own (each writes its rebuild's, on
   * every change of state and at most every second of progress), a running one whose instance
   * no longer holds the rebuild lease (it stopped, or was killed) answered as `failed`; else
   * `status()`. Should the warehouse not answer, `status()`.
   */
  current(): Promise<RebuildStatus>
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

/** Where each instance writes the status of the rebuild it runs, for the others to answer. */
const STATUS_TABLE = 'projection_rebuild_status'

/** How often a running rebuild's progress is written to `STATUS_TABLE` at most. */
const SHARE_EVERY_MS = 1_000

const isRunning = (state: RebuildState) => state === 'catching_up' || state === 'swapping'

/** A status another instance wrote, as far as it reads as one; `undefined` when it does not. */
const readStatus = (text: string): RebuildStatus | undefined => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as Record<string, unknown>
  const states: readonly RebuildState[] = ['idle', 'catching_up', 'swapping', 'done', 'failed']
  if (!states.includes(v.state as RebuildState)) return undefined
  const text_ = (x: unknown) => (typeof x === 'string' ? x : null)
  const number = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null)
  return {
    state: v.state as RebuildState,
    startedAt: text_(v.startedAt),
    finishedAt: text_(v.finishedAt),
    replayed: number(v.replayed) ?? 0,
    total: number(v.total),
    percent: number(v.percent),
    etaSeconds: number(v.etaSeconds),
    error: text_(v.error),
  }
}

/**
 * Runs report rebuilds inside a process that opened the warehouse (chDB allows one process per
 * data directory, so the embedded deployment cannot rebuild from a second process). Instances
 * sharing a ClickHouse server rebuild one at a time: a rebuild holds the rebuild lease from its
 * start to the end of its swap, a second asked for meanwhile on any instance is refused
 * (`rebuild_running`), and every instance answers the running one's status. A rebuild
 * replays the raw `events` table into fresh tables while everything keeps running, catching up
 * until a pass finds little left; then it pauses the projector, replays the last events,
 * exchanges the tables and resumes the projector, which continues from its committed offsets.
 * The projectors of the other instances sharing a ClickHouse server hold still meanwhile too,
 * each at its swap gate (`Rebuild.swap`, `createSwapGate`).
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
  /** The lease name of the last rebuild this process ran: its status rows are `current`. */
  let ownRebuild: string | undefined
  /** Writes a status to `STATUS_TABLE` for the rebuild running: each change of state at once, progress every second. */
  let share: ((status: RebuildStatus, force?: boolean) => Promise<void>) | undefined
  const update = (patch: Partial<RebuildStatus>) => {
    current = { ...current, ...patch }
    void share?.(current)
  }

  let statusTable: Promise<void> | undefined
  const ensureStatusTable = () =>
    (statusTable ??= warehouse
      .command(
        `CREATE TABLE IF NOT EXISTS ${STATUS_TABLE} (
          owner String,
          seq UInt64,
          at DateTime64(3, 'UTC') DEFAULT now64(3),
          status String
        ) ENGINE = MergeTree ORDER BY (at, seq)
        TTL toDateTime(at) + INTERVAL 30 DAY`,
      )
      .catch((error: unknown) => {
        statusTable = undefined
        throw error
      }))

  /** A sharer of the statuses of the rebuild `owner`: in order, one write at a time, never throwing. */
  const sharer = (owner: string) => {
    let seq = 0
    let written: RebuildStatus | undefined
    let writtenAt = Number.NEGATIVE_INFINITY
    let chain = Promise.resolve()
    let warned = false
    return (status: RebuildStatus, force = false): Promise<void> => {
      const changed =
        written === undefined || written.state !== status.state || written.error !== status.error
      if (!force && !changed && clock() - writtenAt < SHARE_EVERY_MS) return chain
      written = status
      writtenAt = clock()
      const n = ++seq
      chain = chain.then(async () => {
        try {
          await ensureStatusTable()
          await warehouse.command(
            `INSERT INTO ${STATUS_TABLE} (owner, seq, status) SETTINGS async_insert = 0
             SELECT {owner:String}, {seq:UInt64}, {status:String}`,
            { owner, seq: n, status: JSON.stringify(status) },
          )
        } catch (error) {
          // The others answer an older status meanwhile; this process answers its own.
          if (!warned) logger('warn', 'reports.rebuild_status_unshared', { error: errorText(error) })
          warned = true
        }
      })
      return chain
    }
  }

  /** The latest status an instance wrote of its rebuild, a running one whose instance stopped as failed. */
  const sharedStatus = async (): Promise<{ owner: string; status: RebuildStatus } | undefined> => {
    await ensureStatusTable()
    const [row] = await warehouse.query<{ owner: string; status: string }>(
      `SELECT owner, status FROM ${STATUS_TABLE} ORDER BY at DESC, seq DESC LIMIT 1`,
    )
    const status = row === undefined ? undefined : readStatus(row.status)
    if (row === undefined || status === undefined) return undefined
    if (!isRunning(status.state) || (await rebuildLeaseHolders(warehouse)).includes(row.owner))
      return { owner: row.owner, status }
    return {
      owner: row.owner,
      status: {
        ...status,
        state: 'failed',
        etaSeconds: null,
        error: `the Herald instance running it stopped before it finished (its rebuild lease ran out): ${
          status.state === 'swapping'
            ? 'a swap it began is finished at the next start of a Herald instance, or by the next rebuild'
            : 'the live tables are as they were; start it again'
        }`,
      },
    }
  }

  const run = async (rebuild: Rebuild) => {
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
      // Other instances' projectors sharing the warehouse hold still for it too (`swap`).
      await rebuild.swap(onProgress, abort.signal)
    } catch (error) {
      if (!(error instanceof RebuildSwapUnfinishedError)) throw error
      const left = await finishSwap(rebuild, error)
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
    rebuild: Rebuild,
    stopped: RebuildSwapUnfinishedError,
  ): Promise<RebuildSwapUnfinishedError | undefined> => {
    let error = stopped
    for (let attempt = 1; error.retriable; attempt++) {
      logger('warn', 'reports.rebuild_swap_retrying', { attempt, error: error.message })
      update({ error: `finishing the swap, try ${attempt}, after: ${error.message}` })
      try {
        if (attempt > 1)
          await sleep(backoffDelay(swapRetry, attempt - 1), undefined, { signal: abort.signal })
        const exchanged = await rebuild.finishSwap()
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

  const failure = (error: unknown): Partial<RebuildStatus> => {
    const message = errorText(error)
    logger('error', 'reports.rebuild_failed', { error: message })
    return { state: 'failed', finishedAt: now(), error: message }
  }

  /**
   * Runs `rebuild`, which holds the lease, to its end: its last status is written for the
   * other instances before the lease is given up (else they would see it running with no
   * holder, as if this one had stopped), and is this process's status once both are done.
   */
  const follow = async (rebuild: Rebuild, by: LogFields) => {
    ownRebuild = rebuild.owner
    const shareOwn = sharer(rebuild.owner)
    share = shareOwn
    logger('info', 'reports.rebuild_started', by)
    void shareOwn(current)
    let outcome: Partial<RebuildStatus>
    try {
      await run(rebuild)
      outcome = { state: 'done', finishedAt: now() }
      logger('info', 'reports.rebuild_done', { replayed: current.replayed, total: current.total })
    } catch (error) {
      outcome = failure(error)
      // Before its swap began: its fresh tables hold a copy of the reports, no longer needed.
      if (!(error instanceof RebuildSwapUnfinishedError)) {
        try {
          const { exchanged, dropped } = await rebuild.discard()
          if (exchanged.length > 0) logger('info', 'reports.rebuild_swap_finished', { tables: exchanged })
          if (dropped.length > 0) logger('info', 'reports.rebuild_discarded', { tables: dropped })
        } catch (error) {
          logger('warn', 'reports.rebuild_discard_failed', { error: errorText(error) })
        }
      }
    }
    share = undefined
    const last = { ...current, ...outcome }
    await shareOwn(last, true)
    // Given up at the latest now: a swap that could not be finished is finished by the next
    // start, or a new rebuild, on any instance.
    await rebuild.release()
    current = last
  }

  return {
    start: async (by = {}) => {
      if (running !== undefined) throw new RebuildRunningError(current.startedAt ?? now())
      const before = current
      current = { ...IDLE, state: 'catching_up', startedAt: now() }
      abort = new AbortController()
      const opening = startRebuild({
        warehouse,
        logger,
        clock,
        batchSize,
        ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
      })
      const mine: Promise<void> = opening
        .then(
          (rebuild) => follow(rebuild, by),
          () => {},
        )
        .finally(() => {
          if (running === mine) running = undefined
        })
      running = mine
      try {
        await opening
      } catch (error) {
        if (!(error instanceof RebuildElsewhereError)) {
          // As a rebuild that failed at once: its status says why.
          current = { ...current, ...failure(error) }
          return current
        }
        current = before
        const theirs = await sharedStatus().catch(() => undefined)
        throw new RebuildRunningError(
          theirs !== undefined && isRunning(theirs.status.state) ? theirs.status.startedAt : null,
          error,
        )
      }
      return current
    },
    status: () => current,
    current: async () => {
      if (running !== undefined) return current
      try {
        const shared = await sharedStatus()
        return shared === undefined || shared.owner === ownRebuild ? current : shared.status
      } catch (error) {
        logger('warn', 'reports.rebuild_status_unknown', { error: errorText(error) })
        return current
      }
    },
    stop: async () => {
      abort.abort(new Error('Herald is shutting down'))
      await running
    },
  }
}

/**
 * Puts away what a rebuild an earlier run of Herald did not finish left behind: finishes its
 * swap if that began (`finishRebuildSwap`, waiting for a swap another instance is making to
 * end), and otherwise drops its fresh tables (`discardRebuild`), unless another instance
 * sharing the warehouse holds the rebuild lease: they are its rebuild's. For the start of a
 * process, before its projector runs; a failed rebuild puts away its own. Logs what it did,
 * and a failure, which it does not throw.
 *
 * @example
 * await settleRebuildLeftovers(warehouse, logger)
 */
export const settleRebuildLeftovers = async (warehouse: Warehouse, logger: Logger): Promise<void> => {
  try {
    const finished = (await finishRebuildSwap(warehouse)) ?? []
    const { exchanged, dropped, runningElsewhere } = await discardRebuild(warehouse)
    const tables = [...finished, ...exchanged]
    if (tables.length > 0) logger('info', 'reports.rebuild_swap_finished', { tables })
    if (dropped.length > 0) logger('info', 'reports.rebuild_discarded', { tables: dropped })
    if (runningElsewhere) logger('info', 'reports.rebuild_running_elsewhere', {})
  } catch (error) {
    logger('warn', 'reports.rebuild_discard_failed', { error: errorText(error) })
  }
}

/**
 * `POST /v1/reports/rebuild` (202 with the new rebuild's status; 409 while one runs, on this
 * or another instance sharing the warehouse) and `GET /v1/reports/rebuild` (the status,
 * `RebuildRunner.current`), for administrators, mounted at `/v1/reports/rebuild`.
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
  app.get('/', noQueryParameters, async (c) => c.json(await rebuilds.current()))
  app.post('/', noQueryParameters, async (c) => {
    const principal = c.get('principal')
    const started = await rebuilds.start(actorOf(principal))
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
