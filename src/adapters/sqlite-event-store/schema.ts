/**
 * One row per event, and one per stream. `position` is the global order: AUTOINCREMENT never
 * hands out a number twice, and because every append holds SQLite's single write lock (BEGIN
 * IMMEDIATE) positions become visible in commit order, so a reader that has seen position p has
 * seen everything below p. That is what lets a subscription read `position > checkpoint`
 * without gaps.
 *
 * A stream is numbered (`sid`) when its first event is appended, in order, and its events are
 * indexed by that number rather than by its name. Names are often random (a delivery's is a
 * hash): indexed by name, every append wrote to a leaf page of its own in each of two indexes,
 * and once the file outgrew the page cache read one too. Numbered, the events of recent streams
 * share the indexes' last pages, and only `streams` has an index by name, with one entry per
 * stream rather than two per event (`npm run bench:event-store`). The name stays in each event's
 * row as well, so reading the log in order (`readAll`, every subscription) needs no join.
 */
const streamsTable = (create: string): string => `
${create} streams (
  sid  INTEGER PRIMARY KEY,
  name TEXT    NOT NULL UNIQUE
) STRICT;`

const eventsTable = (create: string, name: string): string => `
${create} ${name} (
  position    INTEGER PRIMARY KEY AUTOINCREMENT,
  sid         INTEGER NOT NULL,
  stream      TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  id          TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (sid, revision),
  UNIQUE (sid, id)
) STRICT;`

export const SCHEMA = `${streamsTable('CREATE TABLE IF NOT EXISTS')}${eventsTable('CREATE TABLE IF NOT EXISTS', 'events')}`

/**
 * A file written before streams were numbered (`events` indexed by name, no `streams`): its
 * streams are numbered in the order of their first events and its events copied, positions and
 * the AUTOINCREMENT counter kept, in one transaction (a crash leaves the old file as it was).
 */
export const MIGRATE_FROM_NAMED_STREAMS = `${streamsTable('CREATE TABLE')}
INSERT INTO streams (name) SELECT stream FROM events GROUP BY stream ORDER BY min(position);
${eventsTable('CREATE TABLE', 'events_numbered')}
INSERT INTO events_numbered (position, sid, stream, revision, id, type, data, metadata, recorded_at)
  SELECT e.position, s.sid, e.stream, e.revision, e.id, e.type, e.data, e.metadata, e.recorded_at
  FROM events e JOIN streams s ON s.name = e.stream ORDER BY e.position;
CREATE TEMP TABLE counter AS SELECT seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_numbered RENAME TO events;
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM temp.counter), 0)) WHERE name = 'events';
DROP TABLE temp.counter;
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

/**
 * The last event's position, of the streams named by `count` prefixes when there are any: a
 * scan back from the end, which stops at the first row that matches.
 */
export const lastPositionByPrefixes = (count: number): string =>
  `SELECT position FROM events${
    count === 0
      ? ''
      : ` WHERE ${Array.from({ length: count }, () => 'substr(stream, 1, length(?)) = ?').join(' OR ')}`
  } ORDER BY position DESC LIMIT 1`

export const SQL = {
  // A stream's number and its last event; no row for a stream that does not exist yet.
  head: `SELECT s.sid AS sid, e.revision AS revision, e.position AS position
    FROM streams s JOIN events e ON e.sid = s.sid WHERE s.name = ? ORDER BY e.revision DESC LIMIT 1`,
  byId: 'SELECT revision, position FROM events WHERE sid = ? AND id = ?',
  newStream: 'INSERT INTO streams (name) VALUES (?)',
  insert:
    'INSERT INTO events (sid, stream, revision, id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  readStream: `SELECT ${COLUMNS} FROM events
    WHERE sid = (SELECT sid FROM streams WHERE name = ?) AND revision >= ? ORDER BY revision LIMIT ?`,
  readAll: `SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
  // A stream deleted: its events by their (sid, revision) index, then its number.
  deleteEvents: 'DELETE FROM events WHERE sid = ?',
  deleteStream: 'DELETE FROM streams WHERE sid = ?',
  // Changes whenever another connection (in this process or another) commits to the file;
  // our own commits leave it alone, and those notify subscribers directly.
  dataVersion: 'PRAGMA data_version',
  ping: 'SELECT 1 AS ok',
} as const
