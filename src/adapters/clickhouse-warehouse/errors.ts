import {
  errorText,
  type HeraldError,
  isHeraldError,
  WarehouseError,
  WarehouseUnavailableError,
} from '../../errors/index.ts'

export type Operation = 'query' | 'command' | 'insert' | 'ping' | 'open' | 'close'

export interface ErrorScope {
  readonly operation: Operation
  /** Names the warehouse in messages: `chDB (/var/lib/herald/warehouse)`, `ClickHouse http://ch:8123`. */
  readonly target: string
  /** Removes credentials from any text that may end up in a message or a log. */
  readonly redact: (text: string) => string
  readonly sql?: string
}

/**
 * Server error types that say "not now" rather than "never": the same statement can succeed
 * once the server has caught up. Everything else the server rejects is the statement's fault.
 */
const TRANSIENT_SERVER_ERRORS = new Set([
  'TIMEOUT_EXCEEDED',
  'SOCKET_TIMEOUT',
  'NETWORK_ERROR',
  'TOO_MANY_SIMULTANEOUS_QUERIES',
  'TOO_MANY_PARTS',
  'TABLE_IS_READ_ONLY',
  'ALL_CONNECTION_TRIES_FAILED',
  'ALL_REPLICAS_ARE_STALE',
  'NO_ZOOKEEPER',
  'KEEPER_EXCEPTION',
  'CANNOT_SCHEDULE_TASK',
  'SERVER_OVERLOADED',
])

/** Socket-level failures: the server was not reached or the connection broke. */
const TRANSIENT_SOCKET_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
])

// `@clickhouse/client` raises its request timeout as a bare Error with this fixed text and no
// code, so its text is the only signal there is. It is matched here, at the boundary, so that
// callers can rely on `retriable` alone.
const CLIENT_TIMEOUT_MESSAGE = 'Timeout error.'

interface ServerError {
  readonly code: string
  readonly type: string
  readonly message: string
}

// Duck-typed: chDB builds its errors with its own copy of `@clickhouse/client-common`, so
// `instanceof ClickHouseError` from `@clickhouse/client` does not hold for them.
const asServerError = (error: unknown): ServerError | undefined => {
  if (!(error instanceof Error)) return undefined
  const { code, type } = error as Error & { code?: unknown; type?: unknown }
  return typeof code === 'string' && /^\d+$/.test(code) && typeof type === 'string'
    ? { code, type, message: error.message }
    : undefined
}

const socketCode = (error: unknown): string | undefined => {
  if (!(error instanceof Error)) return undefined
  const code = (error as Error & { code?: unknown }).code
  return typeof code === 'string' && TRANSIENT_SOCKET_ERRORS.has(code) ? code : undefined
}

const tidy = (message: string): string => message.trim().replace(/\.$/, '')

/**
 * Translates whatever `@clickhouse/client` or chDB threw into Herald's hierarchy:
 * `WarehouseUnavailableError` (retriable) when the warehouse could not be reached or was overloaded,
 * `WarehouseError` (not retriable) when it rejected the statement. The vendor error is kept
 * as `cause`; messages are redacted because Node and proxies sometimes echo the URL.
 */
export const toHeraldError = (error: unknown, scope: ErrorScope): HeraldError => {
  if (isHeraldError(error)) return error
  const context = {
    operation: scope.operation,
    ...(scope.sql === undefined ? {} : { sql: scope.sql.slice(0, 500) }),
  }
  const server = asServerError(error)
  if (server !== undefined) {
    const message = `${scope.operation} failed on ${scope.target}: ${server.type} (${server.code}): ${scope.redact(tidy(server.message))}`
    const options = { cause: error, context: { ...context, code: server.code, type: server.type } }
    return TRANSIENT_SERVER_ERRORS.has(server.type)
      ? new WarehouseUnavailableError(message, options)
      : new WarehouseError(message, options)
  }
  const socket = socketCode(error)
  if (socket !== undefined) {
    return new WarehouseUnavailableError(
      `${scope.target} is unreachable (${socket}) during ${scope.operation}`,
      {
        cause: error,
        context: { ...context, code: socket },
      },
    )
  }
  const text = errorText(error)
  if (text === CLIENT_TIMEOUT_MESSAGE) {
    return new WarehouseUnavailableError(`${scope.operation} on ${scope.target} timed out`, {
      cause: error,
      context: { ...context, code: 'timeout' },
    })
  }
  return new WarehouseError(`${scope.operation} failed on ${scope.target}: ${scope.redact(tidy(text))}`, {
    cause: error,
    context,
  })
}

/**
 * Builds a redactor for one set of credentials: any URL user-info, the `user:password` pair
 * (raw, URL-encoded and as the Basic auth token) and the bare password. A bare password under
 * four characters is left alone: replacing every `a` in a message would hide more than it
 * protects, and the pair and URL forms are still caught.
 */
export const redactor = (credentials: {
  readonly username?: string
  readonly password?: string
}): ((text: string) => string) => {
  const { username = '', password } = credentials
  const words: string[] = []
  if (password !== undefined && password !== '') {
    const pair = `${username}:${password}`
    words.push(pair, `${encodeURIComponent(username)}:${encodeURIComponent(password)}`)
    words.push(Buffer.from(pair).toString('base64'))
    if (password.length >= 4) words.push(password, encodeURIComponent(password))
  }
  words.sort((a, b) => b.length - a.length)
  // Known words first: a raw `@` inside a password would cut the user-info pattern short.
  return (text) =>
    words.reduce((out, word) => out.split(word).join('***'), text).replace(/\/\/[^/@\s]*@/g, '//***@')
}
