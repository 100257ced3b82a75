/**
 * Warehouse: Herald's port to ClickHouse SQL. The embedded adapter runs chDB in process, the
 * distributed one talks to a ClickHouse server over HTTP; both speak the same dialect through
 * `@clickhouse/client`, so queries and migrations are written once.
 *
 * Parameters use ClickHouse's typed placeholders, `{name:Type}`, and are never spliced into
 * the SQL text. 64-bit integers come back as JavaScript numbers.
 *
 * @example
 * await warehouse.insert('events', rows, { deduplicationToken: 'engine.events/0/100-199' })
 * const rows = await warehouse.query<{ n: number }>(
 *   'SELECT count() AS n FROM events WHERE account = {account:String}', { account: 'acme' })
 */
export type QueryParams = Readonly<Record<string, unknown>>

export interface InsertOptions {
  /**
   * Same token, same table: the second insert is dropped. Derive it from the log positions
   * of the batch so a replayed batch never counts twice.
   */
  readonly deduplicationToken?: string
  /**
   * The caller promises that no two of the rows share a sorting key, so a ReplacingMergeTree
   * need not collapse the block while storing it (ClickHouse's `optimize_on_insert`): about a
   * microsecond less per row. Rows that do share a key are kept side by side until a merge
   * collapses them, as rows of two inserts are; readers that use `FINAL` see no difference.
   */
  readonly distinctKeys?: boolean
}

/**
 * Rows already in ClickHouse's `Native` format (a block: its column count, row count, then each
 * column's name, type and values), as a writer that skips row objects makes them.
 */
export interface NativeBlock {
  /** The columns the block names, in order. */
  readonly columns: readonly string[]
  readonly rows: number
  /** The block's bytes, in order. */
  readonly body: readonly Uint8Array[]
}

export interface Warehouse {
  /** Runs a statement that returns no rows (DDL, ALTER, OPTIMIZE). */
  command(sql: string, params?: QueryParams): Promise<void>
  query<Row = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<Row[]>
  insert(table: string, rows: readonly object[], options?: InsertOptions): Promise<void>
  /**
   * Inserts a block already in Native format, as `insert` would its rows; only a transport that
   * takes Native cheaply has it (the embedded engine), and callers give rows to the others.
   */
  insertNative?(table: string, block: NativeBlock, options?: InsertOptions): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}

/** One schema change; `version`s are applied once each, in increasing order. */
export interface Migration {
  readonly version: number
  readonly name: string
  /** Statements run in order; each must be safe to re-run (`IF NOT EXISTS`) after a crash. */
  readonly statements: readonly string[]
}
