import type { Severity } from '../../events/index.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import {
  type AccountScope,
  createQuery,
  findingSet,
  instant,
  type Query,
  scopeCondition,
  tagSet,
  validAt,
} from '../sql.ts'
import { METRICS } from './definitions.ts'

/** Metric values by account, then metric id; every canned metric present for every account listed. */
export type MetricValues = ReadonlyMap<string, ReadonlyMap<string, number>>

/**
 * Every canned metric for the accounts in scope: as of the instant `at` (milliseconds) from
 * the history tables, for the data point recorded every interval and for a backfill of a new
 * metric; or, without `at`, from the current state (open periods), for live values — which
 * then also count events stamped ahead of this machine's clock. Four queries whatever the
 * number of accounts. With an `all` scope, the accounts are those with any image, tag or
 * evaluation by then.
 */
export const computeMetricValues = async (
  warehouse: Warehouse,
  scope: AccountScope,
  at?: number,
): Promise<MetricValues> => {
  const values = new Map<string, Map<string, number>>()
  const account = (name: string) => {
    let m = values.get(name)
    if (m === undefined) {
      m = new Map(METRICS.map((d) => [d.id, 0]))
      values.set(name, m)
    }
    return m
  }
  if ('accounts' in scope) for (const name of scope.accounts) account(name)

  const asOf = at === undefined ? {} : { asOf: at }
  // A period open at the instant, and one begun by then.
  const open = (q: Query) => (at === undefined ? 'closed_offset = 0' : validAt(instant(q, at)))
  const begun = (q: Query) => (at === undefined ? '1' : `valid_from <= ${instant(q, at)}`)

  const vq = createQuery()
  const vulnerabilities = warehouse.query<{
    account: string
    severity_name: Severity
    current_n: number
    all_n: number
    current_fix: number
    all_fix: number
    current_kev: number
    all_kev: number
  }>(
    `WITH t AS (${tagSet(vq, scope, { ...asOf, currentOnly: false })}), f AS (${findingSet(vq, scope, asOf)})
     SELECT t.account AS account, toString(f.severity) AS severity_name,
            countIf(t.is_current = 1) AS current_n, count() AS all_n,
            countIf(t.is_current = 1 AND f.fix_version IS NOT NULL) AS current_fix,
            countIf(f.fix_version IS NOT NULL) AS all_fix,
            countIf(t.is_current = 1 AND f.kev = 1) AS current_kev, countIf(f.kev = 1) AS all_kev
       FROM f INNER JOIN t ON t.account = f.account AND t.digest = f.digest
      GROUP BY account, severity_name`,
    vq.params,
  )

  const pq = createQuery()
  const policies = warehouse.query<{
    account: string
    current_pass: number
    current_fail: number
    all_pass: number
    all_fail: number
  }>(
    `WITH latest AS (
       SELECT account, registry, repository, tag, argMax(status, (evaluated_at, log_offset)) AS status
         FROM policy_evaluations FINAL
        WHERE ${scopeCondition(pq, scope)} AND ${at === undefined ? '1' : `evaluated_at <= ${instant(pq, at)}`}
        GROUP BY account, registry, repository, tag),
     active AS (
       SELECT account, registry, repository, tag, 1 AS active
         FROM tag_history FINAL WHERE ${scopeCondition(pq, scope)} AND ${open(pq)})
     SELECT latest.account AS account,
            countIf(active.active = 1 AND latest.status = 'pass') AS current_pass,
            countIf(active.active = 1 AND latest.status = 'fail') AS current_fail,
            countIf(latest.status = 'pass') AS all_pass,
            countIf(latest.status = 'fail') AS all_fail
       FROM latest LEFT JOIN active
         ON active.account = latest.account AND active.registry = latest.registry
        AND active.repository = latest.repository AND active.tag = latest.tag
      GROUP BY account`,
    pq.params,
  )

  const iq = createQuery()
  const images = warehouse.query<{ account: string; current_n: number; all_n: number }>(
    `SELECT account, uniqExactIf(digest, ${open(iq)}) AS current_n, uniqExact(digest) AS all_n
       FROM images FINAL WHERE ${scopeCondition(iq, scope)} AND ${begun(iq)}
      GROUP BY account`,
    iq.params,
  )

  const tq = createQuery()
  const tags = warehouse.query<{ account: string; current_n: number; all_n: number }>(
    `SELECT account, uniqExactIf((registry, repository, tag), ${open(tq)}) AS current_n,
            uniqExact((registry, repository, tag)) AS all_n
       FROM tag_history FINAL WHERE ${scopeCondition(tq, scope)} AND ${begun(tq)}
      GROUP BY account`,
    tq.params,
  )

  // Awaited together: awaited one by one, a failure of the first left the others' rejections
  // unhandled, and Node ends the process on an unhandled rejection.
  const [vulnerabilityRows, policyRows, imageRows, tagRows] = await Promise.all([
    vulnerabilities,
    policies,
    images,
    tags,
  ])
  for (const r of vulnerabilityRows) {
    const m = account(r.account)
    m.set(`vulnerabilities.tags.current.${r.severity_name}`, r.current_n)
    m.set(`vulnerabilities.tags.all.${r.severity_name}`, r.all_n)
    for (const scopeName of ['current', 'all'] as const) {
      const fix = `vulnerabilities.tags.${scopeName}.fix_available`
      const kev = `vulnerabilities.tags.${scopeName}.kev`
      m.set(fix, (m.get(fix) ?? 0) + (scopeName === 'current' ? r.current_fix : r.all_fix))
      m.set(kev, (m.get(kev) ?? 0) + (scopeName === 'current' ? r.current_kev : r.all_kev))
    }
  }
  for (const r of policyRows) {
    const m = account(r.account)
    m.set('policy_evaluations.current.pass', r.current_pass)
    m.set('policy_evaluations.current.fail', r.current_fail)
    m.set('policy_evaluations.all.pass', r.all_pass)
    m.set('policy_evaluations.all.fail', r.all_fail)
  }
  for (const r of imageRows) {
    const m = account(r.account)
    m.set('images.current', r.current_n)
    m.set('images.all', r.all_n)
  }
  for (const r of tagRows) {
    const m = account(r.account)
    m.set('tags.current', r.current_n)
    m.set('tags.all', r.all_n)
  }
  return values
}
