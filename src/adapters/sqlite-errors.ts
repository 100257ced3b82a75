import { HeraldError, UnavailableError } from '../errors/index.ts'

/** Primary result codes (https://sqlite.org/rescode.html) by name, those Herald tells apart. */
const CODE_NAMES = new Map<number, string>([
  [5, 'SQLITE_BUSY'],
  [6, 'SQLITE_LOCKED'],
  [8, 'SQLITE_READONLY'],
  [10, 'SQLITE_IOERR'],
  [11, 'SQLITE_CORRUPT'],
  [13, 'SQLITE_FULL'],
  [14, 'SQLITE_CANTOPEN'],
  [15, 'SQLITE_PROTOCOL'],
  [26, 'SQLITE_NOTADB'],
])

/** The name of an error code's primary result code, when Herald tells it apart. */
export const sqliteCodeName = (errcode: number): string | undefined => CODE_NAMES.get(errcode & 0xff)

// The primary codes another attempt can clear: a lock held by another connection or process,
// an I/O hiccup, a disk that fills or a file made read-only until an operator frees space or
// makes it writable again.
const TRANSIENT = new Set([5, 6, 8, 10, 13, 14, 15])

export interface SqliteError extends Error {
  readonly code: 'ERR_SQLITE_ERROR'
  readonly errcode: number
  readonly errstr: string
}

export const isSqliteError = (error: unknown): error is SqliteError =>
  error instanceof Error && (error as { code?: unknown }).code === 'ERR_SQLITE_ERROR'

/** node:sqlite's error: `error` itself or one it was translated from (its `cause`s). */
export const sqliteErrorIn = (error: unknown): SqliteError | undefined => {
  let current = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if (isSqliteError(current)) return current
    current = current.cause
  }
  return undefined
}

/** A SQLite error as it crosses to another thread, which would keep only its name and message. */
export interface SentSqliteError {
  readonly message: string
  readonly errcode: number
  readonly errstr: string
}

export const sendSqliteError = (error: SqliteError): SentSqliteError => ({
  message: error.message,
  errcode: error.errcode,
  errstr: error.errstr,
})

/** The error `sendSqliteError` described, as node:sqlite threw it. */
export const receiveSqliteError = (sent: SentSqliteError): SqliteError =>
  Object.assign(new Error(sent.message), {
    code: 'ERR_SQLITE_ERROR' as const,
    errcode: sent.errcode,
    errstr: sent.errstr,
  })

/**
 * Maps node:sqlite's errors to Herald's at an adapter's edge, deciding retriability from the
 * result code (never the message); `component` names the store in the message ("event store
 * append: SQLITE_FULL (database or disk is full)") and, in snake case, the code of an error no
 * other attempt clears (`event_store_failed`, `processed_id_window_failed`). Herald's own errors
 * pass through untouched.
 *
 * @example
 * try { db.exec('BEGIN IMMEDIATE') } catch (e) { throw translateSqliteError(e, 'event store', 'append') }
 */
export const translateSqliteError = (error: unknown, component: string, operation: string): Error => {
  // Anything else (Herald's own errors, a TypeError from a bug) is not the vendor's to translate.
  if (!isSqliteError(error)) return error instanceof Error ? error : new Error(String(error))
  const context = { operation, sqliteCode: error.errcode }
  if (TRANSIENT.has(error.errcode & 0xff)) {
    const name = sqliteCodeName(error.errcode)
    return new UnavailableError(`${component} ${operation}: ${name} (${error.message})`, {
      cause: error,
      context,
    })
  }
  return new HeraldError(
    `${component.replace(/[^A-Za-z0-9]+/g, '_')}_failed`,
    `${component} ${operation}: ${error.message}`,
    { cause: error, context },
  )
}
