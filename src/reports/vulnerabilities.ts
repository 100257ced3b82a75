import type { GraphQLResolveInfo } from 'graphql'
import type { Severity } from '../events/index.ts'
import {
  lagOf,
  optionalInstant,
  type ReportContext,
  refuseEmpty,
  type TimeWindow,
  windowOf,
} from './context.ts'
import { checkLimit, createPaging, limitDefault, selectedLimit } from './paging.ts'
import { resolveScope, type ScopeFilter } from './scope.ts'
import { createQuery, findingSet, given, hasTagFilter, type Query, tagSet } from './sql.ts'

export interface VulnerabilityFilter extends ScopeFilter {
  readonly vulnerabilityId?: string | null
  readonly severity?: readonly Severity[] | null
  readonly registry?: string | null
  readonly repository?: string | null
  readonly tag?: string | null
  readonly currentOnly?: boolean | null
  readonly fixAvailable?: boolean | null
  readonly kev?: boolean | null
  readonly detected?: TimeWindow | null
}

export interface PagedArgs<Filter> {
  readonly filter?: Filter | null
  readonly limit?: number | null
  readonly nextToken?: string | null
  readonly asOf?: string | null
}

/**
 * How many tags, images, packages or artifacts one result lists at most; the counts say how
 * many there are. Each list is the first ones in its order (`groupArraySorted`), so a `limit`
 * takes the first of those: an arbitrary 1,000 sorted afterwards would not hold the first
 * ones when there are more.
 */
export const NESTED_CAP = 1000

/**
 * How far a root reads each row's nested list at `path` (`['results', 'tags']`): the largest
 * `limit` the query gives it (`selectedLimit`, at most `NESTED_CAP`), 0 when it selects none;
 * without the query to read (a direct call), `NESTED_CAP`.
 */
const nestedLimit = (info: GraphQLResolveInfo | undefined, path: readonly string[]): number =>
  info === undefined ? NESTED_CAP : Math.min(selectedLimit(info, path), NESTED_CAP)

/**
 * The first `limit` of `tuple` over a group, in order, bound as a parameter; an empty list,
 * nothing read, when `limit` is 0 (the query does not select the list).
 */
const firstOf = (q: Query, limit: number, tuple: string): string =>
  limit === 0 ? '[]' : `groupArraySorted(${q.bind('UInt32', limit)})(${tuple})`

/**
 * A nested list as a field resolver taking its `limit` (at most `NESTED_CAP`; null is the
 * field's own default in the schema): the query cost limit reads that argument, so what it
 * estimates is what can come back.
 */
export const nested =
  <T>(items: readonly T[]) =>
  (args: { readonly limit?: number | null }, _context: unknown, info: GraphQLResolveInfo): readonly T[] =>
    items.slice(0, checkLimit(args.limit ?? limitDefault(info.parentType.getFields()[info.fieldName])))

interface VulnerabilityColumns {
  account: string
  vulnerability_id: string
  severity: Severity
  url: string
  cvss: number | null
  kev: number
  fix_available: number
}

const vulnerabilityOf = (row: VulnerabilityColumns) => ({
  vulnerabilityId: row.vulnerability_id,
  severity: row.severity,
  link: row.url === '' ? null : row.url,
  cvss: row.cvss,
  kev: row.kev === 1,
  fixAvailable: row.fix_available === 1,
})

/** The parts every vulnerability report shares: scope, instant, the finding and tag sets. */
const prepare = (name: string, args: PagedArgs<VulnerabilityFilter>, context: ReportContext) => {
  const filter = args.filter ?? {}
  refuseEmpty(filter)
  const scope = resolveScope(context.principal, filter)
  const limit = checkLimit(args.limit)
  const asOf = optionalInstant(args.asOf, 'asOf')
  const detected = windowOf(filter.detected, 'filter.detected')
  const currentOnly = filter.currentOnly ?? true
  const paging = createPaging(name, { filter, scope, asOf, currentOnly })
  const after = paging.after(args.nextToken, 2)
  const q = createQuery()
  const findings = () =>
    findingSet(q, scope, {
      ...(asOf === undefined ? {} : { asOf }),
      vulnerabilityId: filter.vulnerabilityId,
      severity: filter.severity,
      fixAvailable: filter.fixAvailable,
      kev: filter.kev,
      ...(detected.from === undefined ? {} : { detectedFrom: detected.from }),
      ...(detected.to === undefined ? {} : { detectedTo: detected.to }),
    })
  const tags = () =>
    tagSet(q, scope, {
      ...(asOf === undefined ? {} : { asOf }),
      currentOnly,
      registry: filter.registry,
      repository: filter.repository,
      tag: filter.tag,
    })
  const keyset = (account: string, vulnerability: string) =>
    after === undefined
      ? '1'
      : `(${account}, ${vulnerability}) > (${q.bind('String', after[0])}, ${q.bind('String', after[1])})`
  return { filter, scope, limit, q, paging, findings, tags, keyset }
}

/**
 * Across every account, the page's (account, vulnerability id) keys are found first from the
 * finding rows alone, so the costly nesting (tags, images, packages as arrays) is built for one
 * page of vulnerabilities rather than for all of them before the limit: at 10 million finding
 * rows this takes a cross-account page from seconds to about a tenth. Within named accounts, or
 * for one vulnerability (at most one key per account), the finding set is small and the second
 * pass would cost more than it saves, so the keyset applies in one pass. Returns the extra CTE
 * (with its leading comma) and the condition on `f`.
 * `restriction` keeps only findings of images in the report (the tag join, a tag filter).
 */
const paging = (p: ReturnType<typeof prepare>, restriction: string, alias = '') => {
  if (!('all' in p.scope) || given(p.filter.vulnerabilityId))
    return { cte: '', where: p.keyset(`${alias}account`, `${alias}vulnerability_id`) }
  const cte = `, page AS (SELECT DISTINCT account, vulnerability_id FROM f
      WHERE ${restriction} AND ${p.keyset('account', 'vulnerability_id')}
      ORDER BY account, vulnerability_id
      LIMIT {limit_plus_one:UInt32})`
  return { cte, where: `(${alias}account, ${alias}vulnerability_id) IN page` }
}

const finish = async <Row extends VulnerabilityColumns, Result>(
  context: ReportContext,
  q: Query,
  sql: string,
  limit: number,
  paging: ReturnType<typeof createPaging>,
  toResult: (row: Row) => Result,
) => {
  const [rows, lag] = await Promise.all([
    context.warehouse.query<Row>(sql, { ...q.params, limit_plus_one: limit + 1 }),
    lagOf(context),
  ])
  const { pageInfo, results } = paging.page(rows, limit, (r) => [r.account, r.vulnerability_id])
  return { pageInfo, results: results.map(toResult), projectionLagSeconds: lag }
}

/**
 * A vulnerability's attributes over the findings of one nested entry (a tag, an image, a
 * package); `prefix` names the findings' table where they are joined.
 */
const vulnerabilityAttributes = (prefix = '') =>
  `max(${prefix}severity) AS sev, max(${prefix}url) AS url, max(${prefix}cvss) AS cvss, max(${prefix}kev) AS kev,
               max(${prefix}fix_version IS NOT NULL) AS fix`
/** The same attributes over a vulnerability's nested entries, as the roots answer them. */
const VULNERABILITY_ROLLUP =
  'toString(max(sev)) AS severity, max(url) AS url, max(cvss) AS cvss, max(kev) AS kev, max(fix) AS fix_available'

/**
 * Anchore's `tagsByVulnerability`: for each vulnerability, the tags whose image has it — the
 * digest each tag points at now (or at `asOf`), or with `currentOnly: false` every digest a tag
 * ever pointed at that (still, or then) has it. Paged by (account, vulnerability id).
 */
export const tagsByVulnerability = async (
  args: PagedArgs<VulnerabilityFilter>,
  context: ReportContext,
  info?: GraphQLResolveInfo,
) => {
  const p = prepare('tagsByVulnerability', args, context)
  const tagsLimit = nestedLimit(info, ['results', 'tags'])
  const page = paging(p, '(account, digest) IN (SELECT account, digest FROM t)', 'f.')
  // One row per tag and digest first (an image has a vulnerability in several packages), so
  // the first tags in order are kept of distinct ones, as many as the query selects.
  const sql = `WITH t AS (${p.tags()}), f AS (${p.findings()})${page.cte}
    SELECT account, vulnerability_id, ${VULNERABILITY_ROLLUP},
           ${firstOf(p.q, tagsLimit, '(registry, repository, tag, digest, is_current)')} AS tags,
           count() AS tag_count
      FROM (
        SELECT f.account AS account, f.vulnerability_id AS vulnerability_id, t.registry AS registry,
               t.repository AS repository, t.tag AS tag, t.digest AS digest, t.is_current AS is_current,
               ${vulnerabilityAttributes('f.')}
          FROM f INNER JOIN t ON t.account = f.account AND t.digest = f.digest
         WHERE ${page.where}
         GROUP BY account, vulnerability_id, registry, repository, tag, digest, is_current)
     GROUP BY account, vulnerability_id
     ORDER BY account, vulnerability_id
     LIMIT {limit_plus_one:UInt32}`
  type Row = VulnerabilityColumns & { tags: [string, string, string, string, number][]; tag_count: number }
  return finish<Row, unknown>(context, p.q, sql, p.limit, p.paging, (row) => ({
    account: row.account,
    vulnerability: vulnerabilityOf(row),
    tags: nested(
      row.tags.map(([registry, repository, tag, digest, current]) => ({
        registry,
        repository,
        tag,
        digest,
        current: current === 1,
      })),
    ),
    tagCount: row.tag_count,
  }))
}

/**
 * With a registry, repository or tag filter, the images a tag it matches points at (now or at
 * `asOf`; with `currentOnly: false`, ever pointed at), as `tagsByVulnerability` finds them,
 * whatever repository each was analysed in (an image promoted by digest has tags in several);
 * otherwise every active image.
 */
const imageRestriction = (p: ReturnType<typeof prepare>): string =>
  hasTagFilter(p.filter) ? `(account, digest) IN (SELECT account, digest FROM (${p.tags()}))` : '1'

/**
 * Anchore's `imagesByVulnerability`: for each vulnerability, the active images that have it,
 * with the packages it was found in.
 */
export const imagesByVulnerability = async (
  args: PagedArgs<VulnerabilityFilter>,
  context: ReportContext,
  info?: GraphQLResolveInfo,
) => {
  const p = prepare('imagesByVulnerability', args, context)
  const imagesLimit = nestedLimit(info, ['results', 'images'])
  // An image's packages are read only for the images read.
  const packagesLimit = imagesLimit === 0 ? 0 : nestedLimit(info, ['results', 'images', 'packages'])
  const page = paging(p, imageRestriction(p))
  const sql = `WITH f AS (${p.findings()})${page.cte}
    SELECT account, vulnerability_id, ${VULNERABILITY_ROLLUP},
           ${firstOf(p.q, imagesLimit, '(digest, registry, repository, packages, package_count)')} AS images,
           count() AS image_count
      FROM (
        SELECT account, vulnerability_id, digest, any(registry) AS registry, any(repository) AS repository,
               ${vulnerabilityAttributes()},
               ${firstOf(p.q, packagesLimit, '(package, package_version, package_type, fix_version)')} AS packages,
           count() AS package_count
          FROM f
         WHERE ${page.where} AND ${imageRestriction(p)}
         GROUP BY account, vulnerability_id, digest)
     GROUP BY account, vulnerability_id
     ORDER BY account, vulnerability_id
     LIMIT {limit_plus_one:UInt32}`
  type Package = [string, string, string, string | null]
  type Row = VulnerabilityColumns & {
    images: [string, string, string, Package[], number][]
    image_count: number
  }
  return finish<Row, unknown>(context, p.q, sql, p.limit, p.paging, (row) => ({
    account: row.account,
    vulnerability: vulnerabilityOf(row),
    images: nested(
      row.images.map(([digest, registry, repository, packages, packageCount]) => ({
        digest,
        registry,
        repository,
        packages: nested(
          packages.map(([name, version, type, fixVersion]) => ({ name, version, type, fixVersion })),
        ),
        packageCount: Number(packageCount),
      })),
    ),
    imageCount: row.image_count,
  }))
}

/**
 * Anchore's `artifactsByVulnerability`: for each vulnerability, the packages (name, version,
 * type) it was found in across active images, with how many images carry each.
 */
export const artifactsByVulnerability = async (
  args: PagedArgs<VulnerabilityFilter>,
  context: ReportContext,
  info?: GraphQLResolveInfo,
) => {
  const p = prepare('artifactsByVulnerability', args, context)
  const artifactsLimit = nestedLimit(info, ['results', 'artifacts'])
  const page = paging(p, imageRestriction(p))
  const sql = `WITH f AS (${p.findings()})${page.cte}
    SELECT account, vulnerability_id, ${VULNERABILITY_ROLLUP},
           ${firstOf(p.q, artifactsLimit, '(package, package_version, package_type, any_fix_version, images)')} AS artifacts,
           count() AS artifact_count
      FROM (
        SELECT account, vulnerability_id, package, package_version, package_type,
               any(fix_version) AS any_fix_version, uniqExact(digest) AS images,
               ${vulnerabilityAttributes()}
          FROM f
         WHERE ${page.where} AND ${imageRestriction(p)}
         GROUP BY account, vulnerability_id, package, package_version, package_type)
     GROUP BY account, vulnerability_id
     ORDER BY account, vulnerability_id
     LIMIT {limit_plus_one:UInt32}`
  type Row = VulnerabilityColumns & {
    artifacts: [string, string, string, string | null, number][]
    artifact_count: number
  }
  return finish<Row, unknown>(context, p.q, sql, p.limit, p.paging, (row) => ({
    account: row.account,
    vulnerability: vulnerabilityOf(row),
    artifacts: nested(
      row.artifacts.map(([name, version, type, fixVersion, imageCount]) => ({
        name,
        version,
        type,
        fixVersion,
        imageCount,
      })),
    ),
    artifactCount: row.artifact_count,
  }))
}

const SEVERITY_ORDER: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown']

/**
 * Beyond the reference: findings of active images by severity, with how many have a fix and
 * how many are on CISA's Known Exploited Vulnerabilities list, now or as of an instant.
 */
export const vulnerabilityBreakdown = async (
  args: { filter?: VulnerabilityFilter | null; asOf?: string | null },
  context: ReportContext,
) => {
  const p = prepare('vulnerabilityBreakdown', { ...args, limit: 1 }, context)
  const sql = `WITH f AS (${p.findings()})
    SELECT toString(severity) AS severity_name, count() AS total, uniqExact(vulnerability_id) AS vulnerabilities,
           countIf(fix_version IS NOT NULL) AS fix_available, countIf(kev = 1) AS kev_count,
           countIf(kev = 1 AND fix_version IS NOT NULL) AS kev_fix_available
      FROM f WHERE ${imageRestriction(p)}
     GROUP BY severity_name`
  type Row = {
    severity_name: Severity
    total: number
    vulnerabilities: number
    fix_available: number
    kev_count: number
    kev_fix_available: number
  }
  const [rows, lag] = await Promise.all([context.warehouse.query<Row>(sql, p.q.params), lagOf(context)])
  const bySeverity = new Map(rows.map((r) => [r.severity_name, r]))
  const asOf = optionalInstant(args.asOf, 'asOf')
  return {
    // The instant answered for, in UTC as the other reports give it; null: the current state.
    asOf: asOf === undefined ? null : new Date(asOf).toISOString(),
    results: SEVERITY_ORDER.map((severity) => {
      const r = bySeverity.get(severity)
      return {
        severity,
        findings: r?.total ?? 0,
        vulnerabilities: r?.vulnerabilities ?? 0,
        fixAvailable: r?.fix_available ?? 0,
        noFix: (r?.total ?? 0) - (r?.fix_available ?? 0),
        kev: r?.kev_count ?? 0,
        kevFixAvailable: r?.kev_fix_available ?? 0,
      }
    }),
    projectionLagSeconds: lag,
  }
}
