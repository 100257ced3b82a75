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

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
const lenientUtf8 = new TextDecoder('utf-8')

/**
 * A request body's bytes as UTF-8, refused (400 naming `(body)`) when they are not: reading
 * them as text would replace each bad byte with U+FFFD, so what is kept would not be what was
 * sent, and nothing would say so (a password that no longer opens anything; two distinct event
 * ids made one, the second dropped as a repeat after its 202). Kafka refuses the same bytes.
 *
 * @example
 * const text = utf8Body(await c.req.arrayBuffer())
 */
export const utf8Body = (bytes: ArrayBuffer): string => {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    throw new ValidationError('the body is not valid UTF-8', [
      { path: '(body)', message: 'is not valid UTF-8' },
    ])
  }
}

const LONE_SURROGATE =
  'holds a lone surrogate (an escaped \\ud800-\\udfff without its pair), which is not Unicode text: it would be kept, sent or sealed as U+FFFD'

/**
 * Where `value`, parsed JSON, holds a string (or a name) that is not well-formed Unicode. Only
 * an escape can make one (UTF-8 cannot), so a body without `\ud8`-`\udf` escapes is not walked.
 * The walk keeps its own stack: a body may be nested deeper than the call stack goes.
 */
const loneSurrogates = (text: string, value: unknown): FieldIssue[] => {
  if (!/\\u[dD][89a-fA-F]/.test(text)) return []
  const issues: FieldIssue[] = []
  const pending: [unknown, string][] = [[value, '']]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, path] = next
    if (typeof node === 'string') {
      if (!node.isWellFormed()) issues.push({ path: path === '' ? '(body)' : path, message: LONE_SURROGATE })
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) pending.push([node[i], `${path}[${i}]`])
    } else if (typeof node === 'object' && node !== null) {
      const entries = Object.entries(node)
      // A name that holds one is reported on the object holding it, and not shown.
      if (entries.some(([name]) => !name.isWellFormed()))
        issues.push({ path: path === '' ? '(body)' : path, message: `has a name that ${LONE_SURROGATE}` })
      for (let i = entries.length - 1; i >= 0; i--) {
        const [name, child] = entries[i] as [string, unknown]
        if (name.isWellFormed()) pending.push([child, path === '' ? name : `${path}.${name}`])
      }
    }
  }
  return issues
}

/** The media types `readJson` reads, as `isJsonMediaType` judges them. */
const JSON_MEDIA_TYPES = ['application/json', 'text/json', 'another type ending in +json']

/**
 * A request's body as JSON; a 400 (`ValidationError` naming `(body)`) when it is not JSON,
 * so every route answers a malformed body the same way. A body must say it is JSON: any other
 * Content-Type, or none, is a 415 rather than text parsed on the chance that it is JSON.
 * Parameters such as `charset` do not matter: JSON is UTF-8 (RFC 8259), and a body that is
 * not is refused, as is a string escaping half a surrogate pair (400 naming where), since
 * either would be altered silently on its way to the store or an endpoint. An empty body that
 * stands for something (`empty`) has no type to check; one the route requires is a 415
 * without a JSON type, and a 400 with one.
 *
 * @example
 * const body = IssueTokenBody.decode(await readJson(c))
 */
export const readJson = async (c: Context, options: ReadJsonOptions = {}): Promise<unknown> => {
  const type = mediaType(c.req.header('content-type'))
  const json = isJsonMediaType(type)
  const bytes = await c.req.arrayBuffer()
  // Of another type, a body is read only to tell whether it is empty; bad bytes are not blank.
  const text = json ? utf8Body(bytes) : lenientUtf8.decode(bytes)
  const empty = text.trim() === ''
  if (options.empty !== undefined && empty) return options.empty
  if (!json) throw new UnsupportedMediaTypeError(type, JSON_MEDIA_TYPES)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ValidationError('the request body must be JSON', [
      { path: '(body)', message: empty ? 'is empty' : 'must be a JSON document' },
    ])
  }
  const issues = loneSurrogates(text, parsed)
  if (issues.length > 0) throw ValidationError.of('request body', issues)
  return parsed
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
