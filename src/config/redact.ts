import { schema } from './schema.ts'
import type { Node } from './spec.ts'
import type { Config } from './types.ts'

export const REDACTED = '[redacted]'

/**
 * Hides the user-info of anything URL-shaped (`scheme://user:password@host…`). It cuts up to
 * the last `@`, not the first, so that a password with an unencoded `@` or `/` still
 * disappears whole; over-redacting a URL that merely has `@` in its path is the cheaper mistake.
 */
export const scrubCredentials = (value: string): string =>
  value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/).*@/s, `$1${REDACTED}@`)

const redactNode = (node: Node, value: unknown): unknown => {
  if (node.node === 'group') {
    if (value === null || typeof value !== 'object') return value
    const out: Record<string, unknown> = {}
    for (const [name, child] of Object.entries(node.shape)) {
      out[name] = redactNode(child, (value as Record<string, unknown>)[name])
    }
    return Object.freeze(out)
  }
  // An empty list of secrets holds none, and saying so helps more than hiding it.
  if (Array.isArray(value) && value.length === 0) return value
  if (node.secret === 'value' && value !== null && value !== undefined) return REDACTED
  if (typeof value === 'string') return scrubCredentials(value)
  if (Array.isArray(value)) {
    return Object.freeze(
      value.map((item: unknown) => (typeof item === 'string' ? scrubCredentials(item) : item)),
    )
  }
  return value
}

/**
 * A copy of `config` that is safe to log: secrets become `"[redacted]"`, credentials inside
 * connection strings and URLs become `[redacted]@`; unset secrets stay `null` so the log still
 * shows whether one was given.
 *
 * @example
 * logger.info('config.loaded', { config: redactConfig(config) })
 */
export const redactConfig = (config: Config): Config => redactNode(schema, config) as Config
