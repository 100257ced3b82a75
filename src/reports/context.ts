import type { Principal } from '../access/index.ts'
import { HeraldError, ValidationError } from '../errors/index.ts'
import { instantOf } from '../events/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { projectionLagSeconds } from './lag.ts'
import { DEFAULT_QUERY_LIMITS } from './limits.ts'

/** What every report resolver gets. Only `principal` and `warehouse` are required. */
export interface ReportContext {
  readonly principal: Principal
  readonly warehouse: Warehouse
  /** Milliseconds since the epoch; "now" for ages, read once per context (`nowOf`). Default `Date.now`. */
  readonly clock?: () => number
  /**
   * The projection lag in seconds. Default: read from `projection_progress`; a composition
   * root that knows the log's head can give a sharper one.
   */
  readonly lag?: () => Promise<number>
  /** Most bytes of raw event data the request's answer may carry. Default `DEFAULT_QUERY_LIMITS.maxDataBytes`. */
  readonly maxDataBytes?: number
}

const lags = new WeakMap<ReportContext, Promise<number>>()

/** The lag, read once per request however many roots ask for it. */
export const lagOf = (context: ReportContext): Promise<number> => {
  let lag = lags.get(context)
  if (lag === undefined) {
    lag = context.lag?.() ?? projectionLagSeconds(context.warehouse)
    lags.set(context, lag)
  }
  return lag
}

const dataBytes = new WeakMap<ReportContext, number>()

const grouped = (n: number) => n.toLocaleString('en-US')

/**
 * Counts `bytes` of raw event data towards what the request's answer may carry
 * (`maxDataBytes`, over every root that answers data), before they are read: past it, the page
 * is refused with a `response_too_large` error naming the limit and what to ask for instead.
 * Roots run concurrently; each takes its share at once, so together they never pass the limit.
 */
export const takeDataBytes = (context: ReportContext, bytes: number): void => {
  const limit = context.maxDataBytes ?? DEFAULT_QUERY_LIMITS.maxDataBytes
  const taken = dataBytes.get(context) ?? 0
  if (taken + bytes > limit)
    throw new HeraldError(
      'response_too_large',
      `this page of events holds ${grouped(bytes)} bytes of data${taken === 0 ? '' : ` and the rest of the query ${grouped(taken)}`}; one answer may carry at most ${grouped(limit)} bytes of event data: lower the limit, select data in fewer aliases, or leave data out`,
      { context: { bytes, taken, limit } },
    )
  dataBytes.set(context, taken + bytes)
}

const nows = new WeakMap<ReportContext, number>()

/**
 * "Now" for the request: the clock read once, however many roots ask (every alias of
 * `findingAging` and `slaBreaches` without `asOf` answers as of the same instant).
 */
export const nowOf = (context: ReportContext): number => {
  let now = nows.get(context)
  if (now === undefined) {
    now = (context.clock ?? Date.now)()
    nows.set(context, now)
  }
  return now
}

/** What a time bound finer than the stored precision is told, wherever one is taken. */
export const FINER_THAN_STORED = 'must not be finer than a millisecond, the precision times are stored with'

/**
 * Whether an RFC 3339 timestamp names an instant within a millisecond (`.2501`, not `.2500`).
 * Every time the reports compare with is stored to the millisecond (`DateTime64(3)`, the event
 * times already cut to it when stored), so such a bound has no exact answer: cut to its
 * millisecond, a start admits what is before it; rounded up, an event sent at that very
 * instant (stored at its millisecond) drops out. It is refused instead.
 */
export const isFinerThanStored = (value: string): boolean => /\.\d{3}\d*[1-9]/.test(value)

/**
 * An RFC 3339 instant as milliseconds, or a validation error naming the argument. Its calendar
 * rules and its offset are required: `Date.parse` alone takes 2026-02-30 as 2 March, and a time
 * without an offset in the server's zone. So is a precision the stored times have
 * (`isFinerThanStored`).
 */
export const parseInstant = (value: string, path: string): number => {
  const ms = instantOf(value)
  if (ms === undefined) {
    throw new ValidationError(`${path} is not an RFC 3339 timestamp`, [{ path, message: 'must be RFC 3339' }])
  }
  if (isFinerThanStored(value)) {
    throw new ValidationError(`${path} is finer than a millisecond, the precision times are stored with`, [
      { path, message: FINER_THAN_STORED },
    ])
  }
  return ms
}

export const optionalInstant = (value: string | null | undefined, path: string): number | undefined =>
  value === null || value === undefined ? undefined : parseInstant(value, path)

// The fields of a filter (nested ones too, `filter.detected.start`) that are '' or [].
const emptyFields = (value: unknown, path: string): string[] => {
  if (value === '' || (Array.isArray(value) && value.length === 0)) return [path]
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return []
  return Object.entries(value).flatMap(([key, field]) => emptyFields(field, `${path}.${key}`))
}

/**
 * Refuses a filter holding an empty string or list, naming every such field: no event has the
 * type "", no finding the severity of an empty list, so `type: ""` asks for nothing a caller
 * can mean, and it must not be taken as "any type" (as a test for truthiness took it) nor
 * quietly answered with nothing.
 */
export const refuseEmpty = (filter: object | null | undefined, path = 'filter'): void => {
  const empty = filter === null || filter === undefined ? [] : emptyFields(filter, path)
  if (empty.length > 0)
    throw new ValidationError(
      `${empty.join(', ')} must not be empty`,
      empty.map((field) => ({ path: field, message: 'must not be empty' })),
    )
}

export interface TimeWindow {
  readonly start?: string | null
  readonly end?: string | null
}

export const windowOf = (window: TimeWindow | null | undefined, path: string) => {
  const from = optionalInstant(window?.start, `${path}.start`)
  const to = optionalInstant(window?.end, `${path}.end`)
  if (from !== undefined && to !== undefined && from > to) {
    throw new ValidationError(`${path}.start is after ${path}.end`, [
      { path: `${path}.start`, message: 'must not be after end' },
    ])
  }
  return { from, to }
}
