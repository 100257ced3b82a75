/**
 * What each channel needs to send: one endpoint configuration as the deliverer holds it at
 * delivery time, secrets decrypted. The configuration aggregates (src/notifications) map onto
 * these types; the field each property comes from is named in its comment (`api: …`).
 *
 * Nothing here is logged or returned: every secret property is listed by `secretValues`, which
 * scrubs results, errors and log fields.
 */

export type ChannelEndpoint = 'slack' | 'teams' | 'email' | 'webhook' | 'github' | 'jira'

export const CHANNEL_ENDPOINTS: readonly ChannelEndpoint[] = [
  'slack',
  'teams',
  'email',
  'webhook',
  'github',
  'jira',
]

/** A template field a configuration may override; which fields a channel uses is in `TEMPLATE_FIELDS`. */
export type TemplateField =
  | 'title'
  | 'text'
  | 'subject'
  | 'html'
  | 'body'
  | 'comment'
  | 'summary'
  | 'description'

/** Liquid templates by field. */
export type TemplateSet = Readonly<Partial<Record<TemplateField, string>>>

/**
 * api: `templates`. Fields at the top level apply to every event; `event_types` holds sets for
 * one event type or a wildcard pattern (`user.checks.*`), which win over the top level. The
 * exact type wins over a pattern, and a longer pattern over a shorter one.
 *
 * @example
 * { subject: 'Herald: {{ title }}', event_types: { 'user.checks.*': { subject: '[{{ level }}] {{ title }}' } } }
 */
export interface TemplateOverrides extends TemplateSet {
  readonly event_types?: Readonly<Record<string, TemplateSet>>
}

interface ConfigurationBase {
  /** api: `uuid`. */
  readonly id: string
  /** The owner. */
  readonly account: string
  /** api: `verify_tls`; false accepts any certificate (self-signed on-premises servers). Default true. */
  readonly verifyTls?: boolean
  /** api: `templates`; validated with `validateTemplates` when saved. */
  readonly templates?: TemplateOverrides
}

export interface SlackConfiguration extends ConfigurationBase {
  readonly endpoint: 'slack'
  /** api: `url`. A credential: anyone holding it can post to the channel. */
  readonly webhookUrl: string
}

export interface TeamsConfiguration extends ConfigurationBase {
  readonly endpoint: 'teams'
  /** api: `url`: an Incoming Webhook or a Workflows ("When a Teams webhook request is received") URL. A credential. */
  readonly webhookUrl: string
}

/** `none`: plain SMTP; `starttls`: upgrade required (refused when the server does not offer it); `tls`: TLS from the first byte (port 465). */
export type SmtpTlsMode = 'none' | 'starttls' | 'tls'

export interface EmailConfiguration extends ConfigurationBase {
  readonly endpoint: 'email'
  /** api: `smtp_host`: a host name or an IP address. */
  readonly host: string
  /** api: `smtp_port` (default 587). */
  readonly port: number
  /** api: `from`. */
  readonly from: string
  /** api: `to`: one or more addresses. */
  readonly to: readonly string[]
  /** api: `username`; with it Herald authenticates (the server chooses PLAIN or LOGIN). */
  readonly username?: string
  /** api: `password`. */
  readonly password?: string
  /** api: `tls_mode` (default `starttls`). */
  readonly tls: SmtpTlsMode
  /** api: `include_payload`: append the full event (metadata only, as every event) to the message. */
  readonly includePayload?: boolean
}

export interface WebhookChannelConfiguration extends ConfigurationBase {
  readonly endpoint: 'webhook'
  /** api: `url`. */
  readonly url: string
  /** api: `username`: with `password`, sent as HTTP basic auth. */
  readonly username?: string
  /** api: `password`. */
  readonly password?: string
  /**
   * api: `signing_secret` (`whsec_…`), and during a key rotation the previous one(s) too,
   * newest first: every one signs, so receivers holding either key verify.
   */
  readonly signingSecrets: readonly string[]
}

export interface GitHubConfiguration extends ConfigurationBase {
  readonly endpoint: 'github'
  /** api: `api_url`; default `https://api.github.com` (GitHub Enterprise Server: `https://host/api/v3`). */
  readonly apiUrl?: string
  /** api: `owner`. */
  readonly owner: string
  /** api: `repository`. */
  readonly repository: string
  /** api: `token`: a token with issues write access (and push access, so labels are kept). */
  readonly token: string
  /** api: `labels`. */
  readonly labels?: readonly string[]
  /** api: `assignees`: GitHub logins. */
  readonly assignees?: readonly string[]
  /** api: `milestone`: the milestone number. */
  readonly milestone?: number
}

export interface JiraConfiguration extends ConfigurationBase {
  readonly endpoint: 'jira'
  /** api: `url`: the site, e.g. `https://acme.atlassian.net`. */
  readonly url: string
  /** api: `username`: the account's email address. */
  readonly username: string
  /** api: `api_token`. */
  readonly apiToken: string
  /** api: `project_key`. */
  readonly projectKey: string
  /** api: `issue_type` (default `Bug`): a name, or an id (`10004`). */
  readonly issueType: string
  /** api: `priority`: a name (`High`). */
  readonly priority?: string
  /** api: `labels`: no spaces (Jira refuses them). */
  readonly labels?: readonly string[]
  /** api: `assignee`: an Atlassian account id. */
  readonly assignee?: string
}

export type ChannelConfiguration =
  | SlackConfiguration
  | TeamsConfiguration
  | EmailConfiguration
  | WebhookChannelConfiguration
  | GitHubConfiguration
  | JiraConfiguration

export type ConfigurationFor<E extends ChannelEndpoint> = Extract<ChannelConfiguration, { endpoint: E }>

export const DEFAULT_GITHUB_API_URL = 'https://api.github.com'

/**
 * The secret parts of a URL. Slack's and Teams' URLs are credentials whole: their tokens are
 * path segments and query values. Of any other URL only the password and query values are;
 * short segments and values (`services`, `1.0`) are words that would redact half a message.
 */
const urlSecrets = (raw: string, { wholeUrl }: { wholeUrl: boolean }): string[] => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return wholeUrl ? [raw] : []
  }
  const parts: string[] = []
  if (wholeUrl) {
    parts.push(raw, url.href, `${url.pathname}${url.search}`)
    for (const segment of url.pathname.split('/')) if (segment.length >= 8) parts.push(segment)
  }
  if (url.password !== '') parts.push(url.password, decodeURIComponent(url.password))
  for (const [, value] of url.searchParams) if (value.length >= 8) parts.push(value)
  return parts
}

/** Every secret a configuration holds, in the spellings it could travel in; `scrub` removes them. */
export const secretValues = (configuration: ChannelConfiguration): readonly string[] => {
  const values: string[] = []
  switch (configuration.endpoint) {
    case 'slack':
    case 'teams':
      values.push(...urlSecrets(configuration.webhookUrl, { wholeUrl: true }))
      break
    case 'email':
      if (configuration.password !== undefined) values.push(configuration.password)
      if (configuration.username !== undefined && configuration.password !== undefined)
        values.push(
          Buffer.from(`\u0000${configuration.username}\u0000${configuration.password}`).toString('base64'),
          Buffer.from(configuration.password).toString('base64'),
        )
      break
    case 'webhook':
      values.push(...urlSecrets(configuration.url, { wholeUrl: false }))
      if (configuration.password !== undefined) {
        values.push(configuration.password)
        values.push(
          Buffer.from(`${configuration.username ?? ''}:${configuration.password}`).toString('base64'),
        )
      }
      for (const secret of configuration.signingSecrets) values.push(secret, secret.replace(/^whsec_/, ''))
      break
    case 'github':
      values.push(configuration.token)
      break
    case 'jira':
      values.push(
        configuration.apiToken,
        Buffer.from(`${configuration.username}:${configuration.apiToken}`).toString('base64'),
      )
      break
  }
  return values.filter((value) => value.length >= 4)
}

const REDACTED = '[redacted]'

/**
 * Removes every secret from `text`, as is and URL-encoded. Results carry what endpoints
 * answered, and an endpoint may echo a request back; this is the last line of defence.
 */
export const scrub = (text: string, secrets: readonly string[]): string => {
  let out = text
  // Longest first, so a URL is replaced whole before its path segments are.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    for (const spelling of new Set([secret, encodeURIComponent(secret)])) {
      if (spelling.length > 0) out = out.split(spelling).join(REDACTED)
    }
  }
  return out
}
