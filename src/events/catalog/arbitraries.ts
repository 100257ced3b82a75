/**
 * fast-check arbitraries derived from the JSON Schemas in `schemas/` (the subset they use:
 * `$ref` to `$defs`, `anyOf`, `enum`, `const`, `type`, `required`, `properties`,
 * `additionalProperties`, `items`, `minLength`, `maxLength`, `pattern`, `format: date-time`,
 * `format: uuid`, `minimum`, `maximum`), and mutations that make a valid document invalid.
 *
 * Test support only: it depends on fast-check, a development dependency, so production code
 * never imports it.
 */
import fc from 'fast-check'
import { ACCOUNT_NAME } from '../../access/index.ts'
import {
  DIGEST_PATTERN,
  NON_BLANK_STRING_ATTRIBUTE_PATTERN,
  NON_EMPTY_STRING_ATTRIBUTE_PATTERN,
  STRING_ATTRIBUTE_PATTERN,
  URI_PATTERN,
  URI_REFERENCE_PATTERN,
  UUID_PATTERN,
} from './formats.ts'

type Schema = Readonly<Record<string, unknown>>
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface ArbitraryOptions {
  /** Whether timestamps may be leap seconds (23:59:60Z), which `Date.parse` rejects. */
  readonly leapSeconds?: boolean
  /**
   * Characters of free-text strings: `binary` (any code point, the default) or `binary-ascii`.
   * `maxLength` counts code points in JSON Schema and UTF-16 units in JavaScript, so strings
   * near a maximum length need ASCII to mean the same to both.
   */
  readonly stringUnit?: 'binary' | 'binary-ascii'
}

const resolve = (schema: Schema, root: Schema): Schema => {
  const ref = schema.$ref
  if (typeof ref !== 'string') return schema
  const name = ref.replace('#/$defs/', '')
  const target = (root.$defs as Record<string, Schema> | undefined)?.[name]
  if (target === undefined) throw new Error(`unresolved $ref ${ref}`)
  return {
    ...resolve(target, root),
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$ref')),
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0')
const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

const dateArbitrary: fc.Arbitrary<string> = fc
  .tuple(
    fc.integer({ min: 1970, max: 2100 }),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 31 }),
  )
  .map(([year, month, day]) => `${pad(year, 4)}-${pad(month)}-${pad(Math.min(day, daysIn(year, month)))}`)

const fractionArbitrary = fc.option(fc.stringMatching(/^\.\d{1,9}$/), { nil: '' })

/** Valid RFC 3339 timestamps in every shape the contract allows. */
export const timestampArbitrary = (options: ArbitraryOptions = {}): fc.Arbitrary<string> => {
  const regular = fc
    .tuple(
      dateArbitrary,
      fc.constantFrom('T', 't'),
      fc.integer({ min: 0, max: 23 }),
      fc.integer({ min: 0, max: 59 }),
      fc.integer({ min: 0, max: 59 }),
      fractionArbitrary,
      fc.oneof(
        fc.constantFrom('Z', 'z'),
        fc
          .tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
          .map(([sign, h, m]) => `${sign}${pad(h)}:${pad(m)}`),
      ),
    )
    .map(
      ([date, t, h, m, sec, fraction, offset]) =>
        `${date}${t}${pad(h)}:${pad(m)}:${pad(sec)}${fraction}${offset}`,
    )
  if (options.leapSeconds === false) return regular
  const leap = fc
    .tuple(dateArbitrary, fractionArbitrary)
    .map(([date, fraction]) => `${date}T23:59:60${fraction}Z`)
  return fc.oneof({ weight: 19, arbitrary: regular }, { weight: 1, arbitrary: leap })
}

const digestArbitrary: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom('sha256', 'sha512', 'sha256+b64u', 'multihash.v1'),
    fc.stringMatching(/^[a-zA-Z0-9=_-]{1,64}$/),
  )
  .map(([algorithm, encoded]) => `${algorithm}:${encoded}`)

/** Account names (`src/access/account.ts`), their longest included. */
export const accountArbitrary: fc.Arbitrary<string> = fc.oneof(
  { weight: 9, arbitrary: fc.stringMatching(ACCOUNT_NAME) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(128), `0${'._-'.repeat(42)}x`) },
)

// biome-ignore lint/suspicious/noControlCharactersInRegex: taking control characters out is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g

const isStringAttributePattern = (pattern: unknown): boolean =>
  pattern === STRING_ATTRIBUTE_PATTERN ||
  pattern === NON_BLANK_STRING_ATTRIBUTE_PATTERN ||
  pattern === NON_EMPTY_STRING_ATTRIBUTE_PATTERN

// A path of URI characters: unreserved and sub-delimiters, an escape, a non-ASCII letter.
const uriPathArbitrary: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@/-]{1,8}$/),
      fc.constantFrom('%2F', '%c3%bc', 'ü', 'é'),
    ),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join(''))

/** `source` values: URI-references, relative or with a scheme. */
const uriReferenceArbitrary: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('', '/', 'urn:', 'https://engine.example/', '//host/'), uriPathArbitrary)
  .map(([prefix, path]) => `${prefix}${path}`)

/** `dataschema` values: absolute URIs. */
const uriArbitrary: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('urn:', 'https://schemas.example/', 'x-herald+v1.2:'), uriPathArbitrary)
  .map(([scheme, path]) => `${scheme}${path}`)

const stringArbitrary = (schema: Schema, options: ArbitraryOptions): fc.Arbitrary<string> => {
  if (schema.format === 'date-time') return timestampArbitrary(options)
  if (schema.pattern === DIGEST_PATTERN) return digestArbitrary
  // Random strings would almost never be account names.
  if (schema.pattern === ACCOUNT_NAME.source) return accountArbitrary
  // Either case: the pattern allows both, and random strings would almost never match it.
  if (schema.pattern === UUID_PATTERN)
    return fc.tuple(fc.uuid(), fc.boolean()).map(([id, upper]) => (upper ? id.toUpperCase() : id))
  if (schema.pattern === URI_REFERENCE_PATTERN) return uriReferenceArbitrary
  if (schema.pattern === URI_PATTERN) return uriArbitrary
  const minLength = typeof schema.minLength === 'number' ? schema.minLength : 0
  const maxLength = typeof schema.maxLength === 'number' ? schema.maxLength : 40
  const base = fc.string({ unit: options.stringUnit ?? 'binary', minLength, maxLength })
  if (typeof schema.pattern !== 'string') return base
  // Random strings would seldom be free of control characters: they are taken out.
  if (isStringAttributePattern(schema.pattern)) {
    const pattern = new RegExp(schema.pattern, 'u')
    return base.map((s) => s.replace(CONTROL_CHARACTERS, '')).filter((s) => pattern.test(s))
  }
  const pattern = new RegExp(schema.pattern, 'u')
  return base.filter((s) => pattern.test(s))
}

// Keys that would change an object's prototype when assigned are left to dedicated tests.
const extraKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== '__proto__')

/** The pattern of a `propertyNames` schema, or of the first `anyOf` member that has one. */
const firstPattern = (names: unknown): string | undefined => {
  if (typeof names !== 'object' || names === null) return undefined
  const n = names as Schema
  if (typeof n.pattern === 'string') return n.pattern
  return Array.isArray(n.anyOf) ? n.anyOf.map(firstPattern).find((p) => p !== undefined) : undefined
}

/** Documents the schema accepts; objects also carry unknown fields, which the contract allows. */
export const arbitraryFromSchema = (
  schema: Schema,
  root: Schema = schema,
  options: ArbitraryOptions = {},
): fc.Arbitrary<Json> => {
  const s = resolve(schema, root)
  if ('const' in s) return fc.constant(s.const as Json)
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as Json[]))
  if (Array.isArray(s.anyOf))
    return fc.oneof(...(s.anyOf as Schema[]).map((m) => arbitraryFromSchema(m, root, options)))
  switch (s.type) {
    case 'string':
      return stringArbitrary(s, options)
    case 'integer':
      return fc.integer({
        min: typeof s.minimum === 'number' ? s.minimum : -1_000_000,
        max: typeof s.maximum === 'number' ? s.maximum : 1_000_000,
      })
    case 'number':
      return fc.double({
        min: typeof s.minimum === 'number' ? s.minimum : -1e9,
        max: typeof s.maximum === 'number' ? s.maximum : 1e9,
        noNaN: true,
        noDefaultInfinity: true,
      })
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array':
      return fc.array(arbitraryFromSchema(s.items as Schema, root, options), { maxLength: 4 })
    case 'object': {
      const properties = (s.properties ?? {}) as Record<string, Schema>
      const required = (s.required ?? []) as string[]
      const additional = s.additionalProperties
      if (Object.keys(properties).length === 0 && typeof additional === 'object' && additional !== null) {
        return fc.dictionary(extraKey, arbitraryFromSchema(additional as Schema, root, options), {
          maxKeys: 4,
        })
      }
      const known = fc.record(
        Object.fromEntries(
          Object.entries(properties).map(([k, v]) => [k, arbitraryFromSchema(v, root, options)]),
        ),
        { requiredKeys: required },
      )
      // Unknown fields follow `propertyNames` (its first pattern) and `additionalProperties`.
      const namePattern = firstPattern(s.propertyNames)
      const extra = fc.dictionary(
        (namePattern === undefined ? extraKey : fc.stringMatching(new RegExp(namePattern))).filter(
          (k) => !(k in properties) && k !== '__proto__' && k.length <= 12,
        ),
        typeof additional === 'object' && additional !== null
          ? arbitraryFromSchema(additional as Schema, root, options)
          : (fc.jsonValue() as fc.Arbitrary<Json>),
        { maxKeys: 2 },
      )
      return fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...k }) as Json)
    }
    default:
      // No type: anything JSON.
      return fc.jsonValue() as fc.Arbitrary<Json>
  }
}

/** JSON types a schema accepts (`integer` stands for whole numbers only). */
const acceptedTypes = (schema: Schema, root: Schema): Set<string> => {
  const s = resolve(schema, root)
  if ('const' in s) return new Set([jsonType(s.const as Json)])
  if (Array.isArray(s.enum)) return new Set((s.enum as Json[]).map(jsonType))
  if (Array.isArray(s.anyOf)) {
    return new Set((s.anyOf as Schema[]).flatMap((m) => [...acceptedTypes(m, root)]))
  }
  if (typeof s.type === 'string') return new Set(s.type === 'number' ? ['number', 'integer'] : [s.type])
  return new Set(['string', 'number', 'integer', 'boolean', 'null', 'array', 'object'])
}

const jsonType = (value: Json): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'array'
      : typeof value === 'number'
        ? Number.isInteger(value)
          ? 'integer'
          : 'number'
        : typeof value

const SAMPLES: Readonly<Record<string, Json>> = {
  string: 'not-what-was-asked',
  integer: 42,
  number: 4.5,
  boolean: true,
  null: null,
  array: [],
  object: {},
}

/** One way to break a valid document: where, and what to do there. */
export interface Mutation {
  readonly path: readonly (string | number)[]
  readonly description: string
  /** `undefined` removes the field. */
  readonly replacement: Json | undefined
}

/** Replacements of a leaf value that stay within its JSON type but break its constraints. */
const valueMutations = (s: Schema, value: Json): { description: string; replacement: Json }[] => {
  const out: { description: string; replacement: Json }[] = []
  if (Array.isArray(s.enum))
    out.push({ description: 'a value outside the enum', replacement: 'not-in-the-enum' })
  if (s.type === 'string') {
    if (s.format === 'date-time') {
      out.push({ description: '30 February', replacement: '2026-02-30T10:00:00Z' })
      out.push({ description: 'no offset', replacement: '2026-11-22T10:00:00' })
      out.push({ description: 'a space separator', replacement: '2026-11-22 10:00:00Z' })
    } else if (s.pattern === DIGEST_PATTERN) {
      out.push({ description: 'a digest without algorithm', replacement: 'abcdef0123' })
      out.push({ description: 'an upper-case algorithm', replacement: 'SHA256:abc' })
    } else if (s.pattern === ACCOUNT_NAME.source) {
      out.push({ description: 'an account holding NUL', replacement: `${String(value)}\u0000` })
      out.push({ description: 'an account of 129 characters', replacement: 'a'.repeat(129) })
      out.push({ description: 'a non-ASCII account', replacement: 'acmé' })
      out.push({ description: 'an account starting with a dot', replacement: `.${String(value)}` })
      out.push({ description: 'an account starting with a dash', replacement: `-${String(value)}` })
      out.push({ description: 'an account with a space', replacement: `${String(value)} x` })
      out.push({ description: 'an account ending in a newline', replacement: `${String(value)}\n` })
      out.push({ description: 'an empty account', replacement: '' })
    } else if (s.pattern === UUID_PATTERN) {
      out.push({ description: 'not a uuid', replacement: 'cfg-1' })
      // ajv's `uuid` format takes it; the pattern does not.
      out.push({ description: 'a uuid in a urn', replacement: `urn:uuid:${String(value)}` })
    } else if (s.pattern === URI_REFERENCE_PATTERN || s.pattern === URI_PATTERN) {
      out.push({ description: 'a space', replacement: `${String(value)} x` })
      out.push({ description: 'a < and a >', replacement: `<${String(value)}>` })
      out.push({ description: 'a % that begins no escape', replacement: `${String(value)}%` })
      out.push({ description: 'a NUL', replacement: `${String(value)}x\u0000` })
      out.push({ description: 'a lone high surrogate', replacement: `${String(value)}x\ud800` })
      out.push({ description: 'an empty string', replacement: '' })
      if (s.pattern === URI_PATTERN) out.push({ description: 'no scheme', replacement: '/relative' })
    } else if (isStringAttributePattern(s.pattern)) {
      out.push({ description: 'a NUL', replacement: `${String(value)}x\u0000` })
      out.push({ description: 'a C1 control character', replacement: `x\u0085${String(value)}` })
      out.push({ description: 'a lone high surrogate', replacement: `${String(value)}x\ud800` })
      out.push({ description: 'a lone low surrogate', replacement: `\udc00x${String(value)}` })
    }
    if (s.pattern === NON_BLANK_STRING_ATTRIBUTE_PATTERN)
      out.push({ description: 'only whitespace', replacement: ' \u00a0' })
    if (s.pattern === NON_EMPTY_STRING_ATTRIBUTE_PATTERN)
      out.push({ description: 'an empty string', replacement: '' })
    if (typeof s.minLength === 'number' && s.minLength > 0)
      out.push({ description: 'an empty string', replacement: '' })
    if (typeof s.maxLength === 'number')
      out.push({ description: 'one character too long', replacement: 'x'.repeat(s.maxLength + 1) })
  }
  if (s.type === 'integer') out.push({ description: 'a fraction', replacement: Number(value) + 0.5 })
  if ((s.type === 'integer' || s.type === 'number') && typeof s.minimum === 'number') {
    out.push({ description: 'below the minimum', replacement: s.minimum - 1 })
  }
  if ((s.type === 'integer' || s.type === 'number') && typeof s.maximum === 'number') {
    out.push({ description: 'above the maximum', replacement: s.maximum + 0.5 })
  }
  return out
}

/**
 * Every single-point mutation of `value` (valid by `schema`) that the schema must reject:
 * dropping a required field, a value of a JSON type the schema does not accept, or a value of
 * the right type that breaks a constraint (enum, pattern, format, bounds).
 */
export const mutationsOf = (
  value: Json,
  schema: Schema,
  root: Schema = schema,
  path: readonly (string | number)[] = [],
): Mutation[] => {
  const s = resolve(schema, root)
  const out: Mutation[] = []
  const accepted = acceptedTypes(s, root)
  for (const [type, sample] of Object.entries(SAMPLES)) {
    if (accepted.has(type) || (type === 'integer' && accepted.has('number'))) continue
    out.push({ path, description: `${type} instead of ${[...accepted].join('|')}`, replacement: sample })
  }
  if (Array.isArray(s.anyOf)) {
    // The member that accepts the value decides which constraints there are to break.
    const member = (s.anyOf as Schema[])
      .map((m) => resolve(m, root))
      .find(
        (m) =>
          acceptedTypes(m, root).has(jsonType(value)) || (m.type === 'number' && typeof value === 'number'),
      )
    if (member !== undefined && value !== null) {
      for (const m of valueMutations(member, value)) out.push({ path, ...m })
    }
    return out
  }
  for (const m of valueMutations(s, value)) out.push({ path, ...m })
  if (s.type === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const properties = (s.properties ?? {}) as Record<string, Schema>
    for (const key of (s.required ?? []) as string[]) {
      out.push({ path: [...path, key], description: `without required ${key}`, replacement: undefined })
    }
    if (firstPattern(s.propertyNames) !== undefined && !('Bad_Name' in value))
      out.push({
        path: [...path, 'Bad_Name'],
        description: 'a field named against propertyNames',
        replacement: 'x',
      })
    for (const [key, child] of Object.entries(value)) {
      const childSchema =
        properties[key] ??
        (typeof s.additionalProperties === 'object' ? (s.additionalProperties as Schema) : undefined)
      if (childSchema !== undefined) out.push(...mutationsOf(child, childSchema, root, [...path, key]))
    }
  }
  if (s.type === 'array' && Array.isArray(value)) {
    value.forEach((item, i) => {
      out.push(...mutationsOf(item, s.items as Schema, root, [...path, i]))
    })
  }
  return out
}

/** A copy of `value` with `mutation` applied. */
export const applyMutation = (value: Json, mutation: Mutation): Json => {
  if (mutation.path.length === 0) return mutation.replacement === undefined ? null : mutation.replacement
  const copy = structuredClone(value) as Record<string | number, Json>
  let parent: Record<string | number, Json> = copy
  for (const key of mutation.path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>
  const last = mutation.path.at(-1) as string | number
  if (mutation.replacement === undefined) delete parent[last]
  else parent[last] = mutation.replacement
  return copy as Json
}

export type { Json }
