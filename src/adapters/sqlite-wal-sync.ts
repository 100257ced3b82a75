import { close, fdatasync, open } from 'node:fs'
import type { DatabaseSync } from 'node:sqlite'
import { errorText, UnavailableError } from '../errors/index.ts'

/** Syncs one file descriptor's data to disk (`fs.fdatasync`, on libuv's thread pool). */
export type SyncFile = (fd: number) => Promise<void>

const fdatasyncFile: SyncFile = (fd) =>
  new Promise((resolve, reject) => fdatasync(fd, (error) => (error === null ? resolve() : reject(error))))

export interface WalSync {
  /**
   * Resolves once everything committed before the call is on disk: it waits for a sync of the
   * write-ahead log that starts after the call, which every caller until that sync starts
   * shares. Rejects with the sync's error (the commit is then in the file, but not known to be
   * on disk).
   */
  durable(): Promise<void>
  /** Waits for syncs in progress, then closes the log's descriptor. */
  close(): Promise<void>
}

/**
 * Group commit for a SQLite file in WAL mode opened at `synchronous = NORMAL`: a commit then
 * writes its frames to the log without waiting for the disk, and `durable()` syncs the log off
 * the event loop, one sync for all the commits that came while the previous one ran. SQLite
 * itself still syncs the log's header whenever it restarts the log, and the database file at
 * every checkpoint, as it does at `NORMAL`; so once `durable()` resolves, the commits before it
 * survive a power cut as they would at `FULL`, where each commit waited for its own sync on the
 * event loop (2–3 ms for a publish of 250 events here).
 *
 * A database that is not in WAL mode has nothing to sync and `durable()` resolves at once: in
 * memory, or a file SQLite could not switch to WAL (a file system without shared memory), whose
 * connection is then set to `synchronous = FULL` so each commit syncs itself.
 *
 * @example
 * const db = openSqliteFile(path, { synchronous: 'NORMAL' })
 * const wal = createWalSync(db)
 * insert.run(...)          // its own transaction
 * await wal.durable()      // now acknowledge it
 */
export const createWalSync = (db: DatabaseSync, syncFile: SyncFile = fdatasyncFile): WalSync => {
  const location = db.location()
  const mode = (db.prepare('PRAGMA journal_mode').get() as { journal_mode: string } | undefined)?.journal_mode
  const walPath = location === null || mode !== 'wal' ? undefined : `${location}-wal`
  // A file SQLite could not put in WAL mode has no log to sync: its commits sync themselves.
  if (location !== null && walPath === undefined) db.exec('PRAGMA synchronous = FULL')
  // Opened at the first sync: the log exists once a transaction has run.
  let fd: Promise<number> | undefined
  let running: Promise<void> | undefined
  let queued: Promise<void> | undefined
  let closed = false

  const descriptor = (path: string): Promise<number> => {
    if (fd === undefined) {
      const opening = new Promise<number>((resolve, reject) =>
        open(path, 'r', (error, opened) => (error === null ? resolve(opened) : reject(error))),
      )
      fd = opening
      // A failed open is tried again by the next sync.
      opening.catch(() => {
        if (fd === opening) fd = undefined
      })
    }
    return fd
  }

  const syncNow = (path: string): Promise<void> => {
    const sync = descriptor(path)
      .then(syncFile)
      .finally(() => {
        if (running === sync) running = undefined
      })
    running = sync
    return sync
  }

  const durable = (): Promise<void> => {
    if (walPath === undefined) return Promise.resolve()
    if (closed) return Promise.reject(new Error(`${walPath}: closed`))
    if (queued !== undefined) return queued
    if (running === undefined) return syncNow(walPath)
    // The sync running may have started before this caller's commit: the next one counts.
    const next = running
      .catch(() => {})
      .then(() => {
        queued = undefined
        return syncNow(walPath)
      })
    queued = next
    return next
  }

  return {
    durable,
    close: async () => {
      if (closed) return
      closed = true
      await Promise.allSettled([running, queued])
      const opened = await fd?.catch(() => undefined)
      if (opened !== undefined) await new Promise<void>((resolve) => close(opened, () => resolve()))
    },
  }
}

/**
 * A failed `durable()` as Herald's error, for `component`'s `operation`: the commits before it
 * are in the file but not known to be on disk (an I/O error, the log file gone), a storage
 * failure another attempt may clear, so retriable. It names the file system's code (EIO,
 * ENOENT) rather than its message, which names a file of the server.
 *
 * @example
 * try { await wal.durable() } catch (e) { throw walSyncError(e, 'digest store', 'record') }
 */
export const walSyncError = (error: unknown, component: string, operation: string): UnavailableError => {
  const code = (error as { code?: unknown } | null)?.code
  const why = typeof code === 'string' ? code : errorText(error)
  return new UnavailableError(
    `${component} ${operation}: the write-ahead log could not be synced to disk (${why})`,
    { cause: error, context: { operation, code: why } },
  )
}
