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
    `)
  } catch (error) {
    db.close()
    throw error
  }
  return db
}
