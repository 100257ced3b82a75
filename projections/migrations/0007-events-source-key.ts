import type { Warehouse } from '../../src/ports/index.ts'
import type { WarehouseMigration } from './migrate.ts'

/**
 * Adds `source` to the raw `events` table's sorting key: `(account, time, id, source)`.
 *
 * Why: a CloudEvent is identified by its source and id together, and two producers may use the
 * same id. On the key `(account, time, id)` the ReplacingMergeTree took two such events of one
 * account, sent for the same instant, for one event stored twice, and kept only one of them
 * once their parts merged (or as it stored them, when one insert held both). With `source` in
 * the key only copies of one event collapse. It goes last: every reader asks for one account's
 * events over a time range, which the key's prefix still finds, and the `events` root reads
 * them in key order (`time, id, source`).
 *
 * How, safely on a crash at any point: ClickHouse changes a sorting key only by adding columns
 * added in the same statement, so the rows are copied into a new table with the new key,
 * which is then exchanged with `events` atomically (`EXCHANGE TABLES`, which needs the Atomic
 * database engine: the server's default; chDB's default database overlays an Atomic one and
 * takes it too). The live table's key is read first, so each step runs only while it is still
 * needed. Until the exchange, `events` is untouched and anything under the copy's name is a
 * crashed run's partial copy: it is dropped and the copy made again whole. After it, the table
 * under the copy's name is the old one, and dropping it is all that is left. The copy takes
 * every row as stored, merged or not, so two sources' events the old key had not collapsed
 * yet are both kept; it needs the table's size again on disk while it runs. Herald migrates
 * before its projector starts, so nothing writes `events` meanwhile; other instances sharing
 * a ClickHouse server must not project during the upgrade, or rows they store between the
 * copy and the exchange are dropped with the old table. Two instances never run it at once
 * (`migrate` holds the migration lease): one's fresh start would drop the other's copy.
 *
 * `eventsTable` is the table as migrations leave it, for anything that makes one afresh;
 * 0002's own DDL stays as it ran.
 */
export const m0007EventsSourceKey: WarehouseMigration = {
  version: 7,
  name: 'events-source-key',
  statements: [],
  apply: async (warehouse, progress) => {
    if ((await sortingKeyOf(warehouse, 'events')) !== SORTING_KEY) {
      await warehouse.command(`DROP TABLE IF EXISTS ${COPY}`)
      await warehouse.command(eventsTable(COPY))
      // One month (partition) at a time, each logged: a large table takes a while, and the
      // log shows how far it got. In-query settings apply to that statement only. No insert
      // deduplication: the copy is new, and chDB keeps an earlier insert's token for the
      // session. No bound on the months one block may touch, should a partition hold more.
      const months = await partitionsOf(warehouse, 'events')
      const total = months.reduce((sum, m) => sum + m.rows, 0)
      let copied = 0
      for (const [i, month] of months.entries()) {
        await warehouse.command(
          `INSERT INTO ${COPY} (${COLUMNS})
           SETTINGS insert_deduplicate = 0, max_partitions_per_insert_block = 0
           SELECT ${COLUMNS} FROM events WHERE _partition_id = {partition:String}`,
          { partition: month.partition },
        )
        copied += month.rows
        progress({
          step: 'copy',
          partition: month.partition,
          partitions: `${i + 1}/${months.length}`,
          rows: `${copied}/${total}`,
        })
      }
      await warehouse.command(`EXCHANGE TABLES events AND ${COPY}`)
    }
    await warehouse.command(`DROP TABLE IF EXISTS ${COPY}`)
  },
}

const SORTING_KEY = 'account, time, id, source'

/** Where the rows are copied to, then the old table's name until it is dropped. */
const COPY = 'events_by_source'

const COLUMNS = [
  'id',
  'source',
  'type',
  'subject',
  'account',
  'level',
  'resource_type',
  'subtype',
  'time',
  'data',
  'attributes',
  'ingested_at',
  'log_topic',
  'log_partition',
  'log_offset',
].join(', ')

/** The table's partitions (`_partition_id`) and the rows each holds, oldest first. */
const partitionsOf = async (
  warehouse: Warehouse,
  table: string,
): Promise<readonly { partition: string; rows: number }[]> =>
  (
    await warehouse.query<{ partition: string; rows: string | number }>(
      `SELECT partition_id AS partition, sum(rows) AS rows FROM system.parts
       WHERE database = currentDatabase() AND table = {table:String} AND active
       GROUP BY partition_id ORDER BY partition_id`,
      { table },
    )
  ).map((r) => ({ partition: r.partition, rows: Number(r.rows) }))

const sortingKeyOf = async (warehouse: Warehouse, table: string): Promise<string | undefined> =>
  (
    await warehouse.query<{ sorting_key: string }>(
      'SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = {table:String}',
      { table },
    )
  )[0]?.sorting_key

/** The raw table's DDL as of this migration; `name` is a constant of the caller, never input. */
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
      attributes String DEFAULT '{}',
      ingested_at DateTime64(3, 'UTC'),
      log_topic LowCardinality(String),
      log_partition UInt32,
      log_offset UInt64
    )
    ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(time)
    ORDER BY (${SORTING_KEY})
    SETTINGS non_replicated_deduplication_window = 10000`
