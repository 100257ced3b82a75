import { WarehouseError } from '../../src/errors/index.ts'
import type { Migration, Warehouse } from '../../src/ports/index.ts'
import { acquireLease, type Lease } from './lease.ts'

/**
 * A migration whose work depends on what the warehouse holds (an engine change, say): `apply`
 * runs after `statements`, and like them must reach the same end from any point a crash left
 * it at, checking before each step whether it is still needed.
 */
export interface WarehouseMigration extends Migration {
  /** `progress` logs long work as `migrations.progress`, with the migration's table and version. */
  readonly apply?: (
    warehouse: Warehouse,
    progress: (fields: Readonly<Record<string, unknown>>) => void,
  ) => Promise<void>
}

export interface MigrateOptions {
  /**
   * Receives `migrations.applying`, `migrations.progress` (long work within one),
   * `migrations.applied` and `migrations.done` with structured fields, and
   * `migrations.waiting` (with the `holder` and its lease's `remaining_ms`) while another
   * instance migrates.
   */
  readonly log?: (event: string, fields: Readonly<Record<string, unknown>>) => void
  /** Where applied versions are recorded (default `schema_migrations`). */
  readonly table?: string
  /** Stamps `applied_at` (default: the system clock). */
  readonly clock?: () => Date
  /** The migration lease's length and the wait between claims while another holds it (see `acquireLease`). */
  readonly lease?: { readonly leaseMs?: number; readonly pollMs?: number }
}

export interface MigrationResult {
  /** Versions applied by this call, in order; empty when the schema was already current. */
  readonly applied: readonly number[]
  /** The schema version after this call. */
  readonly version: number
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Brings the warehouse schema up to date at start-up: applies, in increasing version order,
 * each migration not yet recorded in `schema_migrations`, recording it once its statements
 * have all run. A crash between the two re-runs the migration's statements next time, which
 * is why every statement must be idempotent (`IF NOT EXISTS`). Refuses to touch a warehouse
 * whose schema is newer than this code knows, or when a migration was slipped in below the
 * applied version.
 *
 * Herald instances sharing a ClickHouse server may start together, and a scripted migration
 * run by two at once undoes the other's work (one drops the copy the other is filling, and
 * the other then swaps a partial copy in for the whole table). So with anything to apply it
 * first takes the warehouse's migration lease (`acquireLease`, in `<table>_lock`), waiting
 * while another instance holds it, reads the applied versions again under it (the holder
 * may have applied them all), and checks the lease is still held before every statement.
 * A warehouse already current is answered without the lease.
 *
 * @example
 * const { applied, version } = await migrate(warehouse, warehouseMigrations, {
 *   log: (event, fields) => logger.info(event, fields),
 * })
 */
export const migrate = async (
  warehouse: Warehouse,
  migrations: readonly WarehouseMigration[],
  options: MigrateOptions = {},
): Promise<MigrationResult> => {
  const table = options.table ?? 'schema_migrations'
  const log = options.log ?? (() => {})
  const clock = options.clock ?? (() => new Date())
  if (!IDENTIFIER.test(table)) {
    throw new WarehouseError(`migrations table ${JSON.stringify(table)} is not a plain identifier`)
  }
  const ordered = checked(migrations)
  const known = ordered.at(-1)?.version ?? 0

  // ReplacingMergeTree: a version recorded twice (a run that lost its lease, say) collapses,
  // and every read below groups by version anyway.
  await warehouse.command(
    `CREATE TABLE IF NOT EXISTS ${table} (
      version UInt32,
      name String,
      applied_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree ORDER BY version`,
  )
  /** What is applied (the newest version) and what is left to apply, checked against what this code knows. */
  const plan = async () => {
    const recorded = await warehouse.query<{ version: number; name: string }>(
      `SELECT version, any(name) AS name FROM ${table} GROUP BY version ORDER BY version`,
    )
    const newest = recorded.at(-1)
    if (newest !== undefined && newest.version > known) {
      throw new WarehouseError(
        `the warehouse schema is at version ${newest.version} (${newest.name}), newer than the ${known} this Herald knows: run a Herald release that includes migration ${newest.version}, or restore an older warehouse`,
        { context: { table, databaseVersion: newest.version, knownVersion: known } },
      )
    }
    const done = new Set(recorded.map((r) => r.version))
    const pending = ordered.filter((m) => !done.has(m.version))
    const misplaced = pending.find((m) => newest !== undefined && m.version < newest.version)
    if (misplaced !== undefined && newest !== undefined) {
      throw new WarehouseError(
        `migration ${misplaced.version} (${misplaced.name}) is not applied but ${newest.version} is: migrations must be added with versions above every applied one`,
        { context: { table, version: misplaced.version, databaseVersion: newest.version } },
      )
    }
    return { newest: newest?.version ?? 0, pending }
  }

  const unlocked = await plan()
  if (unlocked.pending.length === 0) {
    log('migrations.done', { table, version: unlocked.newest, applied: [] })
    return { applied: [], version: unlocked.newest }
  }
  const lease = await acquireLease(warehouse, {
    table: `${table}_lock`,
    ...(options.lease?.leaseMs === undefined ? {} : { leaseMs: options.lease.leaseMs }),
    ...(options.lease?.pollMs === undefined ? {} : { pollMs: options.lease.pollMs }),
    onWaiting: (holder, remainingMs) =>
      log('migrations.waiting', { table, holder, remaining_ms: remainingMs }),
  })
  try {
    // Another instance may have applied some or all of them while this one waited.
    const { newest, pending } = await plan()
    const guarded = underLease(warehouse, lease)
    const applied: number[] = []
    for (const migration of pending) {
      const started = performance.now()
      log('migrations.applying', { table, version: migration.version, name: migration.name })
      for (const statement of migration.statements) await guarded.command(statement)
      await migration.apply?.(guarded, (fields) =>
        log('migrations.progress', { table, version: migration.version, name: migration.name, ...fields }),
      )
      await guarded.command(
        `INSERT INTO ${table} (version, name, applied_at)
         SELECT {version:UInt32}, {name:String}, {applied_at:DateTime64(3, 'UTC')}`,
        { version: migration.version, name: migration.name, applied_at: clock() },
      )
      applied.push(migration.version)
      log('migrations.applied', {
        table,
        version: migration.version,
        name: migration.name,
        ms: Math.round(performance.now() - started),
      })
    }

    const version = Math.max(newest, applied.at(-1) ?? 0)
    log('migrations.done', { table, version, applied })
    return { applied, version }
  } finally {
    await lease.release()
  }
}

/** The warehouse, refusing every statement once the lease is no longer certainly held. */
const underLease = (warehouse: Warehouse, lease: Lease): Warehouse => ({
  command: async (sql, params) => {
    lease.assertHeld()
    return await warehouse.command(sql, params)
  },
  query: async (sql, params) => {
    lease.assertHeld()
    return await warehouse.query(sql, params)
  },
  insert: async (table, rows, options) => {
    lease.assertHeld()
    return await warehouse.insert(table, rows, options)
  },
  ...(warehouse.insertNative === undefined
    ? {}
    : {
        insertNative: async (table, block, options) => {
          lease.assertHeld()
          await warehouse.insertNative?.(table, block, options)
        },
      }),
  ping: () => warehouse.ping(),
  close: () => warehouse.close(),
})

const checked = (migrations: readonly WarehouseMigration[]): readonly WarehouseMigration[] => {
  const ordered = [...migrations].sort((a, b) => a.version - b.version)
  ordered.forEach((m, i) => {
    if (!Number.isSafeInteger(m.version) || m.version < 1 || m.version > 0xffff_ffff) {
      throw new WarehouseError(
        `migration ${JSON.stringify(m.name)}: version ${m.version} is not a positive integer`,
      )
    }
    if (ordered[i - 1]?.version === m.version) {
      throw new WarehouseError(
        `migration version ${m.version} is used twice (${ordered[i - 1]?.name}, ${m.name})`,
      )
    }
  })
  return ordered
}
