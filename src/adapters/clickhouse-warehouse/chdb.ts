import { resolve } from 'node:path'
import {
  type ClickHouseClientConfigOptions,
  ClickHouseLogLevel,
  createClient,
  parseError,
} from '@clickhouse/client'
import type { Warehouse } from '../../ports/warehouse.ts'
import { toHeraldError } from './errors.ts'
import { createFileInserter } from './file-insert.ts'
import { createClickHouseWarehouse } from './warehouse.ts'

export interface ChdbWarehouseOptions {
  /** Data directory, created if missing. chDB allows one directory per process at a time. */
  readonly path: string
}

/**
 * The embedded warehouse: ClickHouse running inside this process (chDB), its data in `path`.
 * Opening the same path again while it is open shares the engine; opening a different path
 * fails until every warehouse on the first one is closed.
 *
 * Asynchronous because chDB is loaded on first use: the engine adds about 160 MB to the
 * process, which a deployment on a ClickHouse server should not pay.
 *
 * Inserts bypass the client: they go through a scratch file (`createFileInserter`), which chDB
 * reads several times faster than rows inlined in the query text.
 *
 * @example
 * const warehouse = await createChdbWarehouse({ path: 'data/warehouse' })
 * await migrate(warehouse, warehouseMigrations)
 */
export const createChdbWarehouse = async (options: ChdbWarehouseOptions): Promise<Warehouse> => {
  const path = resolve(options.path)
  const target = `chDB (${path})`
  try {
    const { createChdbConnection } = await import('chdb/connection')
    // chDB declares its connection against the standalone `@clickhouse/client-common`, of
    // which `@clickhouse/client` now bundles its own copy: the same shape, distinct types.
    const chdb = createChdbConnection({ path })
    const connection = chdb as unknown as ClickHouseClientConfigOptions['connection']
    const client = createClient({ connection, log: { level: ClickHouseLogLevel.OFF } })
    const inserter = createFileInserter(async (sql) => {
      try {
        await chdb.chdb.queryAsync(sql)
      } catch (error) {
        // chDB's own error types; the ClickHouse code and type are in the message, as the
        // connection parses them for the client's statements.
        const parsed = parseError(error instanceof Error ? error.message : String(error))
        if (parsed !== error) parsed.cause = error
        throw parsed
      }
    })
    const warehouse = createClickHouseWarehouse(client, { target, insertRows: inserter.insert })
    return {
      ...warehouse,
      close: async () => {
        try {
          await warehouse.close()
        } finally {
          inserter.close()
        }
      },
    }
  } catch (error) {
    throw toHeraldError(error, { operation: 'open', target, redact: (text) => text })
  }
}
