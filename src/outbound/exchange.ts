import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https'
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls'

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
  /** Names and values alternating, as Node received them. */
  readonly rawHeaders: readonly string[]
  /** At most `maxBodyBytes`, in a buffer of its own. */
  readonly body: Uint8Array
  readonly truncated: boolean
}

/** The exchange outlived its `timeoutMs`. */
export class ExchangeTimeoutError extends Error {
  override readonly name = 'ExchangeTimeoutError'
}

/** Node refused the request before sending anything (a header value it will not write): `cause` is its error. */
export class ExchangeRefusedError extends Error {
  override readonly name = 'ExchangeRefusedError'
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause })
  }
}

/**
 * Performs exchanges. Rejects with `ExchangeTimeoutError` past the time limit, with the
 * caller's `signal.reason` when aborted, with `ExchangeRefusedError` when Node refused the
 * request before sending anything, and otherwise with the request error (its `code`:
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

/** A body as its own bytes: a pooled Buffer's view would carry (and clone) the whole pool slab. */
const ownBytes = (chunks: readonly Buffer[], size: number): Uint8Array => {
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return bytes
}

/**
 * Exchanges on the calling thread's event loop, over keep-alive connection pools.
 *
 * @example
 * const exchanger = createInlineExchanger({ ca: [] })
 * const answer = await exchanger.exchange({ secure: false, address: '203.0.113.7', family: 4, port: 80,
 *   path: '/hook', method: 'POST', headers: { host: 'hooks.example.com' }, rejectUnauthorized: true,
 *   body: '{}', timeoutMs: 15_000, maxBodyBytes: 4096 })
 */
export const createInlineExchanger = ({ ca: extraCa }: { readonly ca: readonly string[] }): Exchanger => {
  // One context made once for every connection. Given as `ca` instead, every HTTPS request cost
  // about 3 ms of CPU more: the pool's key for it is made of every certificate's text, and
  // each new connection parses them all again.
  const cas = trustedCas(extraCa)
  const secureContext: SecureContext | undefined =
    cas.length > 0 ? createSecureContext({ ca: cas }) : undefined
  const httpAgent = new HttpAgent({ keepAlive: true })
  const httpsAgent = new HttpsAgent({ keepAlive: true })

  const exchange = (request: ExchangeRequest, signal?: AbortSignal): Promise<ExchangeAnswer> => {
    if (signal?.aborted === true) return Promise.reject(signal.reason)
    const options: RequestOptions = {
      host: request.address,
      family: request.family,
      port: request.port,
      path: request.path,
      method: request.method,
      headers: request.headers,
      ...(request.auth === undefined ? {} : { auth: request.auth }),
      ...(request.secure
        ? {
            agent: httpsAgent,
            ...(request.servername === undefined ? {} : { servername: request.servername }),
            rejectUnauthorized: request.rejectUnauthorized,
            ...(secureContext === undefined ? {} : { secureContext }),
          }
        : { agent: httpAgent }),
    }
    return new Promise<ExchangeAnswer>((resolve, reject) => {
      let settled = false
      // One timer and one listener per exchange: the time limit, and the caller's abort, both
      // end it by destroying the request (its socket is not reused).
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }))
      }, request.timeoutMs)
      const onAbort = () => req.destroy(signal?.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = () => {
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      const fail = (error: unknown) => {
        if (settled) return
        settle()
        reject(
          timedOut
            ? new ExchangeTimeoutError(`no answer within ${request.timeoutMs} ms`)
            : signal?.aborted === true
              ? signal.reason
              : error,
        )
      }

      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        let size = 0
        let truncated = false
        const finish = () => {
          if (settled) return
          settle()
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            rawHeaders: res.rawHeaders,
            body: ownBytes(chunks, size),
            truncated,
          })
        }
        res.on('data', (chunk: Buffer) => {
          if (truncated) return
          const room = request.maxBodyBytes - size
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room))
            size = request.maxBodyBytes
            truncated = true
            finish()
            // Stop reading what we will not keep; the socket is not reused.
            req.destroy()
            return
          }
          chunks.push(chunk)
          size += chunk.length
        })
        res.on('end', finish)
        res.on('error', fail)
      }

      let req: ClientRequest
      try {
        req = request.secure ? httpsRequest(options, onResponse) : httpRequest(options, onResponse)
      } catch (error) {
        // Refused before anything was sent (a header value Node will not write).
        settle()
        reject(new ExchangeRefusedError(error))
        return
      }
      req.on('error', fail)
      req.end(request.body)
    })
  }

  return {
    exchange,
    close: async () => {
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}
