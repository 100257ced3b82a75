import type { Logger } from '../../../src/observability/index.ts'
import type { ChannelContext, ChannelDelivery } from './channel.ts'
import { fallbackNotes } from './common.ts'
import type { TemplateOverrides } from './configuration.ts'
import { type MessageScope, messageScope } from './message.ts'
import { renderField } from './templates.ts'

/** A chat message's content: what it is about, its title and text, and why a template fell back. */
export interface ChatMessage {
  readonly scope: MessageScope
  readonly title: string
  readonly text: string
  readonly notes: string[]
}

/**
 * Renders the title, then the text (which may use the title), of a Slack or Teams message from
 * the configuration's templates or Herald's defaults; a template that fails falls back to the
 * default, logged and noted in the result.
 *
 * @example
 * const message = await renderChatMessage('slack', delivery, configuration, context, logger)
 * await webhook.send(slackMessage(message.scope, message.title, message.text))
 */
export const renderChatMessage = async (
  endpoint: 'slack' | 'teams',
  delivery: ChannelDelivery,
  configuration: { readonly id: string; readonly templates?: TemplateOverrides },
  context: Pick<ChannelContext, 'uiUrl'>,
  logger: Logger | undefined,
): Promise<ChatMessage> => {
  const scope = messageScope(delivery, { uiUrl: context.uiUrl })
  const title = await renderField(endpoint, 'title', configuration.templates, scope)
  const text = await renderField(endpoint, 'text', configuration.templates, { ...scope, title: title.text })
  const notes = fallbackNotes(logger, endpoint, { configurationId: configuration.id, delivery }, [
    title,
    text,
  ])
  return { scope, title: title.text, text: text.text, notes }
}
