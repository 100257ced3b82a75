import { randomBytes } from 'node:crypto'
import { isLeft } from 'fp-ts/lib/Either.js'
import { Hono } from 'hono'
import { type AppEnv, actorOf, type RecordAction } from '../access/index.ts'
import { collectIssues, type FieldIssue, HeraldError, ValidationError } from '../errors/index.ts'
import {
  type CloudEvent,
  decodeEngineEvent,
  encodeLogEvent,
  TEST_EVENT_SOURCE,
  toFieldIssues,
} from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject, readNoFields } from '../http/body.ts'
import { noQueryParameters } from '../http/query.ts'
import type { Logger } from '../observability/index.ts'
import type { EventLog } from '../ports/event-log.ts'
import { createSecretBox, type SecretBox } from '../secrets/index.ts'
import {
  type ConfigurationEvent,
  type ConfigurationOptions,
  decide,
  evolve,
  initialState,
} from './configuration.ts'
import { changedReadOnly, configurationBody } from './configuration-body.ts'
import { ENDPOINT_FIELDS, type Target, targetsOf } from './endpoint-fields.ts'
import type { EndpointStatusService } from './endpoints.ts'
import type { EndpointConfiguration, EndpointType, JsonValue, NotificationsEnv, Principal } from './model.ts'
import { endpointParam, idParam } from './params.ts'
import {
  DEFAULT_OPTIONS,
  type NotificationConfigService,
  newSigningSecret,
  undecryptableDetail,
} from './service.ts'
import { holdsRedacted, REDACTED_REFUSED } from './views.ts'

/**
 * Tests of endpoints: one sample event sent to an unsaved or a stored configuration through
 * the channel layer, answering what the endpoint said; and `POST /v1/test_event`, which puts a
 * test event through the whole pipeline.
 */

export const TEST_EVENT_TYPE = 'com.ibm.cloud.compliance.test'

export interface TestEventInput {
  readonly id: string
  readonly account: string
  /** Milliseconds since the epoch. */
  readonly now: number
  readonly source?: string
  readonly summary?: string
}

/**
 * A `com.ibm.cloud.compliance.test` CloudEvent as the catalog defines it (`action`, `summary`),
 * with the catalog's level and resource type: metadata only, like every event.
 *
 * @example
 * testEvent({ id: randomUUID(), account: 'acme', now: Date.now() })
 */
export const testEvent = ({ id, account, now, source, summary }: TestEventInput): CloudEvent => {
  const decoded = decodeEngineEvent({
    specversion: '1.0',
    id,
    source: source ?? TEST_EVENT_SOURCE,
    type: TEST_EVENT_TYPE,
    account,
    subject: 'notification-test',
    time: new Date(now).toISOString(),
    datacontenttype: 'application/json',
    data: {
      action: 'test',
      summary: summary ?? 'Test event from Herald: this endpoint receives notifications',
    },
  })
  // The input is built here from the catalog's own definition; a refusal is a programmer error.
  if (!decoded.ok) throw new TypeError(`test event refused by the catalog: ${JSON.stringify(decoded.issues)}`)
  return decoded.value
}

/**
 * What one send answered, in the channel layer's terms (streams/delivery `ChannelResult` is
 * one): the HTTP status or SMTP reply code, and a short, secret-free summary of the answer.
 */
export type TestSendResult =
  | {
      readonly ok: true
      readonly status: number | null
      readonly response: string
      readonly latencyMs?: number
    }
  | {
      readonly ok: false
      readonly kind: 'retriable' | 'permanent' | 'gone'
      readonly code: string
      readonly status: number | null
      readonly error: string
      readonly latencyMs?: number
    }

/** One test delivery: the configuration with its secrets openable, and the event to send. */
export interface TestSend {
  readonly configuration: EndpointConfiguration
  /** A secret field's plaintext; undefined when it is not set. */
  readonly open: (field: string) => string | undefined
  /** A webhook configuration's signing secrets, newest first; empty for other endpoint types. */
  readonly signingSecrets: readonly string[]
  readonly event: CloudEvent
  readonly deliveryId: string
  /** RFC 3339. */
  readonly createdAt: string
}

/** Sends one test delivery through the endpoint's channel; never throws for what the endpoint did. */
export type SendTest = (send: TestSend) => Promise<TestSendResult>

export interface EndpointTestRoutesOptions {
  readonly service: Pick<
    NotificationConfigService,
    'getConfiguration' | 'openSecret' | 'webhookDelivery' | 'undecryptableSecrets'
  >
  readonly send: SendTest
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  /** A new UUID, for the test event and its delivery. */
  readonly newId: () => string
  /** Refuses a target the outbound guard would not deliver to (SSRF), as the configuration routes do. */
  readonly checkTarget?: (target: Target) => Promise<void>
  /** Parses template overrides, as the configuration routes do when one is saved. */
  readonly checkTemplates?: (templates: unknown, endpoint: EndpointType) => Promise<void>
  /**
   * Endpoint statuses: a test to a type an admin switched off is refused (409
   * `endpoint_disabled`), as nothing else is sent to it. Absent: every type is on.
   */
  readonly endpoints?: Pick<EndpointStatusService, 'get'>
  /** Told of each test of a stored configuration, which sends its secrets: `notifications.configuration_tested`. */
  readonly logger?: Logger
  /** Puts each test of a stored configuration in the audit (`ConfigurationTestSent`). */
  readonly recordAction?: RecordAction
}

const EXCERPT_CHARS = 200
const REDACTED = '[redacted]'

const invalid = (endpoint: EndpointType, issues: readonly FieldIssue[]): ValidationError =>
  new ValidationError(
    `invalid ${endpoint} configuration: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
    issues,
  )

/** Spellings a secret could travel in: as is, URL-encoded, and the long path parts of a secret URL. */
const spellingsOf = (secret: string): string[] => {
  const out = [secret, encodeURIComponent(secret)]
  if (URL.canParse(secret)) {
    const url = new URL(secret)
    out.push(url.href, `${url.pathname}${url.search}`)
    for (const segment of url.pathname.split('/')) if (segment.length >= 8) out.push(segment)
    for (const [, value] of url.searchParams) if (value.length >= 8) out.push(value)
  }
  return out.filter((s) => s.length >= 4)
}

/**
 * The endpoint's answer as shown to the caller: short, and without any secret of the
 * configuration. The channel layer scrubs its results already; this is a second line.
 */
const excerpt = (text: string, secrets: readonly string[]): string => {
  let out = text
  const spellings = [...new Set(secrets.flatMap(spellingsOf))].sort((a, b) => b.length - a.length)
  for (const spelling of spellings) out = out.split(spelling).join(REDACTED)
  return out.length > EXCERPT_CHARS ? `${out.slice(0, EXCERPT_CHARS - 1)}…` : out
}

/**
 * `sent`: the endpoint accepted it. `rejected`: the endpoint answered and refused (a 4xx, an
 * SMTP 5xx, 410 Gone). `blocked`: the outbound guard refused the target. `failed`: no usable
 * answer (timeout, network, TLS, 5xx, rate limit, a configuration the channel cannot use).
 */
export type TestStatus = 'sent' | 'rejected' | 'blocked' | 'failed'

const statusOf = (result: TestSendResult): TestStatus => {
  if (result.ok) return 'sent'
  if (result.code === 'blocked') return 'blocked'
  if (result.kind !== 'retriable' && result.status !== null) return 'rejected'
  return 'failed'
}

const answer = (result: TestSendResult, event: CloudEvent, secrets: readonly string[]) => ({
  status: statusOf(result),
  response: {
    status_code: result.status,
    body: excerpt(result.ok ? result.response : result.error, secrets),
  },
  ...(result.ok ? {} : { error_code: result.code, retriable: result.kind === 'retriable' }),
  ...(result.latencyMs === undefined ? {} : { latency_ms: result.latencyMs }),
  event_id: event.id,
})

/** `merged` of the service: options left out keep their defaults, a `null` one resets to it. */
const withDefaults = (options: Readonly<Record<string, unknown>>): ConfigurationOptions => {
  const out: Record<string, unknown> = { ...DEFAULT_OPTIONS }
  for (const [key, value] of Object.entries(options))
    if (value !== undefined) out[key] = value === null && key in DEFAULT_OPTIONS ? out[key] : value
  return out as ConfigurationOptions
}

/**
 * An unsaved configuration, validated exactly as a create is — unknown names refused, secrets
 * by their codecs, the configuration decider, template overrides by `checkTemplates`, every
 * issue in one 400 — and built as a create would build it, without storing anything.
 * `plaintext` holds its secrets (a webhook's signing secret generated when left out); they
 * never leave the request.
 */
const unsavedConfiguration = async (
  endpoint: EndpointType,
  body: Readonly<Record<string, unknown>>,
  principal: Principal,
  {
    box,
    clock,
    newId,
    checkTemplates,
  }: Pick<EndpointTestRoutesOptions, 'clock' | 'newId' | 'checkTemplates'> & { box: SecretBox },
) => {
  const split = configurationBody(endpoint, body)
  const { fields, options } = split
  const issues: FieldIssue[] = [...split.issues, ...changedReadOnly(endpoint, split.readOnly)]
  // One answer names every bad field: the secrets' codecs', the decider's and the templates'.
  const keepIssues = (error: unknown) => collectIssues(issues, error)
  const plaintext: Record<string, string> = {}
  const values: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint])) {
    const value = fields[name] ?? (spec.generated === true ? newSigningSecret() : undefined)
    if (value === undefined || value === null) continue
    if (spec.secret !== true) {
      values[name] = value
      continue
    }
    // Nothing is stored to stand for, as on a create.
    if (holdsRedacted(value)) {
      issues.push({ path: name, message: REDACTED_REFUSED })
      continue
    }
    // Checked before sealing, as the service does: deciding only ever sees secrets sealed.
    const checked = spec.codec.decode(value)
    if (isLeft(checked)) issues.push(...toFieldIssues(checked.left, name))
    else plaintext[name] = checked.right as string
  }
  const configurationId = newId()
  let decided: ConfigurationEvent[] = []
  try {
    decided = decide(
      {
        type: 'CreateConfiguration',
        data: {
          configurationId,
          account: principal.account,
          endpoint,
          values,
          secrets: Object.fromEntries(
            Object.entries(plaintext).map(([name, v]) => [name, box.seal(v, `${configurationId}/${name}`)]),
          ),
          hints: {},
          options: withDefaults(options),
        },
        metadata: { now: clock(), by: `${principal.account}/${principal.role}` },
      },
      initialState,
    )
  } catch (error) {
    keepIssues(error)
  }
  if (options.templates != null) await checkTemplates?.(options.templates, endpoint).catch(keepIssues)
  if (issues.length > 0) throw invalid(endpoint, issues)
  const state = decided.reduce(evolve, initialState)
  if (state.status !== 'active') throw new Error('deciding a creation left no configuration')
  return { configuration: state.configuration, plaintext }
}

/**
 * `POST /endpoints/{endpoint}/test` (an unsaved configuration, validated exactly like a create)
 * and `POST /endpoints/{endpoint}/configurations/{uuid}/test` (a stored one, its sealed secrets
 * opened by the service) as a Hono sub-app; mount it at `/v1/notifications` behind the
 * middleware that sets `principal`. Each sends one `com.ibm.cloud.compliance.test` event of the
 * caller's account through the channel and answers 200 with
 * `{ status: sent|rejected|blocked|failed, response: { status_code, body }, … }`; no secret is
 * ever echoed. Trying an unsaved configuration is authorised as creating one, testing a stored
 * one as updating it: both make Herald send to the endpoint.
 *
 * @example
 * app.route('/v1/notifications', createEndpointTestRoutes({ service, send, clock: Date.now, newId: randomUUID }))
 */
export const createEndpointTestRoutes = (options: EndpointTestRoutesOptions): Hono<NotificationsEnv> => {
  const { service, send, clock, newId, checkTarget, checkTemplates, endpoints, logger, recordAction } =
    options
  // Deciding a creation wants its secrets sealed; an unsaved configuration's are sealed with a
  // key that lives only in this process, and never leave it.
  const box = createSecretBox({ current: randomBytes(32).toString('base64') })
  const app = new Hono<NotificationsEnv>()

  const refuseSwitchedOff = async (endpoint: EndpointType) => {
    if (endpoints !== undefined && !(await endpoints.get(endpoint)).enabled)
      throw new HeraldError(
        'endpoint_disabled',
        `the ${endpoint} endpoint type is switched off (PUT /v1/notifications/endpoints/${endpoint}): nothing is sent to it, tests included`,
      )
  }

  const run = async (
    principal: Principal,
    configuration: EndpointConfiguration,
    open: (field: string) => string | undefined,
    signingSecrets: readonly string[],
    unusable?: TestSendResult,
  ) => {
    const now = clock()
    const event = testEvent({ id: newId(), account: principal.account, now })
    const result =
      unusable ??
      (await send({
        configuration,
        open,
        signingSecrets,
        event,
        deliveryId: newId(),
        createdAt: new Date(now).toISOString(),
      }))
    const secrets = [
      ...Object.keys(configuration.secrets)
        .map(open)
        .filter((s): s is string => s !== undefined),
      ...signingSecrets,
    ]
    return answer(result, event, secrets)
  }

  app.post(
    '/endpoints/:endpoint/test',
    authorize('createNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const principal = c.get('principal')
      // Every field is checked before the targets are: a refused host hides no bad field.
      const { configuration, plaintext } = await unsavedConfiguration(
        endpoint,
        await readJsonObject(c),
        principal,
        { box, clock, newId, checkTemplates },
      )
      await refuseSwitchedOff(endpoint)
      const scalars = Object.fromEntries(
        Object.entries({ ...configuration.settings, ...plaintext }).filter(
          ([, v]) => typeof v === 'string' || typeof v === 'number',
        ),
      ) as Record<string, JsonValue>
      if (checkTarget !== undefined)
        for (const target of targetsOf(endpoint, scalars)) await checkTarget(target)
      const signing = plaintext.signing_secret
      return c.json(
        await run(
          principal,
          configuration,
          (field) => plaintext[field],
          signing === undefined ? [] : [signing],
        ),
      )
    },
  )

  app.post(
    '/endpoints/:endpoint/configurations/:uuid/test',
    authorize('updateNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const principal = c.get('principal')
      const id = idParam(c, 'uuid', 'notification configuration')
      // The stored configuration is what is tested: a body changing it for the test is refused.
      await readNoFields(c, 'a test of a stored configuration')
      const { value } = await service.getConfiguration(principal.account, endpoint, id)
      await refuseSwitchedOff(endpoint)
      const configuration = value.configuration
      // Fails as a delivery would, sending nothing.
      const undecryptable = service.undecryptableSecrets(configuration)
      if (undecryptable.length > 0)
        return c.json(
          await run(principal, configuration, () => undefined, [], {
            ok: false,
            kind: 'retriable',
            code: 'secret_undecryptable',
            status: null,
            error: undecryptableDetail(undecryptable),
          }),
        )
      const webhook = service.webhookDelivery(configuration, clock())
      const signingSecrets =
        webhook === undefined ? [] : [webhook.signingSecret, ...(webhook.previousSigningSecrets ?? [])]
      const tested = await run(
        principal,
        configuration,
        (field) => service.openSecret(configuration, field),
        signingSecrets,
      )
      // Its stored credentials went out: who asked, with which token, is logged and audited.
      logger?.('info', 'notifications.configuration_tested', {
        configuration_id: configuration.id,
        endpoint,
        account: configuration.account,
        status: tested.status,
        ...actorOf(principal),
      })
      await recordAction?.(principal, {
        type: 'ConfigurationTestSent',
        account: configuration.account,
        aggregate: { type: 'notification_configuration', id: configuration.id },
        details: { endpoint, status: tested.status },
      })
      return c.json(tested)
    },
  )

  return app
}

export interface TestEventRoutesOptions {
  readonly log: EventLog
  /** The engine events topic the router and projector consume (`event_log.topics.events`). */
  readonly topic: string
  readonly clock: () => number
  readonly newId: () => string
  /** Called once the event is on the log, e.g. to count it like ingested events. */
  readonly onPublished?: (event: CloudEvent) => void
}

/**
 * `POST /test_event` as a Hono sub-app; mount it at `/v1` behind the middleware that sets
 * `principal`. It publishes a `com.ibm.cloud.compliance.test` event of the caller's account to
 * the engine events topic, exactly as `POST /v1/events` would, so it is routed to every
 * configuration whose selectors match it, delivered, and projected like any event. Authorised
 * as publishing events; answers 202 with the event's id.
 *
 * @example
 * app.route('/v1', createTestEventRoutes({ log, topic: 'engine.events', clock: Date.now, newId: randomUUID }))
 */
export const createTestEventRoutes = ({
  log,
  topic,
  clock,
  newId,
  onPublished,
}: TestEventRoutesOptions): Hono<AppEnv> => {
  const app = new Hono<AppEnv>()
  app.post('/test_event', authorize('publishEvents'), noQueryParameters, async (c) => {
    await readNoFields(c, 'a test event of the caller’s account')
    const event = testEvent({ id: newId(), account: c.get('principal').account, now: clock() })
    await log.publish(topic, [encodeLogEvent(event)])
    onPublished?.(event)
    return c.json({ id: event.id, type: event.type, account: event.account, time: event.time ?? null }, 202)
  })
  return app
}
