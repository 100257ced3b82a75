import type { StoredEnvelope } from '../../projections/projector/index.ts'
import type { Principal } from '../access/index.ts'
import { ForbiddenError, ValidationError } from '../errors/index.ts'
import { findingAging, slaBreaches } from './aging.ts'
import type { ReportContext } from './context.ts'
import { vulnerabilityDiff } from './diff.ts'
import { metricData, metrics } from './metrics/index.ts'
import { policyEvaluationsByTag } from './policy.ts'
import {
  artifactsByVulnerability,
  imagesByVulnerability,
  tagsByVulnerability,
  vulnerabilityBreakdown,
} from './vulnerabilities.ts'

export type ReportPrincipal = Principal

interface EventFilter {
  readonly account?: string | null
  readonly type?: string | null
  readonly id?: string | null
  readonly start?: string | null
  readonly end?: string | null
}

interface Cursor {
  readonly time: string
  readonly id: string
}

const MAX_LIMIT = 1000

const encodeCursor = (cursor: Cursor): string => Buffer.from(JSON.stringify(cursor)).toString('base64url')

const decodeCursor = (token: string): Cursor => {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>
    if (typeof parsed.time === 'string' && typeof parsed.id === 'string')
      return { time: parsed.time, id: parsed.id }
  } catch {
    // reported below as one validation error whatever the cause
  }
  throw new ValidationError('nextToken is not a token this API issued', [
    { path: 'nextToken', message: 'not a token this API issued' },
  ])
}

const toMs = (value: string, path: string): number => {
  const ms = Date.parse(value)
  if (Number.isNaN(ms))
    throw new ValidationError(`${path} is not a timestamp`, [{ path, message: 'must be RFC 3339' }])
  return ms
}

/** Scopes every query to the caller's account; only an admin may name another. */
const scopeAccount = (principal: Principal, requested: string | null | undefined): string => {
  if (requested === undefined || requested === null || requested === principal.account)
    return principal.account
  if (principal.role !== 'admin') throw new ForbiddenError('only an admin may query another account')
  return requested
}

interface EventRecord extends StoredEnvelope {
  readonly time_text: string
}

export const events = async (
  args: { filter?: EventFilter | null; limit?: number | null; nextToken?: string | null },
  context: ReportContext,
) => {
  const limit = args.limit ?? 100
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new ValidationError(`limit must be between 1 and ${MAX_LIMIT}`, [
      { path: 'limit', message: `must be between 1 and ${MAX_LIMIT}` },
    ])
  }
  const filter = args.filter ?? {}
  const conditions = ['account = {account:String}']
  const params: Record<string, unknown> = {
    account: scopeAccount(context.principal, filter.account),
    limit: limit + 1,
  }
  if (filter.type) {
    conditions.push('type = {type:String}')
    params.type = filter.type
  }
  if (filter.id) {
    conditions.push('id = {id:String}')
    params.id = filter.id
  }
  if (filter.start) {
    conditions.push('time >= fromUnixTimestamp64Milli({start:Int64})')
    params.start = toMs(filter.start, 'filter.start')
  }
  if (filter.end) {
    conditions.push('time < fromUnixTimestamp64Milli({end:Int64})')
    params.end = toMs(filter.end, 'filter.end')
  }
  if (args.nextToken) {
    const cursor = decodeCursor(args.nextToken)
    conditions.push("(time, id) < (toDateTime64({cursorTime:String}, 3, 'UTC'), {cursorId:String})")
    params.cursorTime = cursor.time
    params.cursorId = cursor.id
  }
  // An event stored twice (a replay not yet collapsed by ReplacingMergeTree, or re-sent at
  // another time under the same id) is shown once (`LIMIT 1 BY id`).
  const rows = await context.warehouse.query<EventRecord>(
    `SELECT id, source, type, subject, account, level, resource_type, subtype,
            toString(time) AS time_text, data
       FROM events
      WHERE ${conditions.join(' AND ')}
      ORDER BY time DESC, id DESC
      LIMIT 1 BY id
      LIMIT {limit:UInt32}`,
    params,
  )
  const page = rows.slice(0, limit)
  const last = page.at(-1)
  return {
    pageInfo: {
      nextToken:
        rows.length > limit && last !== undefined
          ? encodeCursor({ time: last.time_text, id: last.id })
          : null,
      count: page.length,
    },
    results: page.map((row) => ({
      id: row.id,
      source: row.source,
      type: row.type,
      subject: row.subject,
      account: row.account,
      level: row.level,
      resourceType: row.resource_type,
      subtype: row.subtype,
      time: `${row.time_text.replace(' ', 'T')}Z`,
      data: row.data,
    })),
  }
}

/** Every root of `reportSchema`: `(args, context)` functions, as graphql-js calls them. */
export const rootValue = {
  events,
  tagsByVulnerability,
  imagesByVulnerability,
  artifactsByVulnerability,
  policyEvaluationsByTag,
  metrics,
  metricData,
  vulnerabilityDiff,
  findingAging,
  slaBreaches,
  vulnerabilityBreakdown,
}
