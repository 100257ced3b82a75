import type { GraphQLResolveInfo } from 'graphql'
import { fromClickHouseTime, type StoredEnvelope } from '../../projections/projector/index.ts'
import type { Principal } from '../access/index.ts'
import { ForbiddenError } from '../errors/index.ts'
import { findingAging, slaBreaches } from './aging.ts'
import { type ReportContext, refuseEmpty, takeDataBytes, windowOf } from './context.ts'
import { vulnerabilityDiff } from './diff.ts'
import { metricData, metrics } from './metrics/index.ts'
import { checkLimit, createPaging, isSelected } from './paging.ts'
import { policyEvaluationsByTag } from './policy.ts'
import { checkNamedAccount } from './scope.ts'
import { given, rfc3339 } from './sql.ts'
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

/** Scopes every query to the caller's account; only an admin may name another. */
const scopeAccount = (principal: Principal, requested: string | null | undefined): string => {
  if (requested === undefined || requested === null || requested === principal.account)
    return principal.account
  checkNamedAccount(requested)
  if (principal.role !== 'admin') throw new ForbiddenError('only an admin may query another account')
  return requested
}

/** An event's row without its data: `data_bytes` is how long the stored data is. */
interface EventRecord extends Omit<StoredEnvelope, 'data'> {
  readonly time_text: string
  readonly data_bytes: number
}

/**
 * The raw events, newest first. Their `data` is read only when the query selects it, and only
 * after the page is known: the page's stored lengths are counted first towards what one answer
 * may carry (`takeDataBytes`), so that a page of large events (up to 5 MiB each), or many
 * aliased pages, is refused before the server reads any of it.
 */
export const events = async (
  args: { filter?: EventFilter | null; limit?: number | null; nextToken?: string | null },
  context: ReportContext,
  info?: GraphQLResolveInfo,
) => {
  const limit = checkLimit(args.limit)
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  const account = scopeAccount(context.principal, filter.account)
  const conditions = ['account = {account:String}']
  const params: Record<string, unknown> = { account }
  if (given(filter.type)) {
    conditions.push('type = {type:String}')
    params.type = filter.type
  }
  if (given(filter.id)) {
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
  const rows = await firstCopies(context.warehouse, account, conditions, params, limit + 1, after)
  const { pageInfo, results: page } = paging.page(rows, limit, eventKey)
  const withData = info === undefined || isSelected(info, ['results', 'data'])
  let data = new Map<string, string>()
  if (withData && page.length > 0) {
    takeDataBytes(
      context,
      page.reduce((sum, row) => sum + Number(row.data_bytes), 0),
    )
    data = await dataOf(context.warehouse, account, page)
  }
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
      time: rfc3339(row.time_text),
      data: data.get(copyKey(row)) ?? '',
    })),
  }
}

const copyKey = (row: { source: string; id: string; time_text: string }): string =>
  JSON.stringify([row.source, row.id, row.time_text])

/**
 * The data of the copies `rows` name, by `copyKey`. A copy stored twice under one key (a
 * replay not yet collapsed) holds the same data: either is read.
 */
const dataOf = async (
  warehouse: ReportContext['warehouse'],
  account: string,
  rows: readonly EventRecord[],
): Promise<Map<string, string>> => {
  const found = await warehouse.query<{ source: string; id: string; time_text: string; data: string }>(
    `SELECT source, id, toString(time) AS time_text, any(data) AS data
       FROM events
      WHERE account = {account:String} AND id IN {ids:Array(String)}
        AND [source, id, toString(time)] IN {copies:Array(Array(String))}
      GROUP BY source, id, time`,
    {
      account,
      ids: [...new Set(rows.map((row) => row.id))],
      copies: rows.map((row) => [row.source, row.id, row.time_text]),
    },
  )
  return new Map(found.map((row) => [copyKey(row), row.data]))
}

type EventKey = readonly [ms: number, id: string, source: string]

/** The most rows one top-up of an `events` page reads. */
const MAX_TOP_UP = 10_000

const eventKey = (row: EventRecord): EventKey => [fromClickHouseTime(row.time_text), row.id, row.source]

/**
 * The events a filter selects, newest first from `after` on, up to `wanted`: each event
 * (account, source, id) once, as its first copy: the one received first, at the lowest log
 * position (an account's events share one partition), which is the copy the router
 * delivered, whatever `time` the later ones carry, earlier or later. A producer may send an
 * event again with another `time`, so its copies have keys of their own and may sit pages
 * apart or outside the window: each page's events are looked up by id over the account's
 * whole history (the `events_id` skipping index finds them), and a row of any other copy
 * is left out. A copy stored twice under one key (a replay ReplacingMergeTree has not
 * collapsed yet) is read once. So paging never shows an event twice, and a window shows it
 * only if its first copy falls inside. A page that loses rows that way is topped up from
 * where it stopped.
 */
const firstCopies = async (
  warehouse: ReportContext['warehouse'],
  account: string,
  conditions: readonly string[],
  params: Readonly<Record<string, unknown>>,
  wanted: number,
  after: readonly unknown[] | undefined,
): Promise<EventRecord[]> => {
  const kept: EventRecord[] = []
  const keptEvents = new Set<string>()
  let cursor = after
  // Each top-up reads twice as many rows as the last, so a run of later copies (an event sent
  // again many times) takes a few round trips, not one per copy.
  let batch = wanted
  for (;;) {
    const where = [...conditions]
    const limit = Math.max(wanted - kept.length, batch)
    const bound: Record<string, unknown> = { ...params, limit }
    if (cursor !== undefined) {
      const [ms, id, source] = cursor
      where.push(
        '(time, id, source) < (fromUnixTimestamp64Milli({afterMs:Int64}), {afterId:String}, {afterSource:String})',
      )
      Object.assign(bound, { afterMs: ms, afterId: id, afterSource: source })
    }
    const rows = await warehouse.query<EventRecord>(
      `SELECT id, source, type, subject, account, level, resource_type, subtype,
              toString(time) AS time_text, length(data) AS data_bytes
         FROM events
        WHERE ${where.join(' AND ')}
        ORDER BY time DESC, id DESC, source DESC
        LIMIT {limit:UInt32}`,
      bound,
    )
    if (rows.length === 0) return kept
    const firsts = await warehouse.query<{ source: string; id: string; first: string }>(
      `SELECT source, id, toString(argMin(time, (log_offset, time))) AS first
         FROM events
        WHERE account = {account:String} AND id IN {ids:Array(String)}
        GROUP BY source, id`,
      { account, ids: [...new Set(rows.map((row) => row.id))] },
    )
    const firstOf = new Map(firsts.map((f) => [`${f.source}\u0000${f.id}`, f.first]))
    for (const row of rows) {
      const event = `${row.source}\u0000${row.id}`
      if (firstOf.get(event) !== row.time_text || keptEvents.has(event)) continue
      keptEvents.add(event)
      kept.push(row)
    }
    if (kept.length >= wanted) return kept.slice(0, wanted)
    if (rows.length < limit) return kept
    cursor = eventKey(rows.at(-1) as EventRecord)
    batch = Math.min(batch * 2, MAX_TOP_UP)
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
