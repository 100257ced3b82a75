import { statSync } from 'node:fs'
import type { StatementSync } from 'node:sqlite'
import { UnavailableError } from '../errors/index.ts'
import { isSqliteError, sqliteCodeName, translateSqliteError } from './sqlite-errors.ts'

// Primary result codes (https://sqlite.org/rescode.html) that say the storage under a file
// cannot take writes: a full disk, an I/O error, a file made read-only, unopenable or damaged.
// A lock held too long (SQLITE_BUSY) or a conflict says nothing about the storage.
const STORAGE_FAILURES = new Set([8, 10, 11, 13, 14, 26])

// The file system's answers that say the same when Herald itself opens or syncs a store's file
// (the write-ahead log, `createWalSync`): an I/O error, no space or quota left, a read-only file
// system, a file gone or no longer accessible.
const FILE_SYSTEM_FAILURES = new Set([
  'EIO',
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'ENOENT',
  'EACCES',
  'EPERM',
  'ESTALE',
])

// The embedded warehouse's (chDB's) error types that say the same of its folder: no space left
// (or less than a table's `min_free_disk_bytes_to_perform_insert`), a file or folder that cannot
// be created, opened, written or synced, data damaged, a table that went read-only.
const WAREHOUSE_FAILURES = new Set([
  'NOT_ENOUGH_SPACE',
  'CANNOT_WRITE_TO_FILE_DESCRIPTOR',
  'CANNOT_FSYNC',
  'CANNOT_OPEN_FILE',
  'CANNOT_CLOSE_FILE',
  'CANNOT_TRUNCATE_FILE',
  'CANNOT_CREATE_DIRECTORY',
  'FILE_DOESNT_EXIST',
  'DIRECTORY_DOESNT_EXIST',
  'CORRUPTED_DATA',
  'CHECKSUM_DOESNT_MATCH',
  'TABLE_IS_READ_ONLY',
])

/** A storage failure: its name (`SQLITE_FULL`, `ENOSPC`, `NOT_ENOUGH_SPACE`) and its words for it. */
export interface StorageFailure {
  readonly code: string
  readonly message: string
}

/**
 * The storage failure `error` is, or the first error it was translated from (its `cause`s)
 * that says: SQLite's result code, the file system's or the warehouse's error type; undefined
 * for any other error.
 *
 * @example
 * storageFailureOf(new UnavailableError('…', { cause: sqliteFull }))?.code // 'SQLITE_FULL'
 * storageFailureOf(walSyncFailure)?.code // 'EIO'
 */
export const storageFailureOf = (error: unknown): StorageFailure | undefined => {
  let current = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if (isSqliteError(current)) {
      const code = sqliteCodeName(current.errcode)
      return code !== undefined && STORAGE_FAILURES.has(current.errcode & 0xff)
        ? { code, message: current.message }
        : undefined
    }
    // A system call's error (`fs`): a string code and the call that failed.
    const { code, syscall, type } = current as { code?: unknown; syscall?: unknown; type?: unknown }
    if (typeof code === 'string' && typeof syscall === 'string')
      return FILE_SYSTEM_FAILURES.has(code) ? { code, message: current.message } : undefined
    // ClickHouse's error, as the warehouse client parses it: a numeric code and its type's name.
    if (typeof code === 'string' && /^\d+$/.test(code) && typeof type === 'string')
      return WAREHOUSE_FAILURES.has(type) ? { code: type, message: current.message } : undefined
    current = current.cause
  }
  return undefined
}

/** Which file (or folder) a path named: a file deleted or replaced while open keeps its old one. */
export interface FileIdentity {
  readonly dev: number
  readonly ino: number
}

/** What `path` names now; undefined when nothing is there. */
export const identityOf = (path: string): FileIdentity | undefined => {
  const stat = statSync(path, { throwIfNoEntry: false })
  return stat === undefined ? undefined : { dev: stat.dev, ino: stat.ino }
}

/** What became of the file opened as `opened`: undefined while `path` still names it. */
const changeOf = (path: string, opened: FileIdentity): 'deleted' | 'replaced' | undefined => {
  const now = identityOf(path)
  if (now === undefined) return 'deleted'
  return now.dev !== opened.dev || now.ino !== opened.ino ? 'replaced' : undefined
}

const FILE_CHANGES = {
  deleted: 'was deleted while open: writes would go to a file no one reads again',
  replaced: 'was replaced while open: writes would go to the file it replaced',
} as const

/**
 * Why the file opened as `opened` is not what `path` names any more, or undefined while it is:
 * deleted, writes go to a file nobody will open again; replaced, to one beside the new file.
 */
export const identityProblem = (path: string, opened: FileIdentity): string | undefined => {
  const change = changeOf(path, opened)
  return change === undefined ? undefined : `${path} ${FILE_CHANGES[change]}`
}

export interface StorageHealth {
  /**
   * Records a write's outcome: a storage failure (`storageFailureOf`) marks the storage down,
   * a write that succeeded marks it up again; any other error changes nothing.
   */
  wrote(error?: unknown): void
  /** Records a storage failure seen elsewhere (by another thread writing to the same storage), as `wrote` records one. */
  failed(failure: StorageFailure): void
  /**
   * Throws an UnavailableError saying why the storage cannot take writes: the file open (or
   * its write-ahead log, when watched) is no longer the one at its path, or the last write
   * failed, none has succeeded since, and the failure is recent (`FAILURE_HOLD_MS`). A `stat`
   * of each path: cheap enough for a readiness probe polled every few seconds.
   */
  check(): void
}

/**
 * How long a failed write keeps a store down when nothing writes after it. A load balancer
 * stops sending traffic to an instance whose readiness fails, and with no traffic nothing may
 * write again: a store down until a write succeeds could stay down after the disk has room
 * again. So the failure is held this long (every failed write renews it, and consumers retry
 * theirs every few seconds while the disk is full), then readiness passes on trial, and the
 * next write decides again: requests that then fail answer 503 and may be retried.
 */
export const FAILURE_HOLD_MS = 30_000

export interface WatchStorageOptions {
  readonly clock?: () => number
  /**
   * Also watch the file's write-ahead log (`<path>-wal`), as it is at the call: SQLite writes on
   * to a log deleted or replaced under it without an error, so only a probe can tell. Call it
   * once the log exists: `openSqliteFile` makes it for a file that has tables, a new file's first
   * write does. A log not there at the call is taken as it is at the first check that finds one.
   * A store whose own syncs open the log by its path (`createWalSync`) would hear of its loss
   * from them only until the first sync, which keeps the descriptor.
   */
  readonly wal?: boolean
}

/**
 * Why a write-ahead log is not what its path names any more. Commits go on to the log SQLite
 * has open, which no other connection reads and which the next open does not find: what they
 * hold since the last checkpoint is lost with the process. `path` is left out when undefined.
 */
const walProblem = (change: 'deleted' | 'replaced', path?: string): string =>
  `its write-ahead log ${path === undefined ? '' : `${path} `}was ${change} while open: commits since the last checkpoint would be lost with the process`

/**
 * Watches the storage of one file (or folder) opened at `path` for a readiness probe, which a
 * `SELECT 1` alone cannot be: it answers from a file deleted under it and from a disk that is
 * full. `component` names the store in errors. A path that is no file (`:memory:`, a `file:`
 * URI) is watched for failed writes only.
 *
 * @example
 * const health = watchStorage('data/eventlog.sqlite', 'event log')
 * try { insert.run(row); health.wrote() } catch (e) { health.wrote(e); throw e }
 * const ping = async () => health.check()
 */
export const watchStorage = (
  path: string,
  component: string,
  options: WatchStorageOptions = {},
): StorageHealth => {
  const clock = options.clock ?? Date.now
  const isFile = path !== ':memory:' && !path.startsWith('file:')
  const opened = isFile ? identityOf(path) : undefined
  const walPath = `${path}-wal`
  const watchesWal = isFile && options.wal === true
  let wal = watchesWal ? identityOf(walPath) : undefined
  let failed: (StorageFailure & { readonly at: number }) | undefined
  return {
    wrote: (error) => {
      if (error === undefined) {
        failed = undefined
        return
      }
      const failure = storageFailureOf(error)
      if (failure !== undefined) failed = { ...failure, at: clock() }
    },
    failed: (failure) => {
      failed = { code: failure.code, message: failure.message, at: clock() }
    },
    // Each message names the path and the failure's own words, for the log; what a client is
    // told (`shown`, on /ready) gives the same reason without them: where the data is kept is
    // not its business, and the file system's words name the path too.
    check: () => {
      const moved = opened === undefined ? undefined : changeOf(path, opened)
      if (moved !== undefined)
        throw new UnavailableError(`${component}: ${path} ${FILE_CHANGES[moved]}`, {
          context: { path },
          shown: `${component}: its file ${FILE_CHANGES[moved]}`,
        })
      if (watchesWal && wal === undefined) wal = identityOf(walPath)
      const lost = wal === undefined ? undefined : changeOf(walPath, wal)
      if (lost !== undefined)
        throw new UnavailableError(`${component}: ${walProblem(lost, walPath)}`, {
          context: { path: walPath },
          shown: `${component}: ${walProblem(lost)}`,
        })
      if (failed !== undefined && clock() - failed.at < FAILURE_HOLD_MS)
        throw new UnavailableError(
          `${component}: the last write failed with ${failed.code} (${failed.message}) and none has succeeded since`,
          {
            context: { path, failure: failed.code },
            shown: `${component}: the last write failed with ${failed.code} and none has succeeded since`,
          },
        )
    },
  }
}

/**
 * A SQLite store's readiness, as its `ping` answers: what `health` watches (the file and its
 * log at their paths, no recent storage failure), which a `SELECT 1` alone cannot tell, then that
 * `select1` still answers over the store's connection (its error translated, naming
 * `component`).
 *
 * @example
 * ping: async () => { assertOpen(); checkSqliteStore(health, statements.ping, 'digest store') }
 */
export const checkSqliteStore = (health: StorageHealth, select1: StatementSync, component: string): void => {
  health.check()
  try {
    select1.get()
  } catch (error) {
    throw translateSqliteError(error, component, 'ping')
  }
}
