/**
 * Rows of the report tables, exactly as inserted (`JSONEachRow`) and as read back. Times are
 * ClickHouse `DateTime64(3, 'UTC')` text (`2026-11-22 10:00:07.250`); offsets are positions in
 * the account's partition of the events topic. DDL: `projections/migrations/0003-report-tables.ts`,
 * `policy_evaluation_latest` as `0009-policy-latest-by-evaluation.ts` remade it.
 */
import type { Severity } from '../../src/events/index.ts'

/** Why a period ended. */
export type ClosedBy =
  | ''
  | 'analyzed'
  | 'deleted'
  | 'inventory'
  | 'moved'
  | 'changed'
  | 'removed'
  | 'image_deleted'
  | 'image_inventory'

/**
 * One period an image was active with one analysis: from an analysis to the next one
 * (`closed_by = 'analyzed'`), the image's deletion or an inventory that no longer lists it.
 * `last_analyzed_at` equals `valid_from`, except in rows written before each analysis began a
 * period of its own, where it is the latest analysis of a longer one.
 */
export interface ImageRow {
  readonly account: string
  readonly digest: string
  readonly from_offset: number
  readonly registry: string
  readonly repository: string
  readonly image_id: string
  readonly distro_name: string
  readonly distro_version: string
  readonly package_count: number
  readonly valid_from: string
  readonly last_analyzed_at: string
  readonly closed_offset: number
  readonly valid_to: string | null
  readonly closed_by: ClosedBy
  readonly version: number
}

/** One period a tag pointed at one digest. */
export interface TagHistoryRow {
  readonly account: string
  readonly registry: string
  readonly repository: string
  readonly tag: string
  readonly from_offset: number
  readonly digest: string
  readonly valid_from: string
  readonly closed_offset: number
  readonly valid_to: string | null
  readonly closed_by: ClosedBy
  readonly version: number
}

/** Every tag ever seen, with where it points now; `active = 0` once deleted or reconciled away. */
export interface TagCurrentRow {
  readonly account: string
  readonly registry: string
  readonly repository: string
  readonly tag: string
  readonly digest: string
  readonly active: 0 | 1
  /** When the tag started pointing at `digest`, or when it became inactive. */
  readonly since: string
  readonly version: number
}

/** One period a finding (vulnerability × package × version) of an image had one set of attributes. */
export interface FindingRow {
  readonly account: string
  readonly digest: string
  readonly vulnerability_id: string
  readonly package: string
  readonly package_version: string
  readonly from_offset: number
  readonly registry: string
  readonly repository: string
  readonly package_type: string
  readonly severity: Severity
  readonly fix_version: string | null
  readonly kev: 0 | 1
  readonly cvss: number | null
  readonly url: string
  readonly feed_group: string
  readonly package_path: string
  readonly valid_from: string
  /** Where and when the finding's episode began; carried unchanged through attribute changes. */
  readonly detected_offset: number
  readonly detected_at: string
  /** First instant of the episode at which a fix was known. */
  readonly fix_first_at: string | null
  readonly closed_offset: number
  readonly valid_to: string | null
  readonly closed_by: ClosedBy
  readonly version: number
}

/** How a finding's episode ended. */
export type Resolution = '' | 'removed' | 'image_deleted' | 'image_inventory'

/** One episode of a finding in an image, from detection to resolution. */
export interface LifecycleRow {
  readonly account: string
  readonly digest: string
  readonly vulnerability_id: string
  readonly package: string
  readonly package_version: string
  readonly detected_offset: number
  readonly registry: string
  readonly repository: string
  readonly severity: Severity
  readonly kev: 0 | 1
  readonly fix_version: string | null
  readonly detected_at: string
  readonly fix_first_at: string | null
  readonly resolved_offset: number
  readonly resolved_at: string | null
  readonly resolution: Resolution
  readonly version: number
}

export interface PolicyReasonRow {
  readonly gate: string
  readonly trigger: string
  readonly action: string
  readonly message: string
}

/** One policy evaluation of a tag (history: never replaced). */
export interface PolicyEvaluationRow {
  readonly account: string
  readonly registry: string
  readonly repository: string
  readonly tag: string
  readonly evaluated_at: string
  readonly event_id: string
  readonly digest: string
  readonly evaluation_id: string
  readonly bundle_id: string
  readonly bundle_digest: string
  readonly status: 'pass' | 'fail'
  readonly final_action: string
  readonly reasons: readonly PolicyReasonRow[]
  readonly log_offset: number
}

/**
 * The latest evaluation of each tag: by `evaluated_at`, of two at one instant the later in the
 * log (`version`, its offset); the table orders them so by a column of its own, `recency`.
 */
export type PolicyLatestRow = Omit<PolicyEvaluationRow, 'log_offset'> & { readonly version: number }

/** How far the projector got in one partition, for the projection lag. */
export interface ProgressRow {
  readonly topic: string
  readonly partition: number
  readonly last_offset: number
  readonly first_appended_at: string
  readonly last_appended_at: string
  readonly projected_at: string
  readonly events: number
}
