import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { HeraldError } from '../../src/errors/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import {
  acquireLease,
  type Lease,
  LeaseHeldError,
  leaseHolders,
  type ReportTable,
  reportTableDdl,
  vulnerabilityProjection,
} from '../migrations/index.ts'
import { createProjectorHandler } from './handler.ts'
import { fromClickHouseTime, type StoredEnvelope, storedEvent } from './rows.ts'
import { DEFAULT_TABLES, type ProjectionTables } from './state.ts'

/** The report tables a rebuild replaces; `projection_progress` stays: it describes the live projector. */
const REBUILT = [
  'images',
  'tag_history',
  'tags_current',
  'image_vulnerabilities',
  'finding_lifecycle',
  'policy_evaluations',
  'policy_evaluation_latest',
] as const satisfies readonly ReportTable[]

const SUFFIX = '_rebuild'

/** Every table a rebuild makes fresh (`SUFFIX`): the report tables and its own progress. */
const FRESH = [...REBUILT, 'projection_progress'] as const

/**
 * Exists while a swap is under way, from before its first exchange until every table is
 * exchanged and the old copies are dropped; its comment is the mark the swap gave each fresh
 * table (which stays with the table's data when it is exchanged).
 */
const SWAP = 'projection_rebuild_swap'

/**
 * Exists while a rebuild holds every projector sharing the warehouse still for its last
 * catch-up and its swap (created before the one, dropped after the other, or when it fails
 * before its swap began); its comment is the rebuild's lease owner (`Rebuild.owner`), which
 * is also what each projector acknowledges the pause with (`PROJECTOR_CLAIMS`). A projector
 * stores no batch while it exists and its owner still holds `REBUILD_LEASE` (`createSwapGate`).
 */
export const REBUILD_PAUSE = 'projection_rebuild_pause'

/** `SWAP`, for the projectors' gate: no batch is stored while a swap is under way. */
export const REBUILD_SWAP = SWAP

/**
 * Where each projector sharing the warehouse (`createSwapGate`) claims its place while it
 * projects (an expiry it renews, as a lease's claim) and acknowledges a rebuild's pause
 * (`acked`: the pause's owner, once none of its batches is under way and it holds every later
 * one back). A rebuild's last catch-up waits until every claim still running acknowledged it.
 */
export const PROJECTOR_CLAIMS = 'projection_projectors'

/** Creates `PROJECTOR_CLAIMS` when missing; claims are kept a day. */
export const createProjectorClaims = (warehouse: Warehouse): Promise<void> =>
  warehouse.command(
    `CREATE TABLE IF NOT EXISTS ${PROJECTOR_CLAIMS} (
      owner String,
      seq UInt64,
      expires_at DateTime64(3, 'UTC'),
      acked String
    ) ENGINE = MergeTree ORDER BY (owner, seq)
    TTL toDateTime(expires_at) + INTERVAL 1 DAY`,
  )

/**
 * The lease a rebuild holds from its start to the end of its swap, and whoever finishes a swap
 * or puts a rebuild's leftovers away: the fresh tables are one rebuild's at a time, and two
 * never exchange the same pair. Also the table `RebuildRunner` reads a holder's name from.
 */
export const REBUILD_LEASE = 'projection_rebuild_lock'

/** The names whose claims on `REBUILD_LEASE` still run: the instance rebuilding, if one is. */
export const rebuildLeaseHolders = async (warehouse: Warehouse): Promise<readonly string[]> =>
  (await leaseHolders(warehouse, REBUILD_LEASE)).map((holder) => holder.owner)

/**
 * A rebuild was asked for while another Herald instance sharing the warehouse runs one (holds
 * `REBUILD_LEASE`): its fresh tables are left alone. `rebuild_running`, as for one of this
 * process's: the HTTP API answers 409, and `herald rebuild-reports` follows it.
 */
export class RebuildElsewhereError extends HeraldError {
  constructor(holder: string, remainingMs: number) {
    super(
      'rebuild_running',
      `a rebuild is running on another Herald instance (its lease runs ${Math.ceil(remainingMs / 1000)} s more unless renewed, or runs out should that instance have stopped)`,
      { context: { holder, remainingMs } },
    )
  }
}

/**
 * A swap began (some live tables may be the rebuilt ones already) and was not finished; it is
 * finished, never undone (`finishRebuildSwap`). `retriable` unless a fresh copy not exchanged
 * yet is gone, when it cannot be finished and only a new rebuild puts the tables right.
 */
export class RebuildSwapUnfinishedError extends HeraldError {
  constructor(cause: unknown, retriable: boolean) {
    super(
      'rebuild_swap_unfinished',
      `the swap of the rebuilt report tables began and was not finished (${cause instanceof Error ? cause.message : String(cause)}): ${
        retriable
          ? 'the live tables are partly rebuilt until it is finished: Herald tries again, and at its next start'
          : 'the live tables are partly rebuilt, and only a new rebuild puts them right'
      }`,
      { cause, retriable },
    )
  }
}

/**
 * Projectors sharing the warehouse did not acknowledge a rebuild's pause in time (a batch of
 * theirs still under way): the swap did not begin, and the live tables are as they were.
 */
export class RebuildPauseUnacknowledgedError extends HeraldError {
  constructor(projectors: readonly string[], waitedMs: number) {
    super(
      'rebuild_pause_unacknowledged',
      `${projectors.length} projector(s) sharing the warehouse did not hold still for the swap within ${Math.ceil(waitedMs / 1000)} s (a batch of theirs still under way): the swap did not begin and the live tables are as they were; start the rebuild again`,
      { context: { projectors: projectors.join(', '), waitedMs }, retriable: true },
    )
  }
}

/** A fresh copy a begun swap had still to exchange is gone: the swap cannot be finished. */
class SwapStuckError extends HeraldError {
  constructor(table: string) {
    super('rebuild_swap_stuck', `${table}${SUFFIX}, the rebuilt ${table} not exchanged yet, is gone`, {
      context: { table },
    })
  }
}

export interface RebuildOptions {
  readonly warehouse: Warehouse
  readonly logger: Logger
  readonly clock?: () => number
  /** Events replayed per batch (default 5,000). */
  readonly batchSize?: number
  /**
   * The rebuild lease's length (default 60 s): how long after this process stops, killed
   * included, another instance may start a rebuild (see `acquireLease`).
   */
  readonly leaseMs?: number
  /**
   * How long the swap waits for every projector sharing the warehouse to acknowledge its pause
   * before it gives up, the live tables untouched (default 120 s; `RebuildPauseUnacknowledgedError`).
   */
  readonly pauseTimeoutMs?: number
  /** How often it looks at their acknowledgements meanwhile (default 200 ms). */
  readonly pausePollMs?: number
}

/** How far a rebuild is, over all its catch-ups. */
export interface RebuildProgress {
  /** Report events replayed into the fresh tables so far. */
  readonly replayed: number
  /**
   * Report events to replay in all, as far as known: those replayed before the latest catch-up
   * plus those it found waiting when it began (counted then). Grows while events keep arriving.
   */
  readonly total: number
  /** `replayed` of `total`, 0–100, to one decimal; 100 when there is nothing to replay. */
  readonly percent: number
  /**
   * Seconds left at the rate so far (replayed per second since the rebuild began, the fresh
   * tables' creation included); `null` until something was replayed.
   */
  readonly etaSeconds: number | null
}

/**
 * The progress of a rebuild that replayed `replayed` of `total` events in `elapsedMs`.
 *
 * @example
 * rebuildProgress(2_500, 10_000, 5_000) // { replayed: 2500, total: 10000, percent: 25, etaSeconds: 15 }
 */
export const rebuildProgress = (replayed: number, total: number, elapsedMs: number): RebuildProgress => {
  const left = Math.max(0, total - replayed)
  return {
    replayed,
    total,
    percent: total <= 0 ? 100 : Math.min(100, Math.floor((replayed / total) * 1000) / 10),
    etaSeconds:
      left === 0
        ? 0
        : replayed === 0 || elapsedMs <= 0
          ? null
          : Math.ceil((left * elapsedMs) / replayed / 1000),
  }
}

export interface Rebuild {
  /**
   * The name it holds `REBUILD_LEASE` under, from `startRebuild` until its swap is done or it
   * is discarded or released: while it does, no other instance starts a rebuild.
   */
  readonly owner: string
  /**
   * Replays every report event of the raw `events` table not replayed yet, up to where the live
   * projector has stored every event (its progress), into the fresh tables, in log order;
   * returns how many it replayed. Safe to call again and again while
   * the projector runs: each call continues where the previous one stopped. It first counts
   * what waits, so `onProgress` hears the total before the first step, and the progress after
   * every step; an aborted `signal` stops it between steps.
   */
  catchUp(onProgress?: (progress: RebuildProgress) => void, signal?: AbortSignal): Promise<number>
  /**
   * A last `catchUp`, then each live table is exchanged atomically with its fresh copy and the
   * old copies are dropped; returns how many events that last `catchUp` replayed. Readers never
   * wait: until its exchange a table answers from the old data, after it from the new.
   *
   * Every projector sharing the warehouse is held still meanwhile: the pause is recorded
   * (`REBUILD_PAUSE`) and the last catch-up waits until each projector whose claim runs has
   * acknowledged it (`createSwapGate`: none of its batches under way, every later one held
   * back until the swap is done), so that no batch lands in the old tables after the last
   * catch-up read how far the projectors went, to be dropped with them. Projectors without a
   * gate (the embedded deployment's, in this process) are held still by the caller: stop them
   * (or turn ingress off) around it. A projector that does not acknowledge within
   * `pauseTimeoutMs` fails it (`RebuildPauseUnacknowledgedError`) before anything live
   * changed; an aborted `signal` stops that wait.
   *
   * The seven exchanges are one statement each, so a failure or a kill can stop them midway.
   * The swap is recorded in the warehouse before the first, and from then on it is finished,
   * never undone: a failure after that throws `RebuildSwapUnfinishedError`, and
   * `finishRebuildSwap` (or the next rebuild) exchanges the rest. Keep the projector stopped
   * until it is finished. A failure before it (the last catch-up, a fresh table gone) leaves
   * the live tables as they were.
   *
   * Once it succeeded the lease is given up. After a failure the rebuild still holds it: call
   * `finishSwap` (a swap that began), or `discard` or `release`.
   */
  swap(onProgress?: (progress: RebuildProgress) => void, signal?: AbortSignal): Promise<number>
  /**
   * Under its lease, finishes a swap that began and failed (`finishRebuildSwap`), giving the
   * lease up once it is finished; returns the tables it exchanged (`undefined`: no swap was
   * under way). Throws `RebuildSwapUnfinishedError` while it cannot, still holding the lease.
   */
  finishSwap(): Promise<readonly string[] | undefined>
  /**
   * Puts away what it made, under its lease (`discardRebuild`: a swap that began is finished,
   * the fresh tables dropped), then gives the lease up. Should its lease be lost meanwhile,
   * the tables are left to the next rebuild, as another instance may be making them anew.
   */
  discard(): Promise<RebuildLeftovers>
  /** Gives the lease up, leaving every table as it is (what a kill leaves, at once). */
  release(): Promise<void>
}

interface RawEvent extends StoredEnvelope {
  readonly time_text: string
  readonly log_topic: string
  readonly log_partition: number
  readonly log_offset: number
}

/** What `discardRebuild` did. */
export interface RebuildLeftovers {
  /** The tables a swap that had begun still had to exchange, exchanged now. */
  readonly exchanged: readonly string[]
  /** The leftover tables dropped: a rebuild's fresh ones, or the old data a finished swap left. */
  readonly dropped: readonly string[]
  /** Another Herald instance holds the rebuild lease: nothing was looked at. */
  readonly runningElsewhere?: true
}

/**
 * Finishes the swap of a rebuild that began one and did not finish it (it failed, or Herald
 * stopped or was killed during it): each live table not exchanged yet is exchanged with its
 * fresh copy and the old data dropped, as the swap would have. Returns the tables it
 * exchanged, or `undefined` when no swap was under way. Call it before the projector runs:
 * what it projects into a table not exchanged yet is dropped with the old data. Throws
 * `RebuildSwapUnfinishedError` when it cannot finish it.
 */
export const finishRebuildSwap = async (
  warehouse: Warehouse,
  options: { readonly leaseMs?: number } = {},
): Promise<readonly string[] | undefined> => {
  if ((await swapMark(warehouse)) === undefined) return undefined
  const lease = await acquireLease(warehouse, { table: REBUILD_LEASE, ...options })
  try {
    return await finishSwapOrThrow(warehouse, lease)
  } finally {
    await lease.release()
  }
}

const finishSwapOrThrow = async (warehouse: Warehouse, lease: Lease) => {
  try {
    return await finishSwap(warehouse, lease)
  } catch (error) {
    throw new RebuildSwapUnfinishedError(error, !(error instanceof SwapStuckError))
  }
}

/**
 * Puts away what a rebuild left behind: finishes a swap that had begun (`finishRebuildSwap`),
 * and otherwise drops the fresh tables of one that failed or was killed before its swap,
 * which would hold a copy of the report tables until the next rebuild. Call it before the
 * projector runs. A rebuild another instance runs (it holds the rebuild lease) is left
 * alone: nothing is done, `runningElsewhere` says so, and that rebuild puts things right.
 */
export const discardRebuild = async (
  warehouse: Warehouse,
  options: { readonly leaseMs?: number } = {},
): Promise<RebuildLeftovers> => {
  // Mostly nothing is left: then no claim is needed to say so.
  const [left] = await warehouse.query<{ n: number }>(
    'SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND has({names:Array(String)}, name)',
    { names: [SWAP, REBUILD_PAUSE, ...FRESH.map((table) => `${table}${SUFFIX}`)] },
  )
  if (Number(left?.n ?? 0) === 0) return { exchanged: [], dropped: [] }
  let lease: Lease
  try {
    lease = await acquireLease(warehouse, { table: REBUILD_LEASE, wait: false, ...options })
  } catch (error) {
    if (!(error instanceof LeaseHeldError)) throw error
    return { exchanged: [], dropped: [], runningElsewhere: true }
  }
  try {
    return await discardUnder(warehouse, lease)
  } finally {
    await lease.release()
  }
}

/** `discardRebuild` under the rebuild lease `lease`. */
const discardUnder = async (warehouse: Warehouse, lease: Lease): Promise<RebuildLeftovers> => {
  const exchanged = (await finishSwapOrThrow(warehouse, lease)) ?? []
  const names = FRESH.map((table) => `${table}${SUFFIX}`)
  const left = await warehouse.query<{ name: string }>(
    'SELECT name FROM system.tables WHERE database = currentDatabase() AND has({names:Array(String)}, name) ORDER BY name',
    { names },
  )
  for (const { name } of left) {
    lease.assertHeld()
    await warehouse.command(`DROP TABLE IF EXISTS ${name}`)
  }
  // A pause is this holder's, or one of a rebuild whose holder is gone: none holds anything back.
  await warehouse.command(`DROP TABLE IF EXISTS ${REBUILD_PAUSE}`)
  return { exchanged, dropped: left.map((t) => t.name) }
}

/** The mark of the swap under way, if one is. */
const swapMark = async (warehouse: Warehouse): Promise<string | undefined> =>
  (
    await warehouse.query<{ comment: string }>(
      'SELECT comment FROM system.tables WHERE database = currentDatabase() AND name = {name:String}',
      { name: SWAP },
    )
  )[0]?.comment

/**
 * Under the swap lease: exchanges every live table that does not bear the swap's mark with its
 * fresh copy, which does, then drops the old copies and the swap's record. Each step checks
 * first, so it finishes a swap stopped at any point, and does nothing to a table twice. Every
 * fresh copy still to exchange is looked for before the first exchange.
 */
const finishSwap = async (warehouse: Warehouse, lease: Lease): Promise<string[] | undefined> => {
  const mark = await swapMark(warehouse)
  if (mark === undefined) return undefined
  const names = REBUILT.flatMap((table) => [table, `${table}${SUFFIX}`])
  const comments = new Map(
    (
      await warehouse.query<{ name: string; comment: string }>(
        'SELECT name, comment FROM system.tables WHERE database = currentDatabase() AND has({names:Array(String)}, name)',
        { names },
      )
    ).map((t) => [t.name, t.comment]),
  )
  const waiting = REBUILT.filter((table) => comments.get(table) !== mark)
  const gone = waiting.find((table) => comments.get(`${table}${SUFFIX}`) !== mark)
  if (gone !== undefined) throw new SwapStuckError(gone)
  for (const table of waiting) {
    lease.assertHeld()
    await warehouse.command(`EXCHANGE TABLES ${table} AND ${table}${SUFFIX}`)
  }
  for (const table of FRESH) await warehouse.command(`DROP TABLE IF EXISTS ${table}${SUFFIX}`)
  await warehouse.command(`DROP TABLE IF EXISTS ${SWAP}`)
  // The projectors go on, into the tables swapped in.
  await warehouse.command(`DROP TABLE IF EXISTS ${REBUILD_PAUSE}`)
  return waiting
}

const encoder = new TextEncoder()

/**
 * Rebuilds the report tables from the raw `events` table, e.g. after a projection bug was fixed
 * or a report table was added: the projection is a pure function of the events in log order,
 * so replaying them into empty tables gives exactly the tables a projector that had always run
 * the current code would have written. The API keeps answering from the live tables meanwhile.
 *
 * One rebuild at a time among the instances sharing the warehouse: it holds `REBUILD_LEASE`
 * from its start to the end of its swap (or until discarded or released), checked before each
 * step, and throws `RebuildElsewhereError` at once while another holds it. A holder killed
 * stops renewing its claim, which runs out after `leaseMs`; then a rebuild may start again.
 *
 * @example
 * const rebuild = await startRebuild({ warehouse, logger })
 * await rebuild.catchUp()         // minutes, while everything runs
 * await projector.stop()          // a moment of no new projections…
 * await rebuild.swap()            // …the last events, then the exchange
 * projector = await log.consume(…) // and on again, from its committed offsets
 */
export const startRebuild = async (options: RebuildOptions): Promise<Rebuild> => {
  const { warehouse, logger } = options
  const clock = options.clock ?? Date.now
  const batchSize = options.batchSize ?? 5_000
  // The whole rebuild is this instance's: another one starting meanwhile would make the fresh
  // tables anew under it, and its swap would exchange what is left of them.
  let lease: Lease
  try {
    lease = await acquireLease(warehouse, {
      table: REBUILD_LEASE,
      wait: false,
      ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
    })
  } catch (error) {
    if (error instanceof LeaseHeldError) throw new RebuildElsewhereError(error.holder, error.remainingMs)
    throw error
  }
  try {
    // A swap an earlier rebuild began is finished first: its fresh tables are about to be made anew.
    await finishSwapOrThrow(warehouse, lease).catch(async (error: unknown) => {
      if (!(error instanceof RebuildSwapUnfinishedError) || error.retriable) throw error
      // It cannot be finished; this rebuild replays every table, and its swap puts them right.
      logger('warn', 'projector.rebuild_swap_abandoned', { error: error.message })
      await warehouse.command(`DROP TABLE IF EXISTS ${SWAP}`)
    })
    for (const table of FRESH) {
      lease.assertHeld()
      await warehouse.command(`DROP TABLE IF EXISTS ${table}${SUFFIX}`)
      await warehouse.command(reportTableDdl[table](`${table}${SUFFIX}`))
      // Later migrations' changes to a table, so the swapped-in one is what migrations make.
      if (table === 'image_vulnerabilities')
        for (const statement of vulnerabilityProjection(`${table}${SUFFIX}`))
          await warehouse.command(statement)
    }
  } catch (error) {
    await lease.release()
    throw error
  }
  const tables: ProjectionTables = {
    ...Object.fromEntries(Object.keys(DEFAULT_TABLES).map((t) => [t, `${t}${SUFFIX}`])),
    events: DEFAULT_TABLES.events,
  } as ProjectionTables
  // Its batches skip the offsets of other event types, so a state cache would restart every batch.
  const project = createProjectorHandler({
    warehouse,
    clock,
    logger,
    tables,
    writeEvents: false,
    stateCache: false,
    guardLog: false,
  })
  // How far each partition is replayed. One position per partition, not one cursor over all
  // of them: events keep arriving in every partition, also in those a single cursor has passed.
  const replayedUpTo = new Map<string, { topic: string; partition: number; offset: number }>()
  const began = clock()
  let replayedInAll = 0
  let total = 0
  const progress = () => rebuildProgress(replayedInAll, total, clock() - began)

  // The report events not replayed yet: past each partition's replayed position, and no further
  // than the live projector has stored every event (`through`, its progress). Rows do not
  // appear in position order: a batch's insert writes one part per month, and one that failed
  // midway leaves some until its retry. A position passed once is never read again, so one
  // replayed beyond a row still missing would leave that event out for good. The projector
  // records its progress only once a batch's rows are all stored, and is held still for the
  // swap, so the last catch-up reads every event it stored. A partition with no progress (rows
  // stored before the projector recorded any) is read whole.
  const WAITING = `FROM events FINAL
          WHERE startsWith(type, 'herald.report.')
            AND toInt64(log_offset) > if(
                  indexOf({partitions:Array(String)}, concat(log_topic, '/', toString(log_partition))) AS known = 0,
                  toInt64(-1), arrayElement({offsets:Array(Int64)}, known))
            AND if(
                  indexOf({progressed:Array(String)}, concat(log_topic, '/', toString(log_partition))) AS stored = 0,
                  true, toInt64(log_offset) <= arrayElement({through:Array(Int64)}, stored))`
  const waitingParams = (through: StoredThrough) => {
    const positions = [...replayedUpTo.values()]
    return {
      // Kafka topic names cannot hold a slash: `topic/partition` names a partition unambiguously.
      partitions: positions.map((p) => `${p.topic}/${p.partition}`),
      offsets: positions.map((p) => p.offset),
      ...through,
    }
  }

  const catchUp = async (
    onProgress?: (progress: RebuildProgress) => void,
    signal?: AbortSignal,
  ): Promise<number> => {
    // Read once: what the projector stores meanwhile is for the next catch-up.
    const through = await storedThrough(warehouse)
    const [counted] = await warehouse.query<{ waiting: number }>(
      `SELECT count() AS waiting ${WAITING}`,
      waitingParams(through),
    )
    total = replayedInAll + Number(counted?.waiting ?? 0)
    onProgress?.(progress())
    let replayed = 0
    for (;;) {
      signal?.throwIfAborted()
      lease.assertHeld()
      const rows = await warehouse.query<RawEvent>(
        `SELECT id, source, type, subject, account, level, resource_type, subtype, attributes, toString(time) AS time_text,
                data, log_topic, log_partition, log_offset
           ${WAITING}
          ORDER BY log_topic, log_partition, log_offset
          LIMIT {limit:UInt32}`,
        { ...waitingParams(through), limit: batchSize },
      )
      if (rows.length === 0) return replayed
      // One batch per partition run, as the log would have delivered them.
      let start = 0
      for (let i = 1; i <= rows.length; i++) {
        const first = rows[start] as RawEvent
        const row = rows[i]
        if (
          row !== undefined &&
          row.log_topic === first.log_topic &&
          row.log_partition === first.log_partition
        ) {
          continue
        }
        const run = rows.slice(start, i)
        lease.assertHeld()
        await project({
          topic: first.log_topic,
          partition: first.log_partition,
          messages: run.map(toMessage),
        })
        const last = run.at(-1) as RawEvent
        replayedUpTo.set(`${last.log_topic}\u0000${last.log_partition}`, {
          topic: last.log_topic,
          partition: last.log_partition,
          offset: last.log_offset,
        })
        start = i
      }
      replayed += rows.length
      replayedInAll += rows.length
      // Events that arrived after the count: the total is at least what was replayed.
      total = Math.max(total, replayedInAll)
      const now = progress()
      onProgress?.(now)
      logger('info', 'projector.rebuild_progress', {
        replayed: now.replayed,
        total: now.total,
        percent: now.percent,
        eta_seconds: now.etaSeconds,
        partitions: replayedUpTo.size,
      })
    }
  }

  return {
    owner: lease.owner,
    catchUp,
    swap: async (onProgress, signal) => {
      // Every projector sharing the warehouse holds still from before the last catch-up reads
      // how far they went until the swap is done: a batch stored in the old tables after that
      // read would be dropped with them.
      const mark = `herald rebuild ${randomUUID()}`
      let replayed: number
      try {
        lease.assertHeld()
        await warehouse.command(`DROP TABLE IF EXISTS ${REBUILD_PAUSE}`)
        await warehouse.command(
          `CREATE TABLE ${REBUILD_PAUSE} (owner String) ENGINE = Null COMMENT '${lease.owner}'`,
        )
        await projectorsPaused(warehouse, lease, {
          timeoutMs: options.pauseTimeoutMs ?? 120_000,
          pollMs: options.pausePollMs ?? 200,
          ...(signal === undefined ? {} : { signal }),
        })
        replayed = await catchUp(onProgress)
        // Begins: each fresh table is marked, then the swap is recorded under its mark (one
        // statement, so it is recorded or not). Until then nothing live has changed, and a
        // failure leaves fresh tables to drop; from then on the swap is finished, never undone.
        for (const table of REBUILT) {
          lease.assertHeld()
          await warehouse.command(`ALTER TABLE ${table}${SUFFIX} MODIFY COMMENT '${mark}'`)
        }
        lease.assertHeld()
        await warehouse.command(`CREATE TABLE ${SWAP} (mark String) ENGINE = Null COMMENT '${mark}'`)
      } catch (error) {
        // Not begun, nothing live changed: the projectors go on. (One recorded all the same
        // holds them still until it is finished.)
        if ((await swapMark(warehouse).catch(() => mark)) === undefined)
          await warehouse.command(`DROP TABLE IF EXISTS ${REBUILD_PAUSE}`).catch(() => {})
        throw error
      }
      await finishSwapOrThrow(warehouse, lease)
      await lease.release()
      logger('info', 'projector.rebuild_swapped', { tables: REBUILT })
      return replayed
    },
    finishSwap: async () => {
      try {
        lease.assertHeld()
      } catch {
        // Lost (its renewals failed): finished under a new claim, once any other holder is done.
        await lease.release()
        return await finishRebuildSwap(
          warehouse,
          options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs },
        )
      }
      const exchanged = await finishSwapOrThrow(warehouse, lease)
      await lease.release()
      return exchanged
    },
    discard: async () => {
      try {
        lease.assertHeld()
        return await discardUnder(warehouse, lease)
      } finally {
        await lease.release()
      }
    },
    release: () => lease.release(),
  }
}

/**
 * Waits until every projector whose claim still runs acknowledged the pause of `lease`'s
 * rebuild (`PROJECTOR_CLAIMS`), or its claim ran out (it stopped). Throws
 * `RebuildPauseUnacknowledgedError` after `timeoutMs`.
 */
const projectorsPaused = async (
  warehouse: Warehouse,
  lease: Lease,
  options: { readonly timeoutMs: number; readonly pollMs: number; readonly signal?: AbortSignal },
): Promise<void> => {
  await createProjectorClaims(warehouse)
  const began = performance.now()
  for (;;) {
    options.signal?.throwIfAborted()
    lease.assertHeld()
    const pending = await warehouse.query<{ owner: string }>(
      `SELECT owner FROM ${PROJECTOR_CLAIMS}
        GROUP BY owner
       HAVING argMax(expires_at, seq) > now64(3) AND argMax(acked, seq) != {mark:String}
        ORDER BY owner`,
      { mark: lease.owner },
    )
    if (pending.length === 0) return
    const waited = performance.now() - began
    if (waited >= options.timeoutMs)
      throw new RebuildPauseUnacknowledgedError(
        pending.map((p) => p.owner),
        waited,
      )
    await sleep(options.pollMs, undefined, options.signal === undefined ? {} : { signal: options.signal })
  }
}

/** Where the live projector has stored every event, by partition (`topic/partition`). */
interface StoredThrough {
  readonly progressed: string[]
  readonly through: number[]
}

const storedThrough = async (warehouse: Warehouse): Promise<StoredThrough> => {
  const rows = await warehouse.query<{ topic: string; partition: number; last_offset: number }>(
    `SELECT topic, partition, max(last_offset) AS last_offset FROM ${DEFAULT_TABLES.projection_progress}
      GROUP BY topic, partition`,
  )
  return {
    progressed: rows.map((r) => `${r.topic}/${r.partition}`),
    through: rows.map((r) => Number(r.last_offset)),
  }
}

// The stored envelope, back as the structured-mode message the projector decodes and checks.
const toMessage = (row: RawEvent): LogMessage => {
  const time = fromClickHouseTime(row.time_text)
  const event = storedEvent(row, time)
  return {
    topic: row.log_topic,
    partition: row.log_partition,
    offset: row.log_offset,
    key: row.account,
    value: encoder.encode(JSON.stringify(event)),
    headers: { 'content-type': 'application/cloudevents+json' },
    timestamp: time,
  }
}
