import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import type { Subscription } from 'rxjs'
import { checkpointingOf } from '../adapters/sqlite-checkpointer.ts'
import { translateSqliteError } from '../adapters/sqlite-errors.ts'
import { columnsOf, openSqliteFile, runTransaction } from '../adapters/sqlite-file.ts'
import { watchStorage } from '../adapters/storage-health.ts'
import { ClosedError, type FieldIssue } from '../errors/index.ts'
import type { CloudEvent, EventText } from '../events/index.ts'
import type { EndpointType } from '../notifications/index.ts'
import type { EventStore, RecordedEvent } from '../ports/index.ts'
import {
  type AttemptOutcome,
  DELIVERY_STREAM_PREFIX,
  type DeliveryAttemptedData,
  type DeliveryEvent,
  type DeliveryRequestedData,
  type DeliveryStatus,
  decodeDeliveryEvent,
  isDeliveryStream,
  isSettled,
} from './events.ts'

/** One delivery as the log's list shows it. Times are milliseconds since the epoch. */
export interface DeliveryRow {
  readonly deliveryId: string
  /** Global store position of its request: the order of a configuration's queue and of listings. */
  readonly seq: number
  /** Stream revision of the last event folded in: the expected revision of the next append. */
  readonly revision: number
  readonly account: string
  readonly endpoint: EndpointType
  readonly configurationId: string
  readonly eventId: string
  readonly eventType: string
  readonly status: DeliveryStatus
  readonly attempts: number
  readonly roundFailures: number
  readonly nextAttemptAt: number | null
  readonly requestedAt: number
  readonly updatedAt: number
  readonly replays: number
  readonly lastAttempt: {
    readonly status: number | null
    readonly code: string | null
    readonly error: string | null
    readonly latencyMs: number | null
  } | null
}

/** A delivery with what it takes to send it again: the event and the router's decision. */
export interface StoredDelivery extends DeliveryRow {
  /** Parsed from `eventText` when first read. */
  readonly event: CloudEvent
  /** The event as the read model stores it, for a channel that sends it whole. */
  readonly eventText: EventText
  readonly matchedSelectorIds: readonly string[]
  /** RFC 3339, when the router decided it. */
  readonly createdAt: string
  /** A digest delivery's window summary, as the router sent it. */
  readonly digest?: Readonly<Record<string, unknown>>
}

/** How one attempt ended: one record of `notifications.outcomes`. */
export interface AttemptRow {
  /** Store position of the event that settled the attempt. */
  readonly position: number
  readonly deliveryId: string
  readonly account: string
  readonly endpoint: EndpointType
  readonly configurationId: string
  readonly eventId: string
  readonly eventType: string
  readonly attempt: number
  readonly outcome: AttemptOutcome
  readonly status: number | null
  readonly code: string | null
  readonly error: string | null
  readonly latencyMs: number | null
  readonly at: number
  readonly nextAttemptAt: number | null
}

export interface DeliveryQuery {
  /** Absent: every account's (admins). */
  readonly account?: string
  readonly configurationId?: string
  readonly status?: DeliveryStatus
  readonly eventId?: string
  readonly endpoint?: EndpointType
  /** Requested at or after. */
  readonly since?: number
  /** Requested before. */
  readonly until?: number
  /** Continue with deliveries older than this `seq` (a previous page's `next`, newest first). */
  readonly before?: number
  /** Continue with deliveries newer than this `seq` (a previous page's `next`, oldest first). */
  readonly after?: number
  /**
   * Oldest first, each page's `next` the `after` of the one after it: in the order the
   * deliveries were first requested, across pages too (a bulk replay's). Newest first otherwise.
   */
  readonly oldestFirst?: boolean
  readonly limit: number
}

export interface DeliveryPage {
  /** Newest first, or oldest first (`oldestFirst`). */
  readonly items: readonly DeliveryRow[]
  /** The last item's `seq` when more follow: the next page's `before`, or `after` oldest first. */
  readonly next: number | null
}

export interface DeliveryReadModel {
  /** Stable per read-model file: marks the events this instance appended, whose outcomes it publishes. */
  readonly instanceId: string
  /** The last store position folded in and committed. */
  position(): number
  get(deliveryId: string): StoredDelivery | undefined
  attemptsOf(deliveryId: string): readonly AttemptRow[]
  list(query: DeliveryQuery): DeliveryPage
  /**
   * The head of each configuration's queue (its oldest unsettled delivery) when it is due by
   * `now`, earliest due first, skipping the configurations in `exclude`. A configuration whose
   * head waits for a retry is not due: its later deliveries wait behind it, in order. A head
   * waiting for its first attempt (requested or replayed) is due whatever its time says (a wall
   * clock that stepped back since it was recorded, or another writer's ahead), after those due by it.
   */
  dueHeads(now: number, exclude: ReadonlySet<string>, limit: number): readonly StoredDelivery[]
  /** When the next head falls due (outside `exclude`); undefined when no queue holds anything. */
  nextDueAt(exclude: ReadonlySet<string>): number | undefined
  /**
   * The heads due after `after` (outside `exclude`), earliest first, at most `limit`: what waits
   * further off than `after`. None, mostly, for an `after` past any wait the retry policy gives.
   */
  headsDueAfter(after: number, exclude: ReadonlySet<string>, limit: number): readonly StoredDelivery[]
  /** The head of the configuration's queue, due or not; undefined when nothing of it is unsettled. */
  headOf(configurationId: string): StoredDelivery | undefined
  /** The configurations with deliveries unsettled (a queue), by id. */
  queuedConfigurations(): readonly string[]
  /**
   * The unsettled delivery its configuration's queue hands out after `after`, whether or not
   * `after` itself is settled here yet, `open` being the deliveries handed out whose attempts
   * are not over: the next by `seq` behind `after` that is not open or, when the queue's head
   * (its oldest unsettled delivery) is before `after` and not open, the head (it was replayed
   * meanwhile, and goes in its place rather than after the backlog). `due` by `now` (or waiting
   * for its first attempt, whatever its time says), or `waiting` until `dueAt` (its retry);
   * undefined when none is queued behind `after`.
   */
  nextBehind(
    after: Pick<DeliveryRow, 'configurationId' | 'seq'>,
    now: number,
    open?: ReadonlySet<Pick<DeliveryRow, 'seq'>>,
  ):
    | { readonly due: StoredDelivery }
    | { readonly dueAt: number; readonly waiting: StoredDelivery }
    | undefined
  /** The configuration's latest attempt outcomes, oldest first, `skipped` left out: its health. */
  recentOutcomes(configurationId: string, keep: number): readonly { ok: boolean; at: number }[]
  /**
   * Since when every attempt of the configuration failed, with no gap longer than
   * `failureGapMs` between two of them; null when its latest one succeeded (or none was made).
   */
  failingSince(configurationId: string): number | null
  /** Outcomes of this instance's attempts not yet published, in position order. */
  unpublished(limit: number): readonly AttemptRow[]
  /**
   * The outcomes `unpublished` gave were published: every one up to the highest of `positions`
   * is (they come in position order, so the outbox keeps only how far it got).
   */
  markPublished(positions: readonly number[]): void
  /**
   * What retention may delete, looked for by `seq` after `after`, at most `limit` rows at a
   * time: settled deliveries (sent, rejected, skipped, dead-lettered) requested and last
   * changed before `before`, whose attempts' outcomes were all published.
   */
  prunable(before: number, after: number, limit: number): PrunablePage
  /**
   * Forgets these deliveries: their rows, requests and attempts, as if never folded in, each
   * only while its row is still the one at that `seq` and `revision` (what `prunable` gave). For
   * deliveries whose streams retention deleted from the store; the same again is harmless, and a
   * delivery requested again since (its stream started anew, folded in as a row of its own) is
   * kept. Done in a transaction of its own (the fold's open one committed first): on disk by the
   * time it returns.
   */
  forget(deliveries: readonly ForgottenDelivery[]): void
  /** Resolves once every store event up to `position` is folded in and committed. */
  waitFor(position: number): Promise<void>
  /** Called after each commit; returns the unsubscribe. */
  onChange(listener: () => void): () => void
  /**
   * Follows the store from the read model's checkpoint (catching up first, then live), folding
   * delivery events in; the subscription is started again after a failure.
   */
  follow(store: Pick<EventStore, 'subscribeToAll'>): void
  /**
   * Reports whether the file can take the model's writes, for `/ready`: it fails while the last
   * write failed for want of storage (a full disk, an I/O error) and none has succeeded since,
   * or once the file was deleted or replaced while open (see `watchStorage`).
   */
  ping(): Promise<void>
  /** Commits what was folded in and closes the file; resolves once it is closed. */
  close(): Promise<void>
}

/** A delivery retention may delete: its stream is deleted only while still at `revision`. */
export interface PrunableDelivery {
  readonly seq: number
  readonly deliveryId: string
  readonly revision: number
}

/** A delivery retention deleted, as `forget` is told of it. */
export type ForgottenDelivery = Pick<PrunableDelivery, 'seq' | 'revision'>

export interface PrunablePage {
  readonly deliveries: readonly PrunableDelivery[]
  /** The last `seq` looked at: the next call's `after`. */
  readonly through: number
  /** Nothing after `through` was requested before `before` (nor anything at all). */
  readonly done: boolean
}

export interface DeliveryReadModelOptions {
  /** The SQLite file; `:memory:` for a throw-away one. */
  readonly path: string
  /** A new UUID: this instance's id, the first time the file is opened. */
  readonly newId: () => string
  readonly onInvalidEvent?: (event: RecordedEvent, issues: readonly FieldIssue[]) => void
  /**
   * The subscription failed, or a write to the file did (translated: a full disk is an
   * `UnavailableError` naming SQLITE_FULL, with `context.sqliteCode`); the model follows the
   * store again after `resubscribeMs`, from its last commit.
   */
  readonly onFollowError?: (error: unknown) => void
  /** Told of the copy a file of an earlier schema version takes as it opens (see `ReadModelUpgradeListener`). */
  readonly onUpgrade?: ReadModelUpgradeListener
  /** Wait before following again after the subscription or a write failed (default 1000 ms). */
  readonly resubscribeMs?: number
  /**
   * Two failed attempts of a configuration further apart than this are not one failure streak:
   * the later one starts a new one, since nothing was tried in between (default 13 h: the
   * default retry schedule's longest wait, 10 h, with its ±20 % jitter, and an hour to spare).
   */
  readonly failureGapMs?: number
  /**
   * How often the process's checkpoint thread checkpoints the file's WAL (default 200 ms); 0
   * leaves it to the commits, on the event loop, every 4000 pages. A file in memory has no WAL.
   */
  readonly checkpointIntervalMs?: number
  /**
   * Checkpoint on a timer of the thread that opened it, instead of the checkpoint thread: for a
   * read model folded off the event loop (`createThreadedDeliveryReadModel`'s thread), whose
   * checkpoints then wait for nothing but its own folds.
   */
  readonly checkpointHere?: boolean
  /** Pages the file may hold at most; past it writes fail with SQLITE_FULL (see `openSqliteFile`). */
  readonly maxPageCount?: number
  /**
   * While the fold is busy — its last commit held at least `busyCommitEvents` store events
   * (default 100) — its next transaction stays open this long after its first event (default
   * 50 ms) before it commits, so a burst of deliveries is written in fewer, larger commits: each
   * commit writes every page it touched (queue heads, each configuration's index pages) however
   * little changed on it. Otherwise, and with 0, a transaction commits on the next turn. A
   * `waitFor` on a read model folded on the event loop still commits at once.
   */
  readonly busyCommitWaitMs?: number
  readonly busyCommitEvents?: number
}

export const DEFAULT_BUSY_COMMIT_WAIT_MS = 50
export const DEFAULT_BUSY_COMMIT_EVENTS = 100

export const DEFAULT_FAILURE_GAP_MS = 13 * 3_600_000

// Each attempt keeps its delivery's `seq`, by which a delivery's attempts are found: the
// attempts folded in one commit are of deliveries requested about the same time, so their
// index entries share a page or two, where keyed by the (random) delivery id each dirtied a
// page of its own, written to the WAL at every commit.
const ATTEMPTS = `
CREATE TABLE IF NOT EXISTS attempts (
  position         INTEGER PRIMARY KEY,
  delivery_seq     INTEGER NOT NULL,
  delivery_id      TEXT NOT NULL,
  account          TEXT NOT NULL,
  endpoint         TEXT NOT NULL,
  configuration_id TEXT NOT NULL,
  event_id         TEXT NOT NULL,
  event_type       TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  outcome          TEXT NOT NULL,
  status           INTEGER,
  code             TEXT,
  error            TEXT,
  latency_ms       REAL,
  at               INTEGER NOT NULL,
  next_attempt_at  INTEGER,
  publish          INTEGER NOT NULL
) STRICT;`

const ATTEMPT_INDEXES = `
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_seq, position);
CREATE INDEX IF NOT EXISTS attempts_by_configuration ON attempts (configuration_id, position)
  WHERE outcome != 'skipped';
CREATE INDEX IF NOT EXISTS attempts_unpublished ON attempts (position) WHERE publish = 1;`

/** What `SCHEMA` makes, kept as the file's `user_version`: 0 for files made before it was kept. */
const SCHEMA_VERSION = 5

// A delivery's row holds what changes as it is attempted: the listings' columns, its state.
// What its request carried (the event, which runs to kilobytes, and the router's decision) never
// changes, so it is a row of `requests`, written once, by the same `seq`: each update of the
// delivery rewrites its narrow row, not the event with it (in a row of its own, an event over a
// few kilobytes spans overflow pages, which every update wrote again).
const DELIVERIES = `
CREATE TABLE IF NOT EXISTS deliveries (
  seq                  INTEGER PRIMARY KEY,
  delivery_id          TEXT NOT NULL UNIQUE,
  revision             INTEGER NOT NULL,
  account              TEXT NOT NULL,
  endpoint             TEXT NOT NULL,
  configuration_id     TEXT NOT NULL,
  event_id             TEXT NOT NULL,
  event_type           TEXT NOT NULL,
  status               TEXT NOT NULL,
  attempts             INTEGER NOT NULL,
  round_failures       INTEGER NOT NULL,
  next_attempt_at      INTEGER,
  requested_at         INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  replays              INTEGER NOT NULL,
  last_status          INTEGER,
  last_code            TEXT,
  last_error           TEXT,
  last_latency_ms      REAL,
  attempted            INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS requests (
  seq                  INTEGER PRIMARY KEY,
  event                TEXT NOT NULL,
  matched_selector_ids TEXT NOT NULL,
  created_at           TEXT NOT NULL,
  digest               TEXT
) STRICT;`

const DELIVERY_COLUMNS = `seq, delivery_id, revision, account, endpoint, configuration_id, event_id,
  event_type, status, attempts, round_failures, next_attempt_at, requested_at, updated_at, replays,
  last_status, last_code, last_error, last_latency_ms, attempted`

/**
 * The statuses few deliveries end in, or pass through only on failure. Listing one of them
 * (dead letters, to replay them) reads a partial index of just those rows, where it walked every
 * delivery of the account; the query repeats this term word for word, as SQLite asks of a query
 * that uses a partial index. Sent and pending stay out of it: every delivery passes through them,
 * and keeping them there would cost each one two more index writes.
 */
const FEW_STATUSES: ReadonlySet<string> = new Set(['retrying', 'rejected', 'skipped', 'dead_lettered'])
const FEW = `status IN (${[...FEW_STATUSES].map((status) => `'${status}'`).join(', ')})`

const DELIVERY_INDEXES = `
CREATE INDEX IF NOT EXISTS deliveries_by_account ON deliveries (account, seq);
CREATE INDEX IF NOT EXISTS deliveries_few_by_account ON deliveries (account, status, seq) WHERE ${FEW};
CREATE INDEX IF NOT EXISTS deliveries_few ON deliveries (status, seq) WHERE ${FEW};
CREATE INDEX IF NOT EXISTS deliveries_by_configuration ON deliveries (configuration_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id);
CREATE INDEX IF NOT EXISTS deliveries_unsettled ON deliveries (configuration_id, seq)
  WHERE next_attempt_at IS NOT NULL;`

// The configurations the deliveries are of, by account and endpoint type: a listing by endpoint
// type reads the deliveries of each of its configurations newest first from their index and merges
// them, where a filter on the column walked every delivery of the account (of every account, for
// an admin) to find a rare type's. A configuration's row is written once, at its first delivery:
// nothing more per delivery on the fold's path, where an index by endpoint type would be written
// at every one. Rows stay when retention deletes the deliveries: a configuration with none left
// costs a listing one seek.
const CONFIGURATIONS = `
CREATE TABLE IF NOT EXISTS configurations (
  account          TEXT NOT NULL,
  endpoint         TEXT NOT NULL,
  configuration_id TEXT NOT NULL,
  PRIMARY KEY (account, endpoint, configuration_id)
) STRICT, WITHOUT ROWID;`

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
${DELIVERIES}
${DELIVERY_INDEXES}
CREATE TABLE IF NOT EXISTS heads (
  configuration_id TEXT PRIMARY KEY,
  delivery_id      TEXT NOT NULL,
  next_attempt_at  INTEGER NOT NULL,
  seq              INTEGER,
  pending          INTEGER NOT NULL DEFAULT 0
) STRICT;
${ATTEMPTS}
${ATTEMPT_INDEXES}
${CONFIGURATIONS}
CREATE TABLE IF NOT EXISTS failing (
  configuration_id TEXT PRIMARY KEY,
  since            INTEGER NOT NULL,
  last_at          INTEGER
) STRICT;
`

interface DeliveryRecord {
  delivery_id: string
  seq: number
  revision: number
  account: string
  endpoint: string
  configuration_id: string
  event_id: string
  event_type: string
  status: string
  attempts: number
  round_failures: number
  next_attempt_at: number | null
  requested_at: number
  updated_at: number
  replays: number
  last_status: number | null
  last_code: string | null
  last_error: string | null
  last_latency_ms: number | null
  attempted: number
}

/** A delivery's row with its request's: what `StoredDelivery` is read from. */
interface StoredRecord extends DeliveryRecord {
  event: string
  /** The JSON text of the event's `time` (SQLite's `->`); NULL without one. */
  event_time: string | null
  matched_selector_ids: string
  created_at: string
  digest: string | null
}

type FoldingRecord = Pick<
  DeliveryRecord,
  | 'delivery_id'
  | 'seq'
  | 'account'
  | 'endpoint'
  | 'configuration_id'
  | 'event_id'
  | 'event_type'
  | 'last_status'
  | 'last_code'
  | 'last_error'
  | 'last_latency_ms'
>

const FOLDING_COLUMNS = `seq, delivery_id, account, endpoint, configuration_id, event_id, event_type,
  last_status, last_code, last_error, last_latency_ms`

interface AttemptRecord {
  position: number
  delivery_id: string
  account: string
  endpoint: string
  configuration_id: string
  event_id: string
  event_type: string
  attempt: number
  outcome: string
  status: number | null
  code: string | null
  error: string | null
  latency_ms: number | null
  at: number
  next_attempt_at: number | null
}

const toRow = (r: DeliveryRecord): DeliveryRow => ({
  deliveryId: r.delivery_id,
  seq: r.seq,
  revision: r.revision,
  account: r.account,
  endpoint: r.endpoint as EndpointType,
  configurationId: r.configuration_id,
  eventId: r.event_id,
  eventType: r.event_type,
  status: r.status as DeliveryStatus,
  attempts: r.attempts,
  roundFailures: r.round_failures,
  nextAttemptAt: r.next_attempt_at,
  requestedAt: r.requested_at,
  updatedAt: r.updated_at,
  replays: r.replays,
  lastAttempt:
    r.attempted === 0
      ? null
      : { status: r.last_status, code: r.last_code, error: r.last_error, latencyMs: r.last_latency_ms },
})

// The event is parsed only when something reads it: a webhook sends its text as it is.
const toStored = (r: StoredRecord): StoredDelivery => {
  let event: CloudEvent | undefined
  return {
    ...toRow(r),
    get event() {
      event ??= JSON.parse(r.event) as CloudEvent
      return event
    },
    eventText: {
      text: r.event,
      id: r.event_id,
      type: r.event_type,
      time: r.event_time === null || r.event_time === 'null' ? null : r.event_time,
    },
    matchedSelectorIds: JSON.parse(r.matched_selector_ids) as string[],
    createdAt: r.created_at,
    ...(r.digest === null ? {} : { digest: JSON.parse(r.digest) as Record<string, unknown> }),
  }
}

const toAttempt = (r: AttemptRecord): AttemptRow => ({
  position: r.position,
  deliveryId: r.delivery_id,
  account: r.account,
  endpoint: r.endpoint as EndpointType,
  configurationId: r.configuration_id,
  eventId: r.event_id,
  eventType: r.event_type,
  attempt: r.attempt,
  outcome: r.outcome as AttemptOutcome,
  status: r.status,
  code: r.code,
  error: r.error,
  latencyMs: r.latency_ms,
  at: r.at,
  nextAttemptAt: r.next_attempt_at,
})

const ms = (iso: string): number => Date.parse(iso)

// A delivery's `seq` is its request's store position and its `requested_at` the requesting
// process's clock: the two rise together but for the writers' clocks (concurrent requests reach
// the store in another order than they were stamped; clocks of processes differ). The fold keeps
// how far any request's time fell behind the latest one folded before it, in `meta`: then a
// listing's time bound is a bound on seq as well (see `seqBounds`), which every index it reads
// ends with, where `since` and `until` were filters on rows walked newest first from the top.
/** The latest `requested_at` folded in: what the next request's lag is measured from. */
const LATEST_REQUEST = 'latest_requested_at'
/** The most any delivery's `requested_at` fell behind one of a lower `seq`, in milliseconds. */
const REQUEST_LAG = 'request_time_lag'

/**
 * Brings a file of an earlier schema version up to `SCHEMA_VERSION`, in one transaction, so a
 * crash leaves it as it was, to be brought up at the next open. Each step looks at what the file
 * lacks, since files made before versions were kept (0) may lack any of it.
 *
 * 1. Version 0 keyed attempts by their delivery id: they are copied into the table of version 1
 *    with their delivery's `seq` (0 for an attempt whose delivery is missing, still published
 *    and counted for health), which rewrites every attempt once.
 * 2. Failure streaks end at a gap: a file without the column for the last failure gets it, and
 *    its rows keep their start until the next success, as before. Heads carry their delivery's
 *    `seq`, so the due ones come in order from an index alone (the scheduler asks thousands of
 *    times a second) rather than joined with their deliveries and sorted each time: a file
 *    without it gets the column, filled in from its deliveries, and the index.
 * 3. Each delivery's request leaves its row for `requests`: a file whose deliveries hold their
 *    events is copied into the two tables, which rewrites every delivery once.
 * 4. Listings by endpoint type read each configuration's deliveries, and time bounds become seq
 *    bounds: the configurations and the request times' lag (see `REQUEST_LAG`) are read from the
 *    deliveries, each once, which writes nothing per delivery.
 * 5. A head waiting for its first attempt is due whatever its time says: heads say whether they
 *    are (`pending`, filled in from their deliveries) and such heads have an index of their own.
 */
const upgrade = (db: DatabaseSync, onUpgrade?: ReadModelUpgradeListener): void => {
  const version = () => (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version
  if (version() >= SCHEMA_VERSION) return
  const started = performance.now()
  const copied = runTransaction(db, () => {
    // Another connection may have upgraded it while this one waited for the lock.
    const from = version()
    if (from >= SCHEMA_VERSION) return undefined
    const copiesAttempts = !columnsOf(db, 'attempts').includes('delivery_seq')
    const copiesDeliveries = columnsOf(db, 'deliveries').includes('event')
    const count = (table: string) =>
      (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
    // What a start waiting on a large file's copy says: only when rows are copied.
    const copied =
      copiesAttempts || copiesDeliveries
        ? { fromVersion: from, deliveries: count('deliveries'), attempts: count('attempts') }
        : undefined
    if (copied !== undefined) onUpgrade?.({ stage: 'started', ...copied })
    if (copiesAttempts)
      db.exec(`
        ALTER TABLE attempts RENAME TO attempts_v0;
        ${ATTEMPTS}
        INSERT INTO attempts (position, delivery_seq, delivery_id, account, endpoint, configuration_id,
          event_id, event_type, attempt, outcome, status, code, error, latency_ms, at, next_attempt_at, publish)
        SELECT a.position, coalesce(d.seq, 0), a.delivery_id, a.account, a.endpoint, a.configuration_id,
          a.event_id, a.event_type, a.attempt, a.outcome, a.status, a.code, a.error, a.latency_ms, a.at,
          a.next_attempt_at, a.publish
        FROM attempts_v0 a LEFT JOIN deliveries d ON d.delivery_id = a.delivery_id
        ORDER BY a.position;
        DROP TABLE attempts_v0;
        ${ATTEMPT_INDEXES}
      `)
    if (!columnsOf(db, 'failing').includes('last_at'))
      db.exec('ALTER TABLE failing ADD COLUMN last_at INTEGER')
    if (!columnsOf(db, 'heads').includes('seq'))
      db.exec(`
        ALTER TABLE heads ADD COLUMN seq INTEGER;
        UPDATE heads SET seq = (SELECT d.seq FROM deliveries d WHERE d.delivery_id = heads.delivery_id);
      `)
    if (!columnsOf(db, 'heads').includes('pending'))
      db.exec(`
        ALTER TABLE heads ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
        UPDATE heads SET pending = coalesce(
          (SELECT d.status = 'pending' FROM deliveries d WHERE d.delivery_id = heads.delivery_id), 0);
      `)
    if (copiesDeliveries)
      db.exec(`
        DROP INDEX IF EXISTS deliveries_by_seq;
        DROP INDEX IF EXISTS deliveries_by_account;
        DROP INDEX IF EXISTS deliveries_by_configuration;
        DROP INDEX IF EXISTS deliveries_by_event;
        DROP INDEX IF EXISTS deliveries_unsettled;
        ALTER TABLE deliveries RENAME TO deliveries_v2;
        ${DELIVERIES}
        INSERT INTO deliveries (${DELIVERY_COLUMNS}) SELECT ${DELIVERY_COLUMNS} FROM deliveries_v2 ORDER BY seq;
        INSERT INTO requests (seq, event, matched_selector_ids, created_at, digest)
        SELECT seq, event, matched_selector_ids, created_at, digest FROM deliveries_v2 ORDER BY seq;
        DROP TABLE deliveries_v2;
        ${DELIVERY_INDEXES}
      `)
    if (from < 4) {
      db.exec(`INSERT OR IGNORE INTO configurations (account, endpoint, configuration_id)
        SELECT DISTINCT account, endpoint, configuration_id FROM deliveries`)
      const { latest, lag } = db
        .prepare(`SELECT max(latest) AS latest, coalesce(max(latest - requested_at), 0) AS lag FROM (
          SELECT requested_at, max(requested_at) OVER (ORDER BY seq) AS latest FROM deliveries)`)
        .get() as { latest: number | null; lag: number }
      const setMeta = db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      )
      setMeta.run(REQUEST_LAG, String(lag))
      if (latest === null) db.prepare('DELETE FROM meta WHERE key = ?').run(LATEST_REQUEST)
      else setMeta.run(LATEST_REQUEST, String(latest))
    }
    db.exec(`
      DROP INDEX IF EXISTS heads_by_due;
      CREATE INDEX IF NOT EXISTS heads_by_due_seq ON heads (next_attempt_at, seq);
      CREATE INDEX IF NOT EXISTS heads_pending_by_due ON heads (next_attempt_at, seq) WHERE pending = 1;
      PRAGMA user_version = ${SCHEMA_VERSION};
    `)
    return copied
  })
  // Told once committed: the copy is the file's for good.
  if (copied !== undefined)
    onUpgrade?.({ stage: 'finished', ...copied, ms: Math.round(performance.now() - started) })
}

/** What an upgrade copies: from the file's `user_version` (0 for files from before it was kept), its rows. */
interface ReadModelCopy {
  readonly fromVersion: number
  readonly deliveries: number
  readonly attempts: number
}

/**
 * Told when a file of an earlier schema version is brought up to date as it opens, where that
 * copies its rows (every delivery, or every attempt, once): before and after the copy, which
 * holds up the start.
 */
export type ReadModelUpgradeListener = (
  progress:
    | (ReadModelCopy & { readonly stage: 'started' })
    | (ReadModelCopy & { readonly stage: 'finished'; readonly ms: number }),
) => void

/**
 * Opens the read model's file (creating its schema, and what files made before lack) and
 * returns it with the instance id it keeps, made the first time with `newId`.
 */
export const openDeliveryViewFile = (
  path: string,
  newId: () => string,
  {
    onUpgrade,
    ...pragmas
  }: {
    readonly walAutocheckpoint?: number
    readonly maxPageCount?: number
    readonly onUpgrade?: ReadModelUpgradeListener
  } = {},
): { readonly db: DatabaseSync; readonly instanceId: string } => {
  const db = openSqliteFile(path, { synchronous: 'NORMAL', ...pragmas })
  // Creates what is missing; an older file's tables are left as they are for `upgrade`.
  db.exec(SCHEMA)
  try {
    upgrade(db, onUpgrade)
  } catch (error) {
    // Left as it was (a full disk, say), and closed: the next open tries again.
    db.close()
    throw error
  }
  const existing = (
    db.prepare("SELECT value FROM meta WHERE key = 'instance_id'").get() as { value: string } | undefined
  )?.value
  if (existing !== undefined) return { db, instanceId: existing }
  const instanceId = newId()
  db.prepare("INSERT INTO meta (key, value) VALUES ('instance_id', ?)").run(instanceId)
  return { db, instanceId }
}

/** The read model's answers to queries. */
type DeliveryReads = Pick<
  DeliveryReadModel,
  | 'get'
  | 'attemptsOf'
  | 'list'
  | 'dueHeads'
  | 'nextDueAt'
  | 'headsDueAfter'
  | 'headOf'
  | 'queuedConfigurations'
  | 'nextBehind'
  | 'recentOutcomes'
  | 'failingSince'
>

/** What the read model answers, read from `db`: the same whether this thread or another one folds the log into it. */
export type DeliveryQueries = DeliveryReads & {
  /** Outcomes of this instance's attempts after position `after`, in position order. */
  unpublished(after: number, limit: number): readonly AttemptRow[]
  /** `DeliveryReadModel.prunable`, with the outcomes published up to `publishedThrough`. */
  prunable(before: number, after: number, limit: number, publishedThrough: number): PrunablePage
  meta(key: string): string | undefined
  /** What `list` reads for `query` beyond its filters (`listStatement` gives its SQL). */
  listShape(query: DeliveryQuery): ListShape
}

/** The answers of `queries` that a read model passes on as they are. */
export const readsOf = (queries: DeliveryQueries): DeliveryReads => ({
  get: queries.get,
  attemptsOf: queries.attemptsOf,
  list: queries.list,
  dueHeads: queries.dueHeads,
  nextDueAt: queries.nextDueAt,
  headsDueAfter: queries.headsDueAfter,
  headOf: queries.headOf,
  queuedConfigurations: queries.queuedConfigurations,
  nextBehind: queries.nextBehind,
  recentOutcomes: queries.recentOutcomes,
  failingSince: queries.failingSince,
})

/**
 * What a listing reads beyond its filters: the seq bounds its time window implies (see
 * `seqBounds`), and the configurations its endpoint type names (see `CONFIGURATIONS`).
 */
export interface ListShape {
  /** Only deliveries after this seq (with `query.after`, the higher of the two). */
  readonly after?: number
  /** Only deliveries before this seq (with `query.before`, the lower of the two). */
  readonly before?: number
  /** Read from each of these configurations' deliveries, merged by seq; absent: from the whole log's. */
  readonly configurations?: readonly string[]
}

const filters = (query: DeliveryQuery, shape: ListShape): { where: string; params: SQLInputValue[] } => {
  const clauses: string[] = []
  const params: SQLInputValue[] = []
  const add = (clause: string, value: SQLInputValue | undefined) => {
    if (value === undefined) return
    clauses.push(clause)
    params.push(value)
  }
  add('account = ?', query.account)
  add('configuration_id = ?', query.configurationId)
  if (query.status !== undefined && FEW_STATUSES.has(query.status)) clauses.push(FEW)
  add('status = ?', query.status)
  add('event_id = ?', query.eventId)
  add('endpoint = ?', query.endpoint)
  add('requested_at >= ?', query.since)
  add('requested_at < ?', query.until)
  const before = [query.before, shape.before].filter((seq) => seq !== undefined)
  add('seq < ?', before.length === 0 ? undefined : Math.min(...before))
  const after = [query.after, shape.after].filter((seq) => seq !== undefined)
  add('seq > ?', after.length === 0 ? undefined : Math.max(...after))
  return { where: clauses.join(' AND '), params }
}

/** Where a listing starts: past every seq, in its order. */
const startOf = (oldestFirst: boolean | undefined): number =>
  oldestFirst === true ? Number.MIN_SAFE_INTEGER : Number.MAX_SAFE_INTEGER

/**
 * The listing's SQL. Without `shape.configurations`: a page of `query.limit` rows and one more,
 * to tell whether there is a next. With them: the first matching delivery of one configuration
 * in the listing's order (newest, or oldest with `oldestFirst`; its first parameter, the first of
 * them as given) past a seq (below it, or above it oldest first; its second, none as given), read
 * from the configuration's index; `list` merges the configurations' deliveries by seq with it,
 * one row at a time (see `firstOf`).
 */
export const listStatement = (
  query: DeliveryQuery,
  shape: ListShape = {},
): { sql: string; params: SQLInputValue[] } => {
  const { where, params } = filters(query, shape)
  const order = query.oldestFirst === true ? 'ASC' : 'DESC'
  if (shape.configurations === undefined)
    return {
      sql: `SELECT * FROM deliveries ${where === '' ? '' : `WHERE ${where}`} ORDER BY seq ${order} LIMIT ?`,
      params: [...params, query.limit + 1],
    }
  const past = query.oldestFirst === true ? '>' : '<'
  return {
    sql: `SELECT * FROM deliveries WHERE configuration_id = ? AND seq ${past} ?${where === '' ? '' : ` AND ${where}`}
      ORDER BY seq ${order} LIMIT 1`,
    params: [shape.configurations[0] ?? null, startOf(query.oldestFirst), ...params],
  }
}

/**
 * The first `count` deliveries of several configurations in the listing's order (newest first,
 * or oldest first): `next` gives a configuration's first past a seq, and each configuration's
 * first not yet taken waits in `waiting`, in that order, for its turn. One seek per configuration
 * and one per delivery taken, however many deliveries the configurations hold, or other
 * configurations the log does.
 */
const firstOf = (
  configurations: readonly string[],
  count: number,
  oldestFirst: boolean | undefined,
  next: (configurationId: string, past: number) => DeliveryRecord | undefined,
): DeliveryRecord[] => {
  const waiting: DeliveryRecord[] = []
  const comesBefore = oldestFirst === true ? (a: number, b: number) => a < b : (a: number, b: number) => a > b
  const wait = (row: DeliveryRecord | undefined): void => {
    if (row === undefined) return
    // After every one that comes before it.
    let lo = 0
    let hi = waiting.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (comesBefore(waiting[mid]?.seq ?? 0, row.seq)) lo = mid + 1
      else hi = mid
    }
    waiting.splice(lo, 0, row)
  }
  for (const configurationId of configurations) wait(next(configurationId, startOf(oldestFirst)))
  const taken: DeliveryRecord[] = []
  while (taken.length < count) {
    const row = waiting.shift()
    if (row === undefined) break
    taken.push(row)
    wait(next(row.configuration_id, row.seq))
  }
  return taken
}

/** A delivery's seq and request time, as the bounds' search probes them. */
type Probe = { readonly seq: number; readonly requested_at: number } | undefined

/**
 * The seq bounds `since` and `until` imply, found by a binary search over seq (each probe one
 * seek by the row id) among the deliveries up to `top`: every delivery at or after a delivery
 * requested at `until + lag` or later was requested at `until` or later, and every one at or
 * before a delivery requested before `since - lag` was requested before `since`, where `lag` is
 * the most a request's time fell behind an earlier one's (`REQUEST_LAG`). The bounds are exact
 * however far clocks differ; the larger the lag, the more rows beside the window they leave to
 * the filters. `top` and `lag` are read together (one statement, one snapshot), so every delivery
 * probed is one `lag` covers.
 */
const seqBounds = (
  query: Pick<DeliveryQuery, 'since' | 'until'>,
  top: number,
  lag: number,
  probe: { readonly atOrAfter: (seq: number) => Probe; readonly atOrBefore: (seq: number) => Probe },
): Pick<ListShape, 'after' | 'before'> => {
  const first = probe.atOrAfter(Number.MIN_SAFE_INTEGER)
  const last = probe.atOrBefore(top)
  if (first === undefined || last === undefined) return {}
  /** The last seq from `first` on where `earlier` holds, where it does at `first` and not at `last`. */
  const lastWhere = (earlier: (seq: number) => boolean): number => {
    let lo = first.seq
    let hi = last.seq
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2)
      if (earlier(mid)) lo = mid
      else hi = mid
    }
    return lo
  }
  const requestedBefore = (at: number) => (p: Probe) => p !== undefined && p.requested_at < at
  let before: number | undefined
  if (query.until !== undefined) {
    const earlier = requestedBefore(query.until + lag)
    // A delivery requested at `until + lag` or later: none at or after it matches.
    if (!earlier(first)) return { before: first.seq }
    if (!earlier(last)) before = probe.atOrAfter(lastWhere((s) => earlier(probe.atOrAfter(s))) + 1)?.seq
  }
  let after: number | undefined
  if (query.since !== undefined) {
    const earlier = requestedBefore(query.since - lag)
    // A delivery requested before `since - lag`: none at or before it matches.
    if (earlier(last)) after = last.seq
    else if (earlier(first)) after = probe.atOrBefore(lastWhere((s) => earlier(probe.atOrBefore(s))))?.seq
  }
  return { ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }) }
}

// A delivery with its request, the delivery's row first (`CROSS JOIN` keeps SQLite from
// starting at `requests`, whose order by seq would otherwise look like it saves the sort).
const STORED = `
  SELECT d.*, r.event, r.event -> '$.time' AS event_time, r.matched_selector_ids, r.created_at, r.digest
  FROM deliveries d CROSS JOIN requests r ON r.seq = d.seq`

export const createDeliveryQueries = (db: DatabaseSync): DeliveryQueries => {
  const sql = {
    meta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    byId: db.prepare(`${STORED} WHERE d.delivery_id = ?`),
    failingOf: db.prepare('SELECT since FROM failing WHERE configuration_id = ?'),
    attemptsOf: db.prepare(
      'SELECT * FROM attempts WHERE delivery_seq = (SELECT seq FROM deliveries WHERE delivery_id = ?) ORDER BY position',
    ),
    // The exclusions (the queues being served, up to the whole pool) are skipped here rather
    // than bound into the SQL: at thousands of calls a second, sending a JSON list to SQLite each
    // time cost more than reading a few more (narrow) rows and dropping them.
    dueHeads: db.prepare(`
      SELECT configuration_id, delivery_id FROM heads
      WHERE next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?`),
    // Heads waiting for their first attempt with a time after now, which only a wall clock that
    // stepped back since (or another writer's clock ahead) gives: due all the same. None, mostly.
    pendingAhead: db.prepare(`
      SELECT configuration_id, delivery_id FROM heads
      WHERE pending = 1 AND next_attempt_at > ? ORDER BY next_attempt_at, seq LIMIT ?`),
    dueAfter: db.prepare(`
      SELECT configuration_id, delivery_id FROM heads
      WHERE next_attempt_at > ? ORDER BY next_attempt_at, seq LIMIT ?`),
    nextDue: db.prepare(
      'SELECT configuration_id, next_attempt_at FROM heads ORDER BY next_attempt_at LIMIT ?',
    ),
    headOf: db.prepare('SELECT delivery_id FROM heads WHERE configuration_id = ?'),
    queued: db.prepare('SELECT configuration_id FROM heads ORDER BY configuration_id'),
    // From the partial index of unsettled deliveries: a queue's, in order; with its head's `seq`
    // (a primary-key read of `heads`), which tells a replay before it.
    behind: db.prepare(`
      SELECT d.*, r.event, r.event -> '$.time' AS event_time, r.matched_selector_ids, r.created_at, r.digest,
        (SELECT h.seq FROM heads h WHERE h.configuration_id = d.configuration_id) AS head_seq
      FROM deliveries d CROSS JOIN requests r ON r.seq = d.seq
      WHERE d.configuration_id = ? AND d.next_attempt_at IS NOT NULL AND d.seq > ? ORDER BY d.seq LIMIT 1`),
    recent: db.prepare(`
      SELECT outcome, at FROM attempts WHERE configuration_id = ? AND outcome != 'skipped'
      ORDER BY position DESC LIMIT ?`),
    // `publish` marks this instance's outcomes; how far they were published is one number in
    // `meta` (rows up to it may still say 1: files from before it was kept say 0 for published).
    unpublished: db.prepare(
      'SELECT * FROM attempts WHERE publish = 1 AND position > ? ORDER BY position LIMIT ?',
    ),
    // In `seq` order, which is the order of requests, so the old ones come first and the scan
    // stops at the first one requested since (see `prunable`).
    prunable: db.prepare(`
      SELECT d.seq, d.delivery_id, d.revision, d.status, d.next_attempt_at, d.requested_at, d.updated_at,
        EXISTS (SELECT 1 FROM attempts a WHERE a.delivery_seq = d.seq AND a.publish = 1 AND a.position > ?)
          AS unpublished
      FROM deliveries d WHERE d.seq > ? ORDER BY d.seq LIMIT ?`),
    // One statement, so one snapshot: the lag read covers every delivery up to `top`.
    requests: db.prepare(
      'SELECT (SELECT max(seq) FROM deliveries) AS top, (SELECT value FROM meta WHERE key = ?) AS lag',
    ),
    atOrAfter: db.prepare('SELECT seq, requested_at FROM deliveries WHERE seq >= ? ORDER BY seq LIMIT 1'),
    atOrBefore: db.prepare(
      'SELECT seq, requested_at FROM deliveries WHERE seq <= ? ORDER BY seq DESC LIMIT 1',
    ),
    configurationsOf: db.prepare(
      'SELECT configuration_id FROM configurations WHERE account = ? AND endpoint = ? ORDER BY configuration_id',
    ),
    // A configuration is one account's; DISTINCT all the same, so no arm is read twice.
    configurationsOfAny: db.prepare(
      'SELECT DISTINCT configuration_id FROM configurations WHERE endpoint = ? ORDER BY configuration_id',
    ),
  }
  // Read at every look for due work, a row per queue: as arrays, not an object per row.
  sql.dueHeads.setReturnArrays(true)
  sql.pendingAhead.setReturnArrays(true)
  sql.dueAfter.setReturnArrays(true)
  sql.nextDue.setReturnArrays(true)
  /** Adds to `out`, up to `limit` in all, the heads `query` gives for `at` outside `exclude`. */
  const headsOf = (
    query: StatementSync,
    at: number,
    exclude: ReadonlySet<string>,
    limit: number,
    out: StoredDelivery[],
  ): void => {
    if (out.length >= limit) return
    const heads = query.all(at, limit - out.length + exclude.size) as unknown as [
      configurationId: string,
      deliveryId: string,
    ][]
    for (const [configurationId, deliveryId] of heads) {
      if (out.length >= limit) break
      if (exclude.has(configurationId)) continue
      const row = sql.byId.get(deliveryId) as StoredRecord | undefined
      if (row !== undefined) out.push(toStored(row))
    }
  }
  const probes = {
    atOrAfter: (seq: number) => sql.atOrAfter.get(seq) as Probe,
    atOrBefore: (seq: number) => sql.atOrBefore.get(seq) as Probe,
  }
  const listShape = (query: DeliveryQuery): ListShape => {
    let bounds: Pick<ListShape, 'after' | 'before'> = {}
    if (query.since !== undefined || query.until !== undefined) {
      const { top, lag } = sql.requests.get(REQUEST_LAG) as { top: number | null; lag: string | null }
      if (top !== null) bounds = seqBounds(query, top, Number(lag ?? 0), probes)
    }
    // A configuration's deliveries, or an event's, are read from their own index either way.
    if (query.endpoint === undefined || query.configurationId !== undefined || query.eventId !== undefined)
      return bounds
    const rows = (
      query.account === undefined
        ? sql.configurationsOfAny.all(query.endpoint)
        : sql.configurationsOf.all(query.account, query.endpoint)
    ) as { configuration_id: string }[]
    return { ...bounds, configurations: rows.map((r) => r.configuration_id) }
  }
  return {
    meta: (key) => (sql.meta.get(key) as { value: string } | undefined)?.value,
    listShape,
    get: (deliveryId) => {
      const row = sql.byId.get(deliveryId) as StoredRecord | undefined
      return row === undefined ? undefined : toStored(row)
    },
    attemptsOf: (deliveryId) => (sql.attemptsOf.all(deliveryId) as unknown as AttemptRecord[]).map(toAttempt),
    list: (query) => {
      const shape = listShape(query)
      const { sql, params } = listStatement(query, shape)
      const statement = db.prepare(sql)
      const rows =
        shape.configurations === undefined
          ? (statement.all(...params) as unknown as DeliveryRecord[])
          : firstOf(
              shape.configurations,
              query.limit + 1,
              query.oldestFirst,
              (configurationId, past) =>
                statement.get(configurationId, past, ...params.slice(2)) as DeliveryRecord | undefined,
            )
      const items = rows.slice(0, query.limit).map(toRow)
      return { items, next: rows.length > query.limit ? (items.at(-1)?.seq ?? null) : null }
    },
    dueHeads: (now, exclude, limit) => {
      const out: StoredDelivery[] = []
      headsOf(sql.dueHeads, now, exclude, limit, out)
      headsOf(sql.pendingAhead, now, exclude, limit, out)
      return out
    },
    headsDueAfter: (after, exclude, limit) => {
      const out: StoredDelivery[] = []
      headsOf(sql.dueAfter, after, exclude, limit, out)
      return out
    },
    nextDueAt: (exclude) => {
      const heads = sql.nextDue.all(exclude.size + 1) as unknown as [configurationId: string, dueAt: number][]
      return heads.find(([configurationId]) => !exclude.has(configurationId))?.[1]
    },
    headOf: (configurationId) => {
      const head = sql.headOf.get(configurationId) as { delivery_id: string } | undefined
      const row =
        head === undefined ? undefined : (sql.byId.get(head.delivery_id) as StoredRecord | undefined)
      return row === undefined ? undefined : toStored(row)
    },
    queuedConfigurations: () =>
      (sql.queued.all() as { configuration_id: string }[]).map((r) => r.configuration_id),
    nextBehind: (after, now, open) => {
      const isOpen = (seq: number): boolean => {
        if (open !== undefined) for (const item of open) if (item.seq === seq) return true
        return false
      }
      const behind = (seq: number) =>
        sql.behind.get(after.configurationId, seq) as (StoredRecord & { head_seq: number | null }) | undefined
      let row = behind(after.seq)
      if (row !== undefined && row.head_seq !== null && row.head_seq < after.seq && !isOpen(row.head_seq))
        row = behind(row.head_seq - 1)
      // Behind a replay handed out, the deliveries handed out before it are open: passed over.
      else while (row !== undefined && isOpen(row.seq)) row = behind(row.seq)
      if (row === undefined || row.next_attempt_at === null) return undefined
      return row.next_attempt_at <= now || row.status === 'pending'
        ? { due: toStored(row) }
        : { dueAt: row.next_attempt_at, waiting: toStored(row) }
    },
    recentOutcomes: (configurationId, keep) =>
      (sql.recent.all(configurationId, keep) as unknown as { outcome: string; at: number }[])
        .map((r) => ({ ok: r.outcome === 'sent', at: r.at }))
        .reverse(),
    failingSince: (configurationId) =>
      (sql.failingOf.get(configurationId) as { since: number } | undefined)?.since ?? null,
    unpublished: (after, limit) =>
      (sql.unpublished.all(after, limit) as unknown as AttemptRecord[]).map(toAttempt),
    // Requests are folded in in store order, each stamped when it was written, so `requested_at`
    // rises with `seq` but for the writers' clocks (a few milliseconds within a process, a clock's
    // skew between processes): the scan stops at the first delivery requested since `before`,
    // and one that sat just past it is found by a later pass, whose `before` is later.
    prunable: (before, after, limit, publishedThrough) => {
      const rows = sql.prunable.all(publishedThrough, after, limit) as unknown as PrunableRecord[]
      const deliveries: PrunableDelivery[] = []
      let through = after
      for (const row of rows) {
        if (row.requested_at >= before) return { deliveries, through, done: true }
        through = row.seq
        if (
          isSettled(row.status) &&
          row.next_attempt_at === null &&
          row.updated_at < before &&
          row.unpublished === 0
        )
          deliveries.push({ seq: row.seq, deliveryId: row.delivery_id, revision: row.revision })
      }
      return { deliveries, through, done: rows.length < limit }
    },
  }
}

/** A row as `prunable` reads it. */
interface PrunableRecord {
  readonly seq: number
  readonly delivery_id: string
  readonly revision: number
  readonly status: DeliveryStatus
  readonly next_attempt_at: number | null
  readonly requested_at: number
  readonly updated_at: number
  readonly unpublished: number
}

/**
 * The delivery log's read model: a projection of the delivery streams into a SQLite file,
 * with its checkpoint in the same transaction as the rows, so it resumes where it stopped
 * instead of replaying the whole log at every start, and its memory does not grow with the
 * log. It answers the API's filtered, paged listings with indexes, gives the retry scheduler
 * each configuration's queue head, derives configuration health from recent outcomes, and is
 * the outbox of `notifications.outcomes` for the attempts this instance made.
 *
 * Each process keeps its own file (it is rebuilt from the store when missing), so it works the
 * same over the embedded store and KurrentDB.
 *
 * @example
 * const view = createDeliveryReadModel({ path: 'data/deliveries-view.sqlite', newId: randomUUID })
 * view.follow(store)
 * await view.waitFor(appended.position)
 * view.list({ account: 'acme', status: 'dead_lettered', limit: 50 })
 */
export const createDeliveryReadModel = (options: DeliveryReadModelOptions): DeliveryReadModel => {
  // The WAL is checkpointed in the background (copying it into the file, and syncing it, took
  // a commit on the event loop every 4000 pages, and blocked it meanwhile); the commits here
  // checkpoint only as a backstop, far later. Without that (a file in memory, or turned off),
  // every 4000 pages rather than SQLite's 1000, as the event store does.
  const checkpointing = checkpointingOf(options.path, options.checkpointIntervalMs, 4000)
  const { db, instanceId } = openDeliveryViewFile(options.path, options.newId, {
    ...checkpointing.pragmas,
    ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
    ...(options.onUpgrade === undefined ? {} : { onUpgrade: options.onUpgrade }),
  })
  // What `ping` reports: a `SELECT 1` answers from a full disk and from a deleted file.
  const health = watchStorage(options.path, 'delivery read model')
  const resubscribeMs = options.resubscribeMs ?? 1000
  const failureGapMs = options.failureGapMs ?? DEFAULT_FAILURE_GAP_MS
  const busyCommitWaitMs = options.busyCommitWaitMs ?? DEFAULT_BUSY_COMMIT_WAIT_MS
  const busyCommitEvents = options.busyCommitEvents ?? DEFAULT_BUSY_COMMIT_EVENTS
  const checkpoints = checkpointing.start(options.checkpointHere === true ? { db } : undefined)
  const queries = createDeliveryQueries(db)
  const setMeta = db.prepare(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  )
  const metaValue = (key: string): string | undefined => queries.meta(key)
  const origin = instanceId

  const sql = {
    // A request folded in already (its delivery id, or its position) adds nothing.
    insert: db.prepare(`
      INSERT INTO deliveries (delivery_id, seq, revision, account, endpoint, configuration_id, event_id,
        event_type, status, attempts, round_failures, next_attempt_at, requested_at, updated_at, replays,
        attempted)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?, ?, 0, 0)
      ON CONFLICT DO NOTHING`),
    insertRequest: db.prepare(
      'INSERT INTO requests (seq, event, matched_selector_ids, created_at, digest) VALUES (?, ?, ?, ?, ?)',
    ),
    // An event after the request changes its delivery only when it is newer than what was folded
    // in (`revision < ?`: a checkpoint written before a crash lags the rows it covers, never
    // leads them), and returns what the rest of its fold needs: one statement, not a read and a
    // write. No row back: unknown, or applied already. What is returned is the narrow part of
    // the row, not the event and the router's decision.
    attempted: db.prepare(`
      UPDATE deliveries SET revision = ?, attempts = MAX(attempts, ?), updated_at = ?, attempted = 1,
        last_status = ?, last_code = ?, last_error = ?, last_latency_ms = ?
      WHERE delivery_id = ? AND revision < ?`),
    settle: db.prepare(`
      UPDATE deliveries SET revision = ?, status = ?, attempts = MAX(attempts, ?), next_attempt_at = ?,
        round_failures = round_failures + ?, updated_at = ?
      WHERE delivery_id = ? AND revision < ?
      RETURNING ${FOLDING_COLUMNS}`),
    // An attempt and its outcome, appended together, folded in one write of the row: what
    // `attempted` and then `settle` would leave (the row's revision is below the attempt's, or
    // at it when only the attempt was folded before a crash, and then it writes the same values).
    attemptedAndSettle: db.prepare(`
      UPDATE deliveries SET revision = ?, status = ?, attempts = MAX(attempts, ?, ?), next_attempt_at = ?,
        round_failures = round_failures + ?, updated_at = ?, attempted = 1,
        last_status = ?, last_code = ?, last_error = ?, last_latency_ms = ?
      WHERE delivery_id = ? AND revision < ?
      RETURNING ${FOLDING_COLUMNS}`),
    skipped: db.prepare(`
      UPDATE deliveries SET attempted = 1, last_status = NULL, last_code = 'skipped', last_error = ?,
        last_latency_ms = NULL
      WHERE delivery_id = ?`),
    replayed: db.prepare(`
      UPDATE deliveries SET revision = ?, status = 'pending', round_failures = 0, next_attempt_at = ?,
        replays = replays + 1, updated_at = ?
      WHERE delivery_id = ? AND revision < ?
      RETURNING ${FOLDING_COLUMNS}`),
    headOf: db.prepare(`
      SELECT delivery_id, next_attempt_at, seq, status = 'pending' AS pending FROM deliveries
      WHERE configuration_id = ? AND next_attempt_at IS NOT NULL ORDER BY seq LIMIT 1`),
    setHead: db.prepare(`
      INSERT INTO heads (configuration_id, delivery_id, next_attempt_at, seq, pending) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (configuration_id) DO UPDATE SET delivery_id = excluded.delivery_id,
        next_attempt_at = excluded.next_attempt_at, seq = excluded.seq, pending = excluded.pending`),
    addHead: db.prepare(`
      INSERT INTO heads (configuration_id, delivery_id, next_attempt_at, seq, pending) VALUES (?, ?, ?, ?, 1)
      ON CONFLICT (configuration_id) DO NOTHING`),
    dropHead: db.prepare('DELETE FROM heads WHERE configuration_id = ?'),
    catalogue: db.prepare(`
      INSERT INTO configurations (account, endpoint, configuration_id) VALUES (?, ?, ?)
      ON CONFLICT DO NOTHING`),
    insertAttempt: db.prepare(`
      INSERT OR IGNORE INTO attempts (position, delivery_seq, delivery_id, account, endpoint, configuration_id, event_id,
        event_type, attempt, outcome, status, code, error, latency_ms, at, next_attempt_at, publish)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    // A failure after a gap with no attempts starts the streak again.
    startFailing: db.prepare(`
      INSERT INTO failing (configuration_id, since, last_at) VALUES (?1, ?2, ?2)
      ON CONFLICT (configuration_id) DO UPDATE SET
        since = CASE WHEN failing.last_at IS NOT NULL AND ?2 - failing.last_at > ?3 THEN ?2 ELSE failing.since END,
        last_at = MAX(coalesce(failing.last_at, ?2), ?2)`),
    stopFailing: db.prepare('DELETE FROM failing WHERE configuration_id = ?'),
    forgetAttempts: db.prepare('DELETE FROM attempts WHERE delivery_seq = ?'),
    forgetRequest: db.prepare('DELETE FROM requests WHERE seq = ?'),
    forgetDelivery: db.prepare('DELETE FROM deliveries WHERE seq = ?'),
    // Only the row retention looked at: not one a later event changed.
    forgetAt: db.prepare('DELETE FROM deliveries WHERE seq = ? AND revision = ?'),
    // The row of a delivery of an earlier request than this one (before `seq`).
    requestedBefore: db.prepare(
      'SELECT seq, configuration_id, next_attempt_at FROM deliveries WHERE delivery_id = ? AND seq < ?',
    ),
  }

  let committed = Number(metaValue('checkpoint') ?? 0)
  // Outcomes are published in position order, so one watermark, not an update of each row.
  let publishedThrough = Number(metaValue('published_through') ?? 0)
  let position = committed
  let inTransaction = false
  const listeners = new Set<() => void>()
  const waiters: { position: number; resolve: () => void }[] = []
  let closed = false

  // What this transaction is known to hold, to skip writes that would change nothing: the
  // configurations with a queue head (a request queues behind it), and those without a failure
  // streak (a success ends none). Forgotten at a rollback; nothing else writes the file.
  const headed = new Set<string>()
  const notFailing = new Set<string>()
  // And the configurations `configurations` holds, by account, endpoint type and id.
  const catalogued = new Set<string>()

  // The request times' lag (see `REQUEST_LAG`), as far as folded in.
  const latestRequestOf = (): number | undefined => {
    const latest = metaValue(LATEST_REQUEST)
    return latest === undefined ? undefined : Number(latest)
  }
  let latestRequest = latestRequestOf()
  let latestRequestChanged = false
  let requestLag = Number(metaValue(REQUEST_LAG) ?? 0)

  /** Catalogues the request's configuration and measures its time against the latest before it. */
  const noteRequest = (d: DeliveryRequestedData, requestedAt: number): void => {
    const key = `${d.account}\n${d.endpoint}\n${d.configurationId}`
    if (!catalogued.has(key)) {
      sql.catalogue.run(d.account, d.endpoint, d.configurationId)
      catalogued.add(key)
    }
    if (latestRequest === undefined || requestedAt > latestRequest) {
      latestRequest = requestedAt
      latestRequestChanged = true
    } else if (latestRequest - requestedAt > requestLag) {
      requestLag = latestRequest - requestedAt
      // Now, not at the commit: a listing on this connection reads the transaction's rows.
      setMeta.run(REQUEST_LAG, String(requestLag))
    }
  }

  /** A delivery's row, request and attempts, by its `seq`. */
  const forgetRow = (seq: number): void => {
    sql.forgetAttempts.run(seq)
    sql.forgetRequest.run(seq)
    sql.forgetDelivery.run(seq)
  }

  const addHead = (configurationId: string, deliveryId: string, at: number, seq: number): void => {
    if (headed.has(configurationId)) return
    sql.addHead.run(configurationId, deliveryId, at, seq)
    headed.add(configurationId)
  }

  const refreshHead = (configurationId: string): void => {
    const head = sql.headOf.get(configurationId) as
      | { delivery_id: string; next_attempt_at: number; seq: number; pending: number }
      | undefined
    if (head === undefined) {
      sql.dropHead.run(configurationId)
      headed.delete(configurationId)
    } else {
      sql.setHead.run(configurationId, head.delivery_id, head.next_attempt_at, head.seq, head.pending)
      headed.add(configurationId)
    }
  }

  const recordOutcome = (
    row: FoldingRecord,
    recorded: RecordedEvent,
    attempt: number,
    outcome: AttemptOutcome,
    at: number,
    nextAttemptAt: number | null,
    skippedReason?: string,
  ): void => {
    const skipped = skippedReason !== undefined
    sql.insertAttempt.run(
      recorded.position,
      row.seq,
      row.delivery_id,
      row.account,
      row.endpoint,
      row.configuration_id,
      row.event_id,
      row.event_type,
      attempt,
      outcome,
      skipped ? null : row.last_status,
      skipped ? 'skipped' : row.last_code,
      skipped ? skippedReason : row.last_error,
      skipped ? null : row.last_latency_ms,
      at,
      nextAttemptAt,
      recorded.metadata.origin === origin ? 1 : 0,
    )
    if (outcome === 'skipped') return
    if (outcome === 'sent') {
      if (notFailing.has(row.configuration_id)) return
      sql.stopFailing.run(row.configuration_id)
      notFailing.add(row.configuration_id)
    } else {
      notFailing.delete(row.configuration_id)
      sql.startFailing.run(row.configuration_id, at, failureGapMs)
    }
  }

  // A DeliveryAttempted waits here for the event after it: when that is its outcome (the next
  // revision of the same stream, as the log appends them), both are one write of the row.
  // Anything else, or a commit, writes it on its own first.
  let pendingAttempt: { readonly recorded: RecordedEvent; readonly data: DeliveryAttemptedData } | undefined
  const foldAttempted = (recorded: RecordedEvent, d: DeliveryAttemptedData): void => {
    sql.attempted.run(
      recorded.revision,
      d.attempt,
      ms(d.at),
      d.status,
      d.code,
      d.error,
      d.latencyMs,
      d.deliveryId,
      recorded.revision,
    )
  }
  const flushAttempt = (): void => {
    if (pendingAttempt === undefined) return
    const { recorded, data } = pendingAttempt
    pendingAttempt = undefined
    foldAttempted(recorded, data)
  }
  /** The waiting attempt when `recorded` is its outcome; else it is written now and undefined returned. */
  const attemptBefore = (recorded: RecordedEvent): DeliveryAttemptedData | undefined => {
    const waiting = pendingAttempt
    if (waiting === undefined) return undefined
    if (waiting.recorded.stream === recorded.stream && waiting.recorded.revision + 1 === recorded.revision) {
      pendingAttempt = undefined
      return waiting.data
    }
    flushAttempt()
    return undefined
  }

  const settle = (
    recorded: RecordedEvent,
    status: DeliveryStatus,
    attempt: number,
    nextAttemptAt: number | null,
    failures: number,
    at: number,
    deliveryId: string,
  ): FoldingRecord | undefined => {
    const a = attemptBefore(recorded)
    if (a === undefined)
      return sql.settle.get(
        recorded.revision,
        status,
        attempt,
        nextAttemptAt,
        failures,
        at,
        deliveryId,
        recorded.revision,
      ) as FoldingRecord | undefined
    return sql.attemptedAndSettle.get(
      recorded.revision,
      status,
      a.attempt,
      attempt,
      nextAttemptAt,
      failures,
      at,
      a.status,
      a.code,
      a.error,
      a.latencyMs,
      deliveryId,
      recorded.revision,
    ) as FoldingRecord | undefined
  }

  const fold = (recorded: RecordedEvent, event: DeliveryEvent): void => {
    const deliveryId = event.data.deliveryId
    if (event.type === 'DeliveryAttempted') {
      flushAttempt()
      pendingAttempt = { recorded, data: event.data }
      return
    }
    if (event.type === 'DeliveryRequested') {
      flushAttempt()
      const d = event.data
      const requestedAt = ms(d.at)
      const insert = (): number =>
        Number(
          sql.insert.run(
            deliveryId,
            recorded.position,
            recorded.revision,
            d.account,
            d.endpoint,
            d.configurationId,
            d.event.id,
            d.event.type,
            requestedAt,
            requestedAt,
            requestedAt,
          ).changes,
        )
      const replaced = insert() === 0
      if (replaced) {
        // Its id is held by the row of an earlier request (else this one was folded in before):
        // the delivery's stream was deleted (retention) and started again by this request. That
        // row is replaced by this one, whether or not the read model was told to forget it yet.
        const earlier = sql.requestedBefore.get(deliveryId, recorded.position) as
          | { seq: number; configuration_id: string; next_attempt_at: number | null }
          | undefined
        if (earlier === undefined) return
        forgetRow(earlier.seq)
        insert()
        if (earlier.next_attempt_at !== null && earlier.configuration_id !== d.configurationId)
          refreshHead(earlier.configuration_id)
      }
      sql.insertRequest.run(
        recorded.position,
        JSON.stringify(d.event),
        JSON.stringify(d.matchedSelectorIds),
        d.createdAt,
        d.digest === undefined ? null : JSON.stringify(d.digest),
      )
      noteRequest(d, requestedAt)
      // Positions only grow, so a new request queues behind every unsettled delivery of its
      // configuration: it is the head only of an empty queue, and nothing needs looking up (but
      // where it replaced a row, which may have been the head).
      if (replaced) refreshHead(d.configurationId)
      else addHead(d.configurationId, deliveryId, requestedAt, recorded.position)
      return
    }
    const at = ms(event.data.at)
    let row: FoldingRecord | undefined
    switch (event.type) {
      case 'DeliverySucceeded':
        row = settle(recorded, 'sent', event.data.attempt, null, 0, at, deliveryId)
        if (row === undefined) return
        recordOutcome(row, recorded, event.data.attempt, 'sent', at, null)
        break
      case 'DeliveryFailed': {
        const d = event.data
        const next = d.nextAttemptAt === null ? null : ms(d.nextAttemptAt)
        const status = d.outcome === 'failed' ? 'retrying' : d.outcome
        row = settle(recorded, status, d.attempt, next, d.outcome === 'failed' ? 1 : 0, at, deliveryId)
        if (row === undefined) return
        if (d.outcome === 'skipped') sql.skipped.run(d.reason, deliveryId)
        recordOutcome(
          row,
          recorded,
          d.attempt,
          d.outcome,
          at,
          next,
          d.outcome === 'skipped' ? d.reason : undefined,
        )
        break
      }
      case 'DeliveryDeadLettered':
        row = settle(recorded, 'dead_lettered', event.data.attempt, null, 0, at, deliveryId)
        if (row === undefined) return
        recordOutcome(row, recorded, event.data.attempt, 'dead_lettered', at, null)
        break
      case 'DeliveryReplayed':
        flushAttempt()
        row = sql.replayed.get(recorded.revision, at, at, deliveryId, recorded.revision) as
          | FoldingRecord
          | undefined
        if (row === undefined) return
        break
    }
    refreshHead(row.configuration_id)
  }

  // Someone waits for a position already folded in (an attempt for its outcome, before its
  // queue moves on): committing at the end of this run of microtasks, rather than on the next
  // turn of the event loop, answers every waiter of the burst at once and a turn sooner. Without
  // waiters (a catch-up), the transaction keeps collecting events until the next turn.
  let commitQueued = false
  const commitSoon = (): void => {
    if (commitQueued) return
    commitQueued = true
    queueMicrotask(() => {
      commitQueued = false
      commit()
    })
  }
  let lowestWaited = Number.POSITIVE_INFINITY

  // How many store events the last commit held: many, and the fold is busy.
  let lastCommitEvents = 0
  let lastCommitPosition = committed
  const commit = (): void => {
    if (!inTransaction || closed) return
    // Run from a timer or a microtask, where a throw would end the process: a commit that fails
    // (a full disk) is folded again instead.
    try {
      // A write that failed in the transaction outside a fold (`markPublished`) may have made
      // SQLite end it: the checkpoint must not then be written on its own, past rows it lost.
      if (!db.isTransaction) throw new Error('its transaction was rolled back by a write that failed')
      flushAttempt()
      setMeta.run('checkpoint', String(position))
      if (latestRequestChanged) setMeta.run(LATEST_REQUEST, String(latestRequest))
      db.exec('COMMIT')
    } catch (error) {
      foldAgain(error, 'commit')
      return
    }
    health.wrote()
    inTransaction = false
    latestRequestChanged = false
    committed = position
    lastCommitEvents = committed - lastCommitPosition
    lastCommitPosition = committed
    checkpoints?.committed()
    lowestWaited = Number.POSITIVE_INFINITY
    const answered: (() => void)[] = []
    let kept = 0
    for (const waiter of waiters) {
      if (waiter.position <= committed) answered.push(waiter.resolve)
      else {
        waiters[kept++] = waiter
        lowestWaited = Math.min(lowestWaited, waiter.position)
      }
    }
    waiters.length = kept
    for (const resolve of answered) resolve()
    for (const listener of listeners) listener()
  }

  /**
   * Folds one store event in. Events of a burst share one transaction, committed on the next
   * turn, or `busyCommitWaitMs` after its first event while the fold is busy.
   */
  const apply = (recorded: RecordedEvent): void => {
    if (closed || recorded.position <= position) return
    if (!inTransaction) {
      db.exec('BEGIN')
      inTransaction = true
      if (busyCommitWaitMs > 0 && lastCommitEvents >= busyCommitEvents)
        setTimeout(commit, busyCommitWaitMs).unref()
      else setImmediate(commit)
    }
    position = recorded.position
    if (position >= lowestWaited) commitSoon()
    if (!isDeliveryStream(recorded.stream)) return
    const decoded = decodeDeliveryEvent(recorded)
    if (!decoded.ok) {
      options.onInvalidEvent?.(recorded, decoded.issues)
      return
    }
    fold(recorded, decoded.value)
  }

  let subscription: Subscription | undefined
  let resubscribe: NodeJS.Timeout | undefined
  let source: Pick<EventStore, 'subscribeToAll'> | undefined

  const followLater = (): void => {
    clearTimeout(resubscribe)
    if (closed || source === undefined) return
    const store = source
    resubscribe = setTimeout(() => follow(store), resubscribeMs)
  }

  /**
   * After a write that failed (a full disk, an I/O error, in a fold or a commit): the
   * transaction is rolled back (unless SQLite already did), what it held forgotten, its outcome
   * told to `health`, and the events since the last commit read again from the store later.
   * Waiters keep waiting for a commit that covers them.
   */
  const foldAgain = (error: unknown, operation: string): void => {
    if (inTransaction) {
      if (db.isTransaction) db.exec('ROLLBACK')
      inTransaction = false
    }
    pendingAttempt = undefined
    headed.clear()
    notFailing.clear()
    catalogued.clear()
    latestRequest = latestRequestOf()
    latestRequestChanged = false
    requestLag = Number(metaValue(REQUEST_LAG) ?? 0)
    position = committed
    publishedThrough = Number(metaValue('published_through') ?? 0)
    health.wrote(error)
    subscription?.unsubscribe()
    options.onFollowError?.(translateSqliteError(error, 'delivery read model', operation))
    followLater()
  }

  const follow = (store: Pick<EventStore, 'subscribeToAll'>): void => {
    if (closed) return
    source = store
    subscription = store
      .subscribeToAll({ after: position, streamPrefixes: [DELIVERY_STREAM_PREFIX] })
      .subscribe({
        next: (recorded) => {
          try {
            apply(recorded)
          } catch (error) {
            foldAgain(error, 'fold')
          }
        },
        error: (error: unknown) => {
          options.onFollowError?.(error)
          if (closed) return
          commit()
          followLater()
        },
      })
  }

  return {
    instanceId,
    position: () => committed,
    ...readsOf(queries),
    unpublished: (limit) => queries.unpublished(publishedThrough, limit),
    prunable: (before, after, limit) => queries.prunable(before, after, limit, publishedThrough),
    // In a transaction of its own, so it is on disk when this returns (what the folding thread
    // tells its caller): what the fold holds is committed first.
    forget: (forgotten) => {
      if (forgotten.length === 0 || closed) return
      // A commit that fails is rolled back, to be folded again (see `foldAgain`): this goes on.
      commit()
      try {
        db.exec('BEGIN')
        for (const { seq, revision } of forgotten) {
          if (sql.forgetAt.run(seq, revision).changes === 0) continue
          sql.forgetAttempts.run(seq)
          sql.forgetRequest.run(seq)
        }
        db.exec('COMMIT')
      } catch (error) {
        if (db.isTransaction) db.exec('ROLLBACK')
        health.wrote(error)
        throw translateSqliteError(error, 'delivery read model', 'forget')
      }
    },
    markPublished: (positions) => {
      const through = positions.reduce((highest, p) => Math.max(highest, p), publishedThrough)
      if (through === publishedThrough) return
      try {
        setMeta.run('published_through', String(through))
      } catch (error) {
        health.wrote(error)
        throw translateSqliteError(error, 'delivery read model', 'markPublished')
      }
      publishedThrough = through
    },
    waitFor: (target) => {
      if (target <= committed || closed) return Promise.resolve()
      if (target <= position) commitSoon()
      else lowestWaited = Math.min(lowestWaited, target)
      return new Promise<void>((resolve) => waiters.push({ position: target, resolve }))
    },
    onChange: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    follow,
    ping: async () => {
      if (closed) throw new ClosedError('delivery read model')
      health.check()
      db.prepare('SELECT 1').get()
    },
    close: async () => {
      if (closed) return
      subscription?.unsubscribe()
      commit()
      // After the commit: one that failed would follow the store again.
      clearTimeout(resubscribe)
      closed = true
      for (const waiter of waiters.splice(0)) waiter.resolve()
      checkpoints?.stop()
      db.close()
      // Whoever opens the file next must not race the checkpoint connection's own close (the
      // last connection to close checkpoints the WAL and deletes it, holding the file locked).
      await checkpoints?.ended
    },
  }
}
