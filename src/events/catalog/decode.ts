import { isLeft } from 'fp-ts/lib/Either.js'
import type { FieldIssue } from '../../errors/index.ts'
import { type CloudEvent, type Decoded, decodeCloudEvent, isCloudEvent, type Level } from '../cloudevent.ts'
import { MAX_EVENT_DEPTH, tooDeepMember } from '../depth.ts'
import { compileGuard, type Guard } from '../io-ts-guard.ts'
import { toFieldIssues } from '../io-ts-issues.ts'
import {
  type EventData,
  type EventType,
  type EventTypeEntry,
  eventTypes,
  lookupEventType,
} from './catalog.ts'

type Envelope = Omit<CloudEvent, 'type' | 'data' | 'level' | 'resourcetype'>

/**
 * An event of the catalog: the envelope with its `data` decoded by type. `level` and
 * `resourcetype` are always present (the catalog's defaults fill them when the producer left
 * them out), so selectors on them never miss an event.
 */
export type EngineEvent = {
  [K in EventType]: Envelope & {
    readonly type: K
    readonly data: EventData<K>
    readonly level: Level
    readonly resourcetype: string
  }
}[EventType]

const UNKNOWN_TYPE = 'unknown event type'

/** Whether an issue is the one `decodeEngineEvent` reports for a type the catalog lacks. */
export const isUnknownTypeIssue = (issue: FieldIssue): boolean =>
  (issue.path === 'type' || issue.path.endsWith('.type')) && issue.message.startsWith(UNKNOWN_TYPE)

const join = (prefix: string, key: string): string => (prefix === '' ? key : `${prefix}.${key}`)

// Each type's data codec compiled once, at module load.
const dataGuards: ReadonlyMap<string, Guard> = new Map(
  eventTypes.map((e) => [e.type, compileGuard(e.dataCodec)]),
)
const dataGuardOf = (entry: EventTypeEntry): Guard => dataGuards.get(entry.type) as Guard

// The catalog's entries by the length of their type, for the hot path. A decoded event's type
// is a fresh string whose hash V8 has not computed: a Map lookup pays for hashing it, while
// comparing it with the few types of its length (five at most) is a length check and one
// content comparison. `lookupEventType` answers the same.
const byLength: (readonly EventTypeEntry[] | undefined)[] = []
for (const entry of eventTypes) byLength[entry.type.length] = [...(byLength[entry.type.length] ?? []), entry]

const entryOf = (type: string): EventTypeEntry | undefined => {
  const candidates = byLength[type.length]
  if (candidates === undefined) return undefined
  for (let i = 0; i < candidates.length; i++) {
    const entry = candidates[i] as EventTypeEntry
    if (entry.type === type) return entry
  }
  return undefined
}

const hasSubtype = (entry: EventTypeEntry, subtype: string | undefined): boolean =>
  entry.subtypes === undefined || (subtype !== undefined && entry.subtypes.some((s) => s.subtype === subtype))

const checkSubtype = (entry: EventTypeEntry, subtype: string | undefined, prefix: string): FieldIssue[] => {
  if (entry.subtypes === undefined || hasSubtype(entry, subtype)) return []
  const names = entry.subtypes.map((s) => s.subtype).join(', ')
  return [
    {
      path: join(prefix, 'subtype'),
      message:
        subtype === undefined
          ? `is required for ${entry.type}: one of ${names}`
          : `must be one of ${names} for ${entry.type}`,
    },
  ]
}

const checkData = (entry: EventTypeEntry, data: unknown, prefix: string): FieldIssue[] => {
  // The guard walks the value without allocating; the full decode runs only to explain a failure.
  if (dataGuardOf(entry)(data)) return []
  const result = entry.dataCodec.decode(data)
  return isLeft(result) ? toFieldIssues(result.left, join(prefix, 'data')) : []
}

const withDefaults = (event: CloudEvent, entry: EventTypeEntry): EngineEvent => {
  if (event.level !== undefined && event.resourcetype !== undefined) return event as EngineEvent
  const level = event.level ?? entry.subtypes?.find((s) => s.subtype === event.subtype)?.level ?? entry.level
  return { ...event, level, resourcetype: event.resourcetype ?? entry.resourceType } as EngineEvent
}

/**
 * Validates one engine event against the whole contract: the CloudEvents envelope, then the
 * type's `data` codec (and subtype, where the type has subtypes). A type the catalog does not
 * know fails with `type: unknown event type "x"`, so a consumer can dead-letter it. Every bad
 * field is reported at once; `prefix` names the event's place in a batch (`[3]`).
 *
 * @example
 * const decoded = decodeEngineEvent(JSON.parse(text))
 * if (!decoded.ok) return deadLetter(decoded.issues)
 * if (decoded.value.type === 'herald.report.image.analyzed') project(decoded.value.data.findings)
 */
export const decodeEngineEvent = (input: unknown, prefix = ''): Decoded<EngineEvent> => {
  // First: the checks below recurse, and so does everything after them.
  const deep = tooDeepMember(input)
  if (deep !== undefined)
    return {
      ok: false,
      issues: [{ path: join(prefix, deep), message: `is nested more than ${MAX_EVENT_DEPTH} levels deep` }],
    }
  // A valid event of a known type, the common case, passes compiled checks alone.
  if (isCloudEvent(input)) {
    const entry = entryOf(input.type)
    if (entry !== undefined && hasSubtype(entry, input.subtype) && dataGuardOf(entry)(input.data))
      return { ok: true, value: withDefaults(input, entry) }
  }
  const envelope = decodeCloudEvent(input, prefix)
  if (envelope.ok) {
    const event = envelope.value
    const entry = lookupEventType(event.type)
    if (entry === undefined) {
      return {
        ok: false,
        issues: [{ path: join(prefix, 'type'), message: `${UNKNOWN_TYPE} "${event.type}"` }],
      }
    }
    const issues = checkSubtype(entry, event.subtype, prefix).concat(checkData(entry, event.data, prefix))
    return issues.length > 0 ? { ok: false, issues } : { ok: true, value: withDefaults(event, entry) }
  }
  // The envelope is bad; still judge `data` when the type is known, so one answer names every
  // bad field of the event.
  const record = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : undefined
  const type = record?.type
  if (typeof type !== 'string' || type.trim() === '') return envelope
  const entry = lookupEventType(type)
  if (entry === undefined) {
    return {
      ok: false,
      issues: [...envelope.issues, { path: join(prefix, 'type'), message: `${UNKNOWN_TYPE} "${type}"` }],
    }
  }
  const subtype = typeof record?.subtype === 'string' ? record.subtype : undefined
  const reported = new Set(envelope.issues.map((i) => i.path))
  const more = checkSubtype(entry, subtype, prefix)
    .concat(checkData(entry, record?.data, prefix))
    .filter((i) => !reported.has(i.path))
  return { ok: false, issues: [...envelope.issues, ...more] }
}
