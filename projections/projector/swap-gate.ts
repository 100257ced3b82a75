import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { errorText, UnavailableError } from '../../src/errors/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import {
  createProjectorClaims,
  finishRebuildSwap,
  PROJECTOR_CLAIMS,
  REBUILD_PAUSE,
  REBUILD_SWAP,
  RebuildSwapUnfinishedError,
  rebuildLeaseHolders,
} from './rebuild.ts'

export interface SwapGateOptions {
  readonly warehouse: Warehouse
  readonly logger: Logger
  /**
   * How long this projector's claim lasts unless renewed (default 30 s): how long a rebuild's
   * swap waits for a projector that stopped without withdrawing it. Renewed every quarter of
   * it while batches come.
   */
  readonly claimMs?: number
  /** How often a pause is looked for while the claim runs (default 1 s). */
  readonly refreshMs?: number
  /** How often a pause holding batches back is looked at again (default 250 ms). */
  readonly pollMs?: number
}

/** A batch's way through the gate (`SwapGate.enter`), until it `leave`s. */
export interface SwapPass {
  /**
   * Changes when a rebuild may have swapped the report tables since an earlier pass: state
   * kept in memory from before is not what the tables hold.
   */
  readonly generation: number
  /**
   * Throws (retriable) unless this projector's claim certainly ran without a gap since the pass
   * was let through: otherwise a rebuild may have gone on without its acknowledgement. Call it
   * before each insert into the report tables and the progress.
   */
  assertOpen(): void
  leave(): void
}

export interface SwapGate {
  /**
   * Lets a batch through once no rebuild's swap is pending or under way, holding it back
   * meanwhile; `leave` the pass once the batch is stored or failed.
   */
  enter(): Promise<SwapPass>
  /** Holds nothing more back, waits for the passes under way, then withdraws the claim. */
  close(): Promise<void>
}

/** What the last look at the warehouse found. */
interface Seen {
  /** `REBUILD_PAUSE`'s owner, the rebuild holding the projectors still. */
  readonly pause: string | undefined
  /** `REBUILD_SWAP`'s mark: a swap under way. */
  readonly swap: string | undefined
}

/** The live report table whose comment names the last swap (each swapped-in table bears its mark). */
const LIVE = 'images'

/**
 * The gate every projector sharing a ClickHouse server with other Herald instances passes each
 * batch through, so that a rebuild run by any of them loses no batch of another's: a batch
 * stored in the old tables after the rebuild's last catch-up read how far the projectors went
 * would be dropped with them at the swap.
 *
 * While it projects, a projector claims its place in `PROJECTOR_CLAIMS` (an expiry on the
 * server's clock, renewed every quarter of `claimMs` while batches come, left to run out when
 * none do), and looks every `refreshMs` whether a rebuild paused the projectors
 * (`REBUILD_PAUSE`) or a swap is under way (`REBUILD_SWAP`): the one cheap query a second, the
 * batches themselves asking nothing. Seeing a pause, it holds every new batch back and, once
 * none of its batches is under way, acknowledges the pause in its claim; the rebuild's last
 * catch-up waits for every claim still running to acknowledge it. After the swap the batches
 * go on into the new tables, from a state read anew (`SwapPass.generation`).
 *
 * A projector whose claim ran out claims again before its next batch and only then looks:
 * a rebuild that recorded its pause before reading the claims sees the claim, or the
 * projector sees the pause. A batch let through checks before its inserts that the claim ran
 * all along (`SwapPass.assertOpen`).
 *
 * A pause whose rebuild's instance died ends when its rebuild lease runs out. A swap whose
 * instance died is finished by the projector (`finishRebuildSwap`) before it stores anything,
 * as a start-up would; one that cannot be finished (a fresh table gone) holds nothing back,
 * as at start-up.
 *
 * @example
 * const gate = createSwapGate({ warehouse, logger })
 * createProjectorHandler({ warehouse, clock, logger, gate })
 */
export const createSwapGate = (options: SwapGateOptions): SwapGate => {
  const { warehouse, logger } = options
  const claimMs = options.claimMs ?? 30_000
  const refreshMs = options.refreshMs ?? 1_000
  const pollMs = options.pollMs ?? 250
  const owner = randomUUID()
  let seq = 0
  let table: Promise<void> | undefined

  // On this process's monotonic clock: until when the claim certainly runs, when it was last
  // sent, and when it has certainly run out (no rebuild waits for it any more).
  let validUntil = Number.NEGATIVE_INFINITY
  let claimedAt = Number.NEGATIVE_INFINITY
  let claimEnds = Number.NEGATIVE_INFINITY
  /** Counts the claim's new starts (after a gap, when a rebuild may have gone on without it). */
  let term = 0
  /** The pause the latest claim written acknowledges. */
  let acked = ''
  let seen: Seen | undefined
  /** The term `seen` was looked up in (its look sent while the claim ran): usable only then. */
  let seenIn = -1
  let liveMark: string | undefined
  let generation = 0
  /** A pause held batches back since the last pass: the tables may be new. */
  let heldBack = false
  /** A swap that cannot be finished (its mark): it holds nothing back. */
  let abandoned: string | undefined
  let inFlight = 0
  /** A batch came since the last renewal: the claim is renewed. */
  let engaged = false
  let closed = false
  const closing = new AbortController()
  const { promise: drained, resolve: drain } = Promise.withResolvers<void>()

  const claimed = () => performance.now() <= validUntil

  // One claim at a time, so that the latest by `seq` is the latest sent.
  let claims = Promise.resolve()
  const claim = (ms: number, ack: string): Promise<number> => {
    const run = claims.then(async () => {
      table ??= createProjectorClaims(warehouse).catch((error: unknown) => {
        table = undefined
        throw error
      })
      await table
      const sent = performance.now()
      await warehouse.command(
        `INSERT INTO ${PROJECTOR_CLAIMS} (owner, seq, expires_at, acked)
         SETTINGS insert_deduplicate = 0, async_insert = 0
         SELECT {owner:String}, {seq:UInt64}, now64(3) + toIntervalMillisecond({ms:UInt64}), {acked:String}`,
        { owner, seq: ++seq, ms, acked: ack },
      )
      return sent
    })
    claims = run.then(
      () => {},
      () => {},
    )
    return run
  }

  /**
   * Claims anew or renews. A renewal acknowledged while the claim still certainly ran keeps it
   * running without a gap; one acknowledged later begins a new term, and what was seen or let
   * through before counts no more.
   */
  const renew = async (ack = acked) => {
    engaged = false
    const sent = await claim(claimMs, ack)
    acked = ack
    if (!claimed()) term++
    validUntil = sent + claimMs - Math.ceil(claimMs / 3)
    claimedAt = sent
    claimEnds = performance.now() + claimMs
    startTicking()
  }

  // Looks may overlap (a tick's, a batch's): one sent earlier never overrides one sent later.
  let looks = 0
  let lookApplied = 0
  const look = async () => {
    const id = ++looks
    const lookTerm = term
    const during = claimed()
    const rows = await warehouse.query<{ name: string; comment: string }>(
      'SELECT name, comment FROM system.tables WHERE database = currentDatabase() AND has({names:Array(String)}, name)',
      { names: [REBUILD_PAUSE, REBUILD_SWAP, LIVE] },
    )
    if (id < lookApplied) return
    lookApplied = id
    const comment = (name: string) => rows.find((row) => row.name === name)?.comment
    seen = { pause: comment(REBUILD_PAUSE), swap: comment(REBUILD_SWAP) }
    seenIn = during ? lookTerm : -1
    const live = comment(LIVE)
    if (liveMark !== undefined && live !== liveMark) generation++
    liveMark = live
  }

  /**
   * What holds batches back now: the pause to acknowledge (a rebuild whose instance still holds
   * the rebuild lease), `''` for a swap under way, `undefined` for nothing. A swap whose
   * instance is gone is finished first.
   */
  const holding = async (now: Seen): Promise<string | undefined> => {
    const swap = now.swap !== undefined && now.swap !== abandoned ? now.swap : undefined
    if (now.pause === undefined && swap === undefined) return undefined
    const holders = await rebuildLeaseHolders(warehouse)
    if (swap !== undefined) {
      if (holders.length > 0) return now.pause ?? ''
      try {
        const exchanged = await finishRebuildSwap(warehouse)
        logger('info', 'projector.rebuild_swap_finished', { tables: exchanged ?? [] })
      } catch (error) {
        if (!(error instanceof RebuildSwapUnfinishedError) || error.retriable) throw error
        // Only a new rebuild puts the tables right; as at a start, the projector goes on.
        abandoned = swap
        logger('warn', 'projector.rebuild_swap_abandoned', { error: errorText(error) })
      }
      await look()
      return await holding(seen as Seen)
    }
    return holders.includes(now.pause as string) ? now.pause : undefined
  }

  const acknowledge = async (pause: string) => {
    if (acked !== pause && inFlight === 0) await renew(pause)
  }

  let timer: NodeJS.Timeout | undefined
  let ticking: Promise<void> | undefined
  const stopTicking = () => {
    clearInterval(timer)
    timer = undefined
  }
  const tick = async () => {
    if (closed && inFlight === 0) return stopTicking()
    const busy = inFlight > 0 || engaged
    // Idle: the claim is left to run out, and once it has, no rebuild waits for this projector.
    if (!busy && performance.now() > claimEnds) return stopTicking()
    if (busy && (!claimed() || performance.now() - claimedAt >= claimMs / 4)) await renew()
    await look()
    // A projector held still (its consumer stopped, its batches done) acknowledges here.
    if (inFlight === 0 && seen?.pause !== undefined) await acknowledge(seen.pause)
  }
  const startTicking = () => {
    if (timer !== undefined) return
    timer = setInterval(() => {
      ticking ??= tick()
        .catch(() => {
          // Looked at again at the next tick; a claim not renewed runs out on its own.
        })
        .finally(() => {
          ticking = undefined
        })
    }, refreshMs)
    timer.unref()
  }

  const pass = (): SwapPass => {
    inFlight++
    const passTerm = term
    let left = false
    return {
      generation,
      assertOpen: () => {
        if (passTerm !== term || !claimed())
          throw new UnavailableError(
            'the projector’s claim on the warehouse did not run all along (its renewals failed, or it closed): a rebuild may have swapped the report tables meanwhile, so the batch is projected again',
          )
      },
      leave: () => {
        if (left) return
        left = true
        inFlight--
        if (inFlight > 0) return
        if (closed) drain()
        else if (seen?.pause !== undefined) void acknowledge(seen.pause).catch(() => {})
      },
    }
  }

  return {
    enter: async () => {
      engaged = true
      let looked = false
      for (;;) {
        if (closed) throw new UnavailableError('the projector is stopping')
        if (seen === undefined || seenIn !== term || !claimed()) {
          // Claimed first, then looked: a rebuild recording its pause meanwhile sees the claim.
          if (!claimed()) await renew()
          await look()
          looked = true
          continue
        }
        // While nothing was seen, the last look will do: a rebuild waits for this projector's
        // acknowledgement, which follows a look. Anything seen is looked at again.
        if (!looked && (seen.pause !== undefined || seen.swap !== undefined)) {
          await look()
          looked = true
          continue
        }
        const now = seen
        const pause = await holding(now)
        // Looked again meanwhile: what holds back is what that look found.
        if (seen !== now) continue
        if (pause === undefined) {
          if (heldBack) generation++
          heldBack = false
          return pass()
        }
        heldBack = true
        if (pause !== '') await acknowledge(pause)
        try {
          await sleep(pollMs, undefined, { signal: closing.signal })
        } catch {
          continue
        }
        await look()
      }
    },
    close: async () => {
      if (closed) return
      closed = true
      closing.abort()
      if (inFlight > 0) await drained
      stopTicking()
      await ticking
      if (seq === 0) return
      validUntil = Number.NEGATIVE_INFINITY
      term++
      // Withdrawn: a rebuild no longer waits for this projector.
      await claim(0, acked).catch(() => {})
    },
  }
}
