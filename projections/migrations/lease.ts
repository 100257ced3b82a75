import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { WarehouseError } from '../../src/errors/index.ts'
import type { Warehouse } from '../../src/ports/index.ts'

export interface LeaseOptions {
  /** The table the claims are written to (a plain identifier, created if missing). */
  readonly table: string
  /** How long a claim lasts unless renewed (default 60 s); the holder renews it every quarter of that. */
  readonly leaseMs?: number
  /** How long a claimant waits before trying again while another holds the lease (default 1 s, ±50%). */
  readonly pollMs?: number
  /** Hears each new claimant this one finds in its way (the holder, mostly), and how long its claim still runs. */
  readonly onWaiting?: (holder: string, remainingMs: number) => void
  /** Stops the wait for the lease. */
  readonly signal?: AbortSignal
  /**
   * `false`: one claim, no wait: while another holds the lease, `acquireLease` throws
   * `LeaseHeldError` naming it (default `true`: waits until the lease is free).
   */
  readonly wait?: boolean
}

/** The lease is another claimant's (`LeaseOptions.wait: false`): who, and how long its claim still runs. */
export class LeaseHeldError extends WarehouseError {
  readonly holder: string
  readonly remainingMs: number
  constructor(table: string, holder: string, remainingMs: number) {
    super(`the lease of ${table} is held by ${holder} for ${remainingMs} ms more unless renewed`, {
      context: { table, holder, remainingMs },
    })
    this.holder = holder
    this.remainingMs = remainingMs
  }
}

export interface Lease {
  /** This holder's name in the claims table. */
  readonly owner: string
  /** Throws unless the lease is certainly still this holder's: call it before each step it guards. */
  assertHeld(): void
  /** Gives the lease up at once (best effort: it runs out by itself otherwise). */
  release(): Promise<void>
}

/**
 * A lease over a shared warehouse: at most one holder at a time, among processes that share
 * nothing but the ClickHouse server, e.g. Herald instances migrating it at start-up. ClickHouse
 * has no lock and no compare-and-set, so it is built on the one guarantee a single server
 * gives a plain MergeTree: a row whose insert was acknowledged is seen by every query that
 * starts after it.
 *
 * A claimant appends a claim (its name, a sequence number, an expiry on the server's clock),
 * then reads every claim still running. If its own is the only one it holds the lease; if
 * not, it withdraws its claim (a row expiring now) and tries again later. Two claimants
 * cannot both hold it: each reads after its own claim was acknowledged, so of two claims the
 * one acknowledged later is read by its own claimant together with the earlier one, still
 * running. Both may see each other and withdraw; the random wait makes that rare. Expiries
 * are compared on the server's clock alone, so the instances' clocks do not matter.
 *
 * A holder that dies leaves a claim that runs out after `leaseMs`; until then the others wait.
 * A live holder renews its claim in the background every quarter of `leaseMs`, and counts its
 * lease as held only until a third of `leaseMs` before the earliest expiry its last claim can
 * have (on its own monotonic clock, from when it sent the claim): `assertHeld` fails from then
 * on, so a holder whose renewals stopped (the warehouse unreachable, the process stalled)
 * stops at its next step before anyone else can start. The third is the margin for a step
 * checked just in time to start, and for the two clocks' rates.
 *
 * Claims are kept a day (the table's TTL), so the table stays a few rows long.
 *
 * @example
 * const lease = await acquireLease(warehouse, { table: 'schema_migrations_lock' })
 * try {
 *   lease.assertHeld()
 *   await warehouse.command(…)
 * } finally {
 *   await lease.release()
 * }
 */
export const acquireLease = async (warehouse: Warehouse, options: LeaseOptions): Promise<Lease> => {
  const { table } = options
  checkTable(table)
  const leaseMs = options.leaseMs ?? 60_000
  const pollMs = options.pollMs ?? 1_000
  if (!Number.isSafeInteger(leaseMs) || leaseMs < 3) {
    throw new WarehouseError(`lease of ${leaseMs} ms: must be a whole number of milliseconds, at least 3`)
  }
  const owner = randomUUID()
  let seq = 0
  // On this process's monotonic clock: when the lease stops counting as held.
  let validUntil = Number.NEGATIVE_INFINITY
  let lost: string | undefined

  await createLeaseTable(warehouse, table)

  const claim = (ms: number) =>
    warehouse.command(
      `INSERT INTO ${table} (owner, seq, expires_at)
       SETTINGS insert_deduplicate = 0, async_insert = 0
       SELECT {owner:String}, {seq:UInt64}, now64(3) + toIntervalMillisecond({ms:UInt64})`,
      { owner, seq: ++seq, ms },
    )
  /** Every other claimant whose latest claim still runs, with how long it still runs. */
  const others = async () => (await runningClaims(warehouse, table)).filter((c) => c.owner !== owner)
  /**
   * Claims the lease: the other claims still running, none when this claimant alone holds it
   * now; when there are, its own claim is withdrawn.
   */
  const attempt = async () => {
    const sent = performance.now()
    await claim(leaseMs)
    const running = await others()
    if (running.length > 0) {
      await claim(0)
      return running
    }
    // The server set the expiry at or after `sent`: the lease runs at least until `sent + leaseMs`.
    validUntil = sent + leaseMs - Math.ceil(leaseMs / 3)
    return running
  }
  /**
   * Extends the lease. A renewal acknowledged while the previous claim still certainly ran
   * keeps this holder's claims running without a gap, so no one else can have claimed it
   * meanwhile (a claimant sees the running claim and withdraws); one acknowledged later may
   * have left a gap, and the lease counts as lost.
   */
  const renew = async () => {
    const sent = performance.now()
    await claim(leaseMs)
    if (performance.now() > validUntil) lost = 'a renewal was acknowledged too late'
    else validUntil = sent + leaseMs - Math.ceil(leaseMs / 3)
  }

  const sleepOptions = options.signal ? { signal: options.signal } : {}
  let waitingFor: string | undefined
  for (let tries = 1; ; tries++) {
    options.signal?.throwIfAborted()
    const began = performance.now()
    const [holder] = await attempt().catch(async (error: unknown) => {
      await claim(0).catch(() => {})
      throw error
    })
    if (holder === undefined) break
    if (options.wait === false) {
      // Claimants that met each other all withdraw at once: a claim still running after that
      // is a holder's. With none, this one tries again a few times, each after a random wait
      // of up to two attempts' time, so that the next tries do not meet again.
      const took = performance.now() - began
      const [still] = await others()
      if (still === undefined && tries < 5) {
        await sleep(2 * took * Math.random(), undefined, sleepOptions)
        continue
      }
      const seen = still ?? holder
      throw new LeaseHeldError(table, seen.owner, seen.remainingMs)
    }
    if (holder.owner !== waitingFor) {
      waitingFor = holder.owner
      options.onWaiting?.(holder.owner, holder.remainingMs)
    }
    await sleep(pollMs * (0.5 + Math.random()), undefined, sleepOptions)
  }

  let renewing: Promise<void> | undefined
  const timer = setInterval(
    () => {
      if (renewing !== undefined || lost !== undefined || performance.now() > validUntil) return
      renewing = renew()
        .catch(() => {
          // Not renewed: it runs out on its own unless a later renewal succeeds.
        })
        .finally(() => {
          renewing = undefined
        })
    },
    Math.max(1, Math.floor(leaseMs / 4)),
  )
  timer.unref()

  return {
    owner,
    assertHeld: () => {
      if (lost === undefined && performance.now() > validUntil) {
        lost = `its renewals did not succeed for ${Math.ceil((leaseMs * 2) / 3)} ms`
      }
      if (lost !== undefined) {
        throw new WarehouseError(`lost the lease of ${table}: ${lost}; another holder may go on from here`, {
          context: { table, owner },
        })
      }
    },
    release: async () => {
      clearInterval(timer)
      await renewing
      lost ??= 'released'
      try {
        await claim(0)
      } catch {
        // It runs out by itself.
      }
    },
  }
}

/** The claimants of the lease in `table` whose latest claim still runs, with how long, by owner. */
const runningClaims = async (
  warehouse: Warehouse,
  table: string,
): Promise<readonly { readonly owner: string; readonly remainingMs: number }[]> => {
  const rows = await warehouse.query<{ owner: string; remaining_ms: number }>(
    `SELECT owner, toInt64(dateDiff('millisecond', now64(3), argMax(expires_at, seq))) AS remaining_ms
       FROM ${table}
      GROUP BY owner
     HAVING argMax(expires_at, seq) > now64(3)
      ORDER BY owner`,
  )
  return rows.map((row) => ({ owner: row.owner, remainingMs: Number(row.remaining_ms) }))
}

const checkTable = (table: string) => {
  if (!IDENTIFIER.test(table)) {
    throw new WarehouseError(`lease table ${JSON.stringify(table)} is not a plain identifier`)
  }
}

/**
 * The claimants whose claims on the lease of `table` still run, with how long: the holder,
 * or none (claimants that saw each other withdraw within moments). For telling whether the
 * holder named elsewhere (a status it wrote) is still alive.
 */
export const leaseHolders = async (
  warehouse: Warehouse,
  table: string,
): Promise<readonly { readonly owner: string; readonly remainingMs: number }[]> => {
  checkTable(table)
  await createLeaseTable(warehouse, table)
  return runningClaims(warehouse, table)
}

/**
 * Ends every claim still running on the leases in `tables`, as each holder's release would,
 * and says how many it ended in each (tables not created yet hold none, and are not created).
 * Only for a warehouse no other process can use at the same time (the embedded one, behind
 * the data directory's lock): a claim still running there was left by an earlier run killed
 * while it held the lease, which would otherwise keep a migration waiting, or a rebuild
 * refused as running elsewhere, until the claim ran out.
 *
 * @example
 * await expireLeases(warehouse, ['projection_rebuild_lock']) // Map { 'projection_rebuild_lock' => 1 } after a kill mid-rebuild
 */
export const expireLeases = async (
  warehouse: Warehouse,
  tables: readonly string[],
): Promise<ReadonlyMap<string, number>> => {
  for (const table of tables) checkTable(table)
  const existing = await warehouse.query<{ name: string }>(
    'SELECT name FROM system.tables WHERE database = currentDatabase() AND has({names:Array(String)}, name) ORDER BY name',
    { names: [...tables] },
  )
  const expired = new Map<string, number>()
  for (const { name: table } of existing) {
    const held = await runningClaims(warehouse, table)
    if (held.length === 0) continue
    await warehouse.command(
      `INSERT INTO ${table} (owner, seq, expires_at)
       SETTINGS insert_deduplicate = 0, async_insert = 0
       SELECT owner, max(seq) + 1, now64(3) FROM ${table}
        GROUP BY owner
       HAVING argMax(expires_at, seq) > now64(3)`,
    )
    expired.set(table, held.length)
  }
  return expired
}

const createLeaseTable = (warehouse: Warehouse, table: string) =>
  warehouse.command(
    `CREATE TABLE IF NOT EXISTS ${table} (
      owner String,
      seq UInt64,
      expires_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree ORDER BY (owner, seq)
    TTL toDateTime(expires_at) + INTERVAL 1 DAY`,
  )

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
