import type { FieldIssue } from '../errors/index.ts'
import { type AvroFieldLike, type AvroTypeLike, compileAvroReader } from './avro-reader.ts'
import type { ContractCoverage, PayloadDecoder, PayloadResult } from './schema-registry.ts'

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
 * writer's schema. `validate` returns the issues, or undefined when the value is valid. With
 * `coverage` (one of Herald's own schemas) it also offers the read and the check apart.
 */
export const jsonPayloadDecoder = (
  schemaId: number,
  validate: (value: unknown) => FieldIssue[] | undefined,
  coverage?: ContractCoverage,
): PayloadDecoder => {
  const read = (value: Uint8Array, start = 0): PayloadResult => {
    const parsed = parseJsonBytes(start === 0 ? value : value.subarray(start), '(payload)')
    return parsed.ok ? parsed : { ok: false, code: 'payload_undecodable', issues: parsed.issues }
  }
  return {
    schemaId,
    type: 'JSON',
    decode(value, start = 0): PayloadResult {
      const parsed = read(value, start)
      if (!parsed.ok) return parsed
      const issues = validate(parsed.value)
      return issues === undefined
        ? parsed
        : { ok: false, code: 'schema_invalid', issues, value: parsed.value }
    },
    ...(coverage === undefined ? {} : { deferred: { coverage, read, check: validate } }),
  }
}

/** Avro decodes records into class instances, bytes into Buffers, absent optionals into null. */
const toPlain = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(toPlain)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  const plain: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) {
    if (field === null) continue
    if (key === '__proto__') {
      Object.defineProperty(plain, key, {
        value: toPlain(field),
        enumerable: true,
        writable: true,
        configurable: true,
      })
    } else plain[key] = toPlain(field)
  }
  return plain
}

/** An avsc type: it reads whole buffers and describes itself. */
export interface AvroReader extends AvroTypeLike {
  fromBuffer(buffer: Buffer): unknown
}

/** Turns one decoded Avro value into plain JSON data; `undefined` where it already is. */
type Convert = ((value: unknown) => unknown) | undefined

const convertOf = (type: AvroTypeLike, seen: Map<AvroTypeLike, Convert | null>): Convert => {
  if (seen.has(type)) return seen.get(type) ?? toPlain // a record that contains itself
  seen.set(type, null)
  const convert = buildConvert(type, seen)
  seen.set(type, convert)
  return convert
}

const buildConvert = (type: AvroTypeLike, seen: Map<AvroTypeLike, Convert | null>): Convert => {
  switch (type.typeName) {
    case 'null':
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
    case 'enum':
      return undefined
    case 'bytes':
    case 'fixed':
      return (value) => Buffer.from(value as Uint8Array).toString('base64')
    case 'array': {
      const item = type.itemsType === undefined ? toPlain : convertOf(type.itemsType, seen)
      return item === undefined ? undefined : (value) => (value as unknown[]).map(item)
    }
    case 'map': {
      const values = type.valuesType === undefined ? toPlain : convertOf(type.valuesType, seen)
      if (values === undefined) return undefined
      return (value) => {
        const plain: Record<string, unknown> = {}
        for (const [key, v] of Object.entries(value as Record<string, unknown>)) plain[key] = values(v)
        return plain
      }
    }
    case 'union:unwrapped': {
      const branches = (type.types ?? []).filter((t) => t.typeName !== 'null')
      const converts = branches.map((t) => convertOf(t, seen))
      if (converts.every((c) => c === undefined)) return undefined
      // One branch besides null tells its values apart by null alone; more need the generic walk.
      const only = converts.length === 1 ? converts[0] : toPlain
      return (value) => (value === null ? null : (only as (value: unknown) => unknown)(value))
    }
    case 'union:wrapped': {
      // avsc gives null or an instance of the branch's class with one key, the branch's name.
      const converts = new Map(
        (type.types ?? []).map((t) => [
          t.branchName ?? t.typeName,
          convertOf(t, seen) ?? ((v: unknown) => v),
        ]),
      )
      return (value) => {
        if (value === null) return null
        const [name, branchValue] = Object.entries(value as Record<string, unknown>)[0] as [string, unknown]
        return { [name]: (converts.get(name) ?? toPlain)(branchValue) }
      }
    }
    case 'record':
    case 'error':
      return recordConvert(type.fields ?? [], seen)
    default:
      return toPlain
  }
}

/**
 * A record becomes a plain object, compiled once per schema. A null in a field whose default is
 * null is the Avro idiom for an absent optional field, so the field is left out; a null in a
 * field without a default is a value the writer had to give, and stays JSON's null.
 */
const recordConvert = (
  fields: readonly AvroFieldLike[],
  seen: Map<AvroTypeLike, Convert | null>,
): Convert => {
  const converts: ((value: unknown) => unknown)[] = []
  const lines = fields.map((field, i) => {
    const key = JSON.stringify(field.name)
    const convert = convertOf(field.type, seen)
    let value = `v${i}`
    if (convert !== undefined) {
      converts.push(convert)
      value = `c${converts.length - 1}(v${i})`
    }
    const read = `const v${i} = r[${key}]`
    // A field may be named __proto__: define it, never assign it (which would set the prototype).
    const set = (v: string) =>
      field.name === '__proto__'
        ? `Object.defineProperty(o, ${key}, { value: ${v}, enumerable: true, writable: true, configurable: true })`
        : `o[${key}] = ${v}`
    return field.defaultValue() === null
      ? `${read}; if (v${i} !== null) ${set(value)}`
      : `${read}; ${set(`v${i} === null ? null : ${value}`)}`
  })
  const source = [
    ...converts.map((_, i) => `const c${i} = converts[${i}]`),
    'return function plain(r) {',
    '  const o = {}',
    ...lines.map((line) => `  ${line}`),
    '  return o',
    '}',
  ].join('\n')
  // Generated from the schema's field names (JSON-quoted) only, never from payloads.
  return new Function('converts', source)(converts) as (value: unknown) => unknown
}

/**
 * Turns what an avsc type decoded into plain JSON data, by the rules of `avroPayloadDecoder`:
 * compiled from the type when it describes itself, a walk of each value otherwise.
 */
export const avroToPlain = (type: AvroTypeLike): ((value: unknown) => unknown) =>
  type.typeName === undefined ? toPlain : (convertOf(type, new Map()) ?? ((value: unknown) => value))

/**
 * The decoder of an Avro serialization, given a type that reads a whole buffer (throwing on
 * truncated or trailing bytes). The record becomes a plain object: bytes as base64, and a null
 * left out where the field's default is null (an absent optional field: JSON omits it) but
 * kept where the field has no default (a required field that may be null, such as a finding's
 * `fix_version`). Schemas `compileAvroReader` reads are decoded by it; others by the type
 * itself, then converted by a converter compiled from the type, or walked when the type does
 * not describe itself.
 */
export const avroPayloadDecoder = (schemaId: number, type: AvroReader): PayloadDecoder => {
  const compiled = type.typeName === undefined ? undefined : compileAvroReader(type)
  const convert = avroToPlain(type)
  const read: (buffer: Buffer, start: number) => unknown =
    compiled ?? ((buffer, start) => convert(type.fromBuffer(start === 0 ? buffer : buffer.subarray(start))))
  return {
    schemaId,
    type: 'AVRO',
    decode(value, start = 0): PayloadResult {
      const buffer = Buffer.isBuffer(value)
        ? value
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
      try {
        return { ok: true, value: read(buffer, start) }
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
  }
}
