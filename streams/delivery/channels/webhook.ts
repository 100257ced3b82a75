import { webhookHeaders, webhookPayload } from '../send-webhook.ts'
import type { ChannelDelivery, DeliveryChannel } from './channel.ts'
import { failureFromError, failureFromStatus } from './classify.ts'
import { type ChannelOptions, resultBuilder } from './common.ts'
import { secretValues, type WebhookChannelConfiguration } from './configuration.ts'
import { guardedFetch } from './guarded-fetch.ts'

/** The `type` of a digest's Standard Webhooks payload. */
export const DIGEST_PAYLOAD_TYPE = 'herald.notification.digest'

/**
 * The JSON a webhook receives: for one event the Standard Webhooks envelope with the
 * CloudEvent as `data` (the same as the deliverer's `sendWebhook`); for a digest, type
 * `herald.notification.digest` with the digest as `data`: the window, the counts by type and
 * level and by level, and the window's first events, whole.
 */
export const webhookChannelPayload = (delivery: ChannelDelivery) =>
  delivery.digest === undefined
    ? webhookPayload(delivery)
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
      }

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
      const http = guardedFetch(options.guard, {
        timeoutMs: context.timeoutMs,
        verifyTls: configuration.verifyTls ?? true,
        // A receiver's answer is not read beyond its status; a little is kept for the log.
        maxBodyBytes: 4096,
        ...(context.signal === undefined ? {} : { signal: context.signal }),
      })
      try {
        const body = JSON.stringify(webhookChannelPayload(delivery))
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
        const response = await http.fetch(configuration.url, { method: 'POST', headers, body })
        await response.body?.cancel()
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
