import type { GraphQLResolveInfo } from 'graphql'
import {
  lagOf,
  optionalInstant,
  type ReportContext,
  refuseEmpty,
  type TimeWindow,
  windowOf,
} from './context.ts'
import { checkLimit, createPaging, selectedLimit } from './paging.ts'
import { resolveScope, type ScopeFilter } from './scope.ts'
import { createQuery, given, instant, rfc3339, scopeCondition, tagSet } from './sql.ts'
import { nested, type PagedArgs } from './vulnerabilities.ts'

export interface PolicyEvaluationFilter extends ScopeFilter {
  readonly registry?: string | null
  readonly repository?: string | null
  readonly tag?: string | null
  /** Default true: each active tag's latest evaluation; false: every evaluation in history. */
  readonly currentOnly?: boolean | null
  readonly result?: 'pass' | 'fail' | null
  readonly bundleId?: string | null
  readonly evaluated?: TimeWindow | null
}

interface EvaluationRow {
  account: string
  registry: string
  repository: string
  tag: string
  digest: string
  evaluation_id: string
  evaluated_text: string
  evaluated_ms: number
  event_id: string
  status: 'pass' | 'fail'
  final_action: string
  bundle_id: string
  bundle_digest: string
  /** The first `reasons_limit` of the evaluation's reasons. */
  first_reasons: { gate: string; trigger: string; action: string; message: string }[]
  reason_count: number
}

// An evaluation may list any number of reasons (tens of thousands): each row brings the first
// ones its query selects, however many it lists.
const COLUMNS = `account, registry, repository, tag, digest, evaluation_id, toString(evaluated_at) AS evaluated_text,
  toUnixTimestamp64Milli(evaluated_at) AS evaluated_ms, event_id, status, final_action, bundle_id, bundle_digest,
  arraySlice(reasons, 1, {reasons_limit:UInt32}) AS first_reasons, length(reasons) AS reason_count`

/**
 * Anchore's `policyEvaluationsByTag`. Current (the default): the latest evaluation of every
 * tag active now, or as of `asOf` (latest by `evaluated_at`, of two at one instant the later in
 * the log, whichever arrived first). History (`currentOnly: false`): every evaluation, newest
 * first within each tag. Filters: registry, repository, tag, result, bundle, evaluation window.
 * Each evaluation's `reasons` are its first `limit`, read only as far as the query selects them.
 */
export const policyEvaluationsByTag = async (
  args: PagedArgs<PolicyEvaluationFilter>,
  context: ReportContext,
  info: GraphQLResolveInfo,
) => {
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  const scope = resolveScope(context.principal, filter)
  const limit = checkLimit(args.limit)
  const asOf = optionalInstant(args.asOf, 'asOf')
  const evaluated = windowOf(filter.evaluated, 'filter.evaluated')
  const currentOnly = filter.currentOnly ?? true
  const paging = createPaging('policyEvaluationsByTag', { filter, scope, asOf, currentOnly })
  const after = paging.after(
    args.nextToken,
    currentOnly ? 4 : ['string', 'string', 'string', 'string', 'integer', 'string'],
  )
  const q = createQuery()

  const where = [scopeCondition(q, scope)]
  if (given(filter.registry)) where.push(`registry = ${q.bind('String', filter.registry)}`)
  if (given(filter.repository)) where.push(`repository = ${q.bind('String', filter.repository)}`)
  if (given(filter.tag)) where.push(`tag = ${q.bind('String', filter.tag)}`)
  const outcome: string[] = []
  if (given(filter.result)) outcome.push(`status = ${q.bind('String', filter.result)}`)
  if (given(filter.bundleId)) outcome.push(`bundle_id = ${q.bind('String', filter.bundleId)}`)
  if (evaluated.from !== undefined) outcome.push(`evaluated_at >= ${instant(q, evaluated.from)}`)
  if (evaluated.to !== undefined) outcome.push(`evaluated_at < ${instant(q, evaluated.to)}`)
  const tagKey = after === undefined ? [] : after.slice(0, 4).map((v) => q.bind('String', v))

  let sql: string
  if (currentOnly) {
    const activeTags = tagSet(q, scope, {
      ...(asOf === undefined ? {} : { asOf }),
      currentOnly: true,
      registry: filter.registry,
      repository: filter.repository,
      tag: filter.tag,
    })
    // The latest evaluation per tag first, the outcome filters on it after: "tags whose
    // current evaluation fails", not "tags that ever failed".
    const latest =
      asOf === undefined
        ? `SELECT * EXCEPT version FROM policy_evaluation_latest FINAL WHERE ${where.join(' AND ')}`
        : `SELECT account, registry, repository, tag,
                  tupleElement(latest, 1) AS evaluated_at, tupleElement(latest, 2) AS event_id,
                  tupleElement(latest, 3) AS digest, tupleElement(latest, 4) AS evaluation_id,
                  tupleElement(latest, 5) AS bundle_id, tupleElement(latest, 6) AS bundle_digest,
                  tupleElement(latest, 7) AS status, tupleElement(latest, 8) AS final_action,
                  tupleElement(latest, 9) AS reasons
             FROM (
               SELECT account, registry, repository, tag,
                      argMax((evaluated_at, event_id, digest, evaluation_id, bundle_id, bundle_digest, status,
                              final_action, reasons), (evaluated_at, log_offset)) AS latest
                 FROM policy_evaluations FINAL
                WHERE ${[...where, `evaluated_at <= ${instant(q, asOf)}`].join(' AND ')}
                GROUP BY account, registry, repository, tag)`
    sql = `SELECT ${COLUMNS} FROM (${latest})
      WHERE (account, registry, repository, tag) IN (SELECT account, registry, repository, tag FROM (${activeTags}))
        ${outcome.map((c) => `AND ${c}`).join(' ')}
        ${tagKey.length === 0 ? '' : `AND (account, registry, repository, tag) > (${tagKey.join(', ')})`}
      ORDER BY account, registry, repository, tag
      LIMIT {limit_plus_one:UInt32}`
  } else {
    if (asOf !== undefined) where.push(`evaluated_at <= ${instant(q, asOf)}`)
    let keyset = ''
    if (after !== undefined) {
      const at = q.bind('Int64', after[4])
      const id = q.bind('String', after[5])
      keyset = `AND ((account, registry, repository, tag) > (${tagKey.join(', ')})
        OR ((account, registry, repository, tag) = (${tagKey.join(', ')})
            AND (toUnixTimestamp64Milli(evaluated_at), event_id) < (${at}, ${id})))`
    }
    sql = `SELECT ${COLUMNS} FROM policy_evaluations FINAL
      WHERE ${[...where, ...outcome].join(' AND ')} ${keyset}
      ORDER BY account, registry, repository, tag, evaluated_at DESC, event_id DESC
      LIMIT {limit_plus_one:UInt32}`
  }

  const [rows, lag] = await Promise.all([
    context.warehouse.query<EvaluationRow>(sql, {
      ...q.params,
      limit_plus_one: limit + 1,
      reasons_limit: selectedLimit(info, ['results', 'reasons']),
    }),
    lagOf(context),
  ])
  const { pageInfo, results } = paging.page(rows, limit, (r) =>
    currentOnly
      ? [r.account, r.registry, r.repository, r.tag]
      : [r.account, r.registry, r.repository, r.tag, r.evaluated_ms, r.event_id],
  )
  return {
    pageInfo,
    results: results.map((r) => ({
      account: r.account,
      registry: r.registry,
      repository: r.repository,
      tag: r.tag,
      digest: r.digest,
      evaluationId: r.evaluation_id,
      evaluatedAt: rfc3339(r.evaluated_text),
      status: r.status,
      finalAction: r.final_action,
      bundleId: r.bundle_id,
      bundleDigest: r.bundle_digest,
      reasons: nested(r.first_reasons),
      reasonCount: r.reason_count,
    })),
    projectionLagSeconds: lag,
  }
}
