import type { DeliveryChannel } from './channel.ts'
import { renderChatMessage } from './chat-message.ts'
import { failureFromError, failureFromStatus } from './classify.ts'
import { type ChannelOptions, oneLine, resultBuilder, truncate } from './common.ts'
import { secretValues, type TeamsConfiguration } from './configuration.ts'
import { guardedFetch } from './guarded-fetch.ts'
import type { MessageScope } from './message.ts'

const LEVEL_COLOR: Readonly<Record<string, string>> = {
  error: 'Attention',
  warning: 'Warning',
  info: 'Accent',
}

/** Adaptive Cards 1.4: what both Incoming Webhooks and Workflows render in Teams today. */
const CARD_VERSION = '1.4'

// A Teams message is at most about 28 KB; the body text is kept well under.
const MAX_TEXT = 10_000

/**
 * The message a Teams incoming webhook or workflow takes: a `message` with one Adaptive Card
 * attachment — the title, the rendered text, a fact set (level, resource, account, time,
 * event; for a digest, its highest level, event count, account, window and configuration) and
 * an "open URL" action into the UI when there is a link.
 */
export const teamsMessage = (scope: MessageScope, title: string, text: string) => ({
  type: 'message',
  attachments: [
    {
      contentType: 'application/vnd.microsoft.card.adaptive',
      contentUrl: null,
      content: {
        $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
        type: 'AdaptiveCard',
        version: CARD_VERSION,
        msteams: { width: 'Full' },
        body: [
          {
            type: 'TextBlock',
            text: oneLine(title, 500),
            size: 'Large',
            weight: 'Bolder',
            color: LEVEL_COLOR[scope.level] ?? 'Default',
            wrap: true,
            style: 'heading',
          },
          ...(text.trim() === '' ? [] : [{ type: 'TextBlock', text: truncate(text, MAX_TEXT), wrap: true }]),
          {
            type: 'FactSet',
            facts:
              scope.digest === null
                ? [
                    { title: 'Level', value: scope.level },
                    { title: 'Resource', value: scope.resource },
                    { title: 'Account', value: scope.account },
                    { title: 'Time', value: scope.time },
                    { title: 'Event', value: `${scope.type} (${scope.event_id})` },
                  ]
                : [
                    { title: 'Highest level', value: scope.level },
                    { title: 'Events', value: String(scope.digest.total) },
                    { title: 'Account', value: scope.account },
                    { title: 'Window', value: `${scope.digest.window_start} – ${scope.digest.window_end}` },
                    { title: 'Configuration', value: scope.delivery.configuration_id },
                  ],
          },
        ],
        ...(scope.link === null
          ? {}
          : { actions: [{ type: 'Action.OpenUrl', title: 'View in Herald', url: scope.link }] }),
      },
    },
  ],
})

/**
 * Microsoft Teams through an incoming webhook or a Workflows webhook: one JSON POST of an
 * Adaptive Card. Microsoft's SDKs for Teams are bot frameworks; a webhook needs none.
 *
 * @example
 * await createTeamsChannel({ guard }).send(command, teamsConfiguration, { uiUrl, timeoutMs: 15_000 })
 */
export const createTeamsChannel = (options: ChannelOptions): DeliveryChannel<TeamsConfiguration> => {
  const clock = options.clock ?? Date.now
  return {
    endpoint: 'teams',
    send: async (delivery, configuration, context) => {
      const result = resultBuilder(secretValues(configuration), clock)
      const http = guardedFetch(options.guard, {
        timeoutMs: context.timeoutMs,
        verifyTls: configuration.verifyTls ?? true,
        ...(context.signal === undefined ? {} : { signal: context.signal }),
      })
      try {
        const { scope, title, text, notes } = await renderChatMessage(
          'teams',
          delivery,
          configuration,
          context,
          options.logger,
        )
        const response = await http.fetch(configuration.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'Herald-Notifications/1' },
          body: JSON.stringify(teamsMessage(scope, title, text)),
        })
        const body = await response.text()
        if (response.status < 200 || response.status > 299)
          return result.fail(failureFromStatus(response.status, response.headers, clock(), body))
        // The legacy Office 365 connector reports some failures (Teams throttling it) as a
        // 200 whose body says so; that text is the only signal it gives.
        if (body.startsWith('Webhook message delivery failed'))
          return result.fail({
            kind: 'retriable',
            code: /\b429\b/.test(body) ? 'rate_limited' : 'http_status',
            status: response.status,
            error: `HTTP ${response.status}: ${body}`,
          })
        // The legacy connector answers 200 with "1"; Workflows answer 202 with an empty body.
        return result.ok(response.status, body === '' || body === '1' ? 'accepted' : body, { notes })
      } catch (error) {
        return result.fail(failureFromError(error))
      }
    },
  }
}
