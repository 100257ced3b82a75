import { IncomingWebhook, type IncomingWebhookSendArguments } from '@slack/webhook'
import type { DeliveryChannel } from './channel.ts'
import { renderChatMessage } from './chat-message.ts'
import { type ChannelOptions, failureOfCall, oneLine, resultBuilder, shownAs, sliceWhole } from './common.ts'
import { type SlackConfiguration, secretValues } from './configuration.ts'
import { channelFetch } from './guarded-fetch.ts'
import type { MessageScope } from './message.ts'

const LEVEL_EMOJI: Readonly<Record<string, string>> = {
  error: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
}

// Slack's own limits (Block Kit reference): a header's text 150 characters, a section's
// text 3000, a field 2000, a button's text 75 and its URL 3000.
const LIMITS = { header: 150, section: 3000, field: 2000, url: 3000, fallback: 3000 } as const

const escapeMrkdwn = (value: string): string =>
  value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

/**
 * Mrkdwn cut to `max` characters, the last `…` to say so, never inside an entity (`&amp;`) or a
 * `<…>` (a link, a date, a mention), which Slack would show broken or not at all.
 */
const truncateMrkdwn = (text: string, max: number): string => {
  if (text.length <= max) return text
  let kept = sliceWhole(text, max - 1)
  const open = kept.lastIndexOf('<')
  if (open > kept.lastIndexOf('>')) kept = kept.slice(0, open)
  const entity = kept.lastIndexOf('&')
  if (entity > kept.lastIndexOf(';')) kept = kept.slice(0, entity)
  return `${kept}…`
}

/** Slack shows the time in each reader's zone, with the RFC 3339 text as fallback. */
const slackTime = (time: string): string => {
  const epoch = Math.floor(Date.parse(time) / 1000)
  return Number.isFinite(epoch)
    ? `<!date^${epoch}^{date_short_pretty} {time_secs}|${escapeMrkdwn(time)}>`
    : escapeMrkdwn(time)
}

/**
 * The Block Kit message: a header (the title), a section (the rendered text), the fields
 * Slack users scan (level, resource, account, time; for a digest, its highest level, event
 * count, account and window), a button into the UI when there is a link, and the event's
 * identity (a digest's configuration) as context. `text` is the notification fallback. A
 * title that rendered empty shows as a dash in both.
 */
export const slackMessage = (
  scope: MessageScope,
  title: string,
  text: string,
): IncomingWebhookSendArguments => {
  const field = (label: string, value: string) => ({
    type: 'mrkdwn' as const,
    text: truncateMrkdwn(`*${label}*\n${value}`, LIMITS.field),
  })
  const level = `${LEVEL_EMOJI[scope.level] ?? ''} ${escapeMrkdwn(scope.level)}`.trim()
  return {
    // The fallback (notifications, screen readers) is mrkdwn: event text in it is escaped.
    text: truncateMrkdwn(escapeMrkdwn(shownAs(oneLine(title, LIMITS.fallback))), LIMITS.fallback),
    blocks: [
      {
        type: 'header',
        text: { type: 'plain_text', text: shownAs(oneLine(title, LIMITS.header)), emoji: true },
      },
      ...(text.trim() === ''
        ? []
        : [
            {
              type: 'section' as const,
              text: { type: 'mrkdwn' as const, text: truncateMrkdwn(text, LIMITS.section) },
            },
          ]),
      {
        type: 'section',
        fields:
          scope.digest === null
            ? [
                field('Level', level),
                field('Resource', `\`${escapeMrkdwn(scope.resource)}\``),
                field('Account', escapeMrkdwn(scope.account)),
                field('Time', slackTime(scope.time)),
              ]
            : [
                field('Highest level', level),
                field('Events', String(scope.digest.total)),
                field('Account', escapeMrkdwn(scope.account)),
                field(
                  'Window',
                  `${slackTime(scope.digest.window_start)} – ${slackTime(scope.digest.window_end)}`,
                ),
              ],
      },
      ...(scope.link === null || scope.link.length > LIMITS.url
        ? []
        : [
            {
              type: 'actions' as const,
              elements: [
                {
                  type: 'button' as const,
                  text: { type: 'plain_text' as const, text: 'View in Herald' },
                  url: scope.link,
                  action_id: 'herald_view',
                },
              ],
            },
          ]),
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: truncateMrkdwn(
              escapeMrkdwn(
                scope.digest === null
                  ? `${scope.type} · ${scope.event_id}`
                  : `digest · configuration ${scope.delivery.configuration_id}`,
              ),
              300,
            ),
          },
        ],
      },
    ],
  }
}

/**
 * Slack through an incoming webhook, with Slack's own client (`@slack/webhook`): its `fetch`
 * is the SSRF guard's, its retries are off (Herald's deliverer retries, honouring
 * `Retry-After`, which the client's errors do not carry and the guarded fetch records).
 *
 * @example
 * const slack = createSlackChannel({ guard })
 * await slack.send(command, { endpoint: 'slack', id, account, webhookUrl }, { uiUrl: null, timeoutMs: 15_000 })
 */
export const createSlackChannel = (options: ChannelOptions): DeliveryChannel<SlackConfiguration> => {
  const clock = options.clock ?? Date.now
  return {
    endpoint: 'slack',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      const http = channelFetch(options.guard, configuration, context)
      try {
        const { scope, title, text, notes } = await renderChatMessage(
          'slack',
          delivery,
          configuration,
          context,
          options.logger,
        )
        // Timeouts are the guard's (per exchange); the client's own timer stays off.
        const webhook = new IncomingWebhook(configuration.webhookUrl, {
          fetch: http.fetch,
          timeout: 0,
          retryConfig: { retries: 0 },
        })
        const answer = await webhook.send(slackMessage(scope, title, text))
        return result.ok(http.last()?.status ?? 200, answer.text || 'ok', { notes })
      } catch (error) {
        return result.fail(failureOfCall(error, http.last(), clock()))
      }
    },
  }
}
