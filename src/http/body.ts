import type { Context } from 'hono'
import { ValidationError } from '../errors/index.ts'

export interface ReadJsonOptions {
  /** What an empty body (nothing but whitespace) stands for; absent: an empty body is refused. */
  readonly empty?: unknown
}

/**
 * A request's body as JSON; a 400 (`ValidationError` naming `(body)`) when it is not JSON,
 * so every route answers a malformed body the same way.
 *
 * @example
 * const body = IssueTokenBody.decode(await readJson(c))
 */
export const readJson = async (c: Context, options: ReadJsonOptions = {}): Promise<unknown> => {
  const text = await c.req.text()
  if (options.empty !== undefined && text.trim() === '') return options.empty
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new ValidationError('the request body must be JSON', [
      { path: '(body)', message: text.trim() === '' ? 'is empty' : 'must be a JSON document' },
    ])
  }
}

/**
 * `readJson` of a body that must be one JSON object.
 *
 * @example
 * const filter = await readJsonObject(c, { empty: {} }) // an empty body: no filter
 */
export const readJsonObject = async (
  c: Context,
  options: ReadJsonOptions = {},
): Promise<Record<string, unknown>> => {
  const body = await readJson(c, options)
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError('the request body must be a JSON object', [
      { path: '(body)', message: 'must be an object' },
    ])
  return body as Record<string, unknown>
}
