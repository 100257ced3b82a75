import { createHash } from 'node:crypto'
import {
  isNativeTime,
  type NativeBlockType,
  type NativeBlockWriter,
} from '../../src/adapters/clickhouse-warehouse/native-format.ts'
import { type CloudEvent, instantOf } from '../../src/events/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import { MS_BEFORE_1970 } from '../migrations/0009-policy-latest-by-evaluation.ts'

/** The envelope columns of an `events` row, as a query reads them back. */
export interface StoredEnvelope {
  readonly id: string
  readonly source: string
  readonly type: string
  readonly subject: string
  readonly account: string
  readonly level: string
  readonly resource_type: string
  readonly subtype: string
  readonly data: string
  /** The other attributes as a JSON object (`attributesOf`); absent or `{}`: none. */
  readonly attributes?: string
}

/** A row of the raw `events` table: the replay and as-of source of every report. */
export interface EventRow extends StoredEnvelope {
  readonly attributes: string
  readonly time: string
  readonly ingested_at: string
  readonly log_topic: string
  readonly log_partition: number
  readonly log_offset: number
}

// Rows repeat a few instants (each finding of a report carries its event's; each event row its
// own and the batch's ingestion time), so the last two answers are kept.
let lastMs = Number.NaN
let lastText = ''
let previousMs = Number.NaN
let previousText = ''

const DAY_MS = 86_400_000
// `Date#toISOString` costs more than a microsecond; most instants fall on a day just formatted.
let dayStart = Number.NaN
let dayText = ''

const two = (n: number): string => (n < 10 ? `0${n}` : `${n}`)

/** `toISOString` without its `T` and `Z`; throws the same RangeError for an invalid instant. */
const formatTime = (ms: number): string => {
  if (!(Math.abs(ms) <= 8.64e15)) return new Date(ms).toISOString()
  const whole = Math.trunc(ms)
  const day = Math.floor(whole / DAY_MS) * DAY_MS
  if (day !== dayStart) {
    const iso = new Date(day).toISOString()
    dayText = iso.slice(0, iso.length - 'T00:00:00.000Z'.length)
    dayStart = day
  }
  const rest = whole - day
  const milli = rest % 1000
  const seconds = Math.floor(rest / 1000)
  return `${dayText} ${two(Math.floor(seconds / 3600))}:${two(Math.floor(seconds / 60) % 60)}:${two(seconds % 60)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}`
}

/** 2299-12-31 23:59:59.999 UTC: the last instant `storedInstant` keeps. */
const LATEST_STORED_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999)

/**
 * An instant as a `DateTime64(3, 'UTC')` column holds it on every ClickHouse Herald runs on:
 * brought within 1900-01-01 to 2299-12-31, the range older ClickHouse releases clamp a value
 * to as they store it. 26.7 (chDB's) holds years 0 to 9999 but reads year 0 back as the
 * current year, and none parses a year past 9999 (where an offset carries
 * `9999-12-31T23:30:00-01:00`), which failed the insert of the batch at every try. The
 * projector brings every instant it compares or writes within the range here, so that a period
 * it keeps in memory (`state-cache.ts`) is the one the warehouse gives back after a restart,
 * and a rebuild folds what the live projector did: before 1900 all count as 1900, after 2299 as
 * its last instant. NaN stays NaN.
 */
export const storedInstant = (ms: number): number => Math.min(Math.max(ms, -MS_BEFORE_1970), LATEST_STORED_MS)

/**
 * ClickHouse reads `YYYY-MM-DD hh:mm:ss.sss` as UTC in DateTime64(3, 'UTC') columns; the
 * instant is `storedInstant`'s, so the text is what the column gives back.
 */
export const toClickHouseTime = (instant: number): string => {
  const ms = storedInstant(instant)
  if (ms === lastMs) return lastText
  if (ms !== previousMs) {
    previousText = formatTime(ms)
    previousMs = ms
  }
  // Swap, so the answer just given is the one checked first next time.
  const swappedMs = lastMs
  const swappedText = lastText
  lastMs = previousMs
  lastText = previousText
  previousMs = swappedMs
  previousText = swappedText
  return lastText
}

/** ClickHouse's `DateTime64(3, 'UTC')` text as RFC 3339. */
export const rfc3339 = (text: string): string => `${text.replace(' ', 'T')}Z`

/** The inverse of `toClickHouseTime`, for `DateTime64(3, 'UTC')` values read back as text. */
export const fromClickHouseTime = (text: string): number => Date.parse(rfc3339(text))

// The attributes the `events` columns hold; `time` is stored even when the event had none.
const COLUMN_ATTRIBUTES = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'account',
  'subject',
  'level',
  'resourcetype',
  'subtype',
  'time',
  'data',
])

/** `Date.prototype.toISOString`'s form, which the `time` column gives back exactly within its range. */
const CANONICAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

/** Whether the `time` column gives an event's time back as it was sent. */
const storedAsSent = (time: string): boolean => CANONICAL_TIME.test(time) && time >= '1900' && time < '2300'

/**
 * The attributes of an event the columns do not hold, as a JSON object: `datacontenttype`,
 * `dataschema`, extension attributes, `time: null` when the event carried no time (the `time`
 * column then holds its log append time), and `time` as sent when the column cannot give it
 * back as it was written (no milliseconds, an offset, more digits, a year before 1900 or after
 * 2299, which it holds as `storedInstant` brings it within range): selectors match `time` as
 * a string, so explain and preview must judge the string the router judged. `{}` for none, the
 * common case.
 */
export const attributesOf = (event: CloudEvent): string => {
  let other: Record<string, unknown> | undefined
  for (const key in event) {
    if (COLUMN_ATTRIBUTES.has(key)) continue
    other ??= {}
    other[key] = (event as Record<string, unknown>)[key]
  }
  if (event.time === undefined || !storedAsSent(event.time)) {
    other ??= {}
    other.time = event.time ?? null
  }
  return other === undefined ? '{}' : JSON.stringify(other)
}

/**
 * A timestamp of an event as ms, as the tables store it (`storedInstant`): RFC 3339 as the
 * catalog takes it, a leap second (`23:59:60Z`) the instant after :59 (`instantOf`), which
 * `Date.parse` refuses.
 */
export const instantOfTime = (time: string): number => storedInstant(instantOf(time) ?? Date.parse(time))

/** An event's time as ms, or its log message's when it carries none, as the tables store it. */
export const eventTimeOf = (
  event: Pick<CloudEvent, 'time'>,
  message: Pick<LogMessage, 'timestamp'>,
): number => (event.time === undefined ? storedInstant(message.timestamp) : instantOfTime(event.time))

/**
 * Builds the row for one event. An event without `time` is placed at its log append time, so
 * time-bounded queries still see it.
 */
export const toEventRow = (event: CloudEvent, message: LogMessage, ingestedAt: number): EventRow => ({
  id: event.id,
  source: event.source,
  type: event.type,
  subject: event.subject ?? '',
  account: event.account,
  level: event.level ?? 'info',
  resource_type: event.resourcetype ?? '',
  subtype: event.subtype ?? '',
  time: toClickHouseTime(eventTimeOf(event, message)),
  data: JSON.stringify(event.data ?? null),
  attributes: attributesOf(event),
  ingested_at: toClickHouseTime(ingestedAt),
  log_topic: message.topic,
  log_partition: message.partition,
  log_offset: message.offset,
})

/** The `events` columns as `appendEventRow` writes them, with the type of each in its block. */
export const EVENT_COLUMNS: readonly (readonly [keyof EventRow, NativeBlockType])[] = [
  ['id', 'String'],
  ['source', 'String'],
  ['type', 'String'],
  ['subject', 'String'],
  ['account', 'String'],
  ['level', 'String'],
  ['resource_type', 'String'],
  ['subtype', 'String'],
  ['time', "DateTime64(3, 'UTC')"],
  ['data', 'String'],
  ['attributes', 'String'],
  ['ingested_at', "DateTime64(3, 'UTC')"],
  ['log_topic', 'String'],
  ['log_partition', 'UInt32'],
  ['log_offset', 'UInt64'],
]

const UINT32_MAX = 0xffffffff

/**
 * Writes the `events` row of one event (in `EVENT_COLUMNS` order) into a Native block: the
 * values `toEventRow` gives, its times as the instants their text names. No row object is
 * made, and the event's data JSON is dead once written. Throws as `toEventRow` does (an invalid
 * time, data nested deeper than JSON serialisation goes), writing nothing; returns false, also
 * writing nothing, for a row the block cannot hold as such (a time before 1970 or after 2105,
 * a position out of range), which the caller then stores as rows.
 */
export const appendEventRow = (
  block: NativeBlockWriter,
  event: CloudEvent,
  message: LogMessage,
  ingestedAt: number,
): boolean => {
  const time = eventTimeOf(event, message)
  // As in toClickHouseTime: an instant a Date cannot hold is Date's own RangeError.
  if (!(Math.abs(time) <= 8.64e15 && Math.abs(ingestedAt) <= 8.64e15))
    throw new RangeError('Invalid time value')
  const data = JSON.stringify(event.data ?? null)
  const attributes = attributesOf(event)
  const at = Math.trunc(time)
  const ingested = Math.trunc(ingestedAt)
  if (
    !isNativeTime(at) ||
    !isNativeTime(ingested) ||
    !(Number.isInteger(message.partition) && message.partition >= 0 && message.partition <= UINT32_MAX) ||
    !(Number.isSafeInteger(message.offset) && message.offset >= 0)
  ) {
    return false
  }
  block.string(event.id)
  block.string(event.source)
  block.string(event.type)
  block.string(event.subject ?? '')
  block.string(event.account)
  block.string(event.level ?? 'info')
  block.string(event.resourcetype ?? '')
  block.string(event.subtype ?? '')
  block.time(at)
  block.string(data)
  block.string(attributes)
  block.time(ingested)
  block.string(message.topic)
  block.uint(message.partition)
  block.uint(message.offset)
  return true
}

/**
 * The event a row of `events` was made from, `toEventRow` undone: an empty column is an
 * attribute the event did not carry, `null` data no data, and the other attributes come from
 * `attributes` (a row stored before that column holds none). Data that is not JSON (never
 * written by `toEventRow`) comes back as its text.
 */
export const storedEvent = (row: StoredEnvelope, timeMs: number): CloudEvent => {
  let data: unknown
  try {
    data = JSON.parse(row.data)
  } catch {
    data = row.data
  }
  const { time, ...other } = parseAttributes(row.attributes)
  return {
    specversion: '1.0',
    id: row.id,
    source: row.source,
    type: row.type,
    account: row.account,
    ...(time === null ? {} : { time: typeof time === 'string' ? time : new Date(timeMs).toISOString() }),
    ...(data === null ? {} : { data }),
    ...(row.subject === '' ? {} : { subject: row.subject }),
    ...(row.level === '' ? {} : { level: row.level as NonNullable<CloudEvent['level']> }),
    ...(row.resource_type === '' ? {} : { resourcetype: row.resource_type }),
    ...(row.subtype === '' ? {} : { subtype: row.subtype }),
    ...other,
  }
}

const parseAttributes = (text: string | undefined): Record<string, unknown> => {
  if (text === undefined || text === '' || text === '{}') return {}
  try {
    const parsed = JSON.parse(text) as unknown
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {}
  } catch {
    return {}
  }
}

/**
 * Same batch, same token: ClickHouse drops a replayed insert of a batch that was inserted but
 * whose offsets were not committed before a crash. The ids' digest keeps a log that was reset
 * (offsets counting from 0 again, other events) from having its new batches taken for old ones.
 */
export const deduplicationToken = (
  topic: string,
  partition: number,
  first: number,
  last: number,
  ids: readonly string[] = [],
): string => {
  const positions = `${topic}/${partition}/${first}-${last}`
  if (ids.length === 0) return positions
  const digest = createHash('sha256')
  for (const id of ids) digest.update(id).update('\u0000')
  return `${positions}/${digest.digest('base64url').slice(0, 16)}`
}
