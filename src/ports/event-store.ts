import type { Observable } from 'rxjs'

/**
 * EventStore: Herald's port to an event-sourcing store (KurrentDB, or SQLite when embedded).
 *
 * Streams are named sequences of events with revisions from 0; every event also has a global
 * position, increasing across all streams. Appends are atomic per call and guarded by an
 * expected revision; an append whose event ids were already appended to that stream (with the
 * same expected revision, or `any`) succeeds without writing them twice.
 *
 * `appendMany` records appends to several streams in one call: one durable write where the
 * store can do that (SQLite), and retry-safe everywhere.
 *
 * @example
 * const r = await store.append('config-42', [{ id, type: 'ConfigurationCreated', data }], {
 *   expectedRevision: 'no_stream',
 * })
 * await store.appendMany([
 *   { stream: 'delivery-a', events: [requestedA], expectedRevision: 'no_stream' },
 *   { stream: 'delivery-b', events: [requestedB], expectedRevision: 'no_stream' },
 * ])
 * const events = await store.readStream('config-42')
 * store.subscribeToAll({ after: checkpoint }).subscribe((e) => index.apply(e))
 */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue }

export type JsonObject = { readonly [key: string]: JsonValue }

/** `no_stream`: the stream must not exist; `stream_exists`: it must; `any`: no check; n: exact. */
export type ExpectedRevision = 'no_stream' | 'stream_exists' | 'any' | number

export interface EventData {
  /** Unique per stream; the idempotency key of the append. */
  readonly id: string
  readonly type: string
  readonly data: JsonObject
  readonly metadata?: JsonObject
}

export interface RecordedEvent {
  readonly stream: string
  readonly id: string
  readonly type: string
  readonly data: JsonObject
  readonly metadata: JsonObject
  /** Position in its stream, from 0. */
  readonly revision: number
  /** Position across all streams; strictly increasing in append order. */
  readonly position: number
  /** Append time, milliseconds since the epoch. */
  readonly recordedAt: number
}

export interface AppendOptions {
  readonly expectedRevision?: ExpectedRevision
}

/** One entry of `appendMany`: what `append(stream, events, { expectedRevision })` would take. */
export interface StreamAppend {
  readonly stream: string
  readonly events: readonly EventData[]
  /** Default `any`. */
  readonly expectedRevision?: ExpectedRevision
}

export interface AppendResult {
  /** The stream's revision after the append: pass it as the next `expectedRevision`. */
  readonly nextExpectedRevision: number
  /** Global position of the last event of the stream after the append. */
  readonly position: number
}

/** One entry of `deleteStreams`: the stream, deleted only while its last event is at this revision. */
export interface StreamDelete {
  readonly stream: string
  readonly expectedRevision: number
}

/**
 * `deleted`: the stream and its events are gone; `absent`: there was no such stream (deleted
 * before, by this caller or another); `changed`: its last event is at another revision than
 * expected (appended to since the caller looked), so it was left as it is.
 */
export type StreamDeleteOutcome = 'deleted' | 'absent' | 'changed'

export interface ReadStreamOptions {
  readonly fromRevision?: number
  readonly maxCount?: number
}

/**
 * Only the events of streams whose names start with one of these (every stream when absent):
 * the configuration read models skip the delivery log, which shares the store on KurrentDB and
 * outgrows everything else. Positions stay those of all streams, so a checkpoint from a
 * filtered read continues a filtered or an unfiltered one. Non-empty strings, at most 16.
 */
export type StreamPrefixes = readonly string[]

export interface ReadAllOptions {
  /** Checkpoint: events whose position is greater than this; from the start if absent. */
  readonly after?: number
  readonly maxCount?: number
  readonly streamPrefixes?: StreamPrefixes
}

export interface SubscribeOptions {
  /** Checkpoint: deliver events whose position is greater than this; from the start if absent. */
  readonly after?: number
  readonly streamPrefixes?: StreamPrefixes
}

/**
 * The most bytes one append may hold, its events' types, data and metadata (JSON) together:
 * KurrentDB's default `MaxAppendSize`, which the embedded store keeps too. `appendMany` counts
 * each entry apart, as KurrentDB appends them one by one.
 */
export const MAX_APPEND_BYTES = 1_048_576

export interface EventStore {
  /**
   * Throws ExpectedRevisionConflictError when the expected revision does not hold, and a
   * ValidationError when the events hold more than the store takes in one append
   * (`MAX_APPEND_BYTES`, unless a KurrentDB server is set to take another size).
   */
  append(stream: string, events: readonly EventData[], options?: AppendOptions): Promise<AppendResult>
  /**
   * Appends to several streams in one call, in array order: each entry behaves as `append` would
   * (expected revision, idempotent retry, its own result at the same index), and every event of
   * an entry gets a position below those of the entries after it.
   *
   * - A stream may appear once per call (a ValidationError otherwise); `[]` writes nothing.
   * - The first entry that fails fails the call with its error: an expected revision that does
   *   not hold is that entry's ExpectedRevisionConflictError, naming its stream.
   * - Atomicity is the adapter's: all-or-nothing in SQLite (one transaction, one sync to disk);
   *   entry by entry on KurrentDB, where entries before the failing one stay written.
   * - Either way a retry is safe: calling again with the same entries records what is missing
   *   and answers the original results of what was already written, writing nothing twice. An
   *   entry that repeats an earlier append (same ids, same expectation) is a retry, not a
   *   conflict, so a caller may mix new entries with ones it may have recorded before.
   */
  appendMany(appends: readonly StreamAppend[]): Promise<readonly AppendResult[]>
  /**
   * Deletes streams whose last event is still at the expected revision, answering each
   * entry's outcome at its index: for retention, which forgets what nobody needs any more.
   * Afterwards `readStream` answers `[]` and an append with `no_stream` starts the stream again.
   *
   * - A stream may appear once per call (a ValidationError otherwise); `[]` deletes nothing.
   * - SQLite: one transaction; the rows are gone from `readAll` too, and positions are never
   *   handed out again. KurrentDB: entry by entry, a soft delete (`$all` may still hold the
   *   events until the server scavenges).
   */
  deleteStreams(deletes: readonly StreamDelete[]): Promise<readonly StreamDeleteOutcome[]>
  /** The stream's events in revision order; an empty array when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<readonly RecordedEvent[]>
  /**
   * Events of every stream in position order, one page at a time: what a read model needs to
   * know it has caught up (an empty page means it has).
   */
  readAll(options?: ReadAllOptions): Promise<readonly RecordedEvent[]>
  /**
   * The position of the last event appended, of the streams `streamPrefixes` names when given;
   * undefined when there is none: how far a reader starting now has to read to have read
   * everything appended so far (a read model rebuilt from the start says how far it got).
   */
  lastPosition(options?: Pick<ReadAllOptions, 'streamPrefixes'>): Promise<number | undefined>
  /**
   * Catch-up subscription to every stream: past events after the checkpoint, then live ones,
   * in position order, each once. Unsubscribing stops it.
   */
  subscribeToAll(options?: SubscribeOptions): Observable<RecordedEvent>
  /**
   * Reports whether the store is reachable and can take writes, for `/ready`: an embedded store
   * fails it while its last write failed for want of storage or its file was deleted or replaced.
   */
  ping(): Promise<void>
  close(): Promise<void>
}
