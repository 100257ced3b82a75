import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'

export interface SqliteFileOptions {
  /**
   * `FULL`: each commit is synced to disk before it returns, so an acknowledged write survives
   * a power cut (the event store, whose writer thread can wait). `NORMAL`: a commit survives a
   * crash of the process; a power cut may lose the last commits (windows and views that
   * something else makes good), unless the caller then awaits `createWalSync`'s `durable()`,
   * which syncs the log off the event loop for every commit since (the event log, the digest
   * buffer).
   */
  readonly synchronous: 'FULL' | 'NORMAL'
  /** How long a writer waits for another connection's lock, in ms (default 5,000). */
  readonly busyTimeoutMs?: number
  /** WAL pages before a checkpoint (SQLite's default 1,000). */
  readonly walAutocheckpoint?: number
  /**
   * Pages the file may hold at most (SQLite's `max_page_count`; default SQLite's own, about
   * 4 billion): past it a write fails with SQLITE_FULL, as on a full disk. A cap below the
   * file's size holds it at its size. How tests provoke a real storage failure.
   */
  readonly maxPageCount?: number
}

/**
 * Opens (creating its folder) a SQLite file in WAL mode, where readers never block the writer
 * and other processes may read while this one appends: how every embedded file of Herald is
 * opened. `:memory:` (or a `file:` URI) is passed through as it is.
 *
 * @example
 * const db = openSqliteFile('data/processed-ids.sqlite', { synchronous: 'NORMAL' })
 */
export const openSqliteFile = (path: string, options: SqliteFileOptions): DatabaseSync => {
  if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 5_000 })
  try {
    db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = ${options.synchronous};
      ${options.walAutocheckpoint === undefined ? '' : `PRAGMA wal_autocheckpoint = ${Math.trunc(options.walAutocheckpoint)};`}
      ${options.maxPageCount === undefined ? '' : `PRAGMA max_page_count = ${Math.trunc(options.maxPageCount)};`}
    `)
  } catch (error) {
    db.close()
    throw error
  }
  return db
}

/**
 * The names of `table`'s columns in `db`, in order; none when there is no such table. How a
 * schema upgrade tells what a file made by an earlier version lacks.
 *
 * @example
 * if (!columnsOf(db, 'heads').includes('seq')) db.exec('ALTER TABLE heads ADD COLUMN seq INTEGER')
 */
export const columnsOf = (db: DatabaseSync, table: string): string[] =>
  (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name)

/**
 * Runs `work` in one transaction: committed when it returns, rolled back when it throws, and
 * the error it threw rethrown. Some errors (an I/O error, a full disk) make SQLite roll the
 * transaction back itself; a ROLLBACK then fails with "cannot rollback - no transaction is
 * active", which would hide the error that says what went wrong, so it is sent only while a
 * transaction is still open.
 *
 * @example
 * const id = runTransaction(db, () => insert.run(row).lastInsertRowid)
 */
export const runTransaction = <T>(
  db: DatabaseSync,
  work: () => T,
  begin: 'BEGIN' | 'BEGIN IMMEDIATE' = 'BEGIN IMMEDIATE',
): T => {
  db.exec(begin)
  try {
    const result = work()
    db.exec('COMMIT')
    return result
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK')
    throw error
  }
}
