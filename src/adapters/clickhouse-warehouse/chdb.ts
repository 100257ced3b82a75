import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BroadcastChannel } from 'node:worker_threads'
import {
  type ClickHouseClientConfigOptions,
  ClickHouseLogLevel,
  createClient,
  parseError,
} from '@clickhouse/client'
import { errorText, WarehouseError } from '../../errors/index.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import { type StorageFailure, type StorageHealth, storageFailureOf, watchStorage } from '../storage-health.ts'
import { toHeraldError } from './errors.ts'
import { createFileInserter } from './file-insert.ts'
import type { ColumnTypes } from './native-format.ts'
import { createClickHouseWarehouse, WAREHOUSE_SETTINGS } from './warehouse.ts'

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
 * reads several times faster than rows inlined in the query text. It also takes blocks already
 * in Native format (`insertNative`, written by `createNativeBlockWriter`).
 *
 * @example
 * const warehouse = await createChdbWarehouse({ path: 'data/warehouse' })
 * await migrate(warehouse, warehouseMigrations)
 */
export const createChdbWarehouse = async (options: ChdbWarehouseOptions): Promise<Warehouse> => {
  const path = resolve(options.path)
  const target = `chDB (${path})`
  let engine: { close(): void } | undefined
  try {
    const [{ Session }, { createChdbConnection }] = await Promise.all([
      import('chdb'),
      import('chdb/connection'),
    ])
    // The engine starts with the first connection to its folder in the process, and only a
    // connection given arguments can pass it a configuration: this one, kept open until the
    // warehouse closes, so that the client's connection, opened after it, joins that engine.
    mkdirSync(path, { recursive: true })
    const config = join(path, ENGINE_CONFIG_FILE)
    writeFileSync(config, ENGINE_CONFIG)
    engine = new Session(path, { connectionArgs: [`--config-file=${config}`] })
    // chDB declares its connection against the standalone `@clickhouse/client-common`, of
    // which `@clickhouse/client` now bundles its own copy: the same shape, distinct types.
    const chdb = createChdbConnection({ path })
    const connection = chdb as unknown as ClickHouseClientConfigOptions['connection']
    const client = createClient({ connection, log: { level: ClickHouseLogLevel.OFF } })
    const run = async (sql: string) => {
      try {
        return await chdb.chdb.queryAsync(sql)
      } catch (error) {
        // chDB's own error types; the ClickHouse code and type are in the message, as the
        // connection parses them for the client's statements.
        const parsed = parseError(errorText(error))
        if (parsed !== error) parsed.cause = error
        throw parsed
      }
    }
    await run(
      `SET ${Object.entries(WAREHOUSE_SETTINGS)
        .map(([name, value]) => `${name} = ${typeof value === 'string' ? `'${value}'` : value}`)
        .join(', ')}`,
    )
    await checkDurable(async (sql) => (await run(sql)).text(), path)
    // The folder chDB opened (`ping` fails once it is deleted or replaced under the engine) and
    // the outcome of the inserts into it.
    const storage = watchEngineStorage(path)
    const columnTypes = createColumnTypes(async (sql) => (await run(sql)).text())
    const inserter = createFileInserter(run, { columnTypes: columnTypes.of })
    const inserting = async (insert: Promise<void>): Promise<void> => {
      try {
        await insert
      } catch (error) {
        storage.wrote(error)
        throw error
      }
      storage.wrote()
    }
    const warehouse = createClickHouseWarehouse(client, {
      target,
      sessionHasSettings: true,
      insertRows: async (table, rows, settings) => {
        try {
          await inserting(inserter.insert(table, rows, settings))
        } catch (error) {
          columnTypes.forget(table)
          throw error
        }
      },
      insertNative: (table, block, settings) => inserting(inserter.insertNative(table, block, settings)),
    })
    return {
      ...warehouse,
      // Ready while the folder is the one opened, the last insert (of any connection to it in
      // the process) did not fail for want of storage, and a table's files read.
      ping: async () => {
        await warehouse.ping()
        storage.check()
        try {
          await readMigrations(run)
        } catch (error) {
          throw toHeraldError(error, { operation: 'ping', target, redact: (text) => text })
        }
      },
      // Any statement may be DDL that changes a table's columns: their types are read again.
      command: async (sql, params) => {
        try {
          await warehouse.command(sql, params)
        } finally {
          columnTypes.forgetAll()
        }
      },
      close: async () => {
        try {
          await warehouse.close()
        } finally {
          inserter.close()
          storage.close()
          engine?.close()
        }
      },
    }
  } catch (error) {
    engine?.close()
    throw toHeraldError(error, { operation: 'open', target, redact: (text) => text })
  }
}

/** Written into the data folder and given to the engine when it starts. */
const ENGINE_CONFIG_FILE = 'herald-engine.xml'

/**
 * Every MergeTree table's defaults: an insert's part files and its directory are synced to disk
 * before the insert resolves. The projector commits a batch's offsets once its inserts resolve,
 * and the embedded event log's commit reaches the disk within milliseconds, while the engine's
 * part files would otherwise wait in the page cache for the kernel's writeback (up to ~30 s):
 * after a power cut the commit survived and the rows were gone, never projected again. Server
 * configuration rather than a table setting, so that it holds for every table, those a rebuild
 * makes too; chDB takes no such setting on the insert.
 */
const ENGINE_CONFIG = `<clickhouse>
  <merge_tree>
    <fsync_after_insert>1</fsync_after_insert>
    <fsync_part_directory>1</fsync_part_directory>
  </merge_tree>
</clickhouse>
`

/**
 * Fails when the engine runs without `ENGINE_CONFIG`: one started in this process by a
 * connection other than Herald's, before it, takes no configuration from later ones.
 */
const checkDurable = async (read: (sql: string) => Promise<string>, path: string): Promise<void> => {
  const text = await read(
    `SELECT count() FROM system.merge_tree_settings
      WHERE name IN ('fsync_after_insert', 'fsync_part_directory') AND value = '1'`,
  )
  if (text.trim() !== '2') {
    throw new WarehouseError(
      `chDB at ${path} was started in this process without Herald's configuration (its inserts would not be synced to disk); open it through createChdbWarehouse only`,
    )
  }
}

/**
 * The storage of chDB's folder as every warehouse on it in this process sees it. One engine
 * writes for all of them, the projector thread's connection too, so an insert's outcome is told
 * to the others over a BroadcastChannel named by the folder, which reaches every thread: the
 * event loop's `ping` then knows of the projector's inserts. A failure is sent each time (it
 * renews the hold, `FAILURE_HOLD_MS`); a success only while the folder is known to have failed.
 */
const watchEngineStorage = (path: string): Pick<StorageHealth, 'wrote' | 'check'> & { close(): void } => {
  const health = watchStorage(path, 'warehouse')
  const channel = new BroadcastChannel(`herald.warehouse.storage:${path}`)
  // Listening keeps no thread alive.
  channel.unref()
  let failing = false
  channel.onmessage = (message) => {
    const failure = (message as { readonly data: StorageFailure | null }).data
    failing = failure !== null
    if (failure === null) health.wrote()
    else health.failed(failure)
  }
  return {
    wrote: (error) => {
      if (error === undefined) {
        health.wrote()
        if (failing) channel.postMessage(null)
        failing = false
        return
      }
      const failure = storageFailureOf(error)
      if (failure === undefined) return
      health.failed(failure)
      failing = true
      channel.postMessage({ code: failure.code, message: failure.message } satisfies StorageFailure)
    },
    check: health.check,
    close: () => channel.close(),
  }
}

/**
 * Reads a row of the migrations table, once there is one: `SELECT 1` answers from memory, while
 * this reads a table's data files, so it fails when they are gone. The table is tiny.
 */
const readMigrations = async (run: (sql: string) => Promise<{ text(): string }>): Promise<void> => {
  const exists = (await run('EXISTS TABLE schema_migrations')).text().trim()
  if (exists === '1') await run('SELECT version FROM schema_migrations LIMIT 1')
}

/**
 * The column types of the tables inserted into, read once from `system.columns` and kept
 * until a statement or a failed insert may have changed them. `table` is a checked name
 * (`[db.]table`); columns the engine fills itself (ALIAS, MATERIALIZED) are left out, so rows
 * naming them go the text way and fail as they always did.
 */
const createColumnTypes = (read: (sql: string) => Promise<string>) => {
  const known = new Map<string, Promise<ColumnTypes | undefined>>()
  const load = async (table: string): Promise<ColumnTypes | undefined> => {
    const dot = table.indexOf('.')
    const database = dot < 0 ? 'currentDatabase()' : `'${table.slice(0, dot)}'`
    const text = await read(
      `SELECT name, type FROM system.columns WHERE database = ${database} AND table = '${table.slice(dot + 1)}'
         AND default_kind NOT IN ('ALIAS', 'MATERIALIZED') FORMAT JSONEachRow`,
    )
    const types = new Map<string, string>()
    for (const line of text.split('\n')) {
      if (line === '') continue
      const { name, type } = JSON.parse(line) as { name: string; type: string }
      types.set(name, type)
    }
    return types.size > 0 ? types : undefined
  }
  return {
    of: (table: string): Promise<ColumnTypes | undefined> => {
      let types = known.get(table)
      if (types === undefined) {
        types = load(table).then(
          (loaded) => {
            if (loaded === undefined) known.delete(table)
            return loaded
          },
          () => {
            known.delete(table)
            return undefined
          },
        )
        known.set(table, types)
      }
      return types
    },
    forget: (table: string) => known.delete(table),
    forgetAll: () => known.clear(),
  }
}
