import type { Context } from 'hono'
import { type FieldIssue, ValidationError } from '../errors/index.ts'
import { digitsOf, queryParams } from '../http/query.ts'
import { Uuid } from './codecs.ts'

/** The most items one page holds, as the delivery listing's. */
export const MAX_PAGE_LIMIT = 1_000

/**
 * A page's size when `limit` is left out: the most there may be, which under the default
 * `notifications.limits` holds every configuration of an account (200) and every selector of a
 * configuration (500), so a client written before these listings paged still gets all of them.
 * Only an account's selectors across its configurations may go on to a second page.
 */
export const DEFAULT_PAGE_LIMIT = MAX_PAGE_LIMIT

/** The query parameters a paged listing takes; any other is refused. */
export const PAGE_PARAMETERS = ['limit', 'next_token'] as const

export interface PageRequest {
  readonly limit: number
  /** The previous page's `next_token`: the id this page continues after. */
  readonly after?: string
}

export interface Page<T> {
  readonly items: readonly T[]
  /** What to send as `next_token` for the next page; null on the last one. */
  readonly next: string | null
}

/**
 * `limit` and `next_token` of a listing's request, as the delivery listing takes them: a limit
 * from 1 to 1,000, and a token only as a previous page gave it (the last id it listed). Both
 * bad are refused in one 400 naming each; another parameter, or one given twice, in a 400
 * before them (`queryParams`).
 *
 * @example
 * pageRequestOf(c) // ?limit=50&next_token=6f1c… → { limit: 50, after: '6f1c…' }
 */
export const pageRequestOf = (c: Context): PageRequest => {
  const params = queryParams(c, PAGE_PARAMETERS)
  const issues: FieldIssue[] = []
  const limit = params.limit === undefined ? DEFAULT_PAGE_LIMIT : digitsOf(params.limit)
  if (!(limit >= 1 && limit <= MAX_PAGE_LIMIT))
    issues.push({ path: 'limit', message: `must be a whole number from 1 to ${MAX_PAGE_LIMIT}` })
  // Ids are lower case UUIDs; one in upper case is the same id.
  const after = params.next_token?.toLowerCase()
  if (after !== undefined && !Uuid.is(after))
    issues.push({ path: 'next_token', message: 'must be a next_token from a previous page' })
  if (issues.length > 0) throw ValidationError.of('page', issues)
  return after === undefined ? { limit } : { limit, after }
}

/**
 * One page of `items` in the order of their ids, after `request.after`. Ids are what a page
 * continues from because they never change: an item created or deleted between two requests
 * neither shifts the next page nor repeats one, and a token from one Herald instance continues
 * on another.
 *
 * @example
 * pageById(selectors, { limit: 2 }) // { items: [the two lowest ids], next: the second's id, or null if no more }
 */
export const pageById = <T extends { readonly id: string }>(
  items: Iterable<T>,
  request: PageRequest,
): Page<T> => {
  const { after } = request
  const rest: T[] = []
  for (const item of items) if (after === undefined || item.id > after) rest.push(item)
  rest.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const page = rest.slice(0, request.limit)
  const last = page.at(-1)
  return { items: page, next: rest.length > page.length && last !== undefined ? last.id : null }
}
