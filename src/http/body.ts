import type { Context } from 'hono'
import { type FieldIssue, UnsupportedMediaTypeError, ValidationError } from '../errors/index.ts'
import { isJsonMediaType, mediaType } from '../ingress/index.ts'

export interface ReadJsonOptions {
  /** What an empty body (nothing but whitespace) stands for; absent: an empty body is refused. */
  readonly empty?: unknown
}

export interface ReadJsonObjectOptions extends ReadJsonOptions {
  /**
   * The names the object may hold; any other is refused, naming it. A misspelt optional field
   * would otherwise be dropped and the request carried out without it (a filter left out).
   */
  readonly fields?: readonly string[]
}

/**
 * The names of `object` that are not in `fields`, as issues (`prefix.name is not a known field`).
 *
 * @example
 * unknownFields({ scope: 'account', patern: {} }, ['scope', 'event', 'pattern']) // [{ path: 'patern', … }]
 */
export const unknownFields = (
  object: Readonly<Record<string, unknown>>,
  fields: readonly string[],
  prefix = '',
): FieldIssue[] =>
  Object.keys(object)
    .filter((name) => !fields.includes(name))
    .map((name) => ({
      path: prefix === '' ? name : `${prefix}.${name}`,
      message: `is not a known field; expected ${fields.join(', ')}`,
    }))

/** The media types `readJson` reads, as `isJsonMediaType` judges them. */
const JSON_MEDIA_TYPES = ['application/json', 'text/json', 'another type ending in +json']

/**
 * A request's body as JSON; a 400 (`ValidationError` naming `(body)`) when it is not JSON,
 * so every route answers a malformed body the same way. A body must say it is JSON: any other
 * Content-Type, or none, is a 415 rather than text parsed on the chance that it is JSON.
 * Parameters such as `charset` do not matter. An empty body that stands for something
 * (`empty`) has no type to check; one the route requires is a 415 without a JSON type, and a
 * 400 with one.
 *
 * @example
 * const body = IssueTokenBody.decode(await readJson(c))
 */
export const readJson = async (c: Context, options: ReadJsonOptions = {}): Promise<unknown> => {
  const text = await c.req.text()
  const empty = text.trim() === ''
  if (options.empty !== undefined && empty) return options.empty
  const type = mediaType(c.req.header('content-type'))
  if (!isJsonMediaType(type)) throw new UnsupportedMediaTypeError(type, JSON_MEDIA_TYPES)
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new ValidationError('the request body must be JSON', [
      { path: '(body)', message: empty ? 'is empty' : 'must be a JSON document' },
    ])
  }
}

/**
 * `readJson` of a body that must be one JSON object, holding only `fields` when they are given.
 *
 * @example
 * const filter = await readJsonObject(c, { empty: {}, fields: ['status', 'limit'] }) // an empty body: no filter
 */
export const readJsonObject = async (
  c: Context,
  options: ReadJsonObjectOptions = {},
): Promise<Record<string, unknown>> => {
  const body = await readJson(c, options)
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError('the request body must be a JSON object', [
      { path: '(body)', message: 'must be an object' },
    ])
  const object = body as Record<string, unknown>
  const unknown = options.fields === undefined ? [] : unknownFields(object, options.fields)
  if (unknown.length > 0)
    throw new ValidationError(
      `the request body holds unknown fields: ${unknown.map((i) => i.path).join(', ')}`,
      unknown,
    )
  return object
}

/**
 * The body of a request that takes no fields: none, or an empty JSON object. A field is refused,
 * naming it, rather than ignored (an `account` sent where the caller's own is always used).
 *
 * @example
 * await readNoFields(c, 'a test event') // {"account": "globex"}: 400 naming account
 */
export const readNoFields = async (c: Context, what: string): Promise<void> => {
  const body = await readJsonObject(c, { empty: {} })
  const issues = Object.keys(body).map((name) => ({
    path: name,
    message: `is not a known field: ${what} takes none`,
  }))
  if (issues.length > 0) throw ValidationError.of(`request for ${what}`, issues)
}
