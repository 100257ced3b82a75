/**
 * The Confluent Schema Registry wire format: a zero magic byte, the schema id as a 4-byte
 * big-endian integer, then the payload serialized with that schema. JSON text never starts
 * with a NUL byte, so a leading zero tells a framed value from a plain JSON one.
 *
 * @example
 * const framed = encodeFrame(7, new TextEncoder().encode('{"a":1}'))
 * parseFrame(framed) // { kind: 'framed', schemaId: 7, payload: Uint8Array [...] }
 */

export const MAGIC_BYTE = 0
export const FRAME_HEADER_BYTES = 5

export type Frame =
  | { readonly kind: 'plain' }
  | { readonly kind: 'framed'; readonly schemaId: number; readonly payload: Uint8Array }
  | { readonly kind: 'truncated'; readonly length: number }

const PLAIN: Frame = { kind: 'plain' }

/** Whether `value` starts with the magic byte: framed, or too short to be (`truncated`). */
export const isFramed = (value: Uint8Array): boolean => value.length > 0 && value[0] === MAGIC_BYTE

/**
 * The schema id of a framed value at least FRAME_HEADER_BYTES long, read without allocating:
 * the ingress reads every message's payload in place, past the header.
 */
export const frameSchemaId = (value: Uint8Array): number =>
  // Java's serializers write the id as a signed int; ids are positive, so a negative one is
  // as unknown to the registry as any other id it never issued.
  ((value[1] as number) << 24) |
  ((value[2] as number) << 16) |
  ((value[3] as number) << 8) |
  (value[4] as number) |
  0

export const parseFrame = (value: Uint8Array): Frame => {
  if (!isFramed(value)) return PLAIN
  if (value.length < FRAME_HEADER_BYTES) return { kind: 'truncated', length: value.length }
  return { kind: 'framed', schemaId: frameSchemaId(value), payload: value.subarray(FRAME_HEADER_BYTES) }
}

export const encodeFrame = (schemaId: number, payload: Uint8Array): Uint8Array => {
  if (!Number.isInteger(schemaId) || schemaId < -(2 ** 31) || schemaId >= 2 ** 31)
    throw new RangeError(`schema id ${schemaId} does not fit in 32 bits`)
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length)
  frame[0] = MAGIC_BYTE
  new DataView(frame.buffer).setInt32(1, schemaId, false)
  frame.set(payload, FRAME_HEADER_BYTES)
  return frame
}
