import type { FieldIssue } from '../errors/index.ts'
import type { PayloadDecoder, PayloadResult } from './schema-registry.ts'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Parses a value as strict UTF-8 JSON; bad bytes become an issue, never an exception. */
export const parseJsonBytes = (
  bytes: Uint8Array,
  path = '(value)',
): { ok: true; value: unknown } | { ok: false; issues: FieldIssue[] } => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { ok: false, issues: [{ path, message: 'is not valid UTF-8' }] }
  }
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (error) {
    return { ok: false, issues: [{ path, message: `is not JSON: ${(error as Error).message}` }] }
  }
}

/**
 * The decoder of a JSON Schema serialization: the payload is UTF-8 JSON that must satisfy its
 * writer's schema. `validate` returns the issues, or undefined when the value is valid.
 */
export const jsonPayloadDecoder = (
  schemaId: number,
  validate: (value: unknown) => FieldIssue[] | undefined,
): PayloadDecoder => ({
  schemaId,
  type: 'JSON',
  decode(payload): PayloadResult {
    const parsed = parseJsonBytes(payload, '(payload)')
    if (!parsed.ok) return { ok: false, code: 'payload_undecodable', issues: parsed.issues }
    const issues = validate(parsed.value)
    return issues === undefined ? parsed : { ok: false, code: 'schema_invalid', issues }
  },
})

/** Avro decodes records into class instances, bytes into Buffers, absent optionals into null. */
const toPlain = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(toPlain)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  const plain: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) if (field !== null) plain[key] = toPlain(field)
  return plain
}

/**
 * The decoder of an Avro serialization, given a type that reads a whole buffer (throwing on
 * truncated or trailing bytes). The record becomes a plain object; null fields are left out,
 * since an Avro optional is a union with null where JSON simply omits the field.
 */
export const avroPayloadDecoder = (
  schemaId: number,
  type: { fromBuffer(buffer: Buffer): unknown },
): PayloadDecoder => ({
  schemaId,
  type: 'AVRO',
  decode(payload): PayloadResult {
    try {
      const value = type.fromBuffer(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))
      return { ok: true, value: toPlain(value) }
    } catch (error) {
      return {
        ok: false,
        code: 'payload_undecodable',
        issues: [
          { path: '(payload)', message: `is not Avro of schema ${schemaId}: ${(error as Error).message}` },
        ],
      }
    }
  },
})
