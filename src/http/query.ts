import type { Context, MiddlewareHandler } from 'hono'
import { type FieldIssue, ValidationError } from '../errors/index.ts'

/**
 * The whole number `text` writes in digits alone (at most 15, so it is exact), or NaN for
 * anything else: no sign, space, exponent or fraction slips through as `Number` would let it.
 *
 * @example
 * digitsOf('25') // 25
 * digitsOf('1e3') // NaN
 */
export const digitsOf = (text: string): number => (/^\d{1,15}$/.test(text) ? Number(text) : Number.NaN)

/**
 * What `queryParams` reads of `queries` (each name with every value given): the value of each
 * name in `known`, and an issue naming (`pathOf`) any other name and any given twice.
 *
 * @example
 * readQueryParams({ query: ['{ a }', '{ b }'] }, ['query'], (name) => `?${name}`).issues
 * // [{ path: '?query', message: 'is given more than once' }]
 */
export const readQueryParams = (
  queries: Readonly<Record<string, readonly string[]>>,
  known: readonly string[],
  pathOf: (name: string) => string = (name) => name,
): { params: Record<string, string>; issues: FieldIssue[] } => {
  const params: Record<string, string> = {}
  const issues: FieldIssue[] = []
  for (const [name, values] of Object.entries(queries)) {
    if (!known.includes(name))
      issues.push({
        path: pathOf(name),
        message:
          known.length === 0
            ? 'is not a known query parameter; this route takes none'
            : `is not a known query parameter; expected ${known.join(', ')}`,
      })
    else if (values.length > 1) issues.push({ path: pathOf(name), message: 'is given more than once' })
    else if (values[0] !== undefined) params[name] = values[0]
  }
  return { params, issues }
}

/**
 * A request's query parameters by name: each one the route knows, each given once. A 400 names
 * any other (a misspelt filter would otherwise be left out, and the answer taken for a filtered
 * one) and any given twice (which value is meant cannot be told).
 *
 * @example
 * const params = queryParams(c, ['since', 'limit']) // ?since=…&limit=10 → { since: '…', limit: '10' }
 */
export const queryParams = (c: Context, known: readonly string[]): Record<string, string> => {
  const { params, issues } = readQueryParams(c.req.queries(), known)
  if (issues.length > 0) throw ValidationError.of('query', issues)
  return params
}

/**
 * For a route that takes no query parameters: any one is refused (400), as `queryParams`
 * refuses one it does not know, rather than ignored.
 *
 * @example
 * app.get('/tokens', noQueryParameters, (c) => …)
 */
export const noQueryParameters: MiddlewareHandler = async (c, next) => {
  queryParams(c, [])
  await next()
}
