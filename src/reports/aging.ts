import { ValidationError } from '../errors/index.ts'
import type { Severity } from '../events/index.ts'
import {
  lagOf,
  nowOf,
  optionalInstant,
  type ReportContext,
  refuseEmpty,
  type TimeWindow,
  windowOf,
} from './context.ts'
import { checkLimit, createPaging } from './paging.ts'
import { resolveScope } from './scope.ts'
import {
  createQuery,
  given,
  hasTagFilter,
  instant,
  type Query,
  rfc3339,
  scopeCondition,
  tagSet,
} from './sql.ts'
import type { PagedArgs, VulnerabilityFilter } from './vulnerabilities.ts'

/** Remediation deadlines in days by severity; 0 or absent: none. */
export type Sla = Readonly<Partial<Record<Severity, number | null>>>

/**
 * Defaults in line with common vulnerability-management policies (CISA BOD 22-01's two weeks
 * for known exploited ones, FedRAMP's 30/90/180 days for high/moderate/low): critical 15,
 * high 30, medium 90, low 180 days; none for negligible and unknown.
 */
export const DEFAULT_SLA_DAYS: Readonly<Record<Severity, number>> = {
  critical: 15,
  high: 30,
  medium: 90,
  low: 180,
  negligible: 0,
  unknown: 0,
}

const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown']

/** The deadlines asked for, the defaults where left out; a negative one is refused, never taken as none. */
const slaDays = (sla: Sla | null | undefined): Record<Severity, number> => {
  const negative = SEVERITIES.filter((s) => (sla?.[s] ?? 0) < 0)
  if (negative.length > 0)
    throw new ValidationError(
      `sla: ${negative.map((s) => `sla.${s}`).join(', ')} must be 0 (no deadline) or more days`,
      negative.map((s) => ({ path: `sla.${s}`, message: 'must be 0 (no deadline) or more days' })),
    )
  return Object.fromEntries(SEVERITIES.map((s) => [s, sla?.[s] ?? DEFAULT_SLA_DAYS[s]])) as Record<
    Severity,
    number
  >
}

interface AgingArgs {
  readonly filter?: VulnerabilityFilter | null
  readonly asOf?: string | null
  readonly sla?: Sla | null
}

// What a finding's episode row keeps as of its last change; as of a past instant they are
// taken from the finding's period then (a finding re-scored later was not yet what it became).
const ATTRIBUTES = ['severity', 'kev', 'fix_version'] as const
const EPISODE_KEY = ['account', 'digest', 'vulnerability_id', 'package', 'package_version'] as const

/**
 * Lifecycle rows in scope, with `at` (the instant), `sla` (seconds) and the row's open/age
 * columns. Without `asOf` the rows' own (latest) attributes are current; with it, each
 * episode takes its severity, KEV and fix from its `image_vulnerabilities` period valid at
 * the instant, or, resolved by then, the last one before it was resolved (an ASOF join on the
 * period starts).
 */
const lifecycleAt = (q: Query, context: ReportContext, args: AgingArgs) => {
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  const scope = resolveScope(context.principal, filter)
  const explicit = optionalInstant(args.asOf, 'asOf')
  const asOf = explicit ?? nowOf(context)
  const days = slaDays(args.sla)
  const at = instant(q, asOf)
  const scoped = scopeCondition(q, scope)
  // On columns no later change of an episode alters: filtered before the attributes are chosen.
  const episodes = [scoped, `detected_at <= ${at}`]
  if (given(filter.vulnerabilityId))
    episodes.push(`vulnerability_id = ${q.bind('String', filter.vulnerabilityId)}`)
  const detected = windowOf(filter.detected, 'filter.detected')
  if (detected.from !== undefined) episodes.push(`detected_at >= ${instant(q, detected.from)}`)
  if (detected.to !== undefined) episodes.push(`detected_at < ${instant(q, detected.to)}`)
  // Registry, repository and tag: through the tags pointing at the image, as every root has them.
  if (hasTagFilter(filter)) {
    const tags = tagSet(q, scope, {
      asOf,
      currentOnly: filter.currentOnly ?? true,
      registry: filter.registry,
      repository: filter.repository,
      tag: filter.tag,
    })
    episodes.push(`(account, digest) IN (SELECT account, digest FROM (${tags}))`)
  }
  const attributes: string[] = []
  if (given(filter.severity)) attributes.push(`severity IN ${q.bind('Array(String)', filter.severity)}`)
  if (filter.kev === true) attributes.push('kev = 1')
  if (filter.kev === false) attributes.push('kev = 0')
  if (filter.fixAvailable === true) attributes.push('fix_version IS NOT NULL')
  if (filter.fixAvailable === false) attributes.push('fix_version IS NULL')

  const lifecycle = `SELECT * FROM finding_lifecycle FINAL WHERE ${episodes.join(' AND ')}`
  // A matched period always has a digest: '' is the join's default for an episode without one.
  const rows =
    explicit === undefined
      ? lifecycle
      : `SELECT l.* REPLACE (${ATTRIBUTES.map((c) => `if(v.digest = '', l.${c}, v.${c}) AS ${c}`).join(', ')})
           FROM (SELECT *, if(resolved_at IS NOT NULL AND resolved_at <= ${at},
                              resolved_at - toIntervalMillisecond(1), ${at}) AS attributes_at
                   FROM (${lifecycle})) AS l
           ASOF LEFT JOIN (SELECT ${EPISODE_KEY.join(', ')}, valid_from, ${ATTRIBUTES.join(', ')}
                             FROM image_vulnerabilities FINAL
                            WHERE ${scoped} AND valid_from <= ${at}) AS v
             ON ${EPISODE_KEY.map((c) => `l.${c} = v.${c}`).join(' AND ')} AND l.attributes_at >= v.valid_from`
  const sql = `SELECT *,
      detected_at <= ${at} AND (resolved_at IS NULL OR resolved_at > ${at}) AS open,
      dateDiff('second', detected_at, ${at}) AS age,
      resolved_at IS NOT NULL AND resolved_at <= ${at} AS resolved,
      dateDiff('second', detected_at, resolved_at) AS time_to_resolve,
      transform(toString(severity), ${q.bind('Array(String)', SEVERITIES)},
                ${q.bind(
                  'Array(UInt64)',
                  SEVERITIES.map((s) => days[s] * 86_400),
                )}, toUInt64(0)) AS sla
    FROM (${rows})${attributes.length === 0 ? '' : ` WHERE ${attributes.join(' AND ')}`}`
  return { sql, asOf, days, scope, filter }
}

/**
 * Beyond the reference: finding age, mean time to remediate and SLA breaches by severity, now
 * or as of an instant. A finding is one vulnerability in one package version of one image,
 * from its first detection until a later report no longer lists it or the image is deleted
 * (or reconciled away). `resolved` narrows the MTTR to findings resolved in that window.
 */
export const findingAging = async (
  args: AgingArgs & { resolved?: TimeWindow | null },
  context: ReportContext,
) => {
  const q = createQuery()
  const { sql, asOf, days } = lifecycleAt(q, context, args)
  const window = windowOf(args.resolved, 'resolved')
  const inWindow = [
    'resolved',
    ...(window.from === undefined ? [] : [`resolved_at >= ${instant(q, window.from)}`]),
    ...(window.to === undefined ? [] : [`resolved_at < ${instant(q, window.to)}`]),
  ].join(' AND ')
  type Row = {
    severity_name: Severity
    open_count: number
    mean_age: number | null
    max_age: number | null
    resolved_count: number
    mttr: number | null
    open_breaches: number
    resolved_late: number
  }
  const [rows, lag] = await Promise.all([
    context.warehouse.query<Row>(
      `SELECT toString(severity) AS severity_name,
              countIf(open) AS open_count,
              if(open_count = 0, NULL, avgIf(age, open)) AS mean_age,
              if(open_count = 0, NULL, maxIf(age, open)) AS max_age,
              countIf(${inWindow}) AS resolved_count,
              if(resolved_count = 0, NULL, avgIf(time_to_resolve, ${inWindow})) AS mttr,
              countIf(open AND sla > 0 AND age > sla) AS open_breaches,
              countIf(${inWindow} AND sla > 0 AND time_to_resolve > sla) AS resolved_late
         FROM (${sql}) GROUP BY severity_name`,
      q.params,
    ),
    lagOf(context),
  ])
  const bySeverity = new Map(rows.map((r) => [r.severity_name, r]))
  return {
    asOf: new Date(asOf).toISOString(),
    results: SEVERITIES.map((severity) => {
      const r = bySeverity.get(severity)
      return {
        severity,
        openCount: r?.open_count ?? 0,
        meanOpenAgeSeconds: r?.mean_age ?? null,
        maxOpenAgeSeconds: r?.max_age ?? null,
        resolvedCount: r?.resolved_count ?? 0,
        mttrSeconds: r?.mttr ?? null,
        slaDays: days[severity] === 0 ? null : days[severity],
        openBreaches: r?.open_breaches ?? 0,
        resolvedLate: r?.resolved_late ?? 0,
      }
    }),
    projectionLagSeconds: lag,
  }
}

/** Beyond the reference: the open findings past their SLA at an instant, oldest first. */
export const slaBreaches = async (
  args: PagedArgs<VulnerabilityFilter> & AgingArgs,
  context: ReportContext,
) => {
  const q = createQuery()
  const limit = checkLimit(args.limit)
  const { sql, asOf, scope, filter } = lifecycleAt(q, context, args)
  const paging = createPaging('slaBreaches', {
    filter,
    scope,
    asOf: args.asOf ?? null,
    sla: args.sla ?? null,
  })
  const after = paging.after(args.nextToken, ['integer', 'string', 'string', 'string', 'string', 'string'])
  const keyset =
    after === undefined
      ? ''
      : `AND (toUnixTimestamp64Milli(detected_at), account, digest, vulnerability_id, package, package_version) >
             (${q.bind('Int64', after[0])}, ${after
               .slice(1)
               .map((v) => q.bind('String', v))
               .join(', ')})`
  type Row = {
    account: string
    digest: string
    registry: string
    repository: string
    vulnerability_id: string
    package: string
    package_version: string
    severity_name: Severity
    detected_text: string
    detected_ms: number
    age: number
    sla: number
    fix_version: string | null
    kev: number
  }
  const [rows, lag] = await Promise.all([
    context.warehouse.query<Row>(
      `SELECT account, digest, registry, repository, vulnerability_id, package, package_version,
              toString(severity) AS severity_name, toString(detected_at) AS detected_text,
              toUnixTimestamp64Milli(detected_at) AS detected_ms, age, sla, fix_version, kev
         FROM (${sql})
        WHERE open AND sla > 0 AND age > sla ${keyset}
        ORDER BY detected_ms, account, digest, vulnerability_id, package, package_version
        LIMIT {limit_plus_one:UInt32}`,
      { ...q.params, limit_plus_one: limit + 1 },
    ),
    lagOf(context),
  ])
  const { pageInfo, results } = paging.page(rows, limit, (r) => [
    r.detected_ms,
    r.account,
    r.digest,
    r.vulnerability_id,
    r.package,
    r.package_version,
  ])
  return {
    pageInfo,
    asOf: new Date(asOf).toISOString(),
    results: results.map((r) => ({
      account: r.account,
      digest: r.digest,
      registry: r.registry,
      repository: r.repository,
      vulnerabilityId: r.vulnerability_id,
      package: r.package,
      packageVersion: r.package_version,
      severity: r.severity_name,
      detectedAt: rfc3339(r.detected_text),
      ageSeconds: r.age,
      slaDays: r.sla / 86_400,
      fixAvailable: r.fix_version !== null,
      kev: r.kev === 1,
    })),
    projectionLagSeconds: lag,
  }
}
