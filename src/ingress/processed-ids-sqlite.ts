import type { DatabaseSync } from 'node:sqlite'
import { translateSqliteError } from '../adapters/sqlite-errors.ts'
import { openSqliteFile, runTransaction } from '../adapters/sqlite-file.ts'
import { checkSqliteStore, watchStorage } from '../adapters/storage-health.ts'
import { loopSlice } from '../cooperative.ts'
import { ClosedError } from '../errors/index.ts'
import { createFingerprintWindow, type FingerprintWindow } from './fingerprint-window.ts'
import {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_RETENTION_MS,
  fingerprintOf,
  keyDigest,
  type ProcessedIds,
  type ProcessedIdWindow,
} from './processed-ids.ts'

// Keys journaled per transaction; the event loop may run other work between two.
const RECORD_CHUNK = 4_096

export interface SqliteProcessedIdsOptions extends ProcessedIdWindow {
  /** Database file; `:memory:` for a throw-away window. */
  readonly path: string
  readonly clock?: () => number
  /** Trim the file at most this often, in ms (default 10 000). */
  readonly trimEveryMs?: number
  /** Pages the file may hold at most; past it writes fail with SQLITE_FULL (see `openSqliteFile`). */
  readonly maxPageCount?: number
  /**
   * Names the window in its errors, `ping`'s too, so they say which file where a process keeps
   * more than one: "router processed-id window record: SQLITE_FULL (database or disk is full)".
   * An error no other attempt clears has the name in snake case as its code
   * (`router_processed_id_window_failed`). Default `processed-id window`.
   */
  readonly name?: string
}

const DEFAULT_NAME = 'processed-id window'

// Each statement run is a native call that costs more than the row it writes: rows go in
// fixed-size groups, the remainder one by one.
const GROUP = 64

/**
 * The journal's file, opened (the table created if need be) with its statements prepared, and
 * its rows still in the window (newer than `oldest`, the last `maxEntries`) added to `window`.
 * SQLite's errors are translated: a file that cannot be opened (SQLITE_CANTOPEN) or read
 * (SQLITE_IOERR) is a retriable UnavailableError, a damaged one (SQLITE_CORRUPT,
 * SQLITE_NOTADB) a `<name>_failed` error (`processed_id_window_failed`).
 */
const openJournal = (
  options: SqliteProcessedIdsOptions,
  name: string,
  window: FingerprintWindow,
  oldest: number,
  maxEntries: number,
) => {
  let db: DatabaseSync | undefined
  try {
    db = openSqliteFile(options.path, {
      synchronous: 'NORMAL',
      ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
    })
    db.exec(`
      CREATE TABLE IF NOT EXISTS processed_ids (
        seq INTEGER PRIMARY KEY,
        key BLOB NOT NULL,
        at INTEGER NOT NULL
      );
    `)
    const statements = {
      append: db.prepare('INSERT INTO processed_ids (key, at) VALUES (?, ?)'),
      appendGroup: db.prepare(
        `INSERT INTO processed_ids (key, at) VALUES ${Array.from({ length: GROUP }, () => '(?, ?)').join(', ')}`,
      ),
      // `at` grows with `seq`, so the expired rows are a prefix: the scan stops at the first live one.
      trimOld: db.prepare(`
        DELETE FROM processed_ids WHERE seq < coalesce(
          (SELECT seq FROM processed_ids WHERE at >= ? ORDER BY seq LIMIT 1),
          (SELECT max(seq) + 1 FROM processed_ids))`),
      trimMany: db.prepare('DELETE FROM processed_ids WHERE seq <= (SELECT max(seq) FROM processed_ids) - ?'),
      ping: db.prepare('SELECT 1'),
    }
    const load = db.prepare(`
      SELECT key, at FROM (SELECT seq, key, at FROM processed_ids WHERE at >= ? ORDER BY seq DESC LIMIT ?)
      ORDER BY seq`)
    for (const row of load.iterate(oldest, maxEntries)) {
      const [hi, lo] = fingerprintOf(row.key as Uint8Array)
      window.add(hi, lo, Number(row.at))
    }
    return { db, statements }
  } catch (error) {
    if (db?.isOpen) db.close()
    throw translateSqliteError(error, name, 'open')
  }
}

/**
 * ProcessedIds in a SQLite file: the embedded deployment's durable window, bounded by count
 * and by age. The file is an append-only journal of key digests in order; lookups are
 * answered from an exact in-memory window of 64-bit fingerprints (36 bytes a key), rebuilt
 * from the journal at open. A unique index on the file would answer them too, but every new
 * key would then land on a random B-tree page, and rewriting those pages cost five times what
 * appending does; the journal is trimmed by deleting a prefix.
 *
 * Writes survive a crash of the process; in WAL mode with synchronous=NORMAL a power cut may
 * lose the last ones — no more than the window that exists anyway between publishing a
 * batch's deliveries and recording it, which redelivery and delivery ids already cover.
 *
 * Storage failures are Herald's errors (`translateSqliteError`): a full disk or an I/O error
 * is a retriable UnavailableError naming its SQLite code (`context.sqliteCode`), so the
 * consumer hands the batch over again. Either makes `ping` fail until a write succeeds again
 * (or for `FAILURE_HOLD_MS` when nothing writes), as does the file or its write-ahead log
 * being deleted or replaced while open: see `watchStorage`.
 *
 * @example
 * const processed = createSqliteProcessedIds({ path: 'data/processed-ids.sqlite', name: 'router processed-id window' })
 */
export const createSqliteProcessedIds = (options: SqliteProcessedIdsOptions): ProcessedIds => {
  const clock = options.clock ?? Date.now
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
  const trimEveryMs = options.trimEveryMs ?? 10_000
  const name = options.name ?? DEFAULT_NAME
  const window = createFingerprintWindow(maxEntries)
  const { db, statements } = openJournal(options, name, window, clock() - retentionMs, maxEntries)
  // Once a transaction has run, so the write-ahead log it watches too exists. Nothing here syncs
  // the log by its path (synchronous = NORMAL is enough for this window), so a log deleted
  // under the connection raises no error at all: only this can tell.
  const health = watchStorage(options.path, name, { wal: true })

  // The router asks `seen` and then records the same keys; digest each once.
  let digests = new Map<string, Buffer>()
  let lastTrim = 0
  let closed = false
  const assertOpen = () => {
    if (closed) throw new ClosedError(name)
  }
  const trim = (now: number) => {
    if (now - lastTrim < trimEveryMs) return
    lastTrim = now
    statements.trimOld.run(now - retentionMs)
    statements.trimMany.run(maxEntries)
  }

  /**
   * Journals the digests in one transaction, then holds them in the window; SQLite's errors
   * translated (a full disk is a retriable UnavailableError naming SQLITE_FULL), and the
   * outcome told to `health` for `ping`.
   */
  const appendAll = (recorded: readonly Buffer[], now: number) => {
    try {
      runTransaction(
        db,
        () => {
          let i = 0
          for (; i + GROUP <= recorded.length; i += GROUP) {
            const values: (Buffer | number)[] = []
            for (let j = i; j < i + GROUP; j++) values.push(recorded[j] as Buffer, now)
            statements.appendGroup.run(...values)
          }
          for (; i < recorded.length; i++) statements.append.run(recorded[i] as Buffer, now)
          trim(now)
        },
        'BEGIN',
      )
      // A transaction that journaled nothing says nothing of the storage.
      if (recorded.length > 0) health.wrote()
    } catch (error) {
      health.wrote(error)
      throw translateSqliteError(error, name, 'record')
    }
    for (const digest of recorded) {
      const [hi, lo] = fingerprintOf(digest)
      window.add(hi, lo, now)
    }
  }

  return {
    async seen(keys) {
      assertOpen()
      const oldest = clock() - retentionMs
      const hits = new Set<string>()
      const next = new Map<string, Buffer>()
      for (const key of keys) {
        const digest = keyDigest(key)
        next.set(key, digest)
        const [hi, lo] = fingerprintOf(digest)
        if ((window.timeOf(hi, lo) ?? -Infinity) >= oldest) hits.add(key)
      }
      digests = next
      return hits
    },
    async record(keys) {
      assertOpen()
      if (keys.length === 0) return
      const now = clock()
      // A key past the retention is not held any more, even where nothing evicted it yet: seen
      // again, it is recorded again at this time.
      window.evictBefore(now - retentionMs)
      const known = digests
      digests = new Map()
      const once = new Set<string>()
      // A projector batch records tens of thousands of keys: a chunk per transaction, in the
      // order given, the event loop free between chunks. Each chunk is whole; a crash or a
      // failure between two leaves the earlier ones recorded (the projector puts first the
      // keys that are safe to hold alone).
      for (let from = 0; from < keys.length; from += RECORD_CHUNK) {
        if (from > 0 && loopSlice.due()) {
          await loopSlice.pause()
          assertOpen()
        }
        const recorded: Buffer[] = []
        const to = Math.min(keys.length, from + RECORD_CHUNK)
        for (let k = from; k < to; k++) {
          const key = keys[k] as string
          if (once.has(key)) continue
          once.add(key)
          const digest = known.get(key) ?? keyDigest(key)
          const [hi, lo] = fingerprintOf(digest)
          // A key already held keeps its first time, in the window as in the journal.
          if (window.timeOf(hi, lo) === undefined) recorded.push(digest)
        }
        appendAll(recorded, now)
      }
    },
    // Ready while the file and its log are still those at their paths and the last write did not
    // fail for want of storage: a `SELECT 1` alone answers from a deleted file and a full disk.
    async ping() {
      assertOpen()
      checkSqliteStore(health, statements.ping, name)
    },
    async close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
