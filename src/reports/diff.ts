import { ValidationError } from '../errors/index.ts'
import type { Severity } from '../events/index.ts'
import { lagOf, parseInstant, type ReportContext, refuseEmpty } from './context.ts'
import { checkLimit, createPaging } from './paging.ts'
import { resolveScope, type ScopeFilter } from './scope.ts'
import { createQuery, findingSet, given, tagSet } from './sql.ts'

export interface DiffFilter extends ScopeFilter {
  readonly registry?: string | null
  readonly repository?: string | null
  readonly tag?: string | null
  readonly vulnerabilityId?: string | null
  readonly severity?: readonly Severity[] | null
}

const KEY = [
  'account',
  'registry',
  'repository',
  'tag',
  'vulnerability_id',
  'package',
  'package_version',
] as const

/**
 * Beyond the reference: what changed in the findings of each tag between two instants. A
 * tag's findings at an instant are those of the image it pointed at then. `new`: present at
 * `to` only; `fixed`: present at `from` only (fixed, or the tag moved to an image without it);
 * `changed`: present at both with another severity, fix or KEV status. Paged by tag and finding.
 */
export const vulnerabilityDiff = async (
  args: {
    filter?: DiffFilter | null
    from: string
    to: string
    limit?: number | null
    nextToken?: string | null
  },
  context: ReportContext,
) => {
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  const scope = resolveScope(context.principal, filter)
  const limit = checkLimit(args.limit)
  const from = parseInstant(args.from, 'from')
  const to = parseInstant(args.to, 'to')
  if (from > to)
    throw new ValidationError('from is after to', [{ path: 'from', message: 'must not be after to' }])
  const paging = createPaging('vulnerabilityDiff', { filter, scope, from, to })
  const after = paging.after(args.nextToken, KEY.length)
  const q = createQuery()

  const side = (asOf: number) => {
    const tags = tagSet(q, scope, {
      asOf,
      currentOnly: true,
      registry: filter.registry,
      repository: filter.repository,
      tag: filter.tag,
    })
    // Not by severity here: a finding re-scored into the filter's severities is `changed`, not
    // `new` (nor `fixed`, re-scored out of them); the filter applies to the joined pair below.
    const findings = findingSet(q, scope, { asOf, vulnerabilityId: filter.vulnerabilityId })
    return `SELECT t.account AS account, t.registry AS registry, t.repository AS repository, t.tag AS tag,
                   f.vulnerability_id AS vulnerability_id, f.package AS package, f.package_version AS package_version,
                   t.digest AS digest, toString(f.severity) AS severity, f.fix_version AS fix_version, f.kev AS kev
              FROM (${findings}) AS f INNER JOIN (${tags}) AS t ON t.account = f.account AND t.digest = f.digest`
  }
  const severities = given(filter.severity) ? q.bind('Array(String)', filter.severity) : undefined
  const severity =
    severities === undefined ? '' : `AND (a.severity IN ${severities} OR b.severity IN ${severities})`
  const keyset =
    after === undefined
      ? ''
      : `AND (${KEY.join(', ')}) > (${after.map((v) => q.bind('String', v)).join(', ')})`
  const sql = `WITH a AS (${side(from)}), b AS (${side(to)})
    SELECT ${KEY.join(', ')},
           multiIf(a.digest IS NULL, 'new', b.digest IS NULL, 'fixed', 'changed') AS change,
           a.digest AS before_digest, a.severity AS before_severity, a.fix_version AS before_fix, a.kev AS before_kev,
           b.digest AS after_digest, b.severity AS after_severity, b.fix_version AS after_fix, b.kev AS after_kev
      FROM a FULL OUTER JOIN b USING (${KEY.join(', ')})
     WHERE (a.digest IS NULL OR b.digest IS NULL
            OR a.severity != b.severity OR a.kev != b.kev
            OR coalesce(a.fix_version, '') != coalesce(b.fix_version, '')) ${severity} ${keyset}
     ORDER BY ${KEY.join(', ')}
     LIMIT {limit_plus_one:UInt32}
    SETTINGS join_use_nulls = 1`
  type Row = Record<(typeof KEY)[number], string> & {
    change: 'new' | 'fixed' | 'changed'
    before_digest: string | null
    before_severity: Severity | null
    before_fix: string | null
    before_kev: number | null
    after_digest: string | null
    after_severity: Severity | null
    after_fix: string | null
    after_kev: number | null
  }
  const [rows, lag] = await Promise.all([
    context.warehouse.query<Row>(sql, { ...q.params, limit_plus_one: limit + 1 }),
    lagOf(context),
  ])
  const { pageInfo, results } = paging.page(rows, limit, (r) => KEY.map((k) => r[k]))
  const state = (digest: string | null, severity: Severity | null, fix: string | null, kev: number | null) =>
    digest === null || severity === null ? null : { digest, severity, fixVersion: fix, kev: kev === 1 }
  return {
    pageInfo,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    results: results.map((r) => ({
      change: r.change,
      account: r.account,
      registry: r.registry,
      repository: r.repository,
      tag: r.tag,
      vulnerabilityId: r.vulnerability_id,
      package: r.package,
      packageVersion: r.package_version,
      before: state(r.before_digest, r.before_severity, r.before_fix, r.before_kev),
      after: state(r.after_digest, r.after_severity, r.after_fix, r.after_kev),
    })),
    projectionLagSeconds: lag,
  }
}
