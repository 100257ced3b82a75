import { isDeepStrictEqual } from 'node:util'
import * as t from 'io-ts'
import type { FieldIssue } from '../errors/index.ts'
import {
  Assignees,
  BasicAuthUser,
  EmailAddress,
  EmailList,
  GitHubName,
  HostName,
  JiraProjectKey,
  Labels,
  Milestone,
  Port,
  Secret,
  SigningSecret,
  TlsMode,
  text,
  WebhookUrl,
} from './codecs.ts'
import type { EndpointType, JsonValue } from './model.ts'

/**
 * One field of an endpoint's configuration, by its API name. `secret` fields are sealed
 * before they are stored and never shown again; `target` fields are URLs the SSRF guard
 * checks on every write and delivery.
 */
export interface FieldSpec {
  readonly codec: t.Type<unknown, unknown, unknown>
  readonly required: boolean
  readonly secret?: boolean
  /** A URL Herald connects to. */
  readonly target?: boolean
  /** What an absent optional field means. */
  readonly default?: JsonValue
  /** Required, but Herald generates it when a create request leaves it out. */
  readonly generated?: boolean
  /**
   * A secret that signs: a value it replaces still signs for the grace period, so receivers
   * can switch over (`SealedSecret.previous`).
   */
  readonly signs?: boolean
  /**
   * A secret sent to a server (a password, a token), and the fields that say which (its own
   * value, for a secret URL, when empty): an update that changes one of them, or weakens the
   * TLS the secret goes over, must give the secret again (`secretRedirections`).
   */
  readonly sentTo?: readonly string[]
  /** A field this one is of no use without: set alone, either is refused, naming the other. */
  readonly with?: { readonly field: string; readonly why: string }
  readonly doc: string
}

const field = <A>(
  codec: t.Type<A, unknown, unknown>,
  spec: Omit<FieldSpec, 'codec' | 'required'> & { required?: boolean },
): FieldSpec => ({
  ...spec,
  required: spec.required ?? false,
  codec: codec as t.Type<unknown, unknown, unknown>,
})

const incomingWebhook = (service: string): Readonly<Record<string, FieldSpec>> => ({
  url: field(WebhookUrl, {
    required: true,
    secret: true,
    target: true,
    sentTo: [],
    doc: `The ${service} incoming webhook URL. Whoever holds it can post, so it is kept as a secret.`,
  }),
})

/**
 * The fields of each endpoint type, as the API takes them (Anchore's snake_case). The
 * configuration aggregate, the API and the audit trail all read this one table.
 */
export const ENDPOINT_FIELDS: Readonly<Record<EndpointType, Readonly<Record<string, FieldSpec>>>> = {
  slack: incomingWebhook('Slack'),
  teams: incomingWebhook('Microsoft Teams (incoming webhook or workflow)'),
  email: {
    smtp_host: field(HostName, { required: true, doc: 'SMTP server host name or address.' }),
    smtp_port: field(Port, { default: 587, doc: 'SMTP server port.' }),
    from: field(EmailAddress, { required: true, doc: 'Sender address.' }),
    to: field(EmailList, { required: true, doc: 'One to 50 recipient addresses, each once.' }),
    // Herald logs in with PLAIN or LOGIN, which take both: a user with no password would log in
    // with an empty one, and a password with no user would never be sent.
    username: field(text('Username', 256), {
      with: { field: 'password', why: 'Herald logs in to the SMTP server with both' },
      doc: 'SMTP user, when the server requires authentication (with `password`).',
    }),
    password: field(Secret, {
      secret: true,
      sentTo: ['smtp_host', 'smtp_port'],
      with: { field: 'username', why: 'Herald logs in to the SMTP server with both' },
      doc: 'SMTP password (with `username`).',
    }),
    tls_mode: field(TlsMode, {
      default: 'starttls',
      doc: '`tls`: TLS from the first byte (port 465); `starttls`: upgrade required; `none`: plain text.',
    }),
    include_payload: field(t.boolean, {
      default: false,
      doc: 'Show the event as JSON at the end of the message body: its first 16,000 characters, then how many more there are.',
    }),
  },
  webhook: {
    url: field(WebhookUrl, { required: true, target: true, doc: 'Where events are POSTed.' }),
    username: field(BasicAuthUser, { doc: 'Basic auth user (no ":").' }),
    password: field(Secret, { secret: true, sentTo: ['url'], doc: 'Basic auth password.' }),
    signing_secret: field(SigningSecret, {
      required: true,
      generated: true,
      secret: true,
      signs: true,
      doc: 'Standard Webhooks secret (`whsec_…`); generated when absent, returned once in the creation response. Each value it replaces still signs for 24 h (at most 10 at once).',
    }),
  },
  github: {
    api_url: field(WebhookUrl, {
      target: true,
      default: 'https://api.github.com',
      doc: 'GitHub REST API base URL (GitHub Enterprise Server: `https://host/api/v3`).',
    }),
    owner: field(GitHubName, { required: true, doc: 'Repository owner (user or organisation).' }),
    repository: field(GitHubName, { required: true, doc: 'Repository name.' }),
    token: field(Secret, {
      required: true,
      secret: true,
      sentTo: ['api_url'],
      doc: 'A token allowed to create issues.',
    }),
    labels: field(Labels, { default: [], doc: 'Labels set on each issue (at most 20, each once).' }),
    assignees: field(Assignees, {
      default: [],
      doc: 'User names assigned to each issue (at most 10, each once).',
    }),
    milestone: field(Milestone, { doc: 'Milestone number set on each issue.' }),
  },
  jira: {
    url: field(WebhookUrl, {
      required: true,
      target: true,
      doc: 'Jira site URL, e.g. https://acme.atlassian.net.',
    }),
    username: field(text('Username', 256), {
      required: true,
      doc: 'Jira user (an email address on Jira Cloud).',
    }),
    api_token: field(Secret, {
      required: true,
      secret: true,
      sentTo: ['url'],
      doc: 'API token of that user.',
    }),
    project_key: field(JiraProjectKey, { required: true, doc: 'Project the issues are created in.' }),
    issue_type: field(text('IssueType', 100), { default: 'Bug', doc: 'Issue type name.' }),
    priority: field(text('Priority', 100), { doc: 'Priority name.' }),
    labels: field(Labels, { default: [], doc: 'Labels set on each issue (at most 20, each once).' }),
    assignee: field(text('Assignee', 256), { doc: 'Account id of the assignee.' }),
  },
}

/**
 * The spec of an endpoint's field by its API name; undefined for any other name, those an
 * object inherits (`__proto__`, `constructor`, `toString`) included, since names come from requests.
 */
export const fieldSpec = (endpoint: EndpointType, name: string): FieldSpec | undefined =>
  Object.hasOwn(ENDPOINT_FIELDS[endpoint], name) ? ENDPOINT_FIELDS[endpoint][name] : undefined

export const secretFieldsOf = (endpoint: EndpointType): readonly string[] =>
  Object.entries(ENDPOINT_FIELDS[endpoint])
    .filter(([, spec]) => spec.secret === true)
    .map(([name]) => name)

export const isSecretField = (endpoint: EndpointType, name: string): boolean =>
  fieldSpec(endpoint, name)?.secret === true

/** Secret fields whose values are URLs: their origin may be shown, never their path. */
export const isSecretUrlField = (endpoint: EndpointType, name: string): boolean => {
  const spec = fieldSpec(endpoint, name)
  return spec?.secret === true && spec.target === true
}

/** A server Herald connects to, as the SSRF guard checks it: a URL, or email's SMTP host and port. */
export type Target = { readonly url: string } | { readonly smtpHost: string; readonly port: number }

/**
 * The servers a configuration names that Herald will connect to, for the SSRF guard. Without
 * defaults, only the ones `values` names: what an update changes.
 */
export const targetsOf = (
  endpoint: EndpointType,
  values: Readonly<Record<string, JsonValue | undefined>>,
  { withDefaults = true } = {},
): readonly Target[] => {
  const targets: Target[] = []
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint])) {
    const value = values[name] ?? (withDefaults ? spec.default : undefined)
    if (spec.target === true && typeof value === 'string') targets.push({ url: value })
  }
  if (endpoint === 'email' && typeof values.smtp_host === 'string')
    targets.push({
      smtpHost: values.smtp_host,
      port: typeof values.smtp_port === 'number' ? values.smtp_port : 587,
    })
  return targets
}

/** Where a configuration sends its secrets: its settings and whether it checks certificates. */
export interface SecretDestination {
  readonly settings: Readonly<Record<string, unknown>>
  readonly verifyTls: unknown
}

/** Why keeping a stored secret would send it somewhere else: `short` for a message, `long` for its field. */
export interface Redirection {
  readonly short: string
  readonly long: string
}

/**
 * The secrets of `endpoint` that going from `before` to `after` sends somewhere they were not
 * sent before, each with why: a field naming its server changed (an absent or null one counts
 * as its default), certificates no longer checked, or email's TLS switched off. A secret kept
 * across such a change could be read by whoever made it, so the change must bring it again.
 *
 * @example
 * secretRedirections('webhook', { settings: { url: a }, verifyTls: true }, { settings: { url: b }, verifyTls: true })
 * // Map { 'password' => [{ short: 'changing url', … }] }
 */
export const secretRedirections = (
  endpoint: EndpointType,
  before: SecretDestination,
  after: SecretDestination,
): ReadonlyMap<string, readonly Redirection[]> => {
  const settingOf = (destination: SecretDestination, name: string) =>
    destination.settings[name] ?? fieldSpec(endpoint, name)?.default
  const out = new Map<string, Redirection[]>()
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint])) {
    if (spec.secret !== true || spec.sentTo === undefined) continue
    const reasons: Redirection[] = []
    for (const field of spec.sentTo)
      if (!isDeepStrictEqual(settingOf(before, field), settingOf(after, field)))
        reasons.push({
          short: `changing ${field}`,
          long: `changing ${field} would send the stored one to another server`,
        })
    if (before.verifyTls !== false && after.verifyTls === false)
      reasons.push({
        short: 'switching verify_tls off',
        long: 'switching verify_tls off would send the stored one to a server whose certificate is not checked',
      })
    if (
      endpoint === 'email' &&
      settingOf(before, 'tls_mode') !== 'none' &&
      settingOf(after, 'tls_mode') === 'none'
    )
      reasons.push({
        short: 'setting tls_mode to none',
        long: 'setting tls_mode to none would send the stored one in plain text',
      })
    if (reasons.length > 0) out.set(name, reasons)
  }
  return out
}

/**
 * Issues for each field of `endpoint` set without the one it needs (`FieldSpec.with`), naming
 * the missing one; `isSet` says whether a field has a value in the configuration as it would be.
 */
export const unpairedFields = (endpoint: EndpointType, isSet: (name: string) => boolean): FieldIssue[] => {
  const issues: FieldIssue[] = []
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint]))
    if (spec.with !== undefined && isSet(name) && !isSet(spec.with.field))
      issues.push({ path: spec.with.field, message: `is required with ${name}: ${spec.with.why}` })
  return issues
}
