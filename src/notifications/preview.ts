import { type StoredEnvelope, storedEvent } from '../../projections/projector/index.ts'
import { ADMIN_ACCOUNT } from '../access/index.ts'
import { type FieldIssue, ForbiddenError, ValidationError } from '../errors/index.ts'
import { type CloudEvent, decodeEngineEvent, instantOf, NOT_A_TIMESTAMP } from '../events/index.ts'
import { unknownFields } from '../http/body.ts'
import {
  type AnchoreSelectorInput,
  type CompiledPattern,
  checkPatternSize,
  compileAnchoreSelector,
  compilePattern,
  type Explanation,
  explainSelector,
  isInvalidPatternError,
  type Matcher,
} from '../matching/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { unknownEventFields, validateSelectorFields } from './codecs.ts'
import type { Principal, Selector } from './model.ts'

/**
 * What a selector would match and why an event did or did not match one: the read side of
 * the selector API. Deciding is pure (`previewSelector`, `compileSelectorBody`); reading
 * events from the reports warehouse is `createWarehouseEvents`, an adapter over the
 * Warehouse port.
 */

/** A selector body as the selector CRUD takes it, validated and compiled for one caller. */
export interface CompiledSelector {
  readonly selector: AnchoreSelectorInput
  readonly content: CompiledPattern | undefined
  /** The selector and its content as one pattern: what the router evaluates. */
  readonly pattern: CompiledPattern
}

/**
 * Validates a selector body exactly as the selector CRUD does — `scope` and `event` by their
 * codecs, `global` scope for the admin account only, `pattern` by the EventBridge compiler —
 * and compiles it for `principal`'s account. Throws ForbiddenError, or ValidationError whose
 * issues name the bad fields, a bad pattern's under `pattern` (`pattern.data.severity[0].numeric`).
 *
 * @example
 * compileSelectorBody({ scope: 'account', event: { level: '*', type: 'user.*', resource_type: '*' },
 *   pattern: { data: { severity: ['critical'] } } }, { account: 'acme', role: 'read-only' })
 */
/**
 * A selector body's `pattern`, refused as selector creation refuses it (`validation_failed`,
 * each issue under `pattern`), so one bad pattern gets one answer from either route.
 */
const compileContent = (pattern: unknown): CompiledPattern => {
  try {
    const compiled = compilePattern(pattern, { path: 'pattern' })
    // Held to the size limits a new selector is: a preview scans up to a warehouse's worth of
    // events with it, so an oversized one would cost more here than anywhere.
    checkPatternSize(compiled.root, 'pattern')
    return compiled
  } catch (error) {
    if (isInvalidPatternError(error)) throw ValidationError.of('selector', error.issues)
    throw error
  }
}

export const compileSelectorBody = (
  body: Readonly<Record<string, unknown>>,
  principal: Principal,
): CompiledSelector => {
  const fields = validateSelectorFields(body.scope, body.event)
  if (fields.scope === 'global' && (principal.role !== 'admin' || principal.account !== ADMIN_ACCOUNT))
    throw new ForbiddenError('only the admin account may use a selector with global scope')
  const pattern = body.pattern ?? null
  const content = pattern === null ? undefined : compileContent(pattern)
  const selector = { scope: fields.scope, account: principal.account, event: { ...fields.event } }
  return { selector, content, pattern: compileAnchoreSelector(selector, content) }
}

/** A stored selector, compiled as the router compiles it (streams/routing `compileSelector`). */
export const explainStoredSelector = (selector: Selector, event: CloudEvent): Explanation =>
  explainSelector(
    { scope: selector.scope, account: selector.account, event: selector.event },
    selector.pattern === null ? undefined : compilePattern(selector.pattern, { path: 'pattern' }),
    event,
  )

/** A time range of event times, in milliseconds; either end may be open. */
export interface TimeRange {
  /** Inclusive. */
  readonly since?: number
  /** Exclusive. */
  readonly until?: number
}

const timeOf = (value: unknown, path: string, issues: FieldIssue[]): number | undefined => {
  if (value === undefined || value === null) return undefined
  const at = typeof value === 'string' ? instantOf(value) : undefined
  if (at !== undefined) return at
  issues.push({ path, message: NOT_A_TIMESTAMP })
  return undefined
}

export interface PreviewRequest {
  readonly compiled: CompiledSelector
  readonly range: TimeRange
  /** Posted events to try the selector on instead of the warehouse's. */
  readonly sample: readonly CloudEvent[] | undefined
  readonly limit: number
}

export interface PreviewLimits {
  /** Most matches a preview returns (default 50, at most 500 by `limit`). */
  readonly defaultLimit?: number
  readonly maxLimit?: number
  /** Most events a posted sample may hold (default 1000). */
  readonly maxSample?: number
}

const PREVIEW_FIELDS = ['scope', 'event', 'pattern', 'since', 'until', 'limit', 'sample']

/**
 * Reads a preview request body: the selector (as for the selector CRUD) plus `since`, `until`,
 * `limit` and an optional `sample` of CloudEvents. Every bad field is named at once, and so is
 * any field it does not know.
 */
export const previewRequest = (
  body: Readonly<Record<string, unknown>>,
  principal: Principal,
  limits: PreviewLimits = {},
): PreviewRequest => {
  const maxLimit = limits.maxLimit ?? 500
  const maxSample = limits.maxSample ?? 1_000
  const issues: FieldIssue[] = [...unknownFields(body, PREVIEW_FIELDS), ...unknownEventFields(body.event)]
  const since = timeOf(body.since, 'since', issues)
  const until = timeOf(body.until, 'until', issues)
  if (since !== undefined && until !== undefined && !(since < until))
    issues.push({ path: 'until', message: 'must be later than since' })
  let limit = limits.defaultLimit ?? 50
  if (body.limit !== undefined) {
    if (
      typeof body.limit === 'number' &&
      Number.isInteger(body.limit) &&
      body.limit >= 1 &&
      body.limit <= maxLimit
    )
      limit = body.limit
    else issues.push({ path: 'limit', message: `must be a whole number from 1 to ${maxLimit}` })
  }
  let sample: CloudEvent[] | undefined
  if (body.sample !== undefined) {
    if (!Array.isArray(body.sample) || body.sample.length > maxSample)
      issues.push({ path: 'sample', message: `must be an array of at most ${maxSample} CloudEvents` })
    else {
      sample = []
      for (const [i, item] of body.sample.entries()) {
        // The contract events arrive under: a sample the router would refuse is refused, and
        // one it accepts is judged as the router judges it (the catalog's level and resource
        // type filled in where the event leaves them out).
        // It also refuses an event nested too deep to write out again in the answer.
        const decoded = decodeEngineEvent(item, `sample[${i}]`)
        if (!decoded.ok) issues.push(...decoded.issues)
        else sample.push(decoded.value)
      }
    }
  }
  if (issues.length > 0) throw ValidationError.of('selector preview', issues)
  // Last, so that a bad time and a bad pattern are not both reported by different errors in turn.
  const compiled = compileSelectorBody(body, principal)
  return {
    compiled,
    range: { ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }) },
    sample,
    limit,
  }
}

const timestampOf = (event: CloudEvent): number | undefined =>
  event.time === undefined ? undefined : instantOf(event.time)

const inRange = (event: CloudEvent, { since, until }: TimeRange): boolean => {
  if (since === undefined && until === undefined) return true
  const at = timestampOf(event)
  return at !== undefined && (since === undefined || at >= since) && (until === undefined || at < until)
}

/**
 * The events of `events` (newest first; those without `time` last, in their order) within
 * `range` that `pattern` matches, at most `limit`.
 *
 * @example
 * previewSelector(compiled.pattern, sample, {}, 50) // the matching events, newest first
 */
export const previewSelector = (
  pattern: CompiledPattern,
  events: readonly CloudEvent[],
  range: TimeRange,
  limit: number,
): CloudEvent[] => {
  const newestFirst = events
    .map((event, i) => ({ event, i, at: timestampOf(event) ?? Number.NEGATIVE_INFINITY }))
    .sort((a, b) => b.at - a.at || a.i - b.i)
    .map(({ event }) => event)
  return firstMatches(
    pattern,
    newestFirst.filter((event) => inRange(event, range)),
    limit,
  )
}

/**
 * The first `limit` events of `events` that `pattern` matches, in the order given: for the
 * warehouse's rows, already newest first and within the range by the time each was stored
 * (an event sent without `time` has its arrival's).
 */
export const firstMatches = (
  pattern: CompiledPattern,
  events: readonly CloudEvent[],
  limit: number,
): CloudEvent[] => {
  const matched: CloudEvent[] = []
  for (const event of events) {
    if (matched.length >= limit) break
    if (pattern.matches(event)) matched.push(event)
  }
  return matched
}

/** What the warehouse can narrow a scan by without changing the answer: a superset of the matches. */
export interface ScanFilter {
  readonly account?: string
  readonly type?: { readonly kind: 'exact' | 'prefix' | 'suffix'; readonly value: string }
  readonly level?: string
}

const firstMatcher = (pattern: CompiledPattern, key: string): Matcher | undefined => {
  const field = pattern.root.fields.find((f) => f.kind === 'leaf' && f.key === key)
  return field?.kind === 'leaf' && field.matchers.length === 1 ? field.matchers[0] : undefined
}

/**
 * The conditions of an Anchore selector a SQL scan can apply: its account, its level, and its
 * type when that is exact, a prefix or a suffix. Only conditions that every match must meet,
 * so the scan returns a superset of the matches and the pattern decides.
 */
export const scanFilterOf = (compiled: CompiledSelector): ScanFilter => {
  const own = compileAnchoreSelector(compiled.selector)
  const account = firstMatcher(own, 'account')
  const level = firstMatcher(own, 'level')
  const type = firstMatcher(own, 'type')
  return {
    ...(account?.kind === 'exact' && typeof account.value === 'string' ? { account: account.value } : {}),
    ...(level?.kind === 'exact' && typeof level.value === 'string' ? { level: level.value } : {}),
    ...(type?.kind === 'exact' && typeof type.value === 'string'
      ? { type: { kind: 'exact' as const, value: type.value } }
      : type?.kind === 'prefix' || type?.kind === 'suffix'
        ? { type: { kind: type.kind, value: type.value } }
        : {}),
  }
}

/** Reads events back from the reports warehouse's raw `events` table (projections/migrations). */
export interface WarehouseEvents {
  /** Whether the table is there: the projector creates it, and a deployment may run without reports. */
  exists(): Promise<boolean>
  /** Up to `scan` events of the range that pass `filter`, newest first. */
  recent(filter: ScanFilter, range: TimeRange, scan: number): Promise<CloudEvent[]>
  /**
   * The events with `id`, narrowed to `account` and `source` when given: the newest copy of
   * each (account, source)'s, ordered by account and source, at most `max`. Ids are unique per
   * source, so more than one means the id alone does not say which event is meant.
   */
  byId(id: string, narrow: EventNarrowing, max: number): Promise<CloudEvent[]>
}

/** What, besides its id, tells an event apart: its account and its source. */
export interface EventNarrowing {
  readonly account?: string
  readonly source?: string
}

interface EventRow extends StoredEnvelope {
  readonly time_ms: number
}

const COLUMNS = `id, source, type, subject, account, level, resource_type, subtype, attributes,
  toUnixTimestamp64Milli(time) AS time_ms, data`

const toEvent = (row: EventRow): CloudEvent => storedEvent(row, Number(row.time_ms))

/**
 * @example
 * const events = createWarehouseEvents(warehouse)
 * if (await events.exists()) await events.recent({ account: 'acme' }, {}, 5_000)
 */
export const createWarehouseEvents = (warehouse: Warehouse, table = 'events'): WarehouseEvents => ({
  exists: async () => {
    const rows = await warehouse.query<{ n: number }>(
      'SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
      { table },
    )
    return Number(rows[0]?.n ?? 0) > 0
  },
  recent: async (filter, range, scan) => {
    const where: string[] = []
    const params: Record<string, unknown> = { scan }
    if (filter.account !== undefined) {
      where.push('account = {account:String}')
      params.account = filter.account
    }
    if (filter.level !== undefined) {
      where.push('level = {level:String}')
      params.level = filter.level
    }
    if (filter.type !== undefined) {
      where.push(
        filter.type.kind === 'exact'
          ? 'type = {type:String}'
          : filter.type.kind === 'prefix'
            ? 'startsWith(type, {type:String})'
            : 'endsWith(type, {type:String})',
      )
      params.type = filter.type.value
    }
    if (range.since !== undefined) {
      where.push("time >= {since:DateTime64(3, 'UTC')}")
      params.since = new Date(range.since)
    }
    if (range.until !== undefined) {
      where.push("time < {until:DateTime64(3, 'UTC')}")
      params.until = new Date(range.until)
    }
    // FINAL: an event stored twice is one event (the table is a ReplacingMergeTree keyed by
    // source and id, among others); two sources' events with one id and time are two.
    const rows = await warehouse.query<EventRow>(
      `SELECT ${COLUMNS} FROM ${table} FINAL
        ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
        ORDER BY time DESC, id DESC, source DESC
        LIMIT {scan:UInt32}`,
      params,
    )
    return rows.map(toEvent)
  },
  byId: async (id, { account, source }, max) => {
    const rows = await warehouse.query<EventRow>(
      `SELECT ${COLUMNS} FROM ${table} FINAL
        WHERE id = {id:String}${account === undefined ? '' : ' AND account = {account:String}'}${
          source === undefined ? '' : ' AND source = {source:String}'
        }
        ORDER BY account, source, time DESC
        LIMIT 1 BY account, source
        LIMIT {max:UInt32}`,
      {
        id,
        max,
        ...(account === undefined ? {} : { account }),
        ...(source === undefined ? {} : { source }),
      },
    )
    return rows.map(toEvent)
  },
})
