import type { Logger } from '../../../src/observability/index.ts'
import type { OutboundGuard } from '../../../src/outbound/index.ts'
import type { ChannelDelivery, ChannelFailure, ChannelSuccess, TicketOutcome } from './channel.ts'
import { type Failure, failureFromError, failureFromStatus, heraldCause } from './classify.ts'
import { scrub } from './configuration.ts'
import type { Exchange } from './guarded-fetch.ts'

/** What every channel factory takes. */
export interface ChannelOptions {
  /** The SSRF guard every request goes through (`createOutboundGuard({ allowlist })`). */
  readonly guard: OutboundGuard
  /** Milliseconds since the epoch: signing timestamps, `Retry-After` dates, latency. Default `Date.now`. */
  readonly clock?: () => number
  /** Lines named `delivery.<endpoint>.<event>`; no field ever holds a secret. */
  readonly logger?: Logger
}

const MAX_SUMMARY = 300

/**
 * One line, printable, at most `MAX_SUMMARY` characters, never splitting a character: what a
 * delivery log shows of an answer.
 */
export const summarise = (text: string): string => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return truncate(flat, MAX_SUMMARY)
}

export interface SuccessExtras {
  readonly tickets?: readonly TicketOutcome[]
  readonly notes?: readonly string[]
}

/** Builds results: latency from the clock, every string scrubbed of the configuration's secrets. */
export const resultBuilder = (secrets: readonly string[], clock: () => number) => {
  const started = clock()
  return {
    started,
    ok: (status: number | null, response: string, extras: SuccessExtras = {}): ChannelSuccess => ({
      ok: true,
      status,
      response: summarise(scrub(response, secrets)),
      latencyMs: clock() - started,
      ...(extras.tickets === undefined ? {} : { tickets: extras.tickets }),
      ...(extras.notes === undefined || extras.notes.length === 0
        ? {}
        : { notes: extras.notes.map((note) => summarise(scrub(note, secrets))) }),
    }),
    fail: (failure: Failure, tickets?: readonly TicketOutcome[]): ChannelFailure => ({
      ok: false,
      ...failure,
      error: summarise(scrub(failure.error, secrets)),
      latencyMs: clock() - started,
      ...(tickets === undefined || tickets.length === 0 ? {} : { tickets }),
    }),
  }
}

/** A non-2xx exchange as a failure, its body (Slack's `invalid_payload`) as the detail. */
export const plainExchangeFailure = (exchange: Exchange, nowMs: number): Failure =>
  failureFromStatus(exchange.status, exchange.headers, nowMs, exchange.body)

/**
 * What went wrong in a vendor client's call: Herald's own error when one is in the cause
 * chain (the guard refused, timed out, could not connect), else the status of the last
 * exchange, which the vendor's error wraps without its `Retry-After`; else a bug here.
 */
export const failureOfCall = (
  error: unknown,
  last: Exchange | undefined,
  nowMs: number,
  fromExchange: (exchange: Exchange, nowMs: number) => Failure = plainExchangeFailure,
): Failure => {
  if (heraldCause(error) === undefined && last !== undefined && (last.status < 200 || last.status > 299))
    return fromExchange(last, nowMs)
  return failureFromError(error)
}

/** The text of a JSON body's fields (`message`, `errorMessages`…), for a failure's detail. */
export const jsonDetail = (
  body: string,
  pick: (json: Record<string, unknown>) => unknown[],
): string | undefined => {
  try {
    const json: unknown = JSON.parse(body)
    if (typeof json !== 'object' || json === null) return undefined
    const parts = pick(json as Record<string, unknown>).filter(
      (p): p is string => typeof p === 'string' && p.trim() !== '',
    )
    return parts.length === 0 ? undefined : parts.join('; ')
  } catch {
    return undefined
  }
}

/** The first `end` UTF-16 units of a text, one fewer if `end` falls inside a surrogate pair. */
export const sliceWhole = (text: string, end: number): string => {
  const last = text.charCodeAt(end - 1)
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? end - 1 : end)
}

export const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${sliceWhole(text, max - 1)}…`

/**
 * A single line (subjects, titles, summaries): line breaks would split a header or a Jira
 * summary. The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069)
 * are dropped: in a title an event's text could use them to show itself in another order
 * (`api:1<U+202E>gpj.exe` reads `api:1exe.jpg`).
 */
export const oneLine = (text: string, max: number): string =>
  truncate(
    text
      .replace(/[\u202a-\u202e\u2066-\u2069]/g, '')
      .replace(/\s+/g, ' ')
      .trim(),
    max,
  )

/**
 * A text a chat service needs non-empty, or a dash: a template may render nothing for an
 * event (a field it names is absent), and Slack refuses an empty header (`invalid_blocks`)
 * as Teams refuses an empty TextRun, the same way on every retry.
 *
 * @example
 * shownAs('  ') // '—'
 */
export const shownAs = (text: string): string => (text.trim() === '' ? '—' : text)

/**
 * The notes of template overrides that failed on this event (the default was rendered
 * instead), each also logged as `delivery.<endpoint>.template_fallback`.
 */
export const fallbackNotes = (
  logger: Logger | undefined,
  endpoint: string,
  ids: { readonly configurationId: string; readonly delivery: ChannelDelivery },
  rendered: readonly { readonly fallback?: string }[],
): string[] => {
  const notes = rendered.flatMap((r) => (r.fallback === undefined ? [] : [r.fallback]))
  for (const reason of notes)
    logger?.('warn', `delivery.${endpoint}.template_fallback`, {
      configuration_id: ids.configurationId,
      delivery_id: ids.delivery.deliveryId,
      reason,
    })
  return notes
}
