import type { Migration } from '../../src/ports/index.ts'

/**
 * The raw event table: every engine event once, the source for replays and `asOf` answers.
 *
 * Monthly partitions keep old months cheap to drop or move. The sort key puts one account's
 * events together in time order, which is how reports read them; `id` last makes it a total
 * order. The deduplication window is what lets the projector's `insert_deduplication_token`
 * work on a non-replicated table: the hashes of the last 10,000 inserted blocks (one per month a
 * batch touches) are kept, so replaying any recent batch drops it instead of counting it twice.
 */
export const m0001Events: Migration = {
  version: 1,
  name: 'events',
  statements: [
    `CREATE TABLE IF NOT EXISTS events (
      id String,
      source String,
      type String,
      subject String,
      account LowCardinality(String),
      level LowCardinality(String),
      resource_type LowCardinality(String),
      subtype String,
      time DateTime64(3, 'UTC'),
      data String,
      ingested_at DateTime64(3, 'UTC'),
      log_topic LowCardinality(String),
      log_partition UInt32,
      log_offset UInt64
    )
    ENGINE = MergeTree
    PARTITION BY toYYYYMM(time)
    ORDER BY (account, time, id)
    SETTINGS non_replicated_deduplication_window = 10000`,
  ],
}
