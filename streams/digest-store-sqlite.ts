import { hash, randomUUID } from 'node:crypto'
import type { DatabaseSync } from 'node:sqlite'
import { translateSqliteError } from '../src/adapters/sqlite-errors.ts'
import { columnsOf, openSqliteFile, runTransaction } from '../src/adapters/sqlite-file.ts'
import { createWalSync, walSyncError } from '../src/adapters/sqlite-wal-sync.ts'
import { checkSqliteStore, watchStorage } from '../src/adapters/storage-health.ts'
import { ClosedError } from '../src/errors/index.ts'
import type { CloudEvent } from '../src/events/index.ts'
import type { EndpointType } from '../src/notifications/index.ts'
import { DIGEST_EVENTS } from './digest.ts'
import type { DigestEntry, DigestStore, PendingDigest } from './digest-store.ts'
import type { DigestTypeCount } from './routing/index.ts'

export interface SqliteDigestStoreOptions {
  /** Database file; `:memory:` for a throw-away store. */
  readonly path: string
  /** Events kept whole per window, for the digest's list (default `DIGEST_EVENTS`, 10; at least 1); the rest are counted. */
  readonly keepEvents?: number
  /** How long a flushed window is remembered, so an entry recorded again is still ignored (default 1 day). */
  readonly retainFlushedMs?: number
  /** Pages the file may hold at most; past it writes fail with SQLITE_FULL (see `openSqliteFile`). */
  readonly maxPageCount?: number
}

const DEFAULT_RETAIN_FLUSHED_MS = 24 * 60 * 60 * 1000
const PRUNE_EVERY_MS = 60_000

interface WindowRow {
  readonly id: number
  readonly configuration_id: string
  readonly account: string
  readonly endpoint: string
  readonly window_start: number
  readonly window_end: number
  readonly total: number
  readonly flushed_at: number | null
  readonly attempts: number
}

/** What `record` knows of a window while it writes to it. */
interface OpenWindow {
  readonly id: number
  total: number
  readonly created: boolean
  changed: boolean
}

/** 16 bytes of sha256(configuration id, event key): one entry per event and configuration. */
const entryKey = (entry: DigestEntry): Buffer =>
  hash('sha256', `${entry.configurationId}\u0000${entry.eventKey}`, 'buffer').subarray(0, 16)

/** A buffer written before windows could fail gets the columns that count their attempts. */
const addRetryColumns = (db: DatabaseSync): void => {
  const columns = columnsOf(db, 'digest_windows')
  if (!columns.includes('attempts'))
    db.exec('ALTER TABLE digest_windows ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0')
  if (!columns.includes('retry_at')) db.exec('ALTER TABLE digest_windows ADD COLUMN retry_at INTEGER')
}

/** `text` read back as a JSON object, or undefined when it is not one (a damaged row). */
const jsonObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** `text` read back as a JSON array of strings, or undefined when it is not one. */
const stringList = (text: string): string[] | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * The buffer's file, opened (its tables created if need be, its instance id drawn the first
 * time) with its statements prepared. SQLite's errors are translated: a file that cannot be
 * opened (SQLITE_CANTOPEN) or read (SQLITE_IOERR) is a retriable UnavailableError, a damaged
 * one (SQLITE_CORRUPT, SQLITE_NOTADB) a `digest_store_failed` error; the connection is closed.
 */
const openBuffer = (options: SqliteDigestStoreOptions) => {
  let db: DatabaseSync | undefined
  try {
    db = openSqliteFile(options.path, {
      synchronous: 'NORMAL',
      ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
    })
    const wal = createWalSync(db)
    db.exec(`
      CREATE TABLE IF NOT EXISTS digest_windows (
        id INTEGER PRIMARY KEY,
        configuration_id TEXT NOT NULL,
        account TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        window_end INTEGER NOT NULL,
        total INTEGER NOT NULL,
        flushed_at INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        retry_at INTEGER,
        UNIQUE (configuration_id, window_start)
      );
      CREATE INDEX IF NOT EXISTS digest_windows_due ON digest_windows (window_end) WHERE flushed_at IS NULL;
      CREATE INDEX IF NOT EXISTS digest_windows_flushed ON digest_windows (flushed_at) WHERE flushed_at IS NOT NULL;
      CREATE TABLE IF NOT EXISTS digest_entries (
        key BLOB PRIMARY KEY,
        window_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        type TEXT NOT NULL,
        level TEXT NOT NULL,
        selectors TEXT NOT NULL,
        event TEXT
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS digest_entries_window ON digest_entries (window_id, position);
      CREATE TABLE IF NOT EXISTS digest_store (id INTEGER PRIMARY KEY CHECK (id = 1), instance_id TEXT NOT NULL);
    `)
    addRetryColumns(db)
    db.prepare('INSERT OR IGNORE INTO digest_store (id, instance_id) VALUES (1, ?)').run(randomUUID())
    const { instance_id: instanceId } = db.prepare('SELECT instance_id FROM digest_store').get() as {
      instance_id: string
    }
    const statements = {
      latest: db.prepare(
        'SELECT * FROM digest_windows WHERE configuration_id = ? ORDER BY window_start DESC LIMIT 1',
      ),
      openWindow: db.prepare(
        'INSERT INTO digest_windows (configuration_id, account, endpoint, window_start, window_end, total) VALUES (?, ?, ?, ?, ?, 0)',
      ),
      setTotal: db.prepare('UPDATE digest_windows SET total = ? WHERE id = ?'),
      dropWindow: db.prepare('DELETE FROM digest_windows WHERE id = ?'),
      addEntry: db.prepare(
        'INSERT OR IGNORE INTO digest_entries (key, window_id, position, type, level, selectors, event) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      due: db.prepare(
        'SELECT * FROM digest_windows WHERE flushed_at IS NULL AND window_end <= ? AND (retry_at IS NULL OR retry_at <= ?) ORDER BY window_end, id LIMIT ?',
      ),
      counts: db.prepare(
        'SELECT type, level, count(*) AS count FROM digest_entries WHERE window_id = ? GROUP BY type, level ORDER BY count DESC, type, level',
      ),
      events: db.prepare(
        'SELECT event FROM digest_entries WHERE window_id = ? AND event IS NOT NULL ORDER BY position LIMIT ?',
      ),
      selectors: db.prepare('SELECT DISTINCT selectors FROM digest_entries WHERE window_id = ?'),
      markFlushed: db.prepare(
        'UPDATE digest_windows SET flushed_at = ? WHERE configuration_id = ? AND window_start = ? AND flushed_at IS NULL',
      ),
      markFailed: db.prepare(
        'UPDATE digest_windows SET attempts = attempts + 1, retry_at = ? WHERE configuration_id = ? AND window_start = ? AND flushed_at IS NULL',
      ),
      pruneEntries: db.prepare(
        'DELETE FROM digest_entries WHERE window_id IN (SELECT id FROM digest_windows WHERE flushed_at < ?)',
      ),
      pruneWindows: db.prepare('DELETE FROM digest_windows WHERE flushed_at < ?'),
      ping: db.prepare('SELECT 1'),
    }
    return { db, wal, instanceId, statements }
  } catch (error) {
    if (db?.isOpen) db.close()
    throw translateSqliteError(error, 'digest store', 'open')
  }
}

/**
 * The DigestStore in a SQLite file: the embedded deployment's digest buffer, beside the
 * processed-id window in `data_dir`. A window is a row with its running total (and the attempts
 * and next retry of one that failed to go out); an entry is a
 * row keyed by a digest of (configuration, event), holding the type, level and selectors it
 * is counted by, and the whole event only while it is among the window's first `keepEvents`,
 * so a storm costs a small row per event, not a copy of each. Counts are taken when the
 * window is flushed. Once `record` resolves, the entries are on disk and survive a crash of
 * the machine, not only of the process, because the router then lets the log commit offsets
 * past the events they stand for: a commit is written at `synchronous = NORMAL` and the file's
 * write-ahead log then synced off the event loop (`createWalSync`, shared by the commits that
 * came meanwhile), rather than each commit waiting for its own sync on the loop.
 *
 * Storage failures are Herald's errors, from the open on: a file that cannot be opened, a full
 * disk or an I/O error is a retriable UnavailableError naming its SQLite code
 * (`context.sqliteCode`), a damaged file a `digest_store_failed` error, a failed sync of the
 * write-ahead log a retriable one naming the file system's code (`context.code`: EIO, ENOENT).
 * A failed write makes `ping` fail until a write succeeds again (or for `FAILURE_HOLD_MS` when
 * nothing writes), as does the file or its write-ahead log being deleted or replaced while
 * open: see `watchStorage`.
 *
 * @example
 * const digests = createDigestStore({ path: 'data/digests.sqlite' })
 */
export const createDigestStore = (options: SqliteDigestStoreOptions): DigestStore => {
  const keepEvents = options.keepEvents ?? DIGEST_EVENTS
  // A digest command carries its window's first event: a window must keep one.
  if (!Number.isInteger(keepEvents) || keepEvents < 1)
    throw new TypeError(`keepEvents must be a positive integer, not ${keepEvents}`)
  const retainFlushedMs = options.retainFlushedMs ?? DEFAULT_RETAIN_FLUSHED_MS
  const { db, wal, instanceId, statements } = openBuffer(options)
  // Recorded once the file and its write-ahead log exist: what `ping` compares the paths with.
  // The syncs open the log by its path only once, so after the first they no longer see it go.
  const health = watchStorage(options.path, 'digest store', { wal: true })

  let closed = false
  let lastPrune = 0
  const assertOpen = () => {
    if (closed) throw new ClosedError('digest store')
  }
  /**
   * `work` in one transaction, then synced to disk; SQLite's and the sync's errors translated,
   * and the outcome told to `health` for `ping`.
   */
  const write = async (operation: string, work: () => void): Promise<void> => {
    try {
      runTransaction(db, work)
      // Before the sync, as the event log does: a write that fails while this one waits for
      // its sync (the router's and the flusher's overlap) is not then taken back.
      health.wrote()
    } catch (error) {
      health.wrote(error)
      throw translateSqliteError(error, 'digest store', operation)
    }
    try {
      await wal.durable()
    } catch (error) {
      health.wrote(error)
      throw walSyncError(error, 'digest store', operation)
    }
  }

  /** The window an entry of `entry`'s configuration joins at `now`, opened if need be. */
  const windowFor = (entry: DigestEntry, now: number): OpenWindow => {
    const latest = statements.latest.get(entry.configurationId) as WindowRow | undefined
    if (latest !== undefined && latest.flushed_at === null && latest.window_end > now)
      return { id: latest.id, total: latest.total, created: false, changed: false }
    const aligned = Math.floor(now / entry.windowMs) * entry.windowMs
    const start = latest === undefined ? aligned : Math.max(aligned, latest.window_end)
    // The boundary after `start`, not `start` plus a length: a window that starts at an earlier
    // one's unaligned end (the length changed) is shorter, and the next is aligned again.
    const end = (Math.floor(start / entry.windowMs) + 1) * entry.windowMs
    const { lastInsertRowid } = statements.openWindow.run(
      entry.configurationId,
      entry.account,
      entry.endpoint,
      start,
      end,
    )
    return { id: Number(lastInsertRowid), total: 0, created: true, changed: false }
  }

  // A row that cannot be read back is left out and counted, rather than failing every due
  // window with it: the flusher decides what a window missing it can still send.
  const pending = (row: WindowRow): PendingDigest => {
    let unreadable = 0
    const selectors = new Set<string>()
    for (const { selectors: text } of statements.selectors.all(row.id) as { selectors: string }[]) {
      const list = stringList(text)
      if (list === undefined) unreadable++
      else for (const id of list) selectors.add(id)
    }
    const events: CloudEvent[] = []
    for (const { event: text } of statements.events.all(row.id, keepEvents) as { event: string }[]) {
      const event = jsonObject(text)
      if (event === undefined) unreadable++
      else events.push(event as unknown as CloudEvent)
    }
    return {
      configurationId: row.configuration_id,
      account: row.account,
      endpoint: row.endpoint as EndpointType,
      windowStart: row.window_start,
      windowEnd: row.window_end,
      total: row.total,
      counts: (statements.counts.all(row.id) as unknown as DigestTypeCount[]).map((c) => ({
        type: c.type,
        level: c.level,
        count: Number(c.count),
      })),
      events,
      matchedSelectorIds: [...selectors].sort(),
      unreadable,
      attempts: Number(row.attempts),
    }
  }

  return {
    instanceId,
    async record(entries, now) {
      assertOpen()
      if (entries.length === 0) return
      await write('record', () => {
        const windows = new Map<string, OpenWindow>()
        for (const entry of entries) {
          let window = windows.get(entry.configurationId)
          if (window === undefined) {
            window = windowFor(entry, now)
            windows.set(entry.configurationId, window)
          }
          const { changes } = statements.addEntry.run(
            entryKey(entry),
            window.id,
            window.total,
            entry.event.type,
            entry.event.level ?? 'info',
            JSON.stringify(entry.matchedSelectorIds),
            window.total < keepEvents ? JSON.stringify(entry.event) : null,
          )
          if (Number(changes) === 0) continue
          window.total++
          window.changed = true
        }
        for (const window of windows.values()) {
          // Every entry was a repeat of one already held: the window it opened stays unopened.
          if (window.created && window.total === 0) statements.dropWindow.run(window.id)
          else if (window.changed) statements.setTotal.run(window.total, window.id)
        }
      })
    },

    async due(now, limit = 100) {
      assertOpen()
      try {
        return (statements.due.all(now, now, limit) as unknown as WindowRow[]).map(pending)
      } catch (error) {
        throw translateSqliteError(error, 'digest store', 'due')
      }
    },

    async markFlushed(windows, now) {
      assertOpen()
      await write('markFlushed', () => {
        for (const { configurationId, windowStart } of windows)
          statements.markFlushed.run(now, configurationId, windowStart)
        if (now - lastPrune >= PRUNE_EVERY_MS) {
          lastPrune = now
          statements.pruneEntries.run(now - retainFlushedMs)
          statements.pruneWindows.run(now - retainFlushedMs)
        }
      })
    },

    async markFailed(failures) {
      assertOpen()
      if (failures.length === 0) return
      await write('markFailed', () => {
        for (const { configurationId, windowStart, retryAt } of failures)
          statements.markFailed.run(retryAt, configurationId, windowStart)
      })
    },

    // Ready while the file and its log are still those at their paths and the last write did not
    // fail for want of storage: a `SELECT 1` alone answers from a deleted file and a full disk.
    async ping() {
      assertOpen()
      checkSqliteStore(health, statements.ping, 'digest store')
    },

    async close() {
      if (closed) return
      closed = true
      await wal.close()
      db.close()
    },
  }
}
