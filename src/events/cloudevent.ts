import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import type { FieldIssue } from '../errors/index.ts'
import { isTimestamp } from './catalog/formats.ts'
import { compileGuard } from './io-ts-guard.ts'
import { toFieldIssues, withMessage } from './io-ts-issues.ts'

const NonEmptyString = withMessage(
  t.refinement(t.string, (s) => s.trim().length > 0, 'NonEmptyString'),
  (u) => (typeof u === 'string' ? 'must not be empty' : 'must be a non-empty string'),
)

// RFC 3339 as CloudEvents requires, with its calendar rules: the same check as the schema's
// `date-time` format, so the codec and the wire contract accept the same instants.
const Timestamp = withMessage(
  t.refinement(t.string, isTimestamp, 'Timestamp'),
  () => 'must be an RFC 3339 timestamp such as 2026-11-22T10:00:00Z',
)

export const Level = withMessage(
  t.keyof({ info: null, warning: null, error: null }),
  () => 'must be one of info, warning, error',
  'Level',
)
export type Level = t.TypeOf<typeof Level>

const SpecVersion = withMessage(t.literal('1.0'), () => 'must be "1.0"', 'SpecVersion')

/**
 * The CloudEvents 1.0 envelope with Herald's extensions. `account` (the tenant) is required:
 * without it an event cannot be routed or reported. `id` is the idempotency key downstream.
 */
export const CloudEvent = t.intersection([
  t.type({
    specversion: SpecVersion,
    id: NonEmptyString,
    source: NonEmptyString,
    type: NonEmptyString,
    account: NonEmptyString,
  }),
  t.partial({
    subject: t.string,
    time: Timestamp,
    datacontenttype: t.string,
    dataschema: t.string,
    data: t.unknown,
    level: Level,
    resourcetype: t.string,
    subtype: t.string,
  }),
])
export type CloudEvent = t.TypeOf<typeof CloudEvent>

const MAX_ID_LENGTH = 256

const isEnvelope = compileGuard(CloudEvent)

/**
 * Whether `input` is a valid envelope, without allocating: what `decodeCloudEvent` accepts.
 * An id of more than 256 UTF-16 units is left to `decodeCloudEvent`, which counts code points.
 */
export const isCloudEvent = (input: unknown): input is CloudEvent =>
  isEnvelope(input) &&
  (input as CloudEvent).id.length <= MAX_ID_LENGTH &&
  !('data_base64' in (input as object))

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
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: event }
}

/**
 * Validates a batch with `decodeOne`: every event, every bad field reported, all or nothing;
 * ids unique per source within the batch.
 */
export const decodeBatch = <A extends { readonly source: string; readonly id: string }>(
  input: unknown,
  decodeOne: (item: unknown, prefix: string) => Decoded<A>,
): Decoded<A[]> => {
  if (!Array.isArray(input))
    return { ok: false, issues: [{ path: '(root)', message: 'must be a JSON array' }] }
  const events: A[] = []
  const issues: FieldIssue[] = []
  const seen = new Set<string>()
  input.forEach((item, i) => {
    const decoded = decodeOne(item, `[${i}]`)
    if (!decoded.ok) {
      issues.push(...decoded.issues)
      return
    }
    const key = `${decoded.value.source}\u0000${decoded.value.id}`
    if (seen.has(key))
      issues.push({ path: `[${i}].id`, message: 'repeats the id of an earlier event in the batch' })
    seen.add(key)
    events.push(decoded.value)
  })
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: events }
}

/** Validates a batch of envelopes. */
export const decodeCloudEventBatch = (input: unknown): Decoded<CloudEvent[]> =>
  decodeBatch(input, decodeCloudEvent)
