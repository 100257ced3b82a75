import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { isSqliteError, sqliteCodeName } from '../adapters/sqlite-errors.ts'
import { HeraldError } from '../errors/index.ts'

/** The pid of the process named in the pid file, when it names one. */
const namedHolder = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isInteger(pid) ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * The open lock databases. A `DatabaseSync` that is garbage collected closes, and its lock goes
 * with it; holding each one here keeps the lock for the process's life even when the caller
 * drops the handle.
 */
const held = new Set<DatabaseSync>()

const isBusy = (error: unknown): boolean =>
  isSqliteError(error) && sqliteCodeName(error.errcode) === 'SQLITE_BUSY'

/**
 * The embedded adapters keep consumer-group membership in process, so two Herald processes on
 * one data directory would both consume every partition. The second one is refused.
 *
 * The lock is an exclusive SQLite transaction held open on `herald.lock` for the process's
 * life: SQLite takes it with a POSIX record lock, which the operating system drops when the
 * process ends however it ends (kill -9, out of memory). So a lock is never left behind, and a
 * stale pid in `herald.pid` (a process id reused by something else since, common in
 * containers) cannot keep Herald from starting. `herald.pid` still names the holder, for the
 * error message and for operators.
 */
export const lockDataDir = (dataDir: string, pid = process.pid): { release(): void } => {
  const pidFile = join(dataDir, 'herald.pid')
  const db = new DatabaseSync(join(dataDir, 'herald.lock'), { timeout: 0 })
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE')
    db.exec('BEGIN EXCLUSIVE')
  } catch (error) {
    db.close()
    if (!isBusy(error)) throw error
    const holder = namedHolder(pidFile)
    throw new HeraldError(
      'data_dir_locked',
      `data directory ${dataDir} is in use by ${holder === undefined ? 'another Herald process' : `Herald process ${holder}`}; stop it or choose another HERALD_DATA_DIR`,
    )
  }
  writeFileSync(pidFile, `${pid}\n`, { mode: 0o644 })
  held.add(db)
  return {
    release: () => {
      if (!held.delete(db)) return
      rmSync(pidFile, { force: true })
      db.close()
    },
  }
}
