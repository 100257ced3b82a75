import { WarehouseError } from '../../errors/index.ts'
import type { QueryParams } from '../../ports/warehouse.ts'

/**
 * Rewrites query parameters so both transports send the engine the same text.
 *
 * Over HTTP, `@clickhouse/client` formats a `Date` as Unix seconds with milliseconds
 * (`1704164645.678`); chDB's binder formats it as `'YYYY-MM-DD HH:MM:SS'` and drops the
 * milliseconds, which would make `asOf` queries lossy on the embedded engine only. Integers
 * beyond 2^53 have already lost bits before they reach us, and NaN/Infinity are refused by
 * chDB but sent by the HTTP client, so both are rejected here on every transport.
 *
 * @example
 * normaliseParams({ at: new Date('2024-01-02T03:04:05.678Z') }) // { at: '1704164645.678' }
 */
export const normaliseParams = (params: QueryParams): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(params)) {
    out[name] = value instanceof Date ? unixSeconds(value, name) : normaliseNested(value, name)
  }
  return out
}

/** The HTTP client's own top-level `Date` text, padded so the engine reads it as a timestamp. */
const unixSeconds = (date: Date, name: string): string => {
  const ms = date.getTime()
  if (Number.isNaN(ms)) throw badParam(name, 'is an invalid Date')
  // Before 1970 the padded form would put zeros in front of the minus sign.
  if (ms < 0) return String(ms / 1000)
  const seconds = Math.floor(ms / 1000)
    .toString()
    .padStart(10, '0')
  const millis = ms % 1000
  return millis === 0 ? seconds : `${seconds}.${millis.toString().padStart(3, '0')}`
}

// Inside arrays and maps a string would be quoted, so a nested Date becomes a number, which
// both transports print unquoted as the HTTP client prints its timestamps.
const normaliseNested = (value: unknown, name: string): unknown => {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badParam(name, `is ${value}; pass it as a string`)
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw badParam(name, `is an integer beyond 2^53 (${value}); pass a bigint or a string`)
    }
    return value
  }
  if (value instanceof Date) {
    const ms = value.getTime()
    if (Number.isNaN(ms)) throw badParam(name, 'holds an invalid Date')
    return ms / 1000
  }
  if (Array.isArray(value)) return value.map((v) => normaliseNested(v, name))
  if (value instanceof Map) {
    return new Map([...value].map(([k, v]) => [normaliseNested(k, name), normaliseNested(v, name)]))
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normaliseNested(v, name)]))
  }
  return value
}

const badParam = (name: string, problem: string): WarehouseError =>
  new WarehouseError(`query parameter ${name} ${problem}`, { context: { param: name } })
