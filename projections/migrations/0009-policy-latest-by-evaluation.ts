import type { Warehouse } from '../../src/ports/index.ts'
import type { WarehouseMigration } from './migrate.ts'

/**
 * Makes `policy_evaluation_latest` keep each tag's latest evaluation by `evaluated_at`, of two
 * at one instant the one later in the log, as the `asOf` answers and the policy metrics (an
 * `argMax` over `(evaluated_at, log_offset)` of the history) always did.
 *
 * Why: the table was a ReplacingMergeTree on `version`, the log offset of the evaluation, so
 * it kept the evaluation received last. An evaluation delivered late (a re-sent or re-ordered
 * one, evaluated before the one already there) replaced the newer one, and "now" told another
 * status than "as of now" and the metrics.
 *
 * How: its version is now `recency`, a column the engine computes from `evaluated_at` and
 * `version`, so no writer has to: the milliseconds since 1900-01-01 (the first instant a
 * `DateTime64` holds, so it is never negative) in the high 64 bits and the log offset in the
 * low 64. A column's role in the engine cannot be altered, so the table is made again under
 * another name, filled from `policy_evaluations` (every evaluation, with its offset: the
 * latest of each tag is recomputed, which also repairs the rows the old rule kept) and
 * exchanged with the live one atomically, as in migration 7. Each step runs only while it is
 * needed: until the exchange the live table has no `recency` and a table under the copy's
 * name is a crashed run's partial copy, dropped and made again; after it, that table is the
 * old one, and dropping it is all that is left. Nothing may project meanwhile (Herald migrates
 * before its projector starts; other instances sharing a ClickHouse server must not project
 * during the upgrade).
 */
export const m0009PolicyLatestByEvaluation: WarehouseMigration = {
  version: 9,
  name: 'policy-latest-by-evaluation',
  statements: [],
  apply: async (warehouse, progress) => {
    if (!(await hasRecency(warehouse, 'policy_evaluation_latest'))) {
      await warehouse.command(`DROP TABLE IF EXISTS ${COPY}`)
      await warehouse.command(policyEvaluationLatestTable(COPY))
      // No insert deduplication: the copy is new, and chDB keeps an earlier insert's token.
      await warehouse.command(
        `INSERT INTO ${COPY} (${TAG}, ${EVALUATION.join(', ')}, version)
         SETTINGS insert_deduplicate = 0
         SELECT ${TAG}, ${EVALUATION.map((c, i) => `latest.${i + 1} AS ${c}`).join(', ')},
                latest.${EVALUATION.length + 1} AS version
           FROM (SELECT ${TAG}, argMax((${EVALUATION.join(', ')}, log_offset), (evaluated_at, log_offset)) AS latest
                   FROM policy_evaluations FINAL
                  GROUP BY ${TAG})`,
      )
      const [copied] = await warehouse.query<{ rows: number | string }>(`SELECT count() AS rows FROM ${COPY}`)
      progress({ step: 'copy', tags: Number(copied?.rows ?? 0) })
      await warehouse.command(`EXCHANGE TABLES policy_evaluation_latest AND ${COPY}`)
    }
    await warehouse.command(`DROP TABLE IF EXISTS ${COPY}`)
  },
}

/** Where the latest evaluations are written, then the old table's name until it is dropped. */
const COPY = 'policy_evaluation_latest_by_evaluation'

const TAG = 'account, registry, repository, tag'

/** What a tag's row says of its evaluation; `version` is the evaluation's log offset. */
const EVALUATION = [
  'evaluated_at',
  'event_id',
  'digest',
  'evaluation_id',
  'bundle_id',
  'bundle_digest',
  'status',
  'final_action',
  'reasons',
] as const

const hasRecency = async (warehouse: Warehouse, table: string): Promise<boolean> =>
  (
    await warehouse.query(
      `SELECT name FROM system.columns
        WHERE database = currentDatabase() AND table = {table:String} AND name = 'recency'`,
      { table },
    )
  ).length > 0

/**
 * Milliseconds from 1900-01-01 to the epoch: `recency` counts from there, and an earlier
 * `evaluated_at` (a producer's zero time, 0001-01-01, which the column holds) counts as 0, the
 * earliest of all, where the negative sum wrapped to about 2^128 and outranked every later one.
 */
export const MS_BEFORE_1970 = 2_208_988_800_000

/**
 * `policy_evaluation_latest` as of this migration; `name` is a constant of the caller, never
 * input. `recency` is MATERIALIZED: computed on insert, left out of `SELECT *` and of what
 * writers send.
 */
export const policyEvaluationLatestTable = (name: string): string => `CREATE TABLE IF NOT EXISTS ${name} (
      account LowCardinality(String),
      registry LowCardinality(String),
      repository String,
      tag String,
      evaluated_at DateTime64(3, 'UTC'),
      event_id String,
      digest String,
      evaluation_id String,
      bundle_id String,
      bundle_digest String,
      status LowCardinality(String),
      final_action LowCardinality(String),
      reasons Array(Tuple(gate String, trigger String, action String, message String)),
      version UInt64,
      recency UInt128 MATERIALIZED
        bitShiftLeft(toUInt128(greatest(toUnixTimestamp64Milli(evaluated_at) + ${MS_BEFORE_1970}, 0)), 64) + version
    ) ENGINE = ReplacingMergeTree(recency)
    ORDER BY (account, registry, repository, tag)
    SETTINGS non_replicated_deduplication_window = 10000`
