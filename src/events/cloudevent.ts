import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { ACCOUNT_NAME_RULE, isAccountName } from '../access/index.ts'
import type { FieldIssue } from '../errors/index.ts'
import {
  isNonBlankStringAttribute,
  isStringAttribute,
  isTimestamp,
  isUri,
  isUriReference,
  NOT_A_STRING_ATTRIBUTE,
  NOT_A_TIMESTAMP,
  NOT_A_URI,
  NOT_A_URI_REFERENCE,
} from './catalog/formats.ts'
import { compileGuard } from './io-ts-guard.ts'
import { toFieldIssues, withMessage } from './io-ts-issues.ts'

const NonEmptyString = withMessage(
  t.refinement(t.string, (s) => s.trim().length > 0, 'NonEmptyString'),
  (u) => (typeof u === 'string' ? 'must not be empty' : 'must be a non-empty string'),
)

// CloudEvents 1.0 Strings: no control character and no lone surrogate. A lone surrogate is no
// Unicode text: hashed or written as UTF-8 it becomes U+FFFD, so two ids differing only in one
// would be one event downstream, the second skipped as a repeat.
const StringAttribute = withMessage(t.refinement(t.string, isStringAttribute, 'StringAttribute'), (u) =>
  typeof u === 'string' ? NOT_A_STRING_ATTRIBUTE : 'must be a string',
)

const NonBlankStringAttribute = withMessage(
  t.refinement(t.string, isNonBlankStringAttribute, 'NonBlankStringAttribute'),
  (u) =>
    typeof u !== 'string'
      ? 'must be a non-empty string'
      : isStringAttribute(u)
        ? 'must not be empty'
        : NOT_A_STRING_ATTRIBUTE,
)

/** What an empty `subject`, `resourcetype` or `subtype` is told. */
const EMPTY_ATTRIBUTE = 'must not be empty: leave the attribute out when there is none'

// CloudEvents requires a subject to be non-empty when present. Herald stores an empty
// subject, resourcetype or subtype as none (the `events` columns), so the event read back (a
// preview, an explain) would be another than the one routed, and an empty resourcetype or
// subtype would keep the catalog's default out.
const NonEmptyStringAttribute = withMessage(
  t.refinement(t.string, (s) => s.length > 0 && isStringAttribute(s), 'NonEmptyStringAttribute'),
  (u) => (typeof u !== 'string' ? 'must be a string' : u === '' ? EMPTY_ATTRIBUTE : NOT_A_STRING_ATTRIBUTE),
)

/** A CloudEvents attribute whose string must also pass `valid`, told `rule` (`empty`) when it does not. */
const uriAttribute = (valid: (s: string) => boolean, rule: string, name: string, empty = rule) =>
  withMessage(t.refinement(t.string, valid, name), (u) =>
    typeof u !== 'string'
      ? 'must be a non-empty string'
      : u === ''
        ? empty
        : isStringAttribute(u)
          ? rule
          : NOT_A_STRING_ATTRIBUTE,
  )

// `source` is a URI-reference and `dataschema` a URI, as CloudEvents requires.
const UriReference = uriAttribute(isUriReference, NOT_A_URI_REFERENCE, 'UriReference', 'must not be empty')
const Uri = uriAttribute(isUri, NOT_A_URI, 'Uri')

// RFC 3339 as CloudEvents requires, with its calendar rules: the same check as the schema's
// `date-time` format, so the codec and the wire contract accept the same instants.
const Timestamp = withMessage(t.refinement(t.string, isTimestamp, 'Timestamp'), () => NOT_A_TIMESTAMP)

export const Level = withMessage(
  t.keyof({ info: null, warning: null, error: null }),
  () => 'must be one of info, warning, error',
  'Level',
)
export type Level = t.TypeOf<typeof Level>

const SpecVersion = withMessage(t.literal('1.0'), () => 'must be "1.0"', 'SpecVersion')

/** An account name by the rule every account input follows (`src/access/account.ts`). */
export const AccountName = withMessage(
  t.refinement(t.string, isAccountName, 'AccountName'),
  () => ACCOUNT_NAME_RULE,
)

type StringCodec = t.Type<string, string, unknown>

/** The codec of each string attribute: what an envelope takes. */
interface StringAttributes {
  readonly id: StringCodec
  readonly source: StringCodec
  readonly type: StringCodec
  readonly account: StringCodec
  readonly subject: StringCodec
  readonly datacontenttype: StringCodec
  readonly dataschema: StringCodec
  readonly resourcetype: StringCodec
  readonly subtype: StringCodec
}

const envelopeWith = (a: StringAttributes) =>
  t.intersection([
    t.type({
      specversion: SpecVersion,
      id: a.id,
      source: a.source,
      type: a.type,
      account: a.account,
    }),
    t.partial({
      subject: a.subject,
      time: Timestamp,
      datacontenttype: a.datacontenttype,
      dataschema: a.dataschema,
      data: t.unknown,
      level: Level,
      resourcetype: a.resourcetype,
      subtype: a.subtype,
    }),
  ])

/**
 * The CloudEvents 1.0 envelope with Herald's extensions. `account` (the tenant) is required:
 * without it an event cannot be routed or reported; it must be an account name
 * (`AccountName`), as it keys the log and labels metrics, rows and deliveries. `id` is the
 * idempotency key downstream. No string attribute holds a control character or a lone
 * surrogate, as CloudEvents requires; `source` is a URI-reference and `dataschema` a URI,
 * and `subject`, `resourcetype` and `subtype` are not empty.
 */
export const CloudEvent = envelopeWith({
  id: NonBlankStringAttribute,
  source: UriReference,
  type: NonBlankStringAttribute,
  account: AccountName,
  subject: NonEmptyStringAttribute,
  datacontenttype: StringAttribute,
  dataschema: Uri,
  resourcetype: NonEmptyStringAttribute,
  subtype: NonEmptyStringAttribute,
})
export type CloudEvent = t.TypeOf<typeof CloudEvent>

/**
 * The envelope as Herald itself recorded it, in the delivery log and its delivery commands:
 * by the rules events were accepted under before `CloudEvent`'s (`account` and `id`, `source`,
 * `type` only non-empty, the others any string), so what was recorded then stays readable.
 * Never for input from outside: that is `CloudEvent`.
 */
export const RecordedCloudEvent = envelopeWith({
  id: NonEmptyString,
  source: NonEmptyString,
  type: NonEmptyString,
  account: NonEmptyString,
  subject: t.string,
  datacontenttype: t.string,
  dataschema: t.string,
  resourcetype: t.string,
  subtype: t.string,
})

const MAX_ID_LENGTH = 256

const isEnvelope = compileGuard(CloudEvent)

// CloudEvents 1.0: an attribute name is lower-case ASCII letters and digits; an extension's
// value is one of the type system's scalars (in JSON a string, a boolean or a 32-bit integer;
// null stands for an absent attribute).
const ATTRIBUTE_NAME = /^[a-z0-9]+$/
const INT32_MIN = -2_147_483_648
const INT32_MAX = 2_147_483_647

const extensionProblem = (name: string, value: unknown): string | undefined => {
  if (!ATTRIBUTE_NAME.test(name))
    return 'is not a CloudEvents attribute name: lower-case letters a-z and digits 0-9 only'
  if (typeof value === 'string') return isStringAttribute(value) ? undefined : NOT_A_STRING_ATTRIBUTE
  if (value === null || typeof value === 'boolean') return undefined
  if (typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)
    return undefined
  return 'an extension attribute must be a string, a boolean or an integer of 32 bits'
}

// The attributes the envelope names; any other member is an extension attribute. A switch,
// not a Set: every event passes here, and the names JSON.parse gives are the interned strings
// these compare to.
const isNamed = (name: string): boolean => {
  switch (name) {
    case 'specversion':
    case 'id':
    case 'source':
    case 'type':
    case 'account':
    case 'time':
    case 'data':
    case 'level':
    case 'resourcetype':
    case 'subtype':
    case 'subject':
    case 'datacontenttype':
    case 'dataschema':
    case 'data_base64':
      return true
    default:
      return false
  }
}

const extensionsValid = (input: object): boolean => {
  for (const name in input) {
    if (isNamed(name)) continue
    if (extensionProblem(name, (input as Record<string, unknown>)[name]) !== undefined) return false
  }
  return true
}

/**
 * Whether `input` is a valid envelope, without allocating: what `decodeCloudEvent` accepts.
 * An id of more than 256 UTF-16 units is left to `decodeCloudEvent`, which counts code points.
 */
export const isCloudEvent = (input: unknown): input is CloudEvent =>
  isEnvelope(input) &&
  (input as CloudEvent).id.length <= MAX_ID_LENGTH &&
  !('data_base64' in (input as object)) &&
  extensionsValid(input as object)

export type Decoded<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly issues: FieldIssue[] }

/** Validates one structured-mode CloudEvent; `prefix` names its place in a batch. */
export const decodeCloudEvent = (input: unknown, prefix = ''): Decoded<CloudEvent> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: prefix || '(root)', message: 'must be a JSON object' }] }
  }
  // The common case, a valid event, is judged by compiled checks without allocating; io-ts's
  // decode runs only to explain a failure.
  if (isCloudEvent(input)) return { ok: true, value: input }
  let event: CloudEvent
  if (isEnvelope(input)) event = input as CloudEvent
  else {
    const result = CloudEvent.decode(input)
    if (isLeft(result)) return { ok: false, issues: toFieldIssues(result.left, prefix) }
    event = result.right
  }
  const issues: FieldIssue[] = []
  const at = (key: string) => (prefix === '' ? key : `${prefix}.${key}`)
  // Counted in code points, as JSON Schema's maxLength counts them.
  if (event.id.length > MAX_ID_LENGTH && [...event.id].length > MAX_ID_LENGTH)
    issues.push({ path: at('id'), message: `must be at most ${MAX_ID_LENGTH} characters` })
  if ('data_base64' in input)
    issues.push({ path: at('data_base64'), message: 'binary data is not accepted; send JSON in data' })
  for (const [name, value] of Object.entries(input)) {
    const problem = isNamed(name) ? undefined : extensionProblem(name, value)
    if (problem !== undefined) issues.push({ path: at(name), message: problem })
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: event }
}

/**
 * The most issues a batch reports, the last of them naming the first event not judged when
 * judging stopped early: a body of empty objects cannot make an answer a hundred times its
 * size, nor hold the event loop. No more than a problem body lists (`MAX_LISTED_ISSUES`), so
 * that last issue reaches the caller.
 */
export const MAX_BATCH_ISSUES = 100

/**
 * How Herald tells events apart: by account, source and id (the router's and the projector's
 * processed ids, digests, a batch's repeats).
 *
 * @example
 * eventKey({ account: 'acme', source: '/engine', id: 'e1' }) // 'acme\u0000/engine\u0000e1'
 */
export const eventKey = (event: {
  readonly account: string
  readonly source: string
  readonly id: string
}): string => `${event.account}\u0000${event.source}\u0000${event.id}`

/**
 * Validates a batch with `decodeOne`: every event, every bad field reported (up to
 * `MAX_BATCH_ISSUES`, the last naming the first event not judged), all or nothing; ids unique
 * per account and source within the batch, as Herald tells events apart everywhere else.
 */
export const decodeBatch = <
  A extends { readonly account: string; readonly source: string; readonly id: string },
>(
  input: unknown,
  decodeOne: (item: unknown, prefix: string) => Decoded<A>,
): Decoded<A[]> => {
  if (!Array.isArray(input))
    return { ok: false, issues: [{ path: '(root)', message: 'must be a JSON array' }] }
  const events: A[] = []
  const issues: FieldIssue[] = []
  const seen = new Set<string>()
  // Room is kept for the issue that says judging stopped.
  const judged = MAX_BATCH_ISSUES - 1
  for (let i = 0; i < input.length; i++) {
    if (issues.length >= judged) {
      const after = input.length - i - 1
      issues.push({
        path: `[${i}]`,
        message: `not judged, nor the ${after} event${after === 1 ? '' : 's'} after it: the batch has ${judged} issues already`,
      })
      break
    }
    const decoded = decodeOne(input[i], `[${i}]`)
    if (!decoded.ok) {
      issues.push(...decoded.issues.slice(0, judged - issues.length))
      continue
    }
    const key = eventKey(decoded.value)
    if (seen.has(key))
      issues.push({ path: `[${i}].id`, message: 'repeats the id of an earlier event in the batch' })
    seen.add(key)
    events.push(decoded.value)
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: events }
}

/** Validates a batch of envelopes. */
export const decodeCloudEventBatch = (input: unknown): Decoded<CloudEvent[]> =>
  decodeBatch(input, decodeCloudEvent)

/**
 * An event kept as the JSON text it was stored as, for whoever sends it whole (the webhook
 * channel splices `text` into its body instead of parsing it and writing it out again), with
 * the few attributes a message needs beside it.
 */
export interface EventText {
  /** Exactly `JSON.stringify(event)`. */
  readonly text: string
  readonly id: string
  readonly type: string
  /** The JSON text of the event's `time`; null when it has none (absent or null). */
  readonly time: string | null
}
