import type { DeliveryChannel } from './channel.ts'
import { renderChatMessage } from './chat-message.ts'
import { type Failure, failureFromError, failureFromStatus } from './classify.ts'
import { type ChannelOptions, oneLine, resultBuilder, shownAs, truncate } from './common.ts'
import { secretValues, type TeamsConfiguration } from './configuration.ts'
import { channelFetch } from './guarded-fetch.ts'
import type { MessageScope } from './message.ts'

const LEVEL_COLOR: Readonly<Record<string, string>> = {
  error: 'Attention',
  warning: 'Warning',
  info: 'Accent',
}

/** Adaptive Cards 1.4: what both Incoming Webhooks and Workflows render in Teams today. */
const CARD_VERSION = '1.4'

/**
 * Teams refuses a message over 28 KB of JSON (a 413, the same on every retry), so a card is
 * kept at most this big, with room for the envelope a connector adds.
 */
const MAX_MESSAGE_BYTES = 27 * 1024

/**
 * What a card shows at most, in characters, before it is measured: the text (in at most
 * `lines` lines, each a block of its own), the title and each fact's value. A card still over
 * `MAX_MESSAGE_BYTES` (characters of three bytes, or escaped in JSON) is made again with each
 * halved.
 */
interface CardLimits {
  readonly text: number
  readonly lines: number
  readonly title: number
  readonly fact: number
}

const LIMITS: CardLimits = { text: 10_000, lines: 60, title: 500, fact: 1_000 }

/** Halvings tried before a card goes as it is: by then every text is a few characters. */
const MAX_HALVINGS = 8

const halved = (limits: CardLimits): CardLimits => ({
  text: Math.ceil(limits.text / 2),
  lines: Math.ceil(limits.lines / 2),
  title: Math.ceil(limits.title / 2),
  fact: Math.ceil(limits.fact / 2),
})

/**
 * A run of text Teams shows as written. Adaptive Cards render Markdown in a `TextBlock`'s
 * text and a `FactSet`'s titles and values, so an event's text there (a tag, a registry's
 * error) could add links or formatting; a `TextRun` in a `RichTextBlock` renders none.
 */
const run = (text: string, style: Readonly<Record<string, string>> = {}) => ({
  type: 'TextRun',
  text,
  ...style,
})

const richText = (inlines: readonly ReturnType<typeof run>[], spacing?: string) => ({
  type: 'RichTextBlock',
  ...(spacing === undefined ? {} : { spacing }),
  inlines,
})

/**
 * The rendered text, one block per line: a line break inside a run is not rendered the same
 * by every Teams client. A blank line becomes a gap before the next block.
 */
const textBlocks = (text: string, limits: CardLimits) => {
  const lines: { text: string; spacing: string | undefined }[] = []
  let gap = false
  for (const line of truncate(text, limits.text).split(/\r\n?|\n/)) {
    if (line.trim() === '') gap = lines.length > 0
    else {
      lines.push({ text: line, spacing: lines.length === 0 ? undefined : gap ? 'Medium' : 'None' })
      gap = false
    }
  }
  const shown =
    lines.length <= limits.lines
      ? lines
      : [...lines.slice(0, limits.lines - 1), { text: '…', spacing: 'None' }]
  return shown.map((line) => richText([run(line.text)], line.spacing))
}

// A TextRun needs some text: an empty value shows as a dash (`shownAs`).
const fact = (label: string, value: string, first: boolean, limits: CardLimits) =>
  richText(
    [run(`${label}: `, { weight: 'Bolder' }), run(shownAs(truncate(value, limits.fact)))],
    first ? 'Medium' : 'None',
  )

/**
 * The message a Teams incoming webhook or workflow takes: a `message` with one Adaptive Card
 * attachment — the title, the rendered text, the facts (level, resource, account, time,
 * event; for a digest, its highest level, event count, account, window and configuration) and
 * an "open URL" action into the UI when there is a link. Every text comes from the event or a
 * template over it, so all of it is in `TextRun`s, which render no Markdown. Any event yields
 * a card under Teams' limit: long texts are cut with an ellipsis, shorter until the card fits.
 */
export const teamsMessage = (scope: MessageScope, title: string, text: string) => {
  let limits = LIMITS
  let message = teamsCard(scope, title, text, limits)
  for (let i = 0; i < MAX_HALVINGS && Buffer.byteLength(JSON.stringify(message)) > MAX_MESSAGE_BYTES; i++) {
    limits = halved(limits)
    message = teamsCard(scope, title, text, limits)
  }
  return message
}

const teamsCard = (scope: MessageScope, title: string, text: string, limits: CardLimits) => {
  const facts: readonly (readonly [string, string])[] =
    scope.digest === null
      ? [
          ['Level', scope.level],
          ['Resource', scope.resource],
          ['Account', scope.account],
          ['Time', scope.time],
          ['Event', `${scope.type} (${scope.event_id})`],
        ]
      : [
          ['Highest level', scope.level],
          ['Events', String(scope.digest.total)],
          ['Account', scope.account],
          ['Window', `${scope.digest.window_start} – ${scope.digest.window_end}`],
          ['Configuration', scope.delivery.configuration_id],
        ]
  const lines = textBlocks(text, limits)
  return {
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
            richText([
              run(shownAs(oneLine(title, limits.title)), {
                size: 'Large',
                weight: 'Bolder',
                color: LEVEL_COLOR[scope.level] ?? 'Default',
              }),
            ]),
            ...(lines.length === 0 ? [] : [{ type: 'Container', items: lines }]),
            {
              type: 'Container',
              items: facts.map(([label, value], i) => fact(label, value, i === 0, limits)),
            },
          ],
          ...(scope.link === null
            ? {}
            : { actions: [{ type: 'Action.OpenUrl', title: 'View in Herald', url: scope.link }] }),
        },
      },
    ],
  }
}

/** How the legacy Office 365 connector's `200` begins when Teams did not take the message. */
const CONNECTOR_FAILED = 'Webhook message delivery failed'

/**
 * A failure the legacy connector reported in a `200`: it relays the card to Teams and answers
 * `Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413
 * with ContextId …`, that text being its only signal. Teams' own status decides, as if Teams had
 * answered it: throttled (429) or in trouble (5xx) is retried, a message refused (413 for one
 * over 28 KB, another 4xx) is not, since the same message is refused again. Text naming no
 * status is retried, as before Teams' status was read.
 */
const connectorFailure = (body: string, headers: Headers, nowMs: number): Failure => {
  const teamsStatus = /returned HTTP error (\d{3})\b/.exec(body)?.[1]
  if (teamsStatus !== undefined) return failureFromStatus(Number(teamsStatus), headers, nowMs, body)
  return { kind: 'retriable', code: 'http_status', status: 200, error: `HTTP 200: ${body}` }
}

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
      const http = channelFetch(options.guard, configuration, context)
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
        if (body.startsWith(CONNECTOR_FAILED))
          return result.fail(connectorFailure(body, response.headers, clock()))
        // The legacy connector answers 200 with "1"; Workflows answer 202 with an empty body.
        return result.ok(response.status, body === '' || body === '1' ? 'accepted' : body, { notes })
      } catch (error) {
        return result.fail(failureFromError(error))
      }
    },
  }
}
