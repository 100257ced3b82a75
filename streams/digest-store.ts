import type { CloudEvent } from '../src/events/index.ts'
import type { EndpointType } from '../src/notifications/index.ts'
import type { DigestTypeCount } from './routing/index.ts'

/** One event held for one configuration's digest. */
export interface DigestEntry {
  readonly configurationId: string
  /** The configuration's owner. */
  readonly account: string
  readonly endpoint: EndpointType
  /** The event's processed key (account, source, id): recorded twice for one configuration, it counts once. */
  readonly eventKey: string
  readonly event: CloudEvent
  /** Sorted. */
  readonly matchedSelectorIds: readonly string[]
  /** The configuration's window length in ms, used when the entry opens a window. */
  readonly windowMs: number
}

/** A window that has closed and is waiting to go out as one digest. */
export interface PendingDigest {
  readonly configurationId: string
  readonly account: string
  readonly endpoint: EndpointType
  /** Milliseconds since the epoch; with the configuration, the window's identity. */
  readonly windowStart: number
  readonly windowEnd: number
  readonly total: number
  /** By type and level, most frequent first, then by type and level. */
  readonly counts: readonly DigestTypeCount[]
  /** The first events recorded in the window, in order, at most the store's `keepEvents`. */
  readonly events: readonly CloudEvent[]
  /** Every selector that matched an event of the window, sorted. */
  readonly matchedSelectorIds: readonly string[]
  /**
   * Stored events or selector lists of the window that could not be read back (a damaged
   * file): left out of `events` and `matchedSelectorIds`, still counted in `counts`.
   */
  readonly unreadable: number
  /** Times the window failed to go out so far (`markFailed`). */
  readonly attempts: number
}

/** A window by its identity. */
export interface DigestWindowRef {
  readonly configurationId: string
  readonly windowStart: number
}

/**
 * DigestStore: the router's durable buffer of events held for digests (storm control). The
 * router records the entries of a batch before the batch's offsets are committed; a flusher
 * takes the windows that have closed, publishes one digest per window and marks it flushed.
 *
 * Why a buffer of its own and not the EventStore: it is written on the router's hot path
 * (one row per held event, in a storm thousands a second), read back by window and forgotten
 * a day after its window went out. An event store keeps every event forever and reads by
 * stream or globally, never by "windows whose end has passed"; the embedded one would grow by
 * every storm, and flushing would need a catch-up subscription to find due windows. The
 * SQLite adapter keeps the buffer beside the processed-id window in `data_dir`, works with no
 * server, and commits each batch's entries in one transaction.
 *
 * In a Kafka deployment every router instance keeps its own buffer in its own `data_dir`
 * (which must persist). An account's events arrive in one partition, so a configuration's
 * window normally fills in one instance; a global selector, or a rebalance in mid-window,
 * splits it between instances, and each then sends its own digest of its share, under a
 * delivery id that includes its `instanceId`. Nothing is lost or counted twice, but a window
 * may arrive as more than one digest; one digest per window there takes a shared adapter.
 *
 * Windows are per configuration and tumbling, aligned to multiples of their length since the
 * epoch: an entry joins its configuration's open window, or opens the one that contains `now`
 * (never one that overlaps an earlier window, so a changed length or a clock that went back
 * cannot reopen a flushed window). A window always ends on a boundary of its length: one that
 * starts at an earlier window's end because the length changed is shorter, and the windows
 * after it are aligned to the new length. An entry recorded again for the same configuration —
 * a batch redelivered after a crash — is ignored, for as long as the store remembers flushed
 * windows.
 *
 * @example
 * await store.record(entries, clock())          // before the batch's offsets are committed
 * const due = await store.due(clock())          // windows whose end has passed
 * await log.publish(topic, due.map(toCommand))  // same delivery ids if this is repeated
 * await store.markFlushed(due, clock())          // or markFailed(each with its retryAt), to try later
 */
export interface DigestStore {
  /** Identifies this buffer, the same after every restart on the same storage. */
  readonly instanceId: string
  /** Durable when the promise resolves. */
  record(entries: readonly DigestEntry[], now: number): Promise<void>
  /**
   * Unflushed windows whose end is at or before `now` and whose retry (`markFailed`) is not
   * after it, earliest end first, at most `limit` (default 100).
   */
  due(now: number, limit?: number): Promise<readonly PendingDigest[]>
  /** Marks windows flushed; marking one again is harmless. */
  markFlushed(windows: readonly DigestWindowRef[], now: number): Promise<void>
  /**
   * Records that windows failed to go out, in one write: each counts one more attempt and is
   * not due again before its `retryAt`. They are kept, unflushed, however often they fail.
   */
  markFailed(failures: readonly (DigestWindowRef & { readonly retryAt: number })[]): Promise<void>
  /**
   * Resolves while the store can take writes, for `/ready`; otherwise rejects with an
   * UnavailableError saying why: its last write failed for want of storage (a full disk, a
   * write-ahead log that could not be synced) and none has succeeded since, or its file was
   * deleted or replaced while open.
   */
  ping(): Promise<void>
  close(): Promise<void>
}
