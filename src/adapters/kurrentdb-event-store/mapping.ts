import { createHash } from 'node:crypto'
import { ANY, type AppendStreamState, NO_STREAM, STREAM_EXISTS } from '@kurrent/kurrentdb-client'
import { HeraldError } from '../../errors/index.ts'
import type { ExpectedRevision, JsonObject, RecordedEvent } from '../../ports/index.ts'

/**
 * Pure translations between Herald's EventStore port and KurrentDB's data model: expected
 * revisions, event ids, recorded events and their positions. No I/O, so each is unit-tested.
 */

// Appends may not set it themselves: the shared validation refuses it.
import { HERALD_ID_KEY } from '../sqlite-event-store/validate.ts'

export { HERALD_ID_KEY }

// Fixed forever: changing it would give retried appends new ids and break their idempotency.
const HERALD_EVENT_ID_NAMESPACE = '3935010a-6f07-4c33-a260-cbc50a325439'

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const NIL_UUID = '00000000-0000-0000-0000-000000000000'

export const toStreamState = (expected: ExpectedRevision): AppendStreamState => {
  switch (expected) {
    case 'no_stream':
      return NO_STREAM
    case 'stream_exists':
      return STREAM_EXISTS
    case 'any':
      return ANY
    default:
      return BigInt(expected)
  }
}

/** Name-based UUID (RFC 9562 version 5: SHA-1 of namespace and name). */
export const uuidV5 = (name: string, namespace: string): string => {
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest()
    .subarray(0, 16)
  hash.writeUInt8((hash.readUInt8(6) & 0x0f) | 0x50, 6)
  hash.writeUInt8((hash.readUInt8(8) & 0x3f) | 0x80, 8)
  const hex = hash.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * True when KurrentDB can store the id as it is and will give it back unchanged: it keeps event
 * ids as 16 bytes and prints them in lower case, so an upper-case UUID would not round-trip.
 */
export const isNativeEventId = (id: string): boolean => CANONICAL_UUID.test(id) && id !== NIL_UUID

/**
 * The UUID KurrentDB stores for a Herald event id. The stream is part of the name because
 * KurrentDB's idempotency cache for `any` appends is keyed by event id alone: the same Herald id
 * in two streams would otherwise shadow each other there, and a retry could be written twice.
 */
export const vendorEventId = (stream: string, id: string): string =>
  isNativeEventId(id) ? id : uuidV5(JSON.stringify([stream, id]), HERALD_EVENT_ID_NAMESPACE)

/** The metadata to store: the caller's, plus the original id when KurrentDB cannot keep it. */
export const vendorMetadata = (id: string, metadata: JsonObject | undefined): JsonObject | undefined => {
  if (isNativeEventId(id))
    return metadata === undefined || Object.keys(metadata).length === 0 ? undefined : metadata
  return { ...metadata, [HERALD_ID_KEY]: id }
}

/**
 * Undoes `vendorEventId` and `vendorMetadata`. The original id is trusted only when it derives
 * the stored UUID, so metadata some other writer set cannot pass for a Herald id.
 */
export const restoreEventId = (
  stream: string,
  storedId: string,
  metadata: JsonObject,
): { readonly id: string; readonly metadata: JsonObject } => {
  const original = metadata[HERALD_ID_KEY]
  if (typeof original !== 'string' || vendorEventId(stream, original) !== storedId) {
    return { id: storedId, metadata }
  }
  const { [HERALD_ID_KEY]: _, ...rest } = metadata
  return { id: original, metadata: rest }
}

/** A KurrentDB position or revision as a JS number, which stays exact up to 2^53 (8 PiB of log). */
export const toSafeNumber = (value: bigint, what: string): number => {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new HeraldError('event_store_failed', `kurrentdb ${what} ${value} is outside 0..2^53-1`, {
      context: { [what]: value.toString() },
    })
  }
  return Number(value)
}

/** The fields of a KurrentDB recorded event the adapter reads; the client's type satisfies it. */
export interface VendorEvent {
  readonly streamId: string
  readonly id: string
  readonly type: string
  readonly revision: bigint
  readonly created: Date
  readonly isJson: boolean
  readonly data: unknown
  readonly metadata: unknown
  readonly position?: { readonly commit: bigint; readonly prepare: bigint } | undefined
}

/** KurrentDB's own events ($stats, $metadata, links `$>`, projection state) are never Herald's. */
export const isSystemEvent = (event: Pick<VendorEvent, 'streamId' | 'type'>): boolean =>
  event.type.startsWith('$') || event.streamId.startsWith('$')

const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  !(value instanceof Uint8Array) &&
  Object.getPrototypeOf(value) === Object.prototype

export type Decoded =
  | { readonly ok: true; readonly event: RecordedEvent }
  | { readonly ok: false; readonly reason: string }

/**
 * A KurrentDB event as the port's RecordedEvent. Events that other applications wrote in a shape
 * the port cannot carry (binary, or JSON that is not an object) are reported, not guessed at.
 *
 * `commitPosition` is the resolved event's own, used when the server leaves `position` out of
 * stream reads (EventStoreDB before 22.6).
 */
export const decodeEvent = (event: VendorEvent, commitPosition?: bigint): Decoded => {
  const where = `${event.streamId}@${event.revision}`
  if (!event.isJson || !isJsonObject(event.data)) {
    return { ok: false, reason: `event ${where} (${event.type}) does not hold a JSON object` }
  }
  const rawMetadata = event.metadata ?? {}
  if (!isJsonObject(rawMetadata)) {
    return { ok: false, reason: `event ${where} (${event.type}) has metadata that is not a JSON object` }
  }
  const commit = event.position?.commit ?? commitPosition
  if (commit === undefined) {
    throw new HeraldError(
      'event_store_unsupported',
      'the server does not report event positions on reads: KurrentDB, or EventStoreDB 22.6 or later, is required',
    )
  }
  const { id, metadata } = restoreEventId(event.streamId, event.id, rawMetadata)
  return {
    ok: true,
    event: {
      stream: event.streamId,
      id,
      type: event.type,
      data: event.data,
      metadata,
      revision: toSafeNumber(event.revision, 'revision'),
      position: toSafeNumber(commit, 'position'),
      recordedAt: event.created.getTime(),
    },
  }
}
