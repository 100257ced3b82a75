import type { ChannelContext, ChannelDelivery, ChannelResult, DeliveryChannel } from './channel.ts'
import type { ChannelConfiguration, ChannelEndpoint, ConfigurationFor } from './configuration.ts'
import { createEmailChannel, type EmailChannelOptions } from './email.ts'
import { createGitHubChannel, type TicketChannelOptions } from './github.ts'
import { createJiraChannel } from './jira.ts'
import { createSlackChannel } from './slack.ts'
import { createTeamsChannel } from './teams.ts'
import { createWebhookChannel } from './webhook.ts'

export type DeliveryChannelsOptions = EmailChannelOptions & TicketChannelOptions

export interface DeliveryChannels {
  readonly channels: { readonly [E in ChannelEndpoint]: DeliveryChannel<ConfigurationFor<E>> }
  /** Sends through the channel of `configuration.endpoint`. */
  readonly send: (
    delivery: ChannelDelivery,
    configuration: ChannelConfiguration,
    context: ChannelContext,
  ) => Promise<ChannelResult>
}

/**
 * Every channel, sharing one SSRF guard, clock and logger: what the composition root builds
 * once and hands to the deliverer.
 *
 * @example
 * const channels = createDeliveryChannels({ guard: createOutboundGuard({ allowlist }), logger })
 * const result = await channels.send(command, configuration, { uiUrl: config.ui_url, timeoutMs: 15_000 })
 */
export const createDeliveryChannels = (options: DeliveryChannelsOptions): DeliveryChannels => {
  const channels = {
    slack: createSlackChannel(options),
    teams: createTeamsChannel(options),
    email: createEmailChannel(options),
    webhook: createWebhookChannel(options),
    github: createGitHubChannel(options),
    jira: createJiraChannel(options),
  }
  const send = (delivery: ChannelDelivery, configuration: ChannelConfiguration, context: ChannelContext) => {
    switch (configuration.endpoint) {
      case 'slack':
        return channels.slack.send(delivery, configuration, context)
      case 'teams':
        return channels.teams.send(delivery, configuration, context)
      case 'email':
        return channels.email.send(delivery, configuration, context)
      case 'webhook':
        return channels.webhook.send(delivery, configuration, context)
      case 'github':
        return channels.github.send(delivery, configuration, context)
      case 'jira':
        return channels.jira.send(delivery, configuration, context)
      default: {
        // Configurations come from stored events; one of an endpoint this build does not know is refused, not thrown.
        const endpoint: string = (configuration as { endpoint: string }).endpoint
        return Promise.resolve<ChannelResult>({
          ok: false,
          kind: 'permanent',
          code: 'configuration',
          status: null,
          error: `no channel for endpoint ${endpoint}`,
          latencyMs: 0,
        })
      }
    }
  }
  return { channels, send }
}
