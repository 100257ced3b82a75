import { clipped, NotFoundError, ValidationError } from '../../errors/index.ts'
import { lagOf, type ReportContext, refuseEmpty, windowOf } from '../context.ts'
import { checkLimit, createPaging } from '../paging.ts'
import { resolveScope, type ScopeFilter } from '../scope.ts'
import { type AccountScope, createQuery, given, instant, rfc3339, scopeCondition } from '../sql.ts'
import { computeMetricValues, type MetricValues } from './compute.ts'
import { METRICS, metricDefinition } from './definitions.ts'

export interface MetricFilter extends ScopeFilter {
  readonly metricId?: string | null
  readonly metricType?: string | null
}

/** The types the canned metrics have. */
const METRIC_TYPES: readonly string[] = [...new Set(METRICS.map((m) => m.metricType))]

/** The metric `id` names, or a not-found error saying where they are listed. */
const knownMetric = (id: string) => {
  const definition = metricDefinition(id)
  if (definition === undefined)
    throw new NotFoundError(`no metric ${JSON.stringify(clipped(id))}; GET /v1/reports/metrics lists them`, {
      metricId: id,
    })
  return definition
}

const liveValues = new WeakMap<ReportContext, Map<string, Promise<MetricValues>>>()

/**
 * The current value of every metric for `scope` (open periods), computed once per request and
 * scope: aliases of `metrics` with other accounts in one query each get their own.
 */
const live = (context: ReportContext, scope: AccountScope): Promise<MetricValues> => {
  let byScope = liveValues.get(context)
  if (byScope === undefined) {
    byScope = new Map()
    liveValues.set(context, byScope)
  }
  const key = 'all' in scope ? '*' : JSON.stringify([...scope.accounts].sort())
  let values = byScope.get(key)
  if (values === undefined) {
    values = computeMetricValues(context.warehouse, scope)
    byScope.set(key, values)
  }
  return values
}

/**
 * Anchore's `metrics`: the canned definitions (`id name description metricType`), plus each
 * one's current `value` for the caller's account (or the named one; summed over every account
 * for an admin's `allAccounts`). Values are computed only when asked for. A `metricId` or
 * `metricType` no metric has is refused, as `metricData` refuses the id, not answered with none.
 */
export const metrics = async (
  args: { filter?: MetricFilter | null; limit?: number | null; nextToken?: string | null },
  context: ReportContext,
) => {
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  if (given(filter.metricId)) knownMetric(filter.metricId)
  if (given(filter.metricType) && !METRIC_TYPES.includes(filter.metricType)) {
    const message = `must be one of ${METRIC_TYPES.join(', ')}`
    throw new ValidationError(`filter.metricType ${message}`, [{ path: 'filter.metricType', message }])
  }
  const scope = resolveScope(context.principal, filter)
  const limit = checkLimit(args.limit)
  const paging = createPaging('metrics', { filter, scope })
  const after = paging.after(args.nextToken, 1)
  const start = after === undefined ? 0 : METRICS.findIndex((m) => m.id === after[0]) + 1
  const matching = METRICS.slice(start).filter(
    (m) =>
      (!given(filter.metricId) || m.id === filter.metricId) &&
      (!given(filter.metricType) || m.metricType === filter.metricType),
  )
  const { pageInfo, results } = paging.page(matching, limit, (m) => [m.id])
  return {
    pageInfo,
    results: results.map((definition) => ({
      ...definition,
      value: async () => {
        let total = 0
        for (const values of (await live(context, scope)).values()) total += values.get(definition.id) ?? 0
        return total
      },
    })),
    projectionLagSeconds: await lagOf(context),
  }
}

export interface MetricDataFilter extends ScopeFilter {
  readonly metricId: string
  readonly start?: string | null
  readonly end?: string | null
}

/**
 * Anchore's `metricData`: the recorded points of one metric, newest first, between `start`
 * (inclusive) and `end` (exclusive).
 */
export const metricData = async (
  args: { filter: MetricDataFilter; limit?: number | null; nextToken?: string | null },
  context: ReportContext,
) => {
  const filter = args.filter
  refuseEmpty(filter)
  const definition = knownMetric(filter.metricId)
  const scope = resolveScope(context.principal, filter)
  const limit = checkLimit(args.limit)
  const { from: start, to: end } = windowOf(filter, 'filter')
  const paging = createPaging('metricData', { filter, scope })
  const after = paging.after(args.nextToken, ['integer', 'string'])
  const q = createQuery()
  const where = [scopeCondition(q, scope), `metric_id = ${q.bind('String', definition.id)}`]
  if (start !== undefined) where.push(`collected_at >= ${instant(q, start)}`)
  if (end !== undefined) where.push(`collected_at < ${instant(q, end)}`)
  if (after !== undefined) {
    where.push(
      `(toUnixTimestamp64Milli(collected_at), account) < (${q.bind('Int64', after[0])}, ${q.bind('String', after[1])})`,
    )
  }
  type Row = { account: string; collected_text: string; collected_ms: number; value: number }
  const [rows, lag] = await Promise.all([
    context.warehouse.query<Row>(
      `SELECT account, toString(collected_at) AS collected_text, toUnixTimestamp64Milli(collected_at) AS collected_ms, value
         FROM metric_points FINAL WHERE ${where.join(' AND ')}
        ORDER BY collected_ms DESC, account DESC
        LIMIT {limit_plus_one:UInt32}`,
      { ...q.params, limit_plus_one: limit + 1 },
    ),
    lagOf(context),
  ])
  const { pageInfo, results } = paging.page(rows, limit, (r) => [r.collected_ms, r.account])
  return {
    pageInfo,
    results: results.map((r) => ({
      metricId: definition.id,
      account: r.account,
      value: r.value,
      collectedAt: rfc3339(r.collected_text),
    })),
    projectionLagSeconds: lag,
  }
}
