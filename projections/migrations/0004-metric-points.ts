import type { WarehouseMigration } from './migrate.ts'

/**
 * Metric data points, one per account, metric and instant. Recorded for an instant aligned to
 * the metrics interval, so two recorders (two instances, or a retry) write the same key and
 * collapse; the later recording wins.
 */
export const m0004MetricPoints: WarehouseMigration = {
  version: 4,
  name: 'metric-points',
  statements: [
    `CREATE TABLE IF NOT EXISTS metric_points (
      account LowCardinality(String),
      metric_id LowCardinality(String),
      collected_at DateTime64(3, 'UTC'),
      value Float64,
      interval_seconds UInt32,
      recorded_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(recorded_at)
    ORDER BY (account, metric_id, collected_at)
    SETTINGS non_replicated_deduplication_window = 10000`,
  ],
}
