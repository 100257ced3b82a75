/**
 * Building blocks of the report SQL. Every value a caller supplies becomes a typed ClickHouse
 * query parameter (`{p3:String}`) through `bind`; the SQL text itself is assembled only from
 * constants in this module and its callers. Types passed to `bind` are literals in the code,
 * never input.
 */
import type { Severity } from '../events/index.ts'

export interface Query {
  /** Binds a value and returns its placeholder. */
  bind(type: string, value: unknown): string
  readonly params: Record<string, unknown>
}

export const createQuery = (): Query => {
  const params: Record<string, unknown> = {}
  let n = 0
  return {
    params,
    bind: (type, value) => {
      const name = `p${n++}`
      params[name] = value
      return `{${name}:${type}}`
    },
  }
}

/** Which accounts a query may read: named ones, or every account (admins only). */
export type AccountScope = { readonly accounts: readonly string[] } | { readonly all: true }

export const scopeCondition = (q: Query, scope: AccountScope, column = 'account'): string =>
  'all' in scope ? '1' : `${column} IN ${q.bind('Array(String)', scope.accounts)}`

/**
 * Whether a filter field was given (neither null nor absent). '' and [] are given: resolvers
 * refuse them first (`refuseEmpty`), and here they would match nothing, never everything.
 */
export const given = <T>(value: T | null | undefined): value is T => value !== null && value !== undefined

/** An instant as a DateTime64 expression. */
export const instant = (q: Query, ms: number): string =>
  `fromUnixTimestamp64Milli(${q.bind('Int64', ms)}, 'UTC')`

/** A period row `[valid_from, valid_to)` that contains `at`. */
export const validAt = (at: string): string =>
  `valid_from <= ${at} AND (valid_to IS NULL OR valid_to > ${at})`

/** Whether a filter narrows by registry, repository or tag: by the tags pointing at an image. */
export const hasTagFilter = (filter: {
  readonly registry?: string | null
  readonly repository?: string | null
  readonly tag?: string | null
}): boolean => given(filter.registry) || given(filter.repository) || given(filter.tag)

export interface TagSetOptions {
  /** Milliseconds; absent: now (from the current tables). */
  readonly asOf?: number
  /** Only the digest each tag points at (at the instant); otherwise every digest it ever pointed at. */
  readonly currentOnly: boolean
  readonly registry?: string | null
  readonly repository?: string | null
  readonly tag?: string | null
}

const tagConditions = (q: Query, o: TagSetOptions): string[] => [
  ...(given(o.registry) ? [`registry = ${q.bind('String', o.registry)}`] : []),
  ...(given(o.repository) ? [`repository = ${q.bind('String', o.repository)}`] : []),
  ...(given(o.tag) ? [`tag = ${q.bind('String', o.tag)}`] : []),
]

/**
 * `(account, registry, repository, tag, digest, is_current)`: tags and the digests they point
 * at, now or as of an instant; with `currentOnly: false`, every digest a tag pointed at up to
 * then, `is_current` telling which one it points at at the instant.
 */
export const tagSet = (q: Query, scope: AccountScope, o: TagSetOptions): string => {
  const where = [scopeCondition(q, scope), ...tagConditions(q, o)]
  if (o.asOf === undefined) {
    if (o.currentOnly) {
      return `SELECT account, registry, repository, tag, digest, 1 AS is_current
                FROM tags_current FINAL WHERE ${[...where, 'active = 1'].join(' AND ')}`
    }
    return `SELECT account, registry, repository, tag, digest, max(closed_offset = 0) AS is_current
              FROM tag_history FINAL WHERE ${where.join(' AND ')}
             GROUP BY account, registry, repository, tag, digest`
  }
  const at = instant(q, o.asOf)
  if (o.currentOnly) {
    return `SELECT account, registry, repository, tag, digest, 1 AS is_current
              FROM tag_history FINAL WHERE ${[...where, validAt(at)].join(' AND ')}`
  }
  return `SELECT account, registry, repository, tag, digest, max(${validAt(at)}) AS is_current
            FROM tag_history FINAL WHERE ${[...where, `valid_from <= ${at}`].join(' AND ')}
           GROUP BY account, registry, repository, tag, digest`
}

export interface FindingSetOptions {
  readonly asOf?: number
  readonly vulnerabilityId?: string | null
  readonly severity?: readonly Severity[] | null
  readonly fixAvailable?: boolean | null
  readonly kev?: boolean | null
  /** Detection window, milliseconds. */
  readonly detectedFrom?: number
  readonly detectedTo?: number
}

export const FINDING_COLUMNS =
  'account, digest, vulnerability_id, package, package_version, package_type, severity, fix_version, kev, cvss, url, registry, repository, detected_at'

// A finding row's identity (its sorting key: the same in every version of the row) and the
// columns a later version may change, which `latestFindings` takes from the newest version.
const FINDING_KEY = 'account, digest, vulnerability_id, package, package_version, from_offset'
const FINDING_VERSIONED = [
  'package_type',
  'severity',
  'fix_version',
  'kev',
  'cvss',
  'url',
  'registry',
  'repository',
  'detected_at',
  'closed_offset',
  'valid_from',
  'valid_to',
] as const

/**
 * The newest version of each finding row that `keyConditions` (on key columns only) select:
 * what `FINAL` gives, but filtered before deduplication rather than after. Filtering first is
 * sound only on key columns, which no later version of a row changes. `FINAL` reads and merges
 * every granule of the key range it is given before it applies any other condition; for one
 * vulnerability across accounts that range is most of the table, while this reads the few rows
 * the `by_vulnerability` projection points at. The newest values are taken as one tuple, since
 * `argMax` on a single Nullable column would skip a newer NULL (a fix version withdrawn).
 */
const latestFindings = (keyConditions: readonly string[]): string =>
  `SELECT ${FINDING_KEY}, ${FINDING_VERSIONED.map((c, i) => `latest.${i + 1} AS ${c}`).join(', ')}
     FROM (SELECT ${FINDING_KEY}, argMax((${FINDING_VERSIONED.join(', ')}), version) AS latest
             FROM image_vulnerabilities WHERE ${keyConditions.join(' AND ')}
            GROUP BY ${FINDING_KEY})`

/**
 * The findings of active images, now or as of an instant, narrowed by the filter. Not by
 * registry or repository: a finding row holds those the image was analysed under, while a
 * filter on them means the tags pointing at the image (`tagSet`), which may be in others.
 */
export const findingSet = (q: Query, scope: AccountScope, o: FindingSetOptions): string => {
  const scoped = scopeCondition(q, scope)
  const where = [o.asOf === undefined ? 'closed_offset = 0' : validAt(instant(q, o.asOf))]
  if (given(o.severity)) where.push(`severity IN ${q.bind('Array(String)', o.severity)}`)
  if (o.fixAvailable === true) where.push('fix_version IS NOT NULL')
  if (o.fixAvailable === false) where.push('fix_version IS NULL')
  if (o.kev === true) where.push('kev = 1')
  if (o.kev === false) where.push('kev = 0')
  if (o.detectedFrom !== undefined) where.push(`detected_at >= ${instant(q, o.detectedFrom)}`)
  if (o.detectedTo !== undefined) where.push(`detected_at < ${instant(q, o.detectedTo)}`)
  if (given(o.vulnerabilityId)) {
    // The images that have (or had) the vulnerability, from the projection ordered by it; then
    // their rows by the primary key (account, digest, vulnerability_id).
    const id = q.bind('String', o.vulnerabilityId)
    const images = `(account, digest) IN (SELECT account, digest FROM image_vulnerabilities
                      WHERE vulnerability_id = ${id} AND ${scoped})`
    return `SELECT ${FINDING_COLUMNS} FROM (${latestFindings([`vulnerability_id = ${id}`, scoped, images])})
             WHERE ${where.join(' AND ')}`
  }
  return `SELECT ${FINDING_COLUMNS} FROM image_vulnerabilities FINAL WHERE ${[scoped, ...where].join(' AND ')}`
}

export { rfc3339 } from '../../projections/projector/rows.ts'
