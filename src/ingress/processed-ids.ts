import { hash } from 'node:crypto'
import { ClosedError } from '../errors/index.ts'
import { eventKey } from '../events/index.ts'
import { createFingerprintWindow } from './fingerprint-window.ts'

/**
 * ProcessedIds: the router's memory of the events it has already routed, so an event
 * published twice (a producer's retry, a replayed file) is routed once. An event is known by
 * (account, source, id) — CloudEvents makes `id` unique per `source`, and Herald's tenancy
 * adds the account. The memory is a window, bounded in time (and, where the store can, in
 * count): a duplicate arriving after the window is routed again, and the delivery ids (a hash
 * of the event's account, source and id and the configuration) still let the deliverer and
 * downstream consumers drop it.
 *
 * Record after the batch's effects are durable and before its offsets are committed: a crash
 * in between redelivers a batch whose events are then skipped, which is what they should be.
 *
 * @example
 * const keys = events.map(processedKey)
 * const seen = await processed.seen(keys)
 * const fresh = events.filter((_, i) => !seen.has(keys[i]))
 * await publish(route(fresh))
 * await processed.record(fresh.map(processedKey))
 */
export interface ProcessedIds {
  /** Which of `keys` were recorded and are still in the window. */
  seen(keys: readonly string[]): Promise<ReadonlySet<string>>
  /**
   * Remembers `keys`; durable when the promise resolves. Recording a key again is harmless. A
   * call that fails may have recorded a prefix of `keys` (a store may write a long list in
   * several transactions), never a key without the ones before it.
   */
  record(keys: readonly string[]): Promise<void>
  /**
   * Resolves while the window can take records, for `/ready`; otherwise rejects saying why: an
   * UnavailableError when its store cannot (a file whose last write failed for want of storage
   * and none has succeeded since, or that was deleted or replaced while open; a table the
   * warehouse cannot read), a ClosedError once closed.
   */
  ping(): Promise<void>
  /** Every call after it is refused with a ClosedError. */
  close(): Promise<void>
}

export interface ProcessedIdWindow {
  /** How long a key is remembered, in ms (default 7 days). */
  readonly retentionMs?: number
  /** Most keys remembered; the oldest go first (default 1 000 000). Stores bounded by time only ignore it. */
  readonly maxEntries?: number
}

export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000
export const DEFAULT_MAX_ENTRIES = 1_000_000

/** An event's key in the window: how Herald tells events apart (`eventKey`). */
export const processedKey = eventKey

/**
 * What stores keep of a key: 16 bytes of its SHA-256, so every row has the same small size
 * however long sources and ids are. A collision (2^-64 at a billion keys) would skip one event.
 */
export const keyDigest = (key: string): Buffer =>
  // The same 16 bytes as the hash's Buffer output: crypto.hash answers in hex in about half
  // the time it takes to answer with a Buffer, and turning 32 hex digits back is cheap.
  Buffer.from(hash('sha256', key).slice(0, 32), 'hex')

const word = (d: Uint8Array, i: number): number =>
  (((d[i] as number) << 24) |
    ((d[i + 1] as number) << 16) |
    ((d[i + 2] as number) << 8) |
    (d[i + 3] as number)) >>>
  0

/** The first 8 bytes of the key's digest as two big-endian words, for the in-memory window. */
export const fingerprintOf = (digest: Uint8Array): readonly [number, number] => [
  word(digest, 0),
  word(digest, 4),
]

/**
 * ProcessedIds in memory, for tests and for a router that must not touch disk. Not durable:
 * the window starts empty on every start.
 */
export const createMemoryProcessedIds = (
  window: ProcessedIdWindow & { readonly clock?: () => number } = {},
): ProcessedIds => {
  const clock = window.clock ?? Date.now
  const retentionMs = window.retentionMs ?? DEFAULT_RETENTION_MS
  const held = createFingerprintWindow(window.maxEntries ?? DEFAULT_MAX_ENTRIES)
  const timeOf = (key: string) => {
    const [hi, lo] = fingerprintOf(keyDigest(key))
    return held.timeOf(hi, lo)
  }
  let closed = false
  const assertOpen = () => {
    if (closed) throw new ClosedError('processed-id window')
  }
  return {
    async seen(candidates) {
      assertOpen()
      const oldest = clock() - retentionMs
      return new Set(candidates.filter((key) => (timeOf(key) ?? -Infinity) >= oldest))
    },
    async record(recorded) {
      assertOpen()
      const now = clock()
      // First, so a key past the retention is recorded again at this time, not kept at its old one.
      held.evictBefore(now - retentionMs)
      for (const key of recorded) {
        const [hi, lo] = fingerprintOf(keyDigest(key))
        held.add(hi, lo, now)
      }
    },
    // Memory takes records as long as the process runs.
    async ping() {
      assertOpen()
    },
    async close() {
      closed = true
    },
  }
}
