import { ClosedError, ValidationError } from '../errors/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { DEFAULT_RETENTION_MS, keyDigest, type ProcessedIds } from './processed-ids.ts'

/**
 * Keys a lookup names at most: a server takes query parameters in the request's URL (about 35
 * bytes a key), which the server (1 MiB by default) and any proxy before it bound. The router's
 * batches name up to 1,000; the projector's up to 20,000.
 */
const LOOKUP_KEYS = 1_000

export interface WarehouseProcessedIdsOptions {
  /** How long a key is remembered, in ms (default 7 days); the table's TTL drops older rows. */
  readonly retentionMs?: number
  /** Default `router_processed_ids`. */
  readonly table?: string
  readonly clock?: () => number
}

/**
 * ProcessedIds in a ClickHouse table, for the distributed deployment: every router instance
 * sees the same window, so a duplicate is caught whichever instance owns its partition after
 * a rebalance. One lookup and one insert per batch; the window is bounded in time (not in
 * count), ClickHouse's TTL dropping rows a day after they left it. Opening creates the table when it is missing.
 *
 * @example
 * const processed = await createWarehouseProcessedIds(warehouse, { retentionMs: 86_400_000 })
 */
export const createWarehouseProcessedIds = async (
  warehouse: Pick<Warehouse, 'command' | 'query' | 'insert'>,
  options: WarehouseProcessedIdsOptions = {},
): Promise<ProcessedIds> => {
  const clock = options.clock ?? Date.now
  const retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS
  const table = options.table ?? 'router_processed_ids'
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table))
    throw new ValidationError('invalid table name', [{ path: 'table', message: 'must be an identifier' }])
  if (!Number.isInteger(retentionMs) || retentionMs < 1000)
    throw new ValidationError('invalid retention', [
      { path: 'retentionMs', message: 'must be at least 1000' },
    ])
  // Lookups apply the retention exactly, by the injected clock; the TTL only collects garbage,
  // a day later, so a clock a little behind the server's never loses a key early.
  const ttlSeconds = Math.ceil(retentionMs / 1000) + 86_400
  // The TTL is DDL, where a placeholder cannot go; it is an integer checked above.
  await warehouse.command(`
    CREATE TABLE IF NOT EXISTS ${table} (
      key FixedString(32),
      at_ms UInt64
    ) ENGINE = ReplacingMergeTree
    ORDER BY key
    TTL toDateTime(intDiv(at_ms, 1000)) + INTERVAL ${ttlSeconds} SECOND`)
  let closed = false
  const assertOpen = () => {
    if (closed) throw new ClosedError('processed-id window')
  }
  const hex = (key: string) => keyDigest(key).toString('hex')

  return {
    async seen(keys) {
      assertOpen()
      if (keys.length === 0) return new Set()
      const byDigest = new Map(keys.map((key) => [hex(key), key]))
      const digests = [...byDigest.keys()]
      const oldest = Math.max(0, clock() - retentionMs)
      const chunks: string[][] = []
      for (let i = 0; i < digests.length; i += LOOKUP_KEYS) chunks.push(digests.slice(i, i + LOOKUP_KEYS))
      const found = await Promise.all(
        chunks.map((chunk) =>
          warehouse.query<{ key: string }>(
            `SELECT DISTINCT key FROM ${table} WHERE key IN {keys:Array(String)} AND at_ms >= {oldest:UInt64}`,
            { keys: chunk, oldest },
          ),
        ),
      )
      const hits = new Set<string>()
      for (const rows of found)
        for (const row of rows) {
          const key = byDigest.get(row.key)
          if (key !== undefined) hits.add(key)
        }
      return hits
    },
    async record(keys) {
      assertOpen()
      if (keys.length === 0) return
      const at_ms = clock()
      await warehouse.insert(
        table,
        keys.map((key) => ({ key: hex(key), at_ms })),
      )
    },
    // One row of the table at most, through the warehouse: fails when the table is gone or its
    // data cannot be read, which the warehouse's own ping (`SELECT 1`) does not look at.
    async ping() {
      assertOpen()
      await warehouse.query(`SELECT 1 FROM ${table} LIMIT 1`)
    },
    async close() {
      closed = true
    },
  }
}
