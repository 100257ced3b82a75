/**
 * One row per event. `position` is the global order: AUTOINCREMENT never hands out a number
 * twice, and because every append holds SQLite's single write lock (BEGIN IMMEDIATE) positions
 * become visible in commit order, so a reader that has seen position p has seen everything
 * below p. That is what lets a subscription read `position > checkpoint` without gaps.
 */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position    INTEGER PRIMARY KEY AUTOINCREMENT,
  stream      TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  id          TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream, revision),
  UNIQUE (stream, id)
) STRICT;
`

// WAL lets subscriptions read while another process appends; FULL syncs the WAL on every
// commit, so an append that resolved survives a power cut, not only a process crash.
// Checkpoints (copying the WAL into the file, and syncing it) run inside the commit that
// crosses the limit, on the appender's event loop: at 4000 pages (16 MiB) rather than
// SQLite's 1000 they run a quarter as often, and each copies a page written by several
// commits once (a busy delivery log spends about a fifth less time in COMMIT).
export const WAL_AUTOCHECKPOINT_PAGES = 4000

export interface EventRow {
  readonly position: number
  readonly stream: string
  readonly revision: number
  readonly id: string
  readonly type: string
  readonly data: string
  readonly metadata: string
  readonly recorded_at: number
}

const COLUMNS = 'position, stream, revision, id, type, data, metadata, recorded_at'

/**
 * `readAll` of the streams named by `count` prefixes, each bound twice (its length is taken by
 * SQLite, in SQLite's characters). A scan by position, as the unfiltered read: the filter
 * only spares decoding and handing over the rows it leaves out.
 */
export const readAllByPrefixes = (count: number): string =>
  `SELECT ${COLUMNS} FROM events WHERE position > ? AND (${Array.from(
    { length: count },
    () => 'substr(stream, 1, length(?)) = ?',
  ).join(' OR ')}) ORDER BY position LIMIT ?`

export const SQL = {
  head: 'SELECT revision, position FROM events WHERE stream = ? ORDER BY revision DESC LIMIT 1',
  byId: 'SELECT revision, position FROM events WHERE stream = ? AND id = ?',
  insert:
    'INSERT INTO events (stream, revision, id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  readStream: `SELECT ${COLUMNS} FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?`,
  readAll: `SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
  // Changes whenever another connection (in this process or another) commits to the file;
  // our own commits leave it alone, and those notify subscribers directly.
  dataVersion: 'PRAGMA data_version',
  ping: 'SELECT 1 AS ok',
} as const
