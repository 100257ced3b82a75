import * as t from 'io-ts'
import { daysInMonth } from '../../calendar.ts'
import { withMessage } from '../io-ts-issues.ts'

/**
 * The building blocks of every event type's `data` codec. Each one mirrors a definition used
 * by the JSON Schemas in `schemas/events/` (same pattern, same bounds), because the codecs
 * and the wire schemas must accept exactly the same documents.
 */

// OCI image-spec digest grammar: algorithm ":" encoded. Deliberately not tied to sha256 and
// 64 hex characters, so test digests and future algorithms pass.
export const DIGEST_PATTERN = '^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$'

// RFC 3339 `date-time` with an explicit offset, hours 00-23, minutes 00-59, seconds 00-60. The
// JSON Schemas pair this pattern with `"format": "date-time"`, whose calendar rules
// `isTimestamp` reproduces. The format alone takes an hour 24 or a minute 60 wherever its
// offset maps the time to 23:59 UTC (its leap-second rule runs on any hour and minute), as in
// `2016-12-31T24:59:60+01:00`, which names no instant: the pattern refuses them.
export const TIMESTAMP_PATTERN =
  '^\\d{4}-\\d{2}-\\d{2}[Tt](?:[01]\\d|2[0-3]):[0-5]\\d:(?:[0-5]\\d|60)(?:\\.\\d+)?(?:[Zz]|[+-]\\d{2}:\\d{2})$'

// RFC 9562's textual form, either case, without the `urn:uuid:` prefix ajv's `uuid` format
// also takes. The JSON Schemas pair it with `"format": "uuid"`, which it implies.
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

// What CloudEvents 1.0 forbids in a String attribute: the control characters U+0000-U+001F and
// U+007F-U+009F, and surrogate code points. JSON Schema's `pattern` reads a string by code
// points (Unicode semantics), so a pair is one character outside the range, and only a half
// of one alone falls in it.
const NOT_IN_A_STRING = '\\u0000-\\u001F\\u007F-\\u009F\\uD800-\\uDFFF'

/** A CloudEvents String: no control character and no lone surrogate (`isStringAttribute`). */
export const STRING_ATTRIBUTE_PATTERN = `^[^${NOT_IN_A_STRING}]*$`

// Whitespace first, then a character that is neither whitespace nor forbidden, then anything
// not forbidden: each character has one place to go, so a long string is matched in one pass.
/** A CloudEvents String with a character other than whitespace (`isNonBlankStringAttribute`). */
export const NON_BLANK_STRING_ATTRIBUTE_PATTERN = `^[^\\S${NOT_IN_A_STRING}]*[^\\s${NOT_IN_A_STRING}][^${NOT_IN_A_STRING}]*$`

/**
 * A CloudEvents String that is not empty: `subject` (CloudEvents requires it non-empty when
 * present), `resourcetype`, `subtype` (Herald stores an empty one as none).
 */
export const NON_EMPTY_STRING_ATTRIBUTE_PATTERN = `^[^${NOT_IN_A_STRING}]+$`

// Beside what no String holds, what neither a URI (RFC 3986) nor an IRI (RFC 3987) holds
// anywhere: whitespace and " < > \ ^ ` { | }; and `%` only begins an escape of two hex
// digits. Non-ASCII letters are let through as an IRI has them: a producer's /engine/ünïcode.
const NOT_IN_A_URI = `\\s${NOT_IN_A_STRING}"<>\\\\^\`{|}%`
const URI_CHARACTER = `(?:[^${NOT_IN_A_URI}]|%[0-9A-Fa-f]{2})`

/** `source`: a URI-reference, such as /engine/catalog or urn:anchore:engine. */
export const URI_REFERENCE_PATTERN = `^${URI_CHARACTER}+$`

/** `dataschema`: an absolute URI, a scheme and `:` first. */
export const URI_PATTERN = `^[A-Za-z][A-Za-z0-9+.-]*:${URI_CHARACTER}*$`

// JSON Schema applies `pattern` with Unicode semantics; so do these.
const DIGEST = new RegExp(DIGEST_PATTERN, 'u')
const UUID = new RegExp(UUID_PATTERN, 'u')
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const NOT_BLANK = /\S/

/**
 * Whether `s` may be a CloudEvents String: STRING_ATTRIBUTE_PATTERN, in two checks V8 runs
 * faster than the pattern (a native scan for lone surrogates, then a search for a control
 * character), as every attribute of every event is asked.
 */
export const isStringAttribute = (s: string): boolean => s.isWellFormed() && !CONTROL.test(s)

/** NON_BLANK_STRING_ATTRIBUTE_PATTERN: a CloudEvents String that is not only whitespace. */
export const isNonBlankStringAttribute = (s: string): boolean => {
  // Nearly every id, source and type starts with printable ASCII, which is no whitespace: then
  // nothing need be searched for it.
  const first = s.charCodeAt(0)
  return (first > 0x20 && first < 0x7f) || NOT_BLANK.test(s) ? isStringAttribute(s) : false
}

const URI_REFERENCE = new RegExp(URI_REFERENCE_PATTERN, 'u')
const URI = new RegExp(URI_PATTERN, 'u')

/** URI_REFERENCE_PATTERN. */
export const isUriReference = (s: string): boolean => URI_REFERENCE.test(s)

/** URI_PATTERN. */
export const isUri = (s: string): boolean => URI.test(s)

const URI_RULE = 'no whitespace, none of " < > \\ ^ ` { | }, and % only before two hex digits'

/** What a `source` that is no URI-reference is told. */
export const NOT_A_URI_REFERENCE = `must be a URI-reference such as /engine/catalog or urn:anchore:engine: ${URI_RULE}`

/** What a `dataschema` that is no URI is told. */
export const NOT_A_URI = `must be an absolute URI such as https://example.com/schemas/event.json: a scheme and ":" first, then ${URI_RULE}`

/** What a string attribute holding what CloudEvents forbids is told. */
export const NOT_A_STRING_ATTRIBUTE =
  'must not hold a control character (U+0000-U+001F, U+007F-U+009F) or a lone surrogate (an escaped \\ud800-\\udfff without its pair): CloudEvents forbids them in attributes'

const digitAt = (s: string, i: number): number => {
  const d = s.charCodeAt(i) - 48
  return d >= 0 && d <= 9 ? d : -1
}

// Two digits at `i` as a number, or -1.
const twoDigits = (s: string, i: number): number => {
  const a = digitAt(s, i)
  const b = digitAt(s, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}

/**
 * An RFC 3339 timestamp that names a real instant: a day that exists in its month, hours to
 * 23, minutes to 59, and a leap second only at 23:59:60 UTC — the rules of ajv-formats'
 * `date-time` plus TIMESTAMP_PATTERN, which `Date.parse` does not apply (it accepts 2026-02-30
 * and rejects leap seconds). Read character by character: it runs for every timestamp of
 * every event.
 */
export const isTimestamp = (s: string): boolean => {
  // yyyy-mm-ddThh:mm:ss is 19 characters; then an optional fraction, then Z or ±hh:mm.
  if (s.length < 20) return false
  const y1 = twoDigits(s, 0)
  const y2 = twoDigits(s, 2)
  const month = twoDigits(s, 5)
  const day = twoDigits(s, 8)
  const hour = twoDigits(s, 11)
  const minute = twoDigits(s, 14)
  const whole = twoDigits(s, 17)
  if ((y1 | y2 | month | day | hour | minute | whole) < 0) return false
  const t = s.charCodeAt(10)
  // Character codes, not one-character strings: - T t : .
  if (
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (t !== 84 && t !== 116) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return false
  let i = 19
  if (s.charCodeAt(i) === 46) {
    i++
    const first = i
    while (i < s.length && digitAt(s, i) >= 0) i++
    if (i === first) return false
  }
  let sign = 1
  let offsetHours = 0
  let offsetMinutes = 0
  const z = s.charCodeAt(i)
  if (z === 90 || z === 122) {
    if (i + 1 !== s.length) return false
  } else if (z === 43 || z === 45) {
    if (i + 6 !== s.length || s.charCodeAt(i + 3) !== 58) return false
    sign = z === 45 ? -1 : 1
    offsetHours = twoDigits(s, i + 1)
    offsetMinutes = twoDigits(s, i + 4)
    if (offsetHours < 0 || offsetMinutes < 0) return false
  } else {
    return false
  }
  const year = y1 * 100 + y2
  if (month < 1 || month > 12 || day < 1) return false
  if (day > daysInMonth(year, month)) return false
  if (offsetHours > 23 || offsetMinutes > 59 || hour > 23 || minute > 59 || whole > 60) return false
  // A fraction never carries a second past the next whole one, so only the whole part matters.
  if (whole < 60) return true
  const utcMinute = minute - offsetMinutes * sign
  const utcHour = hour - offsetHours * sign - (utcMinute < 0 ? 1 : 0)
  return (utcHour === 23 || utcHour === -1) && (utcMinute === 59 || utcMinute === -1)
}

/** What a value that is not an RFC 3339 timestamp is told, wherever one is asked for. */
export const NOT_A_TIMESTAMP = 'must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z'

const LEAP_SECOND = /(T\d{2}:\d{2}):60/i

/**
 * An RFC 3339 timestamp (calendar rules, an explicit offset) as milliseconds; undefined for
 * anything else. `Date.parse` alone takes 2026-02-30 as 2 March, and a time without an offset
 * in the server's own zone.
 *
 * @example
 * instantOf('2026-11-22T10:00:00Z') // 1795341600000
 * instantOf('2026-11-22T10:00:00') // undefined
 */
export const instantOf = (value: string): number | undefined => {
  if (!isTimestamp(value)) return undefined
  // A leap second (`23:59:60Z`), which `Date.parse` refuses, is the instant after :59's last
  // millisecond, as the clocks that repeat or smear it arrive at.
  const ms = LEAP_SECOND.test(value)
    ? Date.parse(value.replace(LEAP_SECOND, '$1:59')) + 1000
    : Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === 'object' && u !== null && !Array.isArray(u)

const leaf = <C extends t.Any>(codec: C, what: string) =>
  withMessage(codec, (u) => (u === undefined ? 'is required' : `must be ${what}`), codec.name)

export const Text = leaf(
  t.refinement(t.string, (s) => s.length > 0, 'Text'),
  'a non-empty string',
)
export const Digest = leaf(
  t.refinement(t.string, (s) => DIGEST.test(s), 'Digest'),
  'an image digest such as sha256:<hex>',
)
export const Uuid = leaf(
  t.refinement(t.string, (s) => UUID.test(s), 'Uuid'),
  'a UUID such as 0b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
)
export const Timestamp = leaf(
  t.refinement(t.string, isTimestamp, 'Timestamp'),
  'an RFC 3339 timestamp such as 2026-11-22T10:00:00Z',
)
/**
 * The largest count: the most a `UInt32` column holds (`images.package_count`), which stores
 * 2^32 as 0 and fails the insert of 1e21. Every count of the catalog shares the bound.
 */
export const MAX_COUNT = 4_294_967_295

export const Count = leaf(
  t.refinement(t.number, (n) => Number.isInteger(n) && n >= 0 && n <= MAX_COUNT, 'Count'),
  `a whole number from 0 to ${MAX_COUNT}`,
)
export const Seconds = leaf(
  // Finite: a literal too large for a number (1e400) parses to Infinity, which JSON cannot hold.
  t.refinement(t.number, (n) => Number.isFinite(n) && n >= 0, 'Seconds'),
  'a number of seconds, at least 0',
)
export const Cvss = leaf(
  t.refinement(t.number, (n) => n >= 0 && n <= 10, 'Cvss'),
  'a CVSS score from 0 to 10',
)
export const Flag = leaf(t.boolean, 'true or false')

/**
 * Non-empty text of at most `max` characters, counted in code points as JSON Schema's
 * `maxLength` counts them (a JavaScript `length` counts UTF-16 units).
 */
export const boundedText = (max: number) =>
  leaf(
    t.refinement(
      t.string,
      // Code points never outnumber UTF-16 units: only a long string needs counting.
      (s) => s.length > 0 && (s.length <= max || [...s].length <= max),
      `Text(${max})`,
    ),
    `a non-empty string of at most ${max} characters`,
  )

/** One of a fixed set of strings, named in the failure message. */
export const oneOf = <K extends string>(values: readonly K[], name: string) =>
  leaf(
    t.keyof(Object.fromEntries(values.map((v) => [v, null])) as { [P in K]: null }, name),
    `one of ${values.join(', ')}`,
  )

/** A leaf that may also be `null` (JSON Schema: `anyOf` with `{"type": "null"}`). */
export const nullable = <C extends t.Any>(codec: C, what: string) =>
  leaf(t.union([codec, t.null], `${codec.name} | null`), `${what}, or null`)

export const Annotations = leaf(
  t.record(t.string, t.string, 'Annotations'),
  'an object of string annotations',
)

/**
 * An object with `required` and `optional` fields; unknown fields are allowed and kept, so
 * a producer may add fields before the schema names them. Missing or non-object input fails
 * with one issue at the object's own path; a bad field fails at the field's path.
 *
 * An `IntersectionType` on purpose: `toFieldIssues` leaves a composite's member index out of
 * the path, and the two members (required, optional) are exactly such members. Its `is`
 * checks both in one pass without allocating: it is the hot path of every decode, and agrees
 * with `decode` on every value JSON can express.
 */
export const struct = <R extends t.Props, O extends t.Props>(name: string, required: R, optional: O) => {
  const base = t.intersection([t.type(required), t.partial(optional)])
  type A = t.TypeOf<typeof base>
  const requiredKeys = Object.keys(required)
  const requiredCodecs = requiredKeys.map((k) => required[k] as t.Mixed)
  const optionalKeys = Object.keys(optional)
  const optionalCodecs = optionalKeys.map((k) => optional[k] as t.Mixed)
  const is = (u: unknown): u is A => {
    if (!isPlainObject(u)) return false
    for (let i = 0; i < requiredKeys.length; i++) {
      if (!(requiredCodecs[i] as t.Mixed).is(u[requiredKeys[i] as string])) return false
    }
    for (let i = 0; i < optionalKeys.length; i++) {
      const value = u[optionalKeys[i] as string]
      if (value !== undefined && !(optionalCodecs[i] as t.Mixed).is(value)) return false
    }
    return true
  }
  return new t.IntersectionType<[t.TypeC<R>, t.PartialC<O>], A, t.OutputOf<typeof base>, unknown>(
    name,
    is,
    (u, c) => {
      if (u === undefined) return t.failure(u, c, 'is required')
      if (!isPlainObject(u)) return t.failure(u, c, 'must be a JSON object')
      return base.validate(u, c)
    },
    base.encode,
    base.types,
  )
}

/** A JSON array of `item`; each bad element is reported at its index. */
export const list = <C extends t.Mixed>(item: C, what: string) => {
  const base = t.array(item)
  return new t.ArrayType<C, t.TypeOf<C>[], t.OutputOf<C>[], unknown>(
    `Array<${item.name}>`,
    base.is,
    (u, c) => {
      if (u === undefined) return t.failure(u, c, 'is required')
      if (!Array.isArray(u)) return t.failure(u, c, `must be a list of ${what}`)
      return base.validate(u, c)
    },
    base.encode,
    item,
  )
}
