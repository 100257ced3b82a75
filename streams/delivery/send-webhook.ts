import { isHeraldError } from '../../src/errors/index.ts'
import type { WebhookConfiguration } from '../../src/notifications/index.ts'
import type { DeliveryCommand } from '../routing/index.ts'
import { signatureHeader } from './signing.ts'

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface WebhookResult {
  readonly ok: boolean
  /** The HTTP status, or null when no response came (network error, timeout). */
  readonly status: number | null
  readonly latencyMs: number
  /** Whether trying again later can succeed: 408, 429, 5xx, network errors and timeouts. */
  readonly retriable: boolean
  readonly error?: string
}

export interface SendWebhookOptions {
  readonly fetch: Fetch
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  readonly timeoutMs: number
}

/** The Standard Webhooks payload shape: the CloudEvent is the data. */
export const webhookPayload = (command: Pick<DeliveryCommand, 'event' | 'createdAt'>) => ({
  type: command.event.type,
  timestamp: command.event.time ?? command.createdAt,
  data: command.event,
})

export interface WebhookRequestInput {
  /** The `webhook-id` header: the delivery id, the same on every retry, so receivers can drop repeats. */
  readonly id: string
  /** The exact JSON sent. */
  readonly body: string
  /** Whole seconds since the epoch. */
  readonly timestamp: number
  /** Every current signing secret, newest first. */
  readonly secrets: readonly string[]
}

/** The headers of a Standard Webhooks request: content type, id, timestamp and the signature(s). */
export const webhookHeaders = ({
  id,
  body,
  timestamp,
  secrets,
}: WebhookRequestInput): Record<string, string> => ({
  'content-type': 'application/json',
  'user-agent': 'Herald-Webhooks/1',
  'webhook-id': id,
  'webhook-timestamp': String(timestamp),
  'webhook-signature': signatureHeader({ secrets, id, timestamp, body }),
})

const isRetriableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500

const describeFailure = (error: unknown, timeoutMs: number): string => {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no response within ${timeoutMs} ms`
  }
  if (error instanceof Error) {
    const cause = error.cause as { code?: unknown; message?: unknown } | undefined
    const detail =
      typeof cause?.code === 'string'
        ? cause.code
        : typeof cause?.message === 'string'
          ? cause.message
          : undefined
    return detail === undefined ? error.message : `${error.message}: ${detail}`
  }
  return String(error)
}

/**
 * POSTs one delivery, signed, and reports the outcome; never throws for what the endpoint or
 * the network did. `webhook-id` is the delivery id, so a receiver can drop a redelivery.
 * Redirects are not followed: a signed payload goes only to the configured URL.
 *
 * @example
 * const result = await sendWebhook(command, configuration, { fetch, clock: Date.now, timeoutMs: 10_000 })
 * if (!result.ok && result.retriable) throw …
 */
export const sendWebhook = async (
  command: DeliveryCommand,
  configuration: WebhookConfiguration,
  { fetch, clock, timeoutMs }: SendWebhookOptions,
): Promise<WebhookResult> => {
  const body = JSON.stringify(webhookPayload(command))
  const started = clock()
  const timestamp = Math.floor(started / 1000)
  const headers = webhookHeaders({
    id: command.deliveryId,
    body,
    timestamp,
    secrets: [configuration.signingSecret],
  })
  try {
    const response = await fetch(configuration.url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    })
    // The body is not needed; cancelling it frees the connection for the next delivery.
    await response.body?.cancel().catch(() => {})
    const latencyMs = clock() - started
    if (response.status >= 200 && response.status < 300) {
      return { ok: true, status: response.status, latencyMs, retriable: false }
    }
    return {
      ok: false,
      status: response.status,
      latencyMs,
      retriable: isRetriableStatus(response.status),
      error: `HTTP ${response.status}`,
    }
  } catch (error) {
    return {
      ok: false,
      status: null,
      latencyMs: clock() - started,
      // Herald's own errors say whether a retry can help (a URL the SSRF guard refuses never
      // will); anything else thrown by fetch is a network failure, which may pass.
      retriable: isHeraldError(error) ? error.retriable : true,
      error: describeFailure(error, timeoutMs),
    }
  }
}
