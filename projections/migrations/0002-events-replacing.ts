import type { Warehouse } from '../../src/ports/index.ts'
import type { WarehouseMigration } from './migrate.ts'

/**
 * Turns the raw `events` table into a ReplacingMergeTree, so an event stored twice collapses
 * to one row whatever produced the second copy.
 *
 * Why: the projector's deduplication token names a batch by its log positions, and a batch's
 * boundaries are not stable across a crash. The embedded log re-reads "up to `batch_size`
 * messages from the committed offset", so a batch retried after more messages arrived is
 * larger, its token differs, and the plain MergeTree kept both copies of its first part; a
 * Kafka rebalance does the same. The token still drops exact replays before they reach disk;
 * the engine now makes the rest converge: rows with the same (account, time, id) are one event.
 * Readers use `FINAL` or `LIMIT 1 BY id` until background merges have collapsed them.
 *
 * How, safely on a crash at any point: the table's engine is read first, so each step runs
 * only while it is still needed. The copy goes into a ReplacingMergeTree, so copying twice is
 * harmless; `EXCHANGE TABLES` swaps the two atomically (the default Atomic database engine on
 * a server; chDB's too), and the old table is dropped only once it is the one that is no longer
 * called `events`.
 */
export const m0002EventsReplacing: WarehouseMigration = {
  version: 2,
  name: 'events-replacing',
  statements: [],
  apply: async (warehouse) => {
    if ((await engineOf(warehouse, 'events')) === 'MergeTree') {
      await warehouse.command(eventsTable('events_replacing'))
      // In-query settings apply to this statement only: chDB keeps request settings for the
      // session, so an earlier insert's deduplication token must not drop this copy.
      await warehouse.command(
        `INSERT INTO events_replacing SETTINGS insert_deduplication_token = '' SELECT * FROM events`,
      )
      await warehouse.command('EXCHANGE TABLES events AND events_replacing')
    }
    if ((await engineOf(warehouse, 'events_replacing')) === 'MergeTree') {
      await warehouse.command('DROP TABLE events_replacing')
    }
  },
}

const engineOf = async (warehouse: Warehouse, table: string): Promise<string | undefined> =>
  (
    await warehouse.query<{ engine: string }>(
      'SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
      { table },
    )
  )[0]?.engine

/** The raw table's DDL; `name` is a constant of this module, never input. */
export const eventsTable = (name: string): string => `CREATE TABLE IF NOT EXISTS ${name} (
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
    ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(time)
    ORDER BY (account, time, id)
    SETTINGS non_replicated_deduplication_window = 10000`
