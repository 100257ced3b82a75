import { signatureHeader } from '../signing.ts'
import type { ChannelDelivery, DeliveryChannel } from './channel.ts'
import { abortError, failureFromError, failureFromStatus, RedirectNotFollowedError } from './classify.ts'
import { type ChannelOptions, resultBuilder } from './common.ts'
import { secretValues, type WebhookChannelConfiguration } from './configuration.ts'
import { uiLink } from './message.ts'

/** The `type` of a digest's Standard Webhooks payload. */
export const DIGEST_PAYLOAD_TYPE = 'herald.notification.digest'

/**
 * The JSON a webhook receives, as Standard Webhooks shapes it (`type`, `timestamp`, `data`):
 * for one event the CloudEvent as `data`; for a digest, type `herald.notification.digest`
 * with the digest as `data`: the window, the counts by type and level and by level, and the
 * window's first events, whole. With `ui_url` set, `links.ui` points into Herald's UI, as the
 * other channels' messages do.
 */
export const webhookChannelPayload = (delivery: ChannelDelivery, uiUrl: string | null = null) => {
  const link = uiLink(uiUrl, delivery)
  const links = link === null ? {} : { links: { ui: link } }
  return delivery.digest === undefined
    ? {
        type: delivery.event.type,
        timestamp: delivery.event.time ?? delivery.createdAt,
        data: delivery.event,
        ...links,
      }
    : {
        type: DIGEST_PAYLOAD_TYPE,
        timestamp: delivery.digest.windowEnd,
        data: {
          account: delivery.account,
          configuration_id: delivery.configurationId,
          window_start: delivery.digest.windowStart,
          window_end: delivery.digest.windowEnd,
          total: delivery.digest.total,
          counts: delivery.digest.counts,
          levels: delivery.digest.levels ?? [],
          events: delivery.digest.events,
        },
        ...links,
      }
}

/**
 * `webhookChannelPayload` as the JSON text a receiver gets, byte for byte. For one event whose
 * stored text the delivery carries (`eventText`), that text is spliced in as `data` rather
 * than parsed and written out again: an event of some kilobytes costs tens of µs each way.
 */
export const webhookBody = (delivery: ChannelDelivery, uiUrl: string | null = null): string => {
  const stored = delivery.eventText
  if (stored === undefined || delivery.digest !== undefined)
    return JSON.stringify(webhookChannelPayload(delivery, uiUrl))
  const link = uiLink(uiUrl, delivery)
  const links = link === null ? '' : `,"links":{"ui":${JSON.stringify(link)}}`
  const timestamp = stored.time ?? JSON.stringify(delivery.createdAt)
  return `{"type":${JSON.stringify(stored.type)},"timestamp":${timestamp},"data":${stored.text}${links}}`
}

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

/**
 * Signed webhooks per Standard Webhooks: `webhook-id` is the delivery id, every current
 * signing secret signs (key rotation), optional basic auth. A webhook's payload is the event
 * itself, so it is not templated.
 *
 * @example
 * await createWebhookChannel({ guard }).send(command, { endpoint: 'webhook', id, account, url, signingSecrets: [secret] }, context)
 */
export const createWebhookChannel = (
  options: ChannelOptions,
): DeliveryChannel<WebhookChannelConfiguration> => {
  const clock = options.clock ?? Date.now
  return {
    endpoint: 'webhook',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      try {
        const body = webhookBody(delivery, context.uiUrl)
        const headers = webhookHeaders({
          id: delivery.deliveryId,
          body,
          timestamp: Math.floor(result.started / 1000),
          secrets: configuration.signingSecrets,
        })
        if (configuration.password !== undefined || configuration.username !== undefined) {
          const credentials = `${configuration.username ?? ''}:${configuration.password ?? ''}`
          headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`
        }
        // Straight through the guard (no fetch-shaped wrapper, which vendor clients need): the
        // same checks and errors, a redirect refused as guardedFetch refuses it.
        let exchange: Awaited<ReturnType<typeof options.guard.fetch>>
        try {
          exchange = await options.guard.fetch(configuration.url, {
            method: 'POST',
            headers,
            body,
            timeoutMs: context.timeoutMs,
            verifyTls: configuration.verifyTls ?? true,
            // A receiver's answer is not read beyond its status; a little is kept for the log.
            maxBodyBytes: 4096,
            ...(context.signal === undefined ? {} : { signal: context.signal }),
          })
        } catch (error) {
          throw context.signal?.aborted === true ? abortError(context.signal.reason) : error
        }
        const { response, redirect } = exchange
        await response.body?.cancel()
        if (redirect !== undefined) throw new RedirectNotFollowedError(redirect.status)
        if (response.status >= 200 && response.status <= 299)
          return result.ok(response.status, `HTTP ${response.status}`)
        // What a receiver answers is its own business (and may echo the request): only the status is kept.
        return result.fail(failureFromStatus(response.status, response.headers, clock()))
      } catch (error) {
        return result.fail(failureFromError(error))
      }
    },
  }
}
