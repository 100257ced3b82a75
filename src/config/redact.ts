import { schema } from './schema.ts'
import type { Node } from './spec.ts'
import type { Config } from './types.ts'

export const REDACTED = '[redacted]'

/**
 * What may stand before a URL's user-info, however it is spelled: the spaces and control
 * characters URL parsers strip, a scheme, and any run of slashes or backslashes. A WHATWG
 * parser reads `http:/u:p@h`, `http:\\u:p@h`, `http:u:p@h` and ` http://u:p@h` all as
 * `http://u:p@h/`, so matching only `scheme://` would miss credentials it would use.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the parser strips exactly these
const URL_PREFIX = /^[\u0000-\u0020]*(?:[A-Za-z][A-Za-z0-9+.-]*:)?[/\\]*/

/**
 * Whether the text between the prefix and the last `@` is user-info rather than the local part
 * of an e-mail address: it is when a scheme or `//` came first, or when it holds a `:`
 * (`user:password@`, including a scheme the prefix could not read, such as `h\ttp://`).
 */
const isUserinfo = (prefix: string, userinfo: string): boolean =>
  userinfo !== '' && (prefix.includes(':') || /[/\\]{2}/.test(prefix) || userinfo.includes(':'))

/**
 * Hides the user-info of anything URL-shaped (`scheme://user:password@host…`, and the odd
 * spellings parsers accept: `http:/…`, `http:\\…`, `http:…`, `//…`, leading spaces). It cuts
 * up to the last `@`, not the first, so that a password with an unencoded `@` or `/` still
 * disappears whole; over-redacting a URL that merely has `@` in its path, or a `mailto:`, is
 * the cheaper mistake. An e-mail address (`ops@example.com`) is left alone.
 */
export const scrubCredentials = (value: string): string => {
  const at = value.lastIndexOf('@')
  if (at < 0) return value
  // The prefix holds no `@`, so it always ends before `at`.
  const prefix = URL_PREFIX.exec(value)?.[0] ?? ''
  return isUserinfo(prefix, value.slice(prefix.length, at)) ? `${prefix}${REDACTED}${value.slice(at)}` : value
}

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

/** Every secret `config` holds: secret keys' values and the user-info of its URLs. */
const secretsOf = (node: Node, value: unknown, into: Set<string>): void => {
  if (node.node === 'group') {
    if (value === null || typeof value !== 'object') return
    for (const [name, child] of Object.entries(node.shape))
      secretsOf(child, (value as Record<string, unknown>)[name], into)
    return
  }
  for (const item of Array.isArray(value) ? value : [value]) {
    if (typeof item !== 'string' || item === '') continue
    if (node.secret === 'value') into.add(item)
    const scrubbed = scrubCredentials(item)
    if (scrubbed !== item) {
      // What the scrub took out: the text between the URL's prefix and its last `@`.
      const userinfo = item.slice(scrubbed.indexOf(REDACTED), item.lastIndexOf('@'))
      into.add(userinfo)
      // The password alone, as an error may quote it.
      const password = userinfo.slice(userinfo.indexOf(':') + 1)
      if (userinfo.includes(':') && password !== '') into.add(password)
    }
  }
}

/**
 * A function hiding, in any text (an error's message, say), each secret `config` holds and the
 * user-info of any URL written in it.
 *
 * @example
 * logger('error', 'herald.crashed', { error: secretFree(config)(errorText(error)) })
 */
export const secretFree = (config: Config): ((text: string) => string) => {
  const secrets = new Set<string>()
  secretsOf(schema, config, secrets)
  // Longest first, so a secret holding another is hidden whole.
  const ordered = [...secrets].sort((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const secret of ordered) out = out.split(secret).join(REDACTED)
    return out.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/@]+@/g, `$1${REDACTED}@`)
  }
}
