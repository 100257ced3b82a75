import type { WarehouseMigration } from './migrate.ts'

/**
 * Resets of the event log the projector found under its report tables (a topic deleted and
 * created again, an embedded log file removed): offsets counting from 0 again, at positions
 * the tables already hold for other events. One row per partition and reset, keyed by the
 * position the tables were projected through when it was found; `base` is 0 while the reset
 * waits for an operator, and once accepted the position the new log's offsets are counted
 * from (its offset 0 is position `base`), past everything projected before. The version is
 * `base`, so an acceptance replaces the finding and a finding recorded again does not undo it.
 *
 * The projector finds a reset by reading which events `events` holds at a batch's positions,
 * which its sorting key cannot serve: the minmax index `events_log_offset` can, since an
 * account's events are stored in time order, which is nearly their log order. On 20 million
 * events, reading the events at 20,000 positions took 0.1–0.2 s with it, about 1 s without
 * (growing with the table). Like migration 8's, it is built for stored parts in the background.
 * See `projections/README.md`, "A reset event log".
 */
export const m0010LogResets: WarehouseMigration = {
  version: 10,
  name: 'log-resets',
  statements: [
    `CREATE TABLE IF NOT EXISTS projection_log_resets (
      topic LowCardinality(String),
      partition UInt32,
      projected_through UInt64,
      offset UInt64,
      event String,
      projected_event String,
      detected_at DateTime64(3, 'UTC'),
      base UInt64,
      accepted_at Nullable(DateTime64(3, 'UTC'))
    ) ENGINE = ReplacingMergeTree(base)
    ORDER BY (topic, partition, projected_through)`,
    'ALTER TABLE events ADD INDEX IF NOT EXISTS events_log_offset log_offset TYPE minmax GRANULARITY 1',
    'ALTER TABLE events MATERIALIZE INDEX events_log_offset',
  ],
}
