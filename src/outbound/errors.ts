import { type ErrorContext, HeraldError } from '../errors/index.ts'
import type { BlockReason } from './address.ts'

/**
 * Why a URL was refused, for logs. Deliberately holds no resolved address and no URL: the host
 * name is what the caller typed, the reason is a category.
 */
export interface OutboundBlockedContext extends ErrorContext {
  readonly reason: BlockReason | 'invalid_url' | 'scheme' | 'local_name'
  readonly host?: string
}

/**
 * What the guard checked, as its refusals name it: a URL, or an SMTP server, which an API
 * client gives as `smtp_host` and not as a URL.
 */
export type TargetKind = 'url' | 'smtp'

const HOST_OF: Readonly<Record<TargetKind, string>> = {
  url: "the URL's host",
  smtp: 'the SMTP host',
}

/** The one sentence for a host in any forbidden range. */
export const blockedHostMessage = (kind: TargetKind = 'url'): string =>
  `${HOST_OF[kind]} is not allowed as a notification target`

/**
 * The one sentence for a host name that did not resolve, or resolved to a forbidden address:
 * told apart, they would let an API client learn which internal names exist on Herald's network
 * (an internal name resolves, to a private address; another name does not). The log has which.
 */
export const unreachableHostMessage = (kind: TargetKind = 'url'): string =>
  `${HOST_OF[kind]} does not resolve to an address Herald may reach`

/**
 * A URL the SSRF guard refuses. The message is one of a few fixed sentences, so an API client
 * learns nothing about what the host resolves to on Herald's network. Not retriable.
 */
export class OutboundBlockedError extends HeraldError {
  declare readonly context: OutboundBlockedContext

  constructor(context: OutboundBlockedContext, message = blockedHostMessage()) {
    super('outbound_blocked', message, { context, retriable: false })
  }
}

/**
 * The host did not resolve (or not in time). Retriable: DNS outages pass. A client is told what
 * a host name resolving to a forbidden address tells it, code and message (`dnsCode` is for the
 * log), so that the API is no oracle for which internal names exist.
 */
export class OutboundUnresolvableError extends HeraldError {
  constructor(host: string, cause: unknown, kind: TargetKind = 'url') {
    const dnsCode = (cause as { code?: unknown } | undefined)?.code
    super('outbound_blocked', unreachableHostMessage(kind), {
      context: { host, ...(typeof dnsCode === 'string' ? { dnsCode } : {}) },
      cause,
      retriable: true,
    })
  }
}

/** The target did not answer within the request's time limit. */
export class OutboundTimeoutError extends HeraldError {
  constructor(host: string, timeoutMs: number) {
    super('outbound_timeout', `the notification target did not answer within ${timeoutMs} ms`, {
      context: { host, timeoutMs },
      retriable: true,
    })
  }
}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME_MISMATCH)/

/**
 * The connection failed or broke. A certificate that does not verify fails the same way next
 * time, so it is not retriable; refused or reset connections are.
 */
export class OutboundRequestError extends HeraldError {
  constructor(host: string, cause: unknown) {
    const errorCode = (cause as { code?: unknown } | undefined)?.code
    const code = typeof errorCode === 'string' ? errorCode : 'unknown'
    const tls = TLS_CODE.test(code)
    super(
      tls ? 'outbound_tls_failed' : 'outbound_request_failed',
      tls
        ? "the notification target's TLS certificate could not be verified"
        : 'the request to the notification target failed',
      { context: { host, errorCode: code }, cause, retriable: !tls },
    )
  }
}

export const isOutboundBlocked = (error: unknown): error is OutboundBlockedError =>
  error instanceof OutboundBlockedError
