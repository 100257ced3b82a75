import { createHash } from 'node:crypto'
import {
  type FieldNode,
  type GraphQLField,
  type GraphQLResolveInfo,
  getArgumentValues,
  getNamedType,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql'
import { ValidationError } from '../errors/index.ts'

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000

export interface PageInfo {
  readonly nextToken: string | null
  readonly count: number
}

export type Key = readonly (string | number)[]

/** What one part of a key must be, for a query whose key is not all strings (`after`'s `kinds`). */
export type KeyKind = 'string' | 'integer'

const isKind = (value: unknown, kind: KeyKind): boolean =>
  kind === 'string' ? typeof value === 'string' : Number.isSafeInteger(value)

/**
 * What a field's `limit` is when null is given for it: the argument's default in the schema
 * (an image's `packages` are 10), else `DEFAULT_LIMIT`.
 */
export const limitDefault = (field: GraphQLField<unknown, unknown> | undefined): number => {
  const value = field?.args.find((a) => a.name === 'limit')?.defaultValue
  return typeof value === 'number' ? value : DEFAULT_LIMIT
}

/**
 * The fields named `name` that `sets` select, through inline fragments and fragments (each
 * fragment entered once: a chain of fragments each spreading the next twice is a short
 * document that would expand to exponentially many fields, and the same fields twice add
 * nothing to a largest limit).
 */
const fieldsNamed = (
  sets: readonly SelectionSetNode[],
  name: string,
  info: GraphQLResolveInfo,
): FieldNode[] => {
  const found: FieldNode[] = []
  const entered = new Set<string>()
  const visit = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value === name) found.push(selection)
      } else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet)
      else if (!entered.has(selection.name.value)) {
        entered.add(selection.name.value)
        const fragment = info.fragments[selection.name.value]
        if (fragment !== undefined) visit(fragment.selectionSet)
      }
    }
  }
  for (const set of sets) visit(set)
  return found
}

/**
 * The field at `path` below the field being resolved and every node of it the query selects
 * (every alias, through fragments); no nodes when it is not selected.
 */
const selectedAt = (info: GraphQLResolveInfo, path: readonly string[]) => {
  let nodes: readonly FieldNode[] = info.fieldNodes
  let type = getNamedType(info.returnType)
  let field: GraphQLField<unknown, unknown> | undefined
  for (const name of path) {
    field = isObjectType(type) ? type.getFields()[name] : undefined
    if (field === undefined) return { field, nodes: [] }
    nodes = fieldsNamed(
      nodes.flatMap((node) => (node.selectionSet === undefined ? [] : [node.selectionSet])),
      name,
      info,
    )
    type = getNamedType(field.type)
  }
  return { field, nodes }
}

/**
 * Whether the query selects the field at `path` below the field being resolved, so that a root
 * reads a column (an event's `data`) only when it is answered.
 *
 * @example
 * isSelected(info, ['results', 'data']) // { results { id data } } → true
 */
export const isSelected = (info: GraphQLResolveInfo, path: readonly string[]): boolean =>
  selectedAt(info, path).nodes.length > 0

/**
 * The largest `limit` the query gives the nested list at `path` below the field being resolved
 * (every alias of it, its default for one without or with null), at most `MAX_LIMIT`; 0 when it
 * is not selected. A root reads that many of each row's list, no more: the query cost limit
 * counted what each `limit` lets through, and a list's own field resolver cuts it to its own.
 *
 * @example
 * selectedLimit(info, ['results', 'reasons']) // { results { a: reasons(limit: 5) b: reasons } } → 100
 */
export const selectedLimit = (info: GraphQLResolveInfo, path: readonly string[]): number => {
  const { field, nodes } = selectedAt(info, path)
  if (field === undefined) return 0
  let largest = 0
  for (const node of nodes) {
    const value = getArgumentValues(field, node, info.variableValues).limit ?? limitDefault(field)
    if (typeof value === 'number') largest = Math.max(largest, Math.min(value, MAX_LIMIT))
  }
  return largest
}

/** A limit between 1 and `MAX_LIMIT`, or a validation error naming it. */
export const checkLimit = (limit: number | null | undefined): number => {
  const value = limit ?? DEFAULT_LIMIT
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new ValidationError(`limit must be between 1 and ${MAX_LIMIT}`, [
      { path: 'limit', message: `must be between 1 and ${MAX_LIMIT}` },
    ])
  }
  return value
}

const fingerprintOf = (query: string, shape: unknown): string =>
  createHash('sha256')
    .update(query)
    .update('\u0000')
    .update(JSON.stringify(shape) ?? '')
    .digest('base64url')
    .slice(0, 12)

/**
 * Keyset paging tokens. A token is the sort key of the last row served plus a fingerprint of
 * the query and its arguments: the next page starts strictly after that key, so rows added or
 * removed elsewhere while a client pages never shift what it sees (no row twice, none skipped
 * that existed throughout), and a token replayed against another query or filter is refused.
 * The key reaches SQL only as bound parameters.
 *
 * @example
 * const paging = createPaging('tagsByVulnerability', { filter, scope, asOf })
 * const after = paging.after(args.nextToken) // undefined on the first page
 * const { pageInfo, rows } = paging.page(fetched, limit, (row) => [row.account, row.vulnerability_id])
 */
export const createPaging = (query: string, shape: unknown) => {
  const fingerprint = fingerprintOf(query, shape)
  return {
    /**
     * The key to continue after, or undefined for the first page: one part of each of `kinds`,
     * or `kinds` strings. A token's key is the client's to send back, and its fingerprint
     * anyone can work out, so every part is checked to be of the kind its query binds it as: a
     * forged key is refused here, never handed to the warehouse.
     */
    after: (token: string | null | undefined, kinds: number | readonly KeyKind[]): Key | undefined => {
      if (token === null || token === undefined || token === '') return undefined
      let parsed: unknown
      try {
        parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))
      } catch {
        parsed = undefined
      }
      const { f, k } = (parsed ?? {}) as { f?: unknown; k?: unknown }
      const expected: readonly KeyKind[] =
        typeof kinds === 'number' ? Array.from({ length: kinds }, () => 'string') : kinds
      const valid =
        Array.isArray(k) &&
        k.length === expected.length &&
        k.every((v, i) => isKind(v, expected[i] as KeyKind))
      if (!valid) {
        throw new ValidationError('nextToken is not a token this API issued', [
          { path: 'nextToken', message: 'not a token this API issued' },
        ])
      }
      if (f !== fingerprint) {
        throw new ValidationError('nextToken belongs to another query or filter', [
          { path: 'nextToken', message: 'issued for another query or filter' },
        ])
      }
      return k as Key
    },
    /** Cuts the `limit + 1` rows fetched into a page and the token for the next one. */
    page: <Row>(rows: readonly Row[], limit: number, keyOf: (row: Row) => Key) => {
      const results = rows.slice(0, limit)
      const last = results.at(-1)
      const nextToken =
        rows.length > limit && last !== undefined
          ? Buffer.from(JSON.stringify({ f: fingerprint, k: keyOf(last) })).toString('base64url')
          : null
      return { pageInfo: { nextToken, count: results.length } satisfies PageInfo, results }
    },
  }
}
