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

export interface Warehouse {
  /** Runs a statement that returns no rows (DDL, ALTER, OPTIMIZE). */
  command(sql: string, params?: QueryParams): Promise<void>
  query<Row = Record<string, unknown>>(sql: string, params?: QueryParams): Promise<Row[]>
  insert(table: string, rows: readonly object[], options?: InsertOptions): Promise<void>
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
