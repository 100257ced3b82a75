import { isIP } from 'node:net'
import { classifyAddress, parseAddress } from './address.ts'
import { createAllowlist } from './allowlist.ts'
import {
  blockedHostMessage,
  OutboundBlockedError,
  OutboundRequestError,
  OutboundTimeoutError,
  OutboundUnresolvableError,
  type TargetKind,
  unreachableHostMessage,
} from './errors.ts'
import {
  createInlineExchanger,
  ExchangeRefusedError,
  type ExchangeRequest,
  ExchangeTimeoutError,
} from './exchange.ts'
import { createDnsLookup, type Lookup, type ResolvedAddress } from './resolve.ts'
import { startSenderThread } from './sender-thread.ts'

export type { Lookup, ResolvedAddress }

export interface OutboundGuardOptions {
  /** `outbound.allowlist`: hosts, `*.domain`, addresses and CIDR ranges exempt from the range check. */
  readonly allowlist?: readonly string[]
  /** By default `createDnsLookup()`: the hosts file, then DNS through c-ares. */
  readonly lookup?: Lookup
  /** The guard stops waiting for a lookup, and aborts it, after this many milliseconds. */
  readonly lookupTimeoutMs?: number
  /** Default time limit of one request, connection to last body byte. */
  readonly timeoutMs?: number
  /** Default cap on the response body kept in memory; the rest is not read. */
  readonly maxBodyBytes?: number
  /** Extra trusted CA certificates (PEM), for on-premises targets behind an internal CA. */
  readonly ca?: string | readonly string[]
  /** Monotonic milliseconds, for `durationMs`. */
  readonly now?: () => number
  /**
   * Exchanges run on the `http-sender` thread (default), leaving the event loop free of
   * connecting, TLS and HTTP parsing; `false` runs them on the event loop.
   */
  readonly senderThread?: boolean
  /** The sender thread stopped unexpectedly (it is started again); what it held failed as retriable. */
  readonly onSenderStopped?: (error: Error) => void
}

/**
 * A URL that passed the guard, and the one address that was checked. Connect to `address` and
 * nothing else: resolving the host again could answer differently (DNS rebinding).
 */
export interface CheckedTarget {
  /** As given, credentials included; never log or return it. */
  readonly url: URL
  /** The URL's host name without IPv6 brackets. */
  readonly hostname: string
  readonly address: string
  readonly family: 4 | 6
  /** True when an allowlist entry, not the range check, let the target through. */
  readonly allowlisted: boolean
}

export interface GuardedRequestInit {
  readonly method?: string
  readonly headers?: ConstructorParameters<typeof Headers>[0]
  readonly body?: string | Uint8Array
  readonly timeoutMs?: number
  readonly maxBodyBytes?: number
  /** `false` accepts any certificate: the configuration's `verify_tls: false`. */
  readonly verifyTls?: boolean
  readonly signal?: AbortSignal
}

export interface GuardedResponse {
  /** Status, headers and the (possibly truncated) body, buffered. */
  readonly response: Response
  /** Set for a 3xx answer, which the guard never follows; `location` resolved against the URL. */
  readonly redirect: { readonly status: number; readonly location: string | undefined } | undefined
  /** The body exceeded `maxBodyBytes`; `response` holds the first `maxBodyBytes` bytes. */
  readonly truncated: boolean
  readonly durationMs: number
}

export interface OutboundGuard {
  /**
   * Refuses with `OutboundBlockedError` or `OutboundUnresolvableError` (retriable), which a
   * client cannot tell from a host name's refusal; resolves with the target to connect to.
   */
  readonly checkUrl: (url: string) => Promise<CheckedTarget>
  /**
   * `checkUrl` for an SMTP server, which is named by host and port rather than by a URL: its
   * refusals name the SMTP host. Connect to the target's `address` and `url.port`.
   */
  readonly checkSmtpHost: (host: string, port: number) => Promise<CheckedTarget>
  /** One HTTP exchange with a target `checkUrl` returned, connecting to its checked address only. */
  readonly guardedFetch: (target: CheckedTarget, init?: GuardedRequestInit) => Promise<GuardedResponse>
  /** `checkUrl` then `guardedFetch`: what delivery-time code should call. */
  readonly fetch: (url: string, init?: GuardedRequestInit) => Promise<GuardedResponse>
  /** Closes pooled connections, and the sender thread. */
  readonly close: () => Promise<void>
}

const defaults = {
  allowlist: [],
  lookupTimeoutMs: 5_000,
  timeoutMs: 10_000,
  maxBodyBytes: 1024 * 1024,
  ca: [],
  now: () => performance.now(),
  senderThread: true,
} satisfies Required<Omit<OutboundGuardOptions, 'onSenderStopped' | 'lookup'>>

// URLs with an address for a host whose target `checkUrl` keeps.
const MAX_ADDRESS_URLS = 1024

// Null-body statuses: a Web Response refuses a body with them.
const NULL_BODY = new Set([101, 103, 204, 205, 304])

const isLocalName = (hostname: string): boolean => {
  const name = hostname.replace(/\.+$/, '').toLowerCase()
  return name === 'localhost' || name.endsWith('.localhost')
}

const blocked = (
  kind: TargetKind,
  reason: ConstructorParameters<typeof OutboundBlockedError>[0]['reason'],
  host?: string,
) => new OutboundBlockedError(host === undefined ? { reason } : { reason, host }, blockedHostMessage(kind))

// A host name refused for what it resolved to: said as an unresolvable name is (errors.ts).
const unreachable = (
  kind: TargetKind,
  reason: ConstructorParameters<typeof OutboundBlockedError>[0]['reason'],
  host: string,
) => new OutboundBlockedError({ reason, host }, unreachableHostMessage(kind))

const withTimeout = async <T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  try {
    return await Promise.race([work, expired])
  } finally {
    clearTimeout(timer)
  }
}

const toHeaders = (raw: readonly string[]): Headers => {
  const headers = new Headers()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      headers.append(raw[i] ?? '', raw[i + 1] ?? '')
    } catch {
      // A header Node's parser accepted but Fetch forbids is dropped rather than failing the delivery.
    }
  }
  return headers
}

const resolveLocation = (location: string | undefined, url: URL): string | undefined => {
  if (location === undefined) return undefined
  // A relative Location would inherit the request URL's credentials, and then travel into logs.
  const base = new URL(url.href)
  base.username = ''
  base.password = ''
  try {
    return new URL(location, base).href
  } catch {
    return undefined
  }
}

/**
 * The SSRF guard: every URL a notification configuration holds goes through `checkUrl` at
 * create, update, test and delivery time (an SMTP server through `checkSmtpHost`), and every
 * request through `guardedFetch`.
 *
 * @example
 * const guard = createOutboundGuard({ allowlist: config.outbound.allowlist })
 * const target = await guard.checkUrl(configuration.url)
 * const { response, redirect } = await guard.guardedFetch(target, { method: 'POST', body })
 */
export const createOutboundGuard = (options: OutboundGuardOptions = {}): OutboundGuard => {
  const settings = {
    ...defaults,
    ...options,
    lookup: options.lookup ?? createDnsLookup(),
  } satisfies Required<Omit<OutboundGuardOptions, 'onSenderStopped'>>
  const allowlist = createAllowlist(settings.allowlist)
  const ca = typeof settings.ca === 'string' ? [settings.ca] : [...settings.ca]
  const exchanger = settings.senderThread
    ? startSenderThread({
        ca,
        ...(options.onSenderStopped === undefined ? {} : { onStopped: options.onSenderStopped }),
      })
    : createInlineExchanger({ ca })
  // Only targets this guard produced may be fetched: a hand-built object would skip the check.
  const issued = new WeakSet<CheckedTarget>()

  const issue = (url: URL, hostname: string, address: string, allowlisted: boolean): CheckedTarget => {
    const family: 4 | 6 = isIP(address.split('%', 1)[0] ?? '') === 6 ? 6 : 4
    const target = Object.freeze({
      url,
      hostname,
      address,
      family,
      allowlisted,
      // Loggers serialise with toJSON; the URL may carry credentials, and a Slack or Teams path is one.
      toJSON: () => ({ origin: url.origin, allowlisted }),
    })
    issued.add(target)
    return target
  }

  // One lookup in flight a host name: checks of the same name while it runs share its answer,
  // so a burst of deliveries to a name whose DNS does not answer asks once, not once each.
  const lookups = new Map<string, Promise<readonly ResolvedAddress[]>>()
  const lookUp = (hostname: string): Promise<readonly ResolvedAddress[]> => {
    const key = hostname.toLowerCase()
    const running = lookups.get(key)
    if (running !== undefined) return running
    const controller = new AbortController()
    const lookup = withTimeout(settings.lookup(hostname, controller.signal), settings.lookupTimeoutMs, () => {
      controller.abort()
      return Object.assign(new Error('DNS lookup timed out'), { code: 'ETIMEOUT' })
    }).finally(() => lookups.delete(key))
    lookups.set(key, lookup)
    return lookup
  }

  const resolve = async (hostname: string, kind: TargetKind): Promise<readonly ResolvedAddress[]> => {
    let addresses: readonly ResolvedAddress[]
    try {
      addresses = await lookUp(hostname)
    } catch (error) {
      throw new OutboundUnresolvableError(hostname, error, kind)
    }
    if (addresses.length === 0)
      throw new OutboundUnresolvableError(
        hostname,
        Object.assign(new Error('no addresses'), { code: 'ENODATA' }),
        kind,
      )
    return addresses
  }

  // A URL whose host is an address is judged by its text and the allowlist alone: the same
  // text gets the same target (frozen, its URL never changed) without parsing it again. Host
  // names are resolved every time. Bounded, oldest dropped first.
  const byAddressUrl = new Map<string, CheckedTarget>()
  const check = async (input: string, kind: TargetKind): Promise<CheckedTarget> => {
    const known = byAddressUrl.get(input)
    if (known !== undefined) return known
    const target = await checkUncached(input, kind)
    if (target.address === target.hostname) {
      if (byAddressUrl.size >= MAX_ADDRESS_URLS)
        byAddressUrl.delete(byAddressUrl.keys().next().value as string)
      byAddressUrl.set(input, target)
    }
    return target
  }

  const checkUncached = async (input: string, kind: TargetKind): Promise<CheckedTarget> => {
    let url: URL
    try {
      // WHATWG parsing is the normalisation: 2130706433, 0177.0.0.1, 0x7f.1 and 127.1 all come
      // out as 127.0.0.1, and IPv6 in its compressed form.
      url = new URL(input)
    } catch {
      throw new OutboundBlockedError(
        { reason: 'invalid_url' },
        kind === 'smtp'
          ? 'the SMTP host is not a valid host name or address'
          : 'the notification target is not a valid URL',
      )
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new OutboundBlockedError(
        { reason: 'scheme' },
        'only http and https URLs are allowed as notification targets',
      )
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    if (hostname === '') throw blocked(kind, 'invalid_url')

    if (parseAddress(hostname) !== undefined) {
      const verdict = classifyAddress(hostname)
      const allowlisted = allowlist.allowsAddress(hostname)
      if (!verdict.allowed && !allowlisted) throw blocked(kind, verdict.reason, hostname)
      return issue(url, hostname, hostname, allowlisted && !verdict.allowed)
    }

    const hostAllowlisted = allowlist.allowsHost(hostname)
    if (!hostAllowlisted && isLocalName(hostname)) throw blocked(kind, 'local_name', hostname)
    const addresses = await resolve(hostname, kind)
    let exempted = hostAllowlisted
    // One forbidden address refuses the host, whichever address a connection would have used.
    for (const { address } of hostAllowlisted ? [] : addresses) {
      const verdict = classifyAddress(address)
      if (verdict.allowed) continue
      if (!allowlist.allowsAddress(address)) throw unreachable(kind, verdict.reason, hostname)
      exempted = true
    }
    // Every address passed, so any would do; IPv4 first because hosts without an IPv6 route are
    // common, and with one pinned address there is no happy-eyeballs fallback.
    const chosen = addresses.find((a) => isIP(a.address) === 4) ?? addresses[0]
    if (chosen === undefined || parseAddress(chosen.address) === undefined)
      throw unreachable(kind, 'invalid_address', hostname)
    return issue(url, hostname, chosen.address, exempted)
  }

  const guardedFetch = (target: CheckedTarget, init: GuardedRequestInit = {}): Promise<GuardedResponse> => {
    if (!issued.has(target)) return Promise.reject(new TypeError('guardedFetch needs a target from checkUrl'))
    const started = settings.now()
    const timeoutMs = init.timeoutMs ?? settings.timeoutMs
    const maxBodyBytes = init.maxBodyBytes ?? settings.maxBodyBytes
    const { url, hostname } = target
    const secure = url.protocol === 'https:'

    const headers: Record<string, string> = {}
    for (const [name, value] of new Headers(init.headers)) headers[name] = value
    // The Host header and the TLS server name carry the name; the socket goes to the checked address.
    headers.host = url.host
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body))
    const credentials =
      (url.username !== '' || url.password !== '') && headers.authorization === undefined
        ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }
        : {}

    const request: ExchangeRequest = {
      secure,
      address: target.address,
      family: target.family,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: init.method ?? 'GET',
      headers,
      ...credentials,
      // An IP-literal host is verified against the certificate's IP SANs (SNI may not be an IP).
      ...(secure && isIP(hostname) === 0 ? { servername: hostname } : {}),
      rejectUnauthorized: init.verifyTls ?? true,
      ...(init.body === undefined ? {} : { body: init.body }),
      timeoutMs,
      maxBodyBytes,
    }
    const { signal } = init
    return exchanger.exchange(request, signal).then(
      (answer) => {
        const status = answer.status
        if (status < 200 || status > 599)
          throw new OutboundRequestError(
            hostname,
            Object.assign(new Error(`status ${status}`), { code: 'ERR_INVALID_STATUS' }),
          )
        const headers = toHeaders(answer.rawHeaders)
        const body = NULL_BODY.has(status) ? null : answer.body
        let response: Response
        try {
          response = new Response(body, { status, statusText: answer.statusMessage, headers })
        } catch {
          // Fetch is stricter about reason phrases than HTTP/1.1; the phrase carries no meaning.
          response = new Response(body, { status, headers })
        }
        const isRedirect = status >= 300 && status < 400 && status !== 304
        return {
          response,
          redirect: isRedirect
            ? { status, location: resolveLocation(headers.get('location') ?? undefined, url) }
            : undefined,
          truncated: answer.truncated,
          durationMs: settings.now() - started,
        }
      },
      (error: unknown) => {
        if (error instanceof ExchangeTimeoutError) throw new OutboundTimeoutError(hostname, timeoutMs)
        if (signal?.aborted === true) throw signal.reason
        // Refused before anything was sent (Node's or undici's own error): not a failed, retriable request.
        if (error instanceof ExchangeRefusedError) throw error.cause
        throw new OutboundRequestError(hostname, error)
      },
    )
  }

  return {
    checkUrl: (url) => check(url, 'url'),
    // The same check through a URL of the same host and port; an IPv6 address needs brackets there.
    checkSmtpHost: (host, port) =>
      check(`http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}/`, 'smtp'),
    guardedFetch,
    fetch: async (url, init) => guardedFetch(await check(url, 'url'), init),
    close: () => exchanger.close(),
  }
}
