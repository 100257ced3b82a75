import type {
  ChannelConfiguration,
  DeliverableConfiguration,
  TemplateOverrides,
} from '../../streams/delivery/index.ts'
import {
  type EndpointConfiguration,
  type JsonValue,
  type NotificationConfigService,
  undecryptableDetail,
} from '../notifications/index.ts'

const text = (value: JsonValue | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined
const texts = (value: JsonValue | undefined): readonly string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined
const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> =>
  (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>

/**
 * A stored configuration as its channel takes it, secrets opened: the one place the
 * aggregate's field names meet the channel layer's. `open` returns a secret's plaintext, and
 * `signingSecrets` the webhook's current secret and those still in their rotation grace period.
 */
export const toChannelConfiguration = (
  configuration: EndpointConfiguration,
  open: (field: string) => string | undefined,
  signingSecrets: () => readonly string[],
): ChannelConfiguration => {
  const s = configuration.settings
  const base = {
    id: configuration.id,
    account: configuration.account,
    verifyTls: configuration.verifyTls,
    templates: configuration.templates as TemplateOverrides,
  }
  switch (configuration.endpoint) {
    case 'slack':
    case 'teams':
      return { ...base, endpoint: configuration.endpoint, webhookUrl: open('url') ?? '' }
    case 'email':
      return {
        ...base,
        endpoint: 'email',
        host: text(s.smtp_host) ?? '',
        port: typeof s.smtp_port === 'number' ? s.smtp_port : 587,
        from: text(s.from) ?? '',
        to: texts(s.to) ?? [],
        tls: s.tls_mode === 'tls' || s.tls_mode === 'none' ? s.tls_mode : 'starttls',
        includePayload: s.include_payload === true,
        ...optional('username', text(s.username)),
        ...optional('password', open('password')),
      }
    case 'webhook':
      return {
        ...base,
        endpoint: 'webhook',
        url: text(s.url) ?? '',
        signingSecrets: signingSecrets(),
        ...optional('username', text(s.username)),
        ...optional('password', open('password')),
      }
    case 'github':
      return {
        ...base,
        endpoint: 'github',
        owner: text(s.owner) ?? '',
        repository: text(s.repository) ?? '',
        token: open('token') ?? '',
        ...optional('apiUrl', text(s.api_url)),
        ...optional('labels', texts(s.labels)),
        ...optional('assignees', texts(s.assignees)),
        ...optional('milestone', typeof s.milestone === 'number' ? s.milestone : undefined),
      }
    case 'jira':
      return {
        ...base,
        endpoint: 'jira',
        url: text(s.url) ?? '',
        username: text(s.username) ?? '',
        apiToken: open('api_token') ?? '',
        projectKey: text(s.project_key) ?? '',
        issueType: text(s.issue_type) ?? 'Bug',
        ...optional('priority', text(s.priority)),
        ...optional('labels', texts(s.labels)),
        ...optional('assignee', text(s.assignee)),
      }
  }
}

/**
 * What the deliverer needs of a stored configuration, secrets opened through `service`: its
 * state and its channel, the webhook signing with its current secret and those still in their
 * rotation grace period at `now`. One with a secret no key decrypts is `unusable`: each
 * attempt fails as `secret_undecryptable`, retriable, since listing the lost key again in
 * `secrets.previous_keys` fixes it as well as its owner giving the secret again; so it is
 * retried, dead-lettered and disabled for a sustained failure (announced) as a failing
 * endpoint is, where throwing here would hold its queue forever.
 */
export const deliverableConfiguration = (
  service: Pick<NotificationConfigService, 'openSecret' | 'webhookDelivery' | 'undecryptableSecrets'>,
  configuration: EndpointConfiguration,
  now: () => number,
): DeliverableConfiguration => {
  const state = {
    enabled: configuration.enabled,
    changedAt: Date.parse(configuration.updatedAt),
    ...(configuration.maxInFlight === null ? {} : { maxInFlight: configuration.maxInFlight }),
  }
  const undecryptable = service.undecryptableSecrets(configuration)
  if (undecryptable.length > 0)
    return {
      ...state,
      channel: toChannelConfiguration(
        configuration,
        () => undefined,
        () => [],
      ),
      unusable: {
        kind: 'retriable',
        code: 'secret_undecryptable',
        error: undecryptableDetail(undecryptable),
      },
    }
  const signingSecrets = () => {
    const current = service.webhookDelivery(configuration, now())
    return current === undefined ? [] : [current.signingSecret, ...(current.previousSigningSecrets ?? [])]
  }
  return {
    ...state,
    channel: toChannelConfiguration(
      configuration,
      (field) => service.openSecret(configuration, field),
      signingSecrets,
    ),
  }
}
