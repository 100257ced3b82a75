import type { CloudEvent, EventText } from '../../../src/events/index.ts'
import type { ChannelConfiguration, ChannelEndpoint } from './configuration.ts'

/** Counts of one event type (and level) in a digest window. */
export interface DigestCount {
  readonly type: string
  readonly level?: string
  readonly count: number
}

/**
 * What a digest delivery summarises: every event the configuration's selectors matched in a
 * window, counted, with the first ones (metadata only, as every event). A `DeliveryDigest`
 * (streams/routing) is one.
 */
export interface DigestSummary {
  /** RFC 3339. */
  readonly windowStart: string
  /** RFC 3339. */
  readonly windowEnd: string
  readonly total: number
  readonly counts: readonly DigestCount[]
  /** Totals by level, most severe first. */
  readonly levels?: readonly { readonly level: string; readonly count: number }[]
  /** The window's first events, in the order the router saw them; `total` may be larger. */
  readonly events: readonly CloudEvent[]
}

/**
 * One delivery, as the router decided it. A `DeliveryCommand` (streams/routing) is one: the
 * deliverer passes the command it consumed, with `digest` for a digest delivery, whose `event`
 * is then the first event of the window.
 */
export interface ChannelDelivery {
  /** `deliveryIdFor` (event account, source and id, configuration id): the same on every retry and replay; the idempotency key. */
  readonly deliveryId: string
  /** The configuration's owner. */
  readonly account: string
  readonly configurationId: string
  readonly event: CloudEvent
  /**
   * `event` as stored text, when the caller has it (the delivery log's read model): the
   * webhook channel sends it as it is rather than writing `event` out again.
   */
  readonly eventText?: EventText
  /** RFC 3339, when the router decided the delivery. */
  readonly createdAt: string
  readonly digest?: DigestSummary
}

/** The time limit of one request when the configuration does not say (issue 6: 15 s). */
export const DEFAULT_CHANNEL_TIMEOUT_MS = 15_000

export interface ChannelContext {
  /** Herald's `ui_url`: with it messages link into the UI; null sends them without links. */
  readonly uiUrl: string | null
  /** Time limit of one request: an HTTP exchange, or the whole SMTP session (`DEFAULT_CHANNEL_TIMEOUT_MS`). */
  readonly timeoutMs: number
  /** Aborts the send (shutdown); the result is then a retriable failure. */
  readonly signal?: AbortSignal
  /**
   * Waits for the next slot of the configuration's rate limit (`rateLimitTarget`). The attempt
   * took one before `send`, for its first write; a ticket channel waits for this before each
   * later one (a filing, a comment, a reopening), so a delivery filing many tickets keeps to the
   * limit too. Rejects once `signal` aborts. Absent: no limit.
   */
  readonly pace?: () => Promise<void>
}

/** What a ticket channel did for one ticket key. */
export interface TicketOutcome {
  /** The hash of (account, resource, finding or rule) that identifies the ticket. */
  readonly key: string
  readonly action: 'created' | 'commented' | 'reopened' | 'unchanged'
  /** `owner/repo#12` or `SEC-4`. */
  readonly ticket: string
  readonly url?: string
}

export interface ChannelSuccess {
  readonly ok: true
  /** HTTP status of the (last) exchange, or the SMTP reply code. */
  readonly status: number | null
  /** A short, secret-free summary of what the endpoint answered: `ok`, `250 2.0.0 queued`, `created SEC-4`. */
  readonly response: string
  readonly latencyMs: number
  /** Ticket channels: one entry per ticket key the delivery touched. */
  readonly tickets?: readonly TicketOutcome[]
  /** What the delivery log should know although the send succeeded: a template override that failed and was replaced by the default, a label GitHub dropped. */
  readonly notes?: readonly string[]
}

/**
 * `retriable`: try again later (429, 408, 5xx, network errors, timeouts), not before
 * `retryAfterMs` when the endpoint said so; `permanent`: the same request fails again (other
 * 4xx, a refused address, a certificate that does not verify, an SMTP 5xx reply); `gone`: the
 * endpoint says it no longer exists (HTTP 410): the configuration is to be disabled.
 */
export type FailureKind = 'retriable' | 'permanent' | 'gone'

/** Why, for machines: metrics labels, the delivery log's filters. */
export type FailureCode =
  | 'http_status'
  | 'rate_limited'
  | 'gone'
  | 'redirect'
  | 'timeout'
  | 'network'
  | 'tls'
  | 'blocked'
  | 'aborted'
  | 'smtp_rejected'
  /** The message went to some recipients; the server refused the others (listed in the error). */
  | 'smtp_recipients_refused'
  | 'smtp_auth'
  | 'configuration'
  | 'unexpected_response'
  /** A ticket system's answer was larger than Herald reads, and was not parsed. */
  | 'response_too_large'
  | 'ticket_unconfirmed'
  /** Herald's own template failed on the event (`DefaultTemplateError`): nothing to send. */
  | 'template'
  /** A secret of the configuration that no key Herald has decrypts: nothing was sent. */
  | 'secret_undecryptable'
  | 'internal'

export interface ChannelFailure {
  readonly ok: false
  readonly kind: FailureKind
  readonly code: FailureCode
  /** HTTP status or SMTP reply code, null when no answer came. */
  readonly status: number | null
  /** A short, secret-free sentence for the delivery log. */
  readonly error: string
  /**
   * From `Retry-After` (seconds or an HTTP date) or GitHub's rate-limit reset, relative to now;
   * with no `status`, a wait of Herald's own (`ticket_unconfirmed`: the search lag left), which
   * holds only this delivery, not the endpoint's other configurations.
   */
  readonly retryAfterMs?: number
  readonly latencyMs: number
  /** Tickets already settled before the failure; a retry finds them and does not file them twice. */
  readonly tickets?: readonly TicketOutcome[]
}

export type ChannelResult = ChannelSuccess | ChannelFailure

/**
 * The port the deliverer sends through: one implementation per endpoint type. `send` never
 * throws for anything the endpoint, the network or the configuration did; it classifies.
 * Results, errors and log fields never hold a secret of the configuration.
 *
 * @example
 * const result = await channel.send(command, configuration, { uiUrl: config.ui_url, timeoutMs: 15_000 })
 * if (!result.ok && result.kind === 'gone') disable(configuration.id)
 * else if (!result.ok && result.kind === 'retriable') scheduleRetry(result.retryAfterMs)
 */
export interface DeliveryChannel<C extends ChannelConfiguration = ChannelConfiguration> {
  readonly endpoint: C['endpoint'] & ChannelEndpoint
  readonly send: (
    delivery: ChannelDelivery,
    configuration: C,
    context: ChannelContext,
  ) => Promise<ChannelResult>
}
