import type { WarehouseMigration } from './migrate.ts'

/**
 * The report tables the projector derives from engine events. Why each one exists and how
 * they stay exact under replays is in `projections/README.md`; in short:
 *
 * - Interval tables (`images`, `tag_history`, `image_vulnerabilities`) hold one row per
 *   period an entity was in one state: `from_offset`/`valid_from` open it, and the same row
 *   is written again with `closed_offset`/`valid_to`/`closed_by` (and a higher `version`)
 *   when the period ends. They answer "as of" questions and are what the projector reads its
 *   state from, as of a log position, which is what makes a replay write identical rows.
 * - Current tables (`tags_current`, `policy_evaluation_latest`) are derived outputs for the
 *   fast "now" path; `finding_lifecycle` and `policy_evaluations` are histories.
 * - Every table is a ReplacingMergeTree whose sorting key is the row's identity and whose
 *   version is the log offset that last changed it: a row written twice collapses, and the
 *   later change wins. Readers use `FINAL`.
 *
 * Offsets are positions in the account's partition of `engine.events`: events are keyed by
 * account, so one account's offsets are one increasing sequence. `closed_offset = 0` means
 * open: a period can only be closed by an event after the one that opened it, so a real
 * closing offset is never 0.
 */
const SEVERITY = `Enum8('unknown' = 0, 'negligible' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5)`
const TIME = `DateTime64(3, 'UTC')`
const DEDUP = 'SETTINGS non_replicated_deduplication_window = 10000'

/** DDL of every report table, by table name, for a given physical name (rebuilds use another). */
export const reportTableDdl = {
  images: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      digest String,
      from_offset UInt64,
      registry LowCardinality(String),
      repository String,
      image_id String,
      distro_name LowCardinality(String),
      distro_version LowCardinality(String),
      package_count UInt32,
      valid_from ${TIME},
      last_analyzed_at ${TIME},
      closed_offset UInt64,
      valid_to Nullable(${TIME}),
      closed_by LowCardinality(String),
      version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, digest, from_offset)
    ${DEDUP}`,

  tag_history: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      registry LowCardinality(String),
      repository String,
      tag String,
      from_offset UInt64,
      digest String,
      valid_from ${TIME},
      closed_offset UInt64,
      valid_to Nullable(${TIME}),
      closed_by LowCardinality(String),
      version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, registry, repository, tag, from_offset)
    ${DEDUP}`,

  tags_current: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      registry LowCardinality(String),
      repository String,
      tag String,
      digest String,
      active UInt8,
      since ${TIME},
      version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, registry, repository, tag)
    ${DEDUP}`,

  image_vulnerabilities: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      digest String,
      vulnerability_id String,
      package String,
      package_version String,
      from_offset UInt64,
      registry LowCardinality(String),
      repository String,
      package_type LowCardinality(String),
      severity ${SEVERITY},
      fix_version Nullable(String),
      kev UInt8,
      cvss Nullable(Float64),
      url String,
      feed_group LowCardinality(String),
      package_path String,
      valid_from ${TIME},
      detected_offset UInt64,
      detected_at ${TIME},
      fix_first_at Nullable(${TIME}),
      closed_offset UInt64,
      valid_to Nullable(${TIME}),
      closed_by LowCardinality(String),
      version UInt64,
      INDEX vulnerability vulnerability_id TYPE bloom_filter GRANULARITY 4
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, digest, vulnerability_id, package, package_version, from_offset)
    ${DEDUP}`,

  finding_lifecycle: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      digest String,
      vulnerability_id String,
      package String,
      package_version String,
      detected_offset UInt64,
      registry LowCardinality(String),
      repository String,
      severity ${SEVERITY},
      kev UInt8,
      fix_version Nullable(String),
      detected_at ${TIME},
      fix_first_at Nullable(${TIME}),
      resolved_offset UInt64,
      resolved_at Nullable(${TIME}),
      resolution LowCardinality(String),
      version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, digest, vulnerability_id, package, package_version, detected_offset)
    ${DEDUP}`,

  policy_evaluations: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      registry LowCardinality(String),
      repository String,
      tag String,
      evaluated_at ${TIME},
      event_id String,
      digest String,
      evaluation_id String,
      bundle_id String,
      bundle_digest String,
      status LowCardinality(String),
      final_action LowCardinality(String),
      reasons Array(Tuple(gate String, trigger String, action String, message String)),
      log_offset UInt64
    ) ENGINE = ReplacingMergeTree
    ORDER BY (account, registry, repository, tag, evaluated_at, event_id)
    ${DEDUP}`,

  policy_evaluation_latest: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      registry LowCardinality(String),
      repository String,
      tag String,
      evaluated_at ${TIME},
      event_id String,
      digest String,
      evaluation_id String,
      bundle_id String,
      bundle_digest String,
      status LowCardinality(String),
      final_action LowCardinality(String),
      reasons Array(Tuple(gate String, trigger String, action String, message String)),
      version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (account, registry, repository, tag)
    ${DEDUP}`,

  projection_progress: (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
      topic LowCardinality(String),
      partition UInt32,
      last_offset UInt64,
      first_appended_at ${TIME},
      last_appended_at ${TIME},
      projected_at ${TIME},
      events UInt32
    ) ENGINE = ReplacingMergeTree(last_offset)
    ORDER BY (topic, partition)`,
} as const satisfies Record<string, (name: string) => string>

export type ReportTable = keyof typeof reportTableDdl

export const REPORT_TABLES = Object.keys(reportTableDdl) as ReportTable[]

export const m0003ReportTables: WarehouseMigration = {
  version: 3,
  name: 'report-tables',
  statements: REPORT_TABLES.map((table) => reportTableDdl[table](table)),
}
