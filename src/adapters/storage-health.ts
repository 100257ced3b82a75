import { statSync } from 'node:fs'
import { UnavailableError } from '../errors/index.ts'
import { isSqliteError, type SqliteError, sqliteCodeName } from './sqlite-errors.ts'

// Primary result codes (https://sqlite.org/rescode.html) that say the storage under a file
// cannot take writes: a full disk, an I/O error, a file made read-only, unopenable or damaged.
// A lock held too long (SQLITE_BUSY) or a conflict says nothing about the storage.
const STORAGE_FAILURES = new Set([8, 10, 11, 13, 14, 26])

/** node:sqlite's error in `error` or the errors it was translated from (its `cause`s). */
const sqliteErrorIn = (error: unknown): SqliteError | undefined => {
  let current = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if (isSqliteError(current)) return current
    current = current.cause
  }
  return undefined
}

/**
 * The name of the SQLite result code when `error`, or an error it was translated from (its
 * `cause`), is a storage failure; undefined for any other error.
 *
 * @example
 * storageFailureOf(new UnavailableError('…', { cause: sqliteFull })) // 'SQLITE_FULL'
 */
export const storageFailureOf = (error: unknown): string | undefined => {
  const sqlite = sqliteErrorIn(error)
  return sqlite !== undefined && STORAGE_FAILURES.has(sqlite.errcode & 0xff)
    ? sqliteCodeName(sqlite.errcode)
    : undefined
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

/**
 * Why the file opened as `opened` is not what `path` names any more, or undefined while it is:
 * deleted, writes go to a file nobody will open again; replaced, to one beside the new file.
 */
export const identityProblem = (path: string, opened: FileIdentity): string | undefined => {
  const now = identityOf(path)
  if (now === undefined) return `${path} was deleted while open: writes would go to a file no one reads again`
  if (now.dev !== opened.dev || now.ino !== opened.ino)
    return `${path} was replaced while open: writes would go to the file it replaced`
  return undefined
}

export interface StorageHealth {
  /**
   * Records a write's outcome: a storage failure (`storageFailureOf`) marks the storage down,
   * a write that succeeded marks it up again; any other error changes nothing.
   */
  wrote(error?: unknown): void
  /**
   * Throws an UnavailableError saying why the storage cannot take writes: the file open is no
   * longer the one at its path, or the last write failed, none has succeeded since, and the
   * failure is recent (`FAILURE_HOLD_MS`). One `stat` of the path: cheap enough for a
   * readiness probe polled every few seconds.
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
  clock: () => number = Date.now,
): StorageHealth => {
  const opened = path === ':memory:' || path.startsWith('file:') ? undefined : identityOf(path)
  let failed: { readonly code: string; readonly message: string; readonly at: number } | undefined
  return {
    wrote: (error) => {
      if (error === undefined) {
        failed = undefined
        return
      }
      const code = storageFailureOf(error)
      if (code !== undefined) failed = { code, message: sqliteErrorIn(error)?.message ?? code, at: clock() }
    },
    check: () => {
      const moved = opened === undefined ? undefined : identityProblem(path, opened)
      if (moved !== undefined) throw new UnavailableError(`${component}: ${moved}`, { context: { path } })
      if (failed !== undefined && clock() - failed.at < FAILURE_HOLD_MS)
        throw new UnavailableError(
          `${component}: the last write failed with ${failed.code} (${failed.message}) and none has succeeded since`,
          { context: { path, sqliteCode: failed.code } },
        )
    },
  }
}
