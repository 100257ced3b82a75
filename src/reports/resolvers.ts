import type { StoredEnvelope } from '../../projections/projector/index.ts'
import type { Principal } from '../access/index.ts'
import { ForbiddenError } from '../errors/index.ts'
import { findingAging, slaBreaches } from './aging.ts'
import { type ReportContext, windowOf } from './context.ts'
import { vulnerabilityDiff } from './diff.ts'
import { metricData, metrics } from './metrics/index.ts'
import { checkLimit, createPaging } from './paging.ts'
import { policyEvaluationsByTag } from './policy.ts'
import { checkNamedAccount } from './scope.ts'
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

/** An `events` row's time (`toString` of a DateTime64(3, 'UTC')) as milliseconds. */
const rowMs = (timeText: string): number => Date.parse(`${timeText.replace(' ', 'T')}Z`)

/** Scopes every query to the caller's account; only an admin may name another. */
const scopeAccount = (principal: Principal, requested: string | null | undefined): string => {
  if (requested === undefined || requested === null || requested === principal.account)
    return principal.account
  checkNamedAccount(requested)
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
  const limit = checkLimit(args.limit)
  const filter = args.filter ?? {}
  const account = scopeAccount(context.principal, filter.account)
  const conditions = ['account = {account:String}']
  const params: Record<string, unknown> = { account, limit: limit + 1 }
  if (filter.type) {
    conditions.push('type = {type:String}')
    params.type = filter.type
  }
  if (filter.id) {
    conditions.push('id = {id:String}')
    params.id = filter.id
  }
  // RFC 3339 each, and the start not after the end.
  const window = windowOf(filter, 'filter')
  if (window.from !== undefined) {
    conditions.push('time >= fromUnixTimestamp64Milli({start:Int64})')
    params.start = window.from
  }
  if (window.to !== undefined) {
    conditions.push('time < fromUnixTimestamp64Milli({end:Int64})')
    params.end = window.to
  }
  const paging = createPaging('events', {
    account,
    type: filter.type,
    id: filter.id,
    start: filter.start,
    end: filter.end,
  })
  const after = paging.after(args.nextToken, ['integer', 'string', 'string'])
  if (after !== undefined) {
    const [ms, id, source] = after
    conditions.push(
      '(time, id, source) < (fromUnixTimestamp64Milli({afterMs:Int64}), {afterId:String}, {afterSource:String})',
    )
    Object.assign(params, { afterMs: ms, afterId: id, afterSource: source })
  }
  // An event is (account, source, id): one stored twice (a replay not yet collapsed by
  // ReplacingMergeTree, or re-sent at another time) is shown once (`LIMIT 1 BY source, id`);
  // two sources may use the same id.
  const rows = await context.warehouse.query<EventRecord>(
    `SELECT id, source, type, subject, account, level, resource_type, subtype,
            toString(time) AS time_text, data
       FROM events
      WHERE ${conditions.join(' AND ')}
      ORDER BY time DESC, id DESC, source DESC
      LIMIT 1 BY source, id
      LIMIT {limit:UInt32}`,
    params,
  )
  const { pageInfo, results: page } = paging.page(rows, limit, (row) => [
    rowMs(row.time_text),
    row.id,
    row.source,
  ])
  return {
    pageInfo,
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
