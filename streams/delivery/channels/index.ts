export type {
  ChannelContext,
  ChannelDelivery,
  ChannelFailure,
  ChannelResult,
  ChannelSuccess,
  DeliveryChannel,
  DigestCount,
  DigestSummary,
  FailureCode,
  FailureKind,
  TicketOutcome,
} from './channel.ts'
export { DEFAULT_CHANNEL_TIMEOUT_MS } from './channel.ts'
export { createDeliveryChannels, type DeliveryChannels, type DeliveryChannelsOptions } from './channels.ts'
export { kindOfStatus, parseRetryAfter, RedirectNotFollowedError } from './classify.ts'
export type { ChannelOptions } from './common.ts'
export {
  CHANNEL_ENDPOINTS,
  type ChannelConfiguration,
  type ChannelEndpoint,
  type ConfigurationFor,
  DEFAULT_GITHUB_API_URL,
  type EmailConfiguration,
  type GitHubConfiguration,
  type JiraConfiguration,
  type SlackConfiguration,
  type SmtpTlsMode,
  scrub,
  secretValues,
  type TeamsConfiguration,
  type TemplateField,
  type TemplateOverrides,
  type TemplateSet,
  type WebhookChannelConfiguration,
} from './configuration.ts'
export { createEmailChannel, type EmailChannelOptions } from './email.ts'
export { createGitHubChannel, githubTarget, type TicketChannelOptions } from './github.ts'
export { type FetchLike, type GuardedFetch, type GuardedFetchOptions, guardedFetch } from './guarded-fetch.ts'
export { createJiraChannel, JIRA_SEARCH_LAG_MS, jiraKeyLabel, jiraTarget } from './jira.ts'
export { type MessageScope, messageScope, uiLink } from './message.ts'
export {
  createMemoryRecentTickets,
  createSqliteRecentTickets,
  RECENT_TICKETS_KEPT,
  type RecentTickets,
} from './recent-tickets.ts'
export { createSlackChannel } from './slack.ts'
export { createTeamsChannel } from './teams.ts'
export {
  renderField,
  TEMPLATE_FIELDS,
  TEMPLATE_LIMITS,
  templateIssues,
  validateTemplates,
} from './templates.ts'
export { type TicketSubject, ticketSubjects } from './tickets.ts'
export { createWebhookChannel } from './webhook.ts'
