import { WarehouseError } from '../../errors/index.ts'

/**
 * Returns the one statement in `sql`, without what follows its terminating semicolon, and
 * refuses SQL holding more than one statement. A ClickHouse server runs one statement per HTTP
 * request and rejects the rest, while chDB runs them all: without this check a migration
 * written as `CREATE …; CREATE …` would pass on the embedded engine and fail in production.
 * Semicolons inside quotes, backquotes and comments do not count. Cutting at the terminator
 * matters because the client appends `FORMAT …` to a query, which must not land after it.
 *
 * @example
 * singleStatement("SELECT ';' AS s; -- why") // "SELECT ';' AS s"
 * singleStatement('DROP TABLE a; DROP TABLE b') // throws WarehouseError
 */
export const singleStatement = (sql: string): string => {
  let end: number | undefined
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') continue
    if ((c === '-' && sql[i + 1] === '-') || c === '#') {
      i = endOf(sql, '\n', i + 1)
      continue
    }
    if (c === '/' && sql[i + 1] === '*') {
      i = endOf(sql, '*/', i + 2) + 1
      continue
    }
    if (c === ';') {
      end ??= i
      continue
    }
    if (end !== undefined) {
      throw new WarehouseError('send one SQL statement per call; the HTTP interface runs only the first', {
        context: { sql: sql.slice(0, 500) },
      })
    }
    if (c === "'" || c === '"' || c === '`') i = closingQuote(sql, c, i + 1)
  }
  return end === undefined ? sql : sql.slice(0, end)
}

const endOf = (sql: string, marker: string, from: number): number => {
  const at = sql.indexOf(marker, from)
  return at === -1 ? sql.length : at
}

// ClickHouse escapes a quote inside quotes either by doubling it or with a backslash.
const closingQuote = (sql: string, quote: string, from: number): number => {
  for (let i = from; i < sql.length; i++) {
    if (sql[i] === '\\') i++
    else if (sql[i] === quote) {
      if (sql[i + 1] === quote) i++
      else return i
    }
  }
  return sql.length
}
