import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writevSync } from 'node:fs'
import { unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WarehouseError } from '../../errors/index.ts'
import type { NativeBlock } from '../../ports/warehouse.ts'
import { type ColumnTypes, type NativeBody, serialiseNative, serialiseNativeSliced } from './native-format.ts'
import type { InsertSettings } from './warehouse.ts'

/** Rows ready for `INSERT … FROM INFILE`: the format, the columns it names (if any) and the body. */
export interface SerialisedRows {
  readonly format: 'Native' | 'TabSeparated' | 'JSONEachRow'
  /** The columns of a Native or TabSeparated body, in order; JSONEachRow names them in every row. */
  readonly columns?: readonly string[]
  /** Text, or the chunks of a Native block in order. */
  readonly body: string | readonly Uint8Array[]
}

const NEEDS_ESCAPE = /[\\\t\n\r]/
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
const ESCAPE_ALL = /[\\\t\n\r]/g

/** One value as a TabSeparated field, or undefined when it has no flat text form. */
const field = (value: unknown): string | undefined => {
  switch (typeof value) {
    case 'string':
      return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPE_ALL, (c) => ESCAPES[c] ?? c) : value
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined
    case 'bigint':
      return String(value)
    case 'boolean':
      // 1/0 rather than true/false: both Bool and UInt8 columns read them.
      return value ? '1' : '0'
    case 'object':
      if (value === null) return '\\N'
      if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString()
      return undefined
    default:
      return undefined
  }
}

const tabSeparated = (rows: readonly object[]): SerialisedRows | undefined => {
  const first = rows[0]
  if (first === undefined) return undefined
  const columns = Object.keys(first)
  const lines: string[] = new Array(rows.length)
  const fields: string[] = new Array(columns.length)
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Record<string, unknown>
    // A row with other keys than the first would have its extra keys dropped or misplaced.
    if (Object.keys(row).length !== columns.length) return undefined
    for (let c = 0; c < columns.length; c++) {
      const text = field(row[columns[c] as string])
      if (text === undefined) return undefined
      fields[c] = text
    }
    lines[r] = fields.join('\t')
  }
  return { format: 'TabSeparated', columns, body: `${lines.join('\n')}\n` }
}

/**
 * Writes rows in the cheapest format the engine reads exactly as the port's JSONEachRow:
 * Native when the table's column types are known and every value has a certain binary form
 * (`serialiseNative`); else TabSeparated when every row has the first row's keys and only flat
 * values (strings, finite numbers, bigints, booleans, null, Dates); else JSONEachRow (arrays,
 * tuples given as objects, rows with differing keys), whose meaning is the port's own.
 *
 * @example
 * serialiseRows([{ id: 'a', n: 1, at: null }]) // { format: 'TabSeparated', columns: ['id', 'n', 'at'], body: 'a\t1\t\\N\n' }
 */
export const serialiseRows = (rows: readonly object[], types?: ColumnTypes): SerialisedRows =>
  serialisedAs(rows, types === undefined ? undefined : serialiseNative(rows, types))

/** `serialiseRows` in slices of the event loop (the Native form; the others are rare). */
export const serialiseRowsSliced = async (
  rows: readonly object[],
  types?: ColumnTypes,
): Promise<SerialisedRows> =>
  serialisedAs(rows, types === undefined ? undefined : await serialiseNativeSliced(rows, types))

const serialisedAs = (rows: readonly object[], native: NativeBody | undefined): SerialisedRows => {
  if (native !== undefined) return { format: 'Native', ...native }
  return (
    tabSeparated(rows) ?? {
      format: 'JSONEachRow',
      body: `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`,
    }
  )
}

// ClickHouse string literals and quoted identifiers escape their quote and the backslash.
const quote = (text: string, mark: "'" | '`'): string =>
  `${mark}${text.replaceAll('\\', '\\\\').replaceAll(mark, `\\${mark}`)}${mark}`

/** The statement that loads one file into `table`, with the settings the port promises. */
export const infileInsertSql = (
  table: string,
  file: string,
  rows: SerialisedRows,
  settings: InsertSettings,
): string => {
  const columns = rows.columns === undefined ? '' : ` (${rows.columns.map((c) => quote(c, '`')).join(', ')})`
  // In-query settings hold for this statement only, so a token never outlives its insert on an
  // engine that would keep a session-wide SET. A synchronous insert is what lets the caller
  // commit its offsets once this resolves.
  return `INSERT INTO ${table}${columns} FROM INFILE ${quote(file, "'")} SETTINGS async_insert = 0, insert_deduplication_token = ${quote(settings.deduplicationToken, "'")}, optimize_on_insert = ${settings.optimizeOnInsert ? 1 : 0}, date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 0 FORMAT ${rows.format}`
}

/**
 * Written synchronously, on purpose: the bytes only go to the page cache (a few ms for the
 * largest batch), and an asynchronous write would need the event loop twice more (open, write)
 * before the engine could start, while the caller keeps the loop busy folding and serialising
 * the rest of its batch — measured, the engine started each insert 0.5 to 1 s after its file
 * was ready, idle meanwhile.
 */
const writeBody = (file: string, body: string | readonly Uint8Array[]): void => {
  if (typeof body === 'string') {
    writeFileSync(file, body)
    return
  }
  const fd = openSync(file, 'w')
  try {
    writevAll(fd, body)
  } finally {
    closeSync(fd)
  }
}

/** `writevSync` until every byte is written, at most 1024 chunks (IOV_MAX) a call. */
const writevAll = (fd: number, chunks: readonly Uint8Array[]): void => {
  const pending = chunks.filter((chunk) => chunk.length > 0)
  let i = 0
  while (i < pending.length) {
    let written = writevSync(fd, pending.slice(i, i + 1024))
    // A short write: skip the chunks written whole, keep the rest of the one it stopped in.
    while (written > 0) {
      const chunk = pending[i] as Uint8Array
      if (written >= chunk.length) {
        written -= chunk.length
        i++
      } else {
        pending[i] = chunk.subarray(written)
        written = 0
      }
    }
  }
}

const EXTENSIONS = { Native: 'native', TabSeparated: 'tsv', JSONEachRow: 'ndjson' } as const

export interface FileInserterOptions {
  /**
   * A table's column types (`system.columns`: name → type), for the Native format; undefined
   * when unknown, and the rows are written as text.
   */
  readonly columnTypes?: (table: string) => Promise<ColumnTypes | undefined>
}

export interface FileInserter {
  insert(table: string, rows: readonly object[], settings: InsertSettings): Promise<void>
  /** Inserts a block already in Native format (`createNativeBlockWriter`). */
  insertNative(table: string, block: NativeBlock, settings: InsertSettings): Promise<void>
  /** Removes the scratch directory; inserts must have settled. */
  close(): void
}

/**
 * Inserts into an embedded engine through a scratch file: `INSERT … FROM INFILE`. chDB reads
 * data that follows `INSERT … FORMAT` in the query text several times slower than the same
 * bytes from a file (about 20 µs per finding row as JSONEachRow in the text, under 9 µs as
 * TabSeparated from a file), so the rows are written to a file the engine then reads: Native
 * when `columnTypes` knows the table (parsing a finding row as TabSeparated cost the engine
 * about 4 µs of it, as Native under 1), text otherwise. The file lives only for its statement;
 * concurrent inserts each get their own.
 *
 * @example
 * const inserter = createFileInserter((sql) => session.queryAsync(sql))
 * await inserter.insert('events', rows, { deduplicationToken: 'engine.events/0/0-999/…/events', optimizeOnInsert: true })
 */
export const createFileInserter = (
  run: (sql: string) => Promise<unknown>,
  options: FileInserterOptions = {},
): FileInserter => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-warehouse-insert-'))
  let sequence = 0
  const load = async (table: string, serialised: SerialisedRows, settings: InsertSettings) => {
    const file = join(dir, `${++sequence}.${EXTENSIONS[serialised.format]}`)
    try {
      writeBody(file, serialised.body)
    } catch (error) {
      throw new WarehouseError(`insert into ${table}: cannot write its scratch file`, {
        cause: error,
        context: { table },
      })
    }
    try {
      await run(infileInsertSql(table, file, serialised, settings))
    } finally {
      // Best effort: a file left behind is removed with the directory on close.
      await unlink(file).catch(() => {})
    }
  }
  return {
    insert: async (table, rows, settings) => {
      if (rows.length === 0) return
      const types = await options.columnTypes?.(table)
      // A batch's inserts start together, and serialising the largest takes tens of ms: they
      // serialise in slices of the event loop, so other work runs between them.
      await load(table, await serialiseRowsSliced(rows, types), settings)
    },
    insertNative: async (table, block, settings) => {
      if (block.rows === 0) return
      await load(table, { format: 'Native', columns: block.columns, body: block.body }, settings)
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  }
}
