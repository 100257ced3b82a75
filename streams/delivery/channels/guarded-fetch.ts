import type { OutboundGuard } from '../../../src/outbound/index.ts'
import type { ChannelContext } from './channel.ts'
import { abortError, RedirectNotFollowedError, ResponseTooLargeError } from './classify.ts'

/** The WHATWG fetch shape vendor clients take (`@slack/webhook`'s and Octokit's `fetch` options). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** The last HTTP exchange a guarded fetch made: what a vendor error hides (status, Retry-After, body). */
export interface Exchange {
  readonly status: number
  readonly headers: Headers
  /** The body as text, at most 4 KiB: enough for an error message. */
  readonly body: string
  /** The body was cut at the cap on a body kept in memory (`maxBodyBytes`). */
  readonly truncated?: boolean
}

export interface GuardedFetchOptions {
  /** Time limit of each exchange, connection to last body byte. */
  readonly timeoutMs: number
  /** The configuration's `verify_tls`. */
  readonly verifyTls: boolean
  /** Aborts every exchange (the deliverer shutting down). */
  readonly signal?: AbortSignal
  /** Cap on a response body kept in memory (default: the guard's). */
  readonly maxBodyBytes?: number
  /**
   * A 2xx answer cut at the cap is an error (`ResponseTooLargeError`) instead of a response:
   * for callers that parse what they asked for (a ticket system's lists), where the cut text
   * would fail to parse as if the service had answered something else, or parse as less.
   */
  readonly wholeAnswers?: boolean
}

export interface GuardedFetch {
  readonly fetch: FetchLike
  /** The most recent exchange, or undefined before the first answer. */
  readonly last: () => Exchange | undefined
}

const bodyOf = async (
  input: string | URL | Request,
  init: RequestInit,
): Promise<string | Uint8Array | undefined> => {
  const body =
    init.body ?? (input instanceof Request && input.body !== null ? await input.arrayBuffer() : undefined)
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string' || body instanceof Uint8Array) return body
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (body instanceof URLSearchParams) return body.toString()
  // FormData and streams: no channel sends them, and the guard sends bodies whole.
  throw new TypeError('guarded fetch sends string, bytes or URLSearchParams bodies only')
}

const MAX_EXCHANGE_BODY = 4096

/**
 * A fetch function whose every request goes through the SSRF guard: the URL is checked, the
 * socket goes to the checked address only, TLS is verified against the URL's host name, and
 * nothing is followed. A redirect answer is returned to a caller that asked for
 * `redirect: 'manual'` and is an error (`RedirectNotFollowedError`) for any other caller, where
 * a real fetch would have followed it.
 *
 * @example
 * const http = guardedFetch(guard, { timeoutMs: 15_000, verifyTls: true })
 * new IncomingWebhook(url, { fetch: http.fetch })
 * new Octokit({ request: { fetch: http.fetch } })
 */
export const guardedFetch = (guard: OutboundGuard, options: GuardedFetchOptions): GuardedFetch => {
  let last: Exchange | undefined
  const fetch: FetchLike = async (input, init = {}) => {
    const url = input instanceof Request ? input.url : String(input)
    const method = init.method ?? (input instanceof Request ? input.method : 'GET')
    const headers = new Headers(input instanceof Request ? input.headers : undefined)
    for (const [name, value] of new Headers(init.headers)) headers.set(name, value)
    const body = await bodyOf(input, init)
    const signals = [init.signal, options.signal].filter(
      (s): s is AbortSignal => s !== undefined && s !== null,
    )
    let exchange: Awaited<ReturnType<OutboundGuard['fetch']>>
    try {
      exchange = await guard.fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs: options.timeoutMs,
        verifyTls: options.verifyTls,
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes }),
        ...(signals.length === 0
          ? {}
          : { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) }),
      })
    } catch (error) {
      const aborted = signals.find((s) => s.aborted)
      throw aborted === undefined ? error : abortError(aborted.reason)
    }
    const { response, redirect, truncated } = exchange
    const text = response.body === null ? '' : await response.clone().text()
    last = {
      status: response.status,
      headers: response.headers,
      body: text.slice(0, MAX_EXCHANGE_BODY),
      truncated,
    }
    if (truncated && options.wholeAnswers === true && response.status >= 200 && response.status <= 299) {
      await response.body?.cancel()
      throw new ResponseTooLargeError(method, url, response.status)
    }
    if (redirect !== undefined && init.redirect !== 'manual') {
      await response.body?.cancel()
      throw new RedirectNotFollowedError(redirect.status)
    }
    return response
  }
  return { fetch, last: () => last }
}

/**
 * The guarded fetch of one send: the send's time limit and abort signal, and the
 * configuration's `verify_tls` (on unless it says otherwise); a ticket channel, which parses
 * its answers, asks for `wholeAnswers`.
 *
 * @example
 * const http = channelFetch(options.guard, configuration, context, { wholeAnswers: true })
 */
export const channelFetch = (
  guard: OutboundGuard,
  configuration: { readonly verifyTls?: boolean },
  context: ChannelContext,
  extra: Pick<GuardedFetchOptions, 'wholeAnswers'> = {},
): GuardedFetch =>
  guardedFetch(guard, {
    timeoutMs: context.timeoutMs,
    verifyTls: configuration.verifyTls ?? true,
    ...(context.signal === undefined ? {} : { signal: context.signal }),
    ...extra,
  })
