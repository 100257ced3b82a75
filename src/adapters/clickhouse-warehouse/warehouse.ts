import type { ClickHouseClient } from '@clickhouse/client'
import { ClosedError, WarehouseError } from '../../errors/index.ts'
import type { InsertOptions, NativeBlock, QueryParams, Warehouse } from '../../ports/warehouse.ts'
import { type Operation, toHeraldError } from './errors.ts'
import { normaliseParams } from './params.ts'
import { singleStatement } from './statements.ts'

/** What an insert sets besides its rows. */
export interface InsertSettings {
  /** Empty when the caller gave none. */
  readonly deduplicationToken: string
  /** False when the rows' keys are distinct (`InsertOptions.distinctKeys`). */
  readonly optimizeOnInsert: boolean
}

export interface ClickHouseWarehouseOptions {
  /** How the warehouse is named in error messages, e.g. `ClickHouse http://ch:8123`. */
  readonly target?: string
  /** Removes credentials from error messages; the HTTP factory passes one built from its URL. */
  readonly redact?: (text: string) => string
  /**
   * The transport applied `WAREHOUSE_SETTINGS` to its one session already (chDB, where each
   * request's settings become `SET` statements of their own that stick to the session anyway),
   * so queries and commands carry none.
   */
  readonly sessionHasSettings?: boolean
  /**
   * Replaces the client's insert, for a transport with a faster way in than the client's
   * (chDB: `createFileInserter`). It receives only valid table names and non-empty rows.
   */
  readonly insertRows?: (table: string, rows: readonly object[], options: InsertSettings) => Promise<void>
  /**
   * Inserts a block already in Native format; given, the warehouse has `insertNative` (chDB:
   * `createFileInserter`). It receives only valid table names and non-empty blocks.
   */
  readonly insertNative?: (table: string, block: NativeBlock, options: InsertSettings) => Promise<void>
}

/**
 * Every setting Herald's statements and readers rely on, pinned so that neither a server's
 * settings profile nor an engine's defaults can change what is stored or read. Sent with every
 * request over HTTP, not once at client creation, so that a client built elsewhere behaves the
 * same; request settings override the profile's. chDB applies request settings as session-wide
 * `SET` statements, so its warehouse sets them once when it opens (`sessionHasSettings`) and its
 * requests carry none: about half a millisecond of CPU less per statement. Every statement
 * Herald sends wants the same values, so nothing unsets them (a statement's own `SETTINGS`
 * clause, as a migration's `insert_deduplicate = 0`, still wins for that statement).
 *
 * - 64-bit integers as JSON numbers: the port promises numbers; the HTTP server quotes them
 *   by default while chDB does not.
 * - best-effort DateTime parsing: rows may carry RFC 3339 times (`2024-01-02T03:04:05.678Z`)
 *   straight from CloudEvents.
 * - unknown fields in inserted rows are an error: by default ClickHouse skips them, so a
 *   misspelt column would silently store its default instead; omitted fields and nulls in
 *   non-Nullable columns take the column's default.
 * - synchronous, deduplicated inserts: an insert resolves once its rows are stored, which is
 *   when the projector commits its offsets (with `async_insert = 1`, chDB's default since 26
 *   and a common server profile, and `wait_for_async_insert = 0`, it resolved before), and a
 *   replayed batch's token drops it.
 * - times read as `YYYY-MM-DD hh:mm:ss.fff` (`fromClickHouseTime`); `iso` made them NaN.
 * - JSON rows one per line, named tuples as objects (a policy evaluation's reasons).
 * - joins as written: `ALL` unless a query says otherwise, missing right-hand values as their
 *   type's default (a query wanting NULLs sets `join_use_nulls` itself); aggregates of no rows
 *   as their type's default, not NULL.
 * - a limit from the profile fails its statement rather than cutting its result short
 *   (`break` returns part of an answer, `any` part of a GROUP BY's).
 */
export const WAREHOUSE_SETTINGS = {
  output_format_json_quote_64bit_integers: 0,
  date_time_input_format: 'best_effort',
  input_format_skip_unknown_fields: 0,
  input_format_defaults_for_omitted_fields: 1,
  input_format_null_as_default: 1,
  async_insert: 0,
  insert_deduplicate: 1,
  date_time_output_format: 'simple',
  output_format_json_array_of_rows: 0,
  output_format_json_named_tuples_as_objects: 1,
  join_default_strictness: 'ALL',
  join_use_nulls: 0,
  aggregate_functions_null_for_empty: 0,
  read_overflow_mode: 'throw',
  result_overflow_mode: 'throw',
  group_by_overflow_mode: 'throw',
  timeout_overflow_mode: 'throw',
  distinct_overflow_mode: 'throw',
  join_overflow_mode: 'throw',
  set_overflow_mode: 'throw',
  sort_overflow_mode: 'throw',
  transfer_overflow_mode: 'throw',
} as const

// Table names are spliced into `INSERT INTO <table>` by the client, so only plain
// (optionally database-qualified) identifiers are let through.
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/

/**
 * Wraps an `@clickhouse/client` instance (over HTTP or over chDB) into the Warehouse port.
 * The warehouse owns the client from then on: `close()` closes it.
 *
 * @example
 * const warehouse = createClickHouseWarehouse(createClient({ url: 'http://localhost:8123' }))
 * const [row] = await warehouse.query<{ n: number }>('SELECT {n:UInt64} AS n', { n: 42 })
 */
export const createClickHouseWarehouse = (
  client: ClickHouseClient,
  options: ClickHouseWarehouseOptions = {},
): Warehouse => {
  const target = options.target ?? 'ClickHouse'
  const requestSettings = options.sessionHasSettings === true ? undefined : WAREHOUSE_SETTINGS
  const redact = options.redact ?? ((text: string) => text)
  let closed = false

  const run = async <T>(
    operation: Operation,
    sql: string | undefined,
    work: () => Promise<T>,
  ): Promise<T> => {
    if (closed) throw new ClosedError(`warehouse ${target}`)
    try {
      return await work()
    } catch (error) {
      throw closed
        ? new ClosedError(`warehouse ${target}`)
        : toHeraldError(error, { operation, target, redact, sql })
    }
  }

  const insertNative = options.insertNative
  const checkTable = (table: string) => {
    if (!TABLE_NAME.test(table)) {
      throw new WarehouseError(`insert: ${JSON.stringify(table)} is not a table name`, {
        context: { table },
      })
    }
  }
  const settingsOf = (insertOptions: InsertOptions): InsertSettings => ({
    deduplicationToken: insertOptions.deduplicationToken ?? '',
    optimizeOnInsert: insertOptions.distinctKeys !== true,
  })

  const paramsOf = (params: QueryParams | undefined) =>
    params === undefined ? undefined : normaliseParams(params)

  return {
    command: (sql, params) =>
      run('command', sql, async () => {
        await client.command({
          query: singleStatement(sql),
          query_params: paramsOf(params),
          clickhouse_settings: requestSettings,
        })
      }),

    query: <Row>(sql: string, params?: QueryParams) =>
      run('query', sql, async () => {
        const result = await client.query({
          query: singleStatement(sql),
          query_params: paramsOf(params),
          format: 'JSONEachRow',
          clickhouse_settings: requestSettings,
        })
        return result.json<Row>()
      }),

    insert: (table: string, rows: readonly object[], insertOptions: InsertOptions = {}) =>
      run('insert', `INSERT INTO ${table}`, async () => {
        checkTable(table)
        if (rows.length === 0) return
        const settings = settingsOf(insertOptions)
        if (options.insertRows !== undefined) {
          await options.insertRows(table, rows, settings)
          return
        }
        await client.insert({
          table,
          values: rows as object[],
          format: 'JSONEachRow',
          // Always sent, empty meaning "none": on chDB a token from an earlier insert would
          // otherwise stay set and silently drop every later insert into the same table.
          clickhouse_settings: {
            ...WAREHOUSE_SETTINGS,
            insert_deduplication_token: settings.deduplicationToken,
            optimize_on_insert: settings.optimizeOnInsert ? 1 : 0,
          },
        })
      }),

    ...(insertNative === undefined
      ? {}
      : {
          insertNative: (table: string, block: NativeBlock, insertOptions: InsertOptions = {}) =>
            run('insert', `INSERT INTO ${table}`, async () => {
              checkTable(table)
              if (block.rows === 0) return
              await insertNative(table, block, settingsOf(insertOptions))
            }),
        }),

    ping: () =>
      run('ping', undefined, async () => {
        // `select: true` runs `SELECT 1`, so bad credentials fail the ping; HTTP `/ping` would not.
        const result = await client.ping({ select: true })
        if (!result.success) throw result.error
      }),

    close: async () => {
      if (closed) return
      closed = true
      try {
        await client.close()
      } catch (error) {
        throw toHeraldError(error, { operation: 'close', target, redact })
      }
    },
  }
}
