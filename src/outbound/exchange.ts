import { type IncomingHttpHeaders, validateHeaderName, validateHeaderValue } from 'node:http'
import { createRequire } from 'node:module'
import { isIPv6 } from 'node:net'
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls'
import type { Dispatcher, Pool } from 'undici'
import { errorText } from '../errors/index.ts'

// undici is loaded by the first exchanger made, not with this module: the guard imports it on
// the event loop, where, with the sender thread (the default), nothing exchanges.
const require = createRequire(import.meta.url)
let undici: typeof import('undici') | undefined
const loadUndici = (): typeof import('undici') => {
  undici ??= require('undici') as typeof import('undici')
  return undici
}

/**
 * One HTTP exchange with an address the SSRF guard already checked, as plain data: what the
 * guard hands to whoever performs it (the event loop, or the sender thread), and what comes
 * back. Nothing here judges targets; `guard.ts` does, before an exchange is asked for.
 */

/** A request to one checked address, every field structured-cloneable. */
export interface ExchangeRequest {
  readonly secure: boolean
  /** The checked address: the socket goes there and nowhere else. */
  readonly address: string
  readonly family: 4 | 6
  readonly port: number
  /** Path and query. */
  readonly path: string
  readonly method: string
  /** Lower-case names; `host` carries the URL's host name. */
  readonly headers: Readonly<Record<string, string>>
  /** `user:password` for basic auth, from the URL. */
  readonly auth?: string
  /** The TLS server name (SNI) and the name the certificate must carry; absent for an IP-literal host. */
  readonly servername?: string
  readonly rejectUnauthorized: boolean
  readonly body?: string | Uint8Array
  /** Connection to last body byte. */
  readonly timeoutMs: number
  readonly maxBodyBytes: number
}

/** What the target answered. */
export interface ExchangeAnswer {
  readonly status: number
  readonly statusMessage: string
  /** Names and values alternating, as received (each byte one character, as Node's own `rawHeaders`). */
  readonly rawHeaders: readonly string[]
  /** At most `maxBodyBytes`, in a buffer of its own. */
  readonly body: Uint8Array
  readonly truncated: boolean
}

/** The exchange outlived its `timeoutMs`. */
export class ExchangeTimeoutError extends Error {
  override readonly name = 'ExchangeTimeoutError'
}

/**
 * Refused before anything was sent: `cause` is Node's error for a header it will not write
 * (as `node:http` would throw it), or undici's for a request it will not send (a
 * `transfer-encoding`, `upgrade`, `keep-alive` or `expect` header).
 */
export class ExchangeRefusedError extends Error {
  override readonly name = 'ExchangeRefusedError'
  constructor(cause: unknown) {
    super(errorText(cause), { cause })
  }
}

/**
 * Performs exchanges. Rejects with `ExchangeTimeoutError` past the time limit, with the
 * caller's `signal.reason` when aborted, with `ExchangeRefusedError` when the request was
 * refused before anything was sent, and otherwise with the request error (its `code`:
 * ECONNREFUSED, a TLS verification code, …).
 */
export interface Exchanger {
  exchange(request: ExchangeRequest, signal?: AbortSignal): Promise<ExchangeAnswer>
  /** Closes pooled connections (and a thread, if the exchanges run on one). */
  close(): Promise<void>
}

/** Node's trust store plus `extra`, or nothing (Node's own default) when there is no extra CA. */
const trustedCas = (extra: readonly string[]): string[] =>
  // A `ca` option replaces Node's trust store; extra CAs must add to it, or Slack stops verifying.
  extra.length > 0 ? [...getCACertificates('default'), ...extra] : []

/** A body as its own bytes: a chunk is a view of the socket's read buffer, which a transfer would carry whole. */
const ownBytes = (chunks: readonly Buffer[], size: number): Uint8Array => {
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return bytes
}

/** Undici's errors for a request it will not send: raised before anything is written. */
const REFUSED_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED'])

/**
 * The answer's header lines as `ExchangeAnswer.rawHeaders` holds them. Undici's HTTP/1.1 client
 * puts the list it parsed (names and values alternating, as received) on the controller beside
 * the object it hands `onResponseStart`; its types allow a dispatcher that sets no list, and then
 * the list is made from the object, which differs from what was received: names in lower case,
 * the lines of a repeated header next to each other, and lines of different names in the order
 * the object keeps.
 */
const rawHeadersOf = (
  raw: Dispatcher.DispatchController['rawHeaders'],
  parsed: IncomingHttpHeaders,
): string[] => {
  if (Array.isArray(raw))
    return (raw as readonly (Buffer | string)[]).map((item) =>
      typeof item === 'string' ? item : item.toString('latin1'),
    )
  const lines: string[] = []
  for (const [name, value] of Object.entries(raw ?? parsed)) {
    if (value === undefined) continue
    for (const one of Array.isArray(value) ? value : [value]) lines.push(name, one)
  }
  return lines
}

const timedOut = (request: ExchangeRequest) =>
  new ExchangeTimeoutError(`no answer within ${request.timeoutMs} ms`)

/**
 * Exchanges on the calling thread's event loop, over undici's HTTP/1.1 connection pools: one
 * pool per pinned origin (scheme, address, port, TLS server name and whether the certificate is
 * verified), keeping an idle connection for 4 s (or for the time the server's `Keep-Alive`
 * header gives, less 2 s), a pool dropped with its last connection. Undici writes a request and
 * parses an answer for about half the CPU of `node:http` (`test/bench/exchange.bench.ts`).
 *
 * @example
 * const exchanger = createInlineExchanger({ ca: [] })
 * const answer = await exchanger.exchange({ secure: false, address: '203.0.113.7', family: 4, port: 80,
 *   path: '/hook', method: 'POST', headers: { host: 'hooks.example.com' }, rejectUnauthorized: true,
 *   body: '{}', timeoutMs: 15_000, maxBodyBytes: 4096 })
 */
export const createInlineExchanger = ({ ca: extraCa }: { readonly ca: readonly string[] }): Exchanger => {
  // One context made once for every connection. Given as `ca` instead, every HTTPS request cost
  // about 3 ms of CPU more: each new connection parses every certificate again.
  const cas = trustedCas(extraCa)
  const secureContext: SecureContext | undefined =
    cas.length > 0 ? createSecureContext({ ca: cas }) : undefined
  const { buildConnector, Pool } = loadUndici()
  const pools = new Map<string, Pool>()

  const poolFor = (request: ExchangeRequest): Pool => {
    const { secure, address, port, servername, rejectUnauthorized } = request
    const key = `${secure ? 'https' : 'http'} ${address} ${port} ${servername ?? ''} ${rejectUnauthorized}`
    const known = pools.get(key)
    if (known !== undefined) return known
    const connector = buildConnector({
      // A connection that is not made within the exchange's own limit is given up on too, not
      // left to the system's (about two minutes) after the exchange was.
      timeout: request.timeoutMs,
      ...(secure ? { rejectUnauthorized, ...(secureContext === undefined ? {} : { secureContext }) } : {}),
    })
    // The origin only names the pool (without an IPv6 zone, which a URL cannot hold): every
    // connection goes to the checked address, never to a name resolved again.
    const unzoned = address.split('%', 1)[0] ?? ''
    const host = isIPv6(unzoned) ? `[${unzoned}]` : address
    const pool = new Pool(`${secure ? 'https' : 'http'}://${host}:${port}`, {
      connect: (options, callback) => connector({ ...options, hostname: address }, callback),
      // The exchange's own timer is the one limit, connection to last body byte.
      headersTimeout: 0,
      bodyTimeout: 0,
    })
    // Dropped with its last connection (as undici's Agent drops its pools), so pools are only
    // as many as the origins with a connection open or opening.
    let connected = 0
    const drop = () => {
      if (pools.get(key) !== pool) return
      pools.delete(key)
      void pool.close()
    }
    pool
      .on('connect', () => {
        connected++
      })
      .on('disconnect', () => {
        if (--connected === 0) drop()
      })
      .on('connectionError', () => {
        if (connected === 0) drop()
      })
    pools.set(key, pool)
    return pool
  }

  const exchange = (request: ExchangeRequest, signal?: AbortSignal): Promise<ExchangeAnswer> => {
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    let headers = request.headers
    try {
      // Node's own checks, so a header it would not write is refused with Node's error.
      for (const name in headers) {
        validateHeaderName(name)
        validateHeaderValue(name, headers[name] as string)
      }
    } catch (error) {
      return Promise.reject(new ExchangeRefusedError(error))
    }
    if (request.auth !== undefined)
      headers = { ...headers, authorization: `Basic ${Buffer.from(request.auth).toString('base64')}` }
    const pool = poolFor(request)

    return new Promise<ExchangeAnswer>((resolve, reject) => {
      let settled = false
      // Undici hands over the request's controller once it is being written; one stopped before
      // that is aborted as soon as it is.
      let abort: ((reason: Error) => void) | undefined
      let stopped: Error | undefined
      const stop = (reason: Error) => {
        stopped ??= reason
        abort?.(reason)
      }
      // One timer and one listener per exchange: the time limit, and the caller's abort, both
      // end it at once and abort the request (its connection is not reused).
      const timer = setTimeout(() => {
        fail(timedOut(request))
        stop(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }))
      }, request.timeoutMs)
      const onAbort = () => {
        fail(signal?.reason)
        stop(new Error('aborted by the caller'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = () => {
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const fail = (error: unknown) => {
        if (settled) return
        settle()
        reject(error)
      }

      let status = 0
      let statusMessage = ''
      let rawHeaders: string[] = []
      const chunks: Buffer[] = []
      let size = 0
      let truncated = false
      const finish = () => {
        if (settled) return
        settle()
        resolve({ status, statusMessage, rawHeaders, body: ownBytes(chunks, size), truncated })
      }

      // Undici 7's controller interface. Its HTTP/1.1 client still calls the older callbacks and
      // adapts them to this one, parsing the headers into an object too: within 1 µs per request
      // of calling the older ones directly (`test/bench/exchange.bench.ts`).
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (controller) => {
          abort = (reason) => controller.abort(reason)
          if (stopped !== undefined) controller.abort(stopped)
        },
        onResponseStart: (controller, statusCode, parsed, statusText) => {
          // An informational answer (100, 103) comes before the real one.
          if (statusCode < 200) return
          status = statusCode
          statusMessage = statusText ?? ''
          rawHeaders = rawHeadersOf(controller.rawHeaders, parsed)
        },
        onResponseData: (_controller, chunk) => {
          if (truncated) return
          const room = request.maxBodyBytes - size
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room))
            size = request.maxBodyBytes
            truncated = true
            finish()
            // Stop reading what we will not keep; the connection is not reused.
            stop(new Error('the answer is longer than maxBodyBytes'))
            return
          }
          chunks.push(chunk)
          size += chunk.length
        },
        onResponseEnd: finish,
        onResponseError: (_controller, error) => {
          const code = (error as { code?: unknown }).code
          if (code === 'UND_ERR_CONNECT_TIMEOUT') fail(timedOut(request))
          else
            fail(
              typeof code === 'string' && REFUSED_CODES.has(code) ? new ExchangeRefusedError(error) : error,
            )
        },
      }
      pool.dispatch(
        {
          path: request.path,
          method: request.method as Dispatcher.HttpMethod,
          headers,
          body: request.body ?? null,
          ...(request.servername === undefined ? {} : { servername: request.servername }),
        } as Dispatcher.DispatchOptions,
        handler,
      )
    })
  }

  return {
    exchange,
    close: async () => {
      const closing = [...pools.values()].map((pool) => pool.destroy())
      pools.clear()
      await Promise.all(closing)
    },
  }
}
