import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Hono } from 'hono'
import { createDeliveryChannels, validateTemplates } from '../../streams/delivery/index.ts'
import { type SlackStandIn, startSlackStandIn } from '../../test/support/slack-stand-in.ts'
import { type SmtpReceiver, startSmtpReceiver } from '../../test/support/smtp-receiver.ts'
import { startTeamsStandIn, type TeamsStandIn } from '../../test/support/teams-stand-in.ts'
import { startWebhookReceiver } from '../../test/support/webhook-receiver.ts'
import { createSqliteEventLog } from '../adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { createActionRecorder, readAudit } from '../audit/index.ts'
import { decodeEngineEvent, decodeLogEvent } from '../events/index.ts'
import { toProblem } from '../http/problem.ts'
import type { LogFields } from '../observability/index.ts'
import { createOutboundGuard } from '../outbound/index.ts'
import type { EventLog, LogMessage } from '../ports/event-log.ts'
import type { EventStore } from '../ports/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import { toChannelConfiguration } from '../wiring/channel-configuration.ts'
import type { Target } from './endpoint-fields.ts'
import { createEndpointStatusService, type EndpointStatusService } from './endpoints.ts'
import type { NotificationsEnv, Principal } from './model.ts'
import { createNotificationRoutes } from './routes.ts'
import { createNotificationConfigService, type NotificationConfigService } from './service.ts'
import {
  createEndpointTestRoutes,
  createTestEventRoutes,
  type SendTest,
  TEST_EVENT_TYPE,
} from './test-routes.ts'

const BASE = '/v1/notifications/endpoints'
const SMTP_USER = { username: 'herald', password: 'smtp-Canary-Pa55word' }
type Json = Record<string, unknown>

describe('endpoint tests and test events against stand-ins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-endpoint-tests-'))
  let store: EventStore
  let log: EventLog
  let app: Hono<NotificationsEnv>
  /** The routes as the composition root mounts them, on `service`. */
  let mount: (service: NotificationConfigService) => Hono<NotificationsEnv>
  let slack: SlackStandIn
  let teams: TeamsStandIn
  let smtp: SmtpReceiver
  let hook: Awaited<ReturnType<typeof startWebhookReceiver>>
  let hookStatus = 200
  let endpoints: EndpointStatusService
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  /** Every response body, for the secret canary checks. */
  const bodies: string[] = []
  const lines: { level: string; event: string; fields: LogFields }[] = []

  const writer: Principal = { account: 'acme', role: 'read-write' }
  const reader: Principal = { account: 'acme', role: 'read-only' }
  const stranger: Principal = { account: 'globex', role: 'read-write' }

  const as = async (principal: Principal, method: string, path: string, body?: unknown, on = app) => {
    const response = await on.request(path, {
      method,
      headers: { 'content-type': 'application/json', 'x-principal': JSON.stringify(principal) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    bodies.push(text)
    return { status: response.status, text, json: (text === '' ? {} : JSON.parse(text)) as Json }
  }

  before(async () => {
    ;[slack, teams, smtp, hook] = await Promise.all([
      startSlackStandIn(),
      startTeamsStandIn(),
      startSmtpReceiver({ user: SMTP_USER, echoRefusedPassword: true }),
      startWebhookReceiver(() => hookStatus),
    ])
    store = createSqliteEventStore({ path: ':memory:' })
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 50 })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
    })
    endpoints = createEndpointStatusService({ store, clock: Date.now, newId: randomUUID })
    // What the composition root wires: the channel layer behind the routes' narrow port.
    const channels = createDeliveryChannels({ guard })
    const send: SendTest = ({ configuration, open, signingSecrets, event, deliveryId, createdAt }) =>
      channels.send(
        { deliveryId, account: configuration.account, configurationId: configuration.id, event, createdAt },
        toChannelConfiguration(configuration, open, () => signingSecrets),
        { uiUrl: null, timeoutMs: 5_000 },
      )
    // As the composition root maps a target onto the guard.
    const checkTarget = async (target: Target) => {
      if ('url' in target) await guard.checkUrl(target.url)
      else await guard.checkSmtpHost(target.smtpHost, target.port)
    }
    mount = (service) => {
      const mounted = new Hono<NotificationsEnv>()
      mounted.onError((error, c) => {
        const problem = toProblem(error)
        return c.json(problem, problem.status as 400)
      })
      // Stands in for the authentication middleware.
      mounted.use(async (c, next) => {
        c.set('principal', JSON.parse(c.req.header('x-principal') ?? '{}') as Principal)
        await next()
      })
      mounted.route('/v1/notifications', createNotificationRoutes({ service, checkTarget }))
      mounted.route(
        '/v1/notifications',
        createEndpointTestRoutes({
          service,
          send,
          clock: Date.now,
          newId: randomUUID,
          checkTarget,
          checkTemplates: validateTemplates,
          endpoints,
          logger: (level, event, fields = {}) => lines.push({ level, event, fields }),
          recordAction: createActionRecorder({ store, clock: Date.now, newId: randomUUID, logger: () => {} }),
        }),
      )
      mounted.route(
        '/v1',
        createTestEventRoutes({ log, topic: 'engine.events', clock: Date.now, newId: randomUUID }),
      )
      return mounted
    }
    app = mount(service)
  })

  after(async () => {
    guard.close()
    await Promise.all([slack.close(), teams.close(), smtp.close(), hook.close(), store.close(), log.close()])
    rmSync(dir, { recursive: true, force: true })
  })

  it('sends a test event to an unsaved Slack configuration and says what Slack answered', async () => {
    const before = slack.messages.length
    const response = await as(writer, 'POST', `${BASE}/slack/test`, { url: slack.webhookUrl })
    assert.equal(response.status, 200, response.text)
    assert.equal(response.json.status, 'sent')
    assert.deepEqual(response.json.response, { status_code: 200, body: 'ok' })
    assert.equal(typeof response.json.event_id, 'string')
    assert.equal(slack.messages.length, before + 1)
    assert.deepEqual(slack.problems, [])
    assert.match(JSON.stringify(slack.messages.at(-1)), /Test event from Herald/)
  })

  it('reports a refusal with its status and an excerpt, never the webhook URL', async () => {
    const wrong = slack.webhookUrl.replace('xoxSecretToken', 'xoxRevokedToken')
    const response = await as(writer, 'POST', `${BASE}/slack/test`, { url: wrong })
    assert.equal(response.status, 200)
    assert.equal(response.json.status, 'rejected')
    assert.equal((response.json.response as Json).status_code, 404)
    assert.match(String((response.json.response as Json).body), /no_service/)
    assert.equal(response.json.retriable, false)
    assert.ok(!response.text.includes('xoxRevokedToken'), response.text)
  })

  it('validates an unsaved configuration like a create, naming fields without echoing secrets', async () => {
    const missing = await as(writer, 'POST', `${BASE}/slack/test`, {})
    assert.equal(missing.status, 400)
    assert.deepEqual(
      (missing.json.errors as Json[]).map((e) => e.path),
      ['url'],
    )
    const bad = await as(writer, 'POST', `${BASE}/email/test`, {
      smtp_host: '127.0.0.1',
      from: 'not an address',
      to: ['secops@acme.example'],
      password: 7,
      nonsense: true,
    })
    assert.equal(bad.status, 400)
    assert.deepEqual((bad.json.errors as Json[]).map((e) => e.path).sort(), ['from', 'nonsense', 'password'])
    const badValues = await as(writer, 'POST', `${BASE}/email/test`, {
      smtp_host: '127.0.0.1',
      from: 'not an address',
      to: ['secops@acme.example'],
      password: '',
    })
    assert.equal(badValues.status, 400)
    assert.deepEqual((badValues.json.errors as Json[]).map((e) => e.path).sort(), ['from', 'password'])
    const secretUrl = 'not a url with canary-secret-path'
    const badUrl = await as(writer, 'POST', `${BASE}/teams/test`, { url: secretUrl })
    assert.equal(badUrl.status, 400)
    assert.ok(!badUrl.text.includes('canary-secret-path'), badUrl.text)
    // What a read shows in place of a secret is no secret to send with.
    const placeholder = await as(writer, 'POST', `${BASE}/webhook/test`, {
      url: hook.url,
      password: '<redacted>',
    })
    assert.equal(placeholder.status, 400, placeholder.text)
    assert.deepEqual(
      (placeholder.json.errors as Json[]).map((e) => e.path),
      ['password'],
    )
  })

  it('refuses a target the outbound guard would block, before sending anything', async () => {
    const response = await as(writer, 'POST', `${BASE}/webhook/test`, {
      url: 'http://169.254.169.254/latest/meta-data',
    })
    assert.equal(response.status, 422, response.text)
    assert.equal(response.json.code, 'outbound_blocked')
    assert.equal(response.json.detail, "the URL's host is not allowed as a notification target")
  })

  it('checks every field, templates too, before the guard: a refused host hides no bad field', async () => {
    const before = smtp.received.length
    const paths = (response: { json: Json }) => (response.json.errors as Json[]).map((e) => e.path).sort()
    const both = await as(writer, 'POST', `${BASE}/email/test`, {
      smtp_host: '169.254.169.254',
      from: 'not an address',
      to: ['secops@acme.example'],
      templates: { subject: '{% if %}' },
    })
    assert.equal(both.status, 400, both.text)
    assert.deepEqual(paths(both), ['from', 'templates.subject'])
    const template = await as(writer, 'POST', `${BASE}/email/test`, {
      smtp_host: '169.254.169.254',
      from: 'herald@acme.example',
      to: ['secops@acme.example'],
      templates: { subject: '{% if %}' },
    })
    assert.equal(template.status, 400, template.text)
    assert.deepEqual(paths(template), ['templates.subject'])
    assert.equal(smtp.received.length, before)
  })

  it('names the SMTP host, which is no URL, when the guard refuses it', async () => {
    const before = smtp.received.length
    const response = await as(writer, 'POST', `${BASE}/email/test`, {
      smtp_host: '169.254.169.254',
      from: 'herald@acme.example',
      to: ['secops@acme.example'],
    })
    assert.equal(response.status, 422, response.text)
    assert.equal(response.json.code, 'outbound_blocked')
    assert.equal(response.json.detail, 'the SMTP host is not allowed as a notification target')
    assert.equal(smtp.received.length, before)
  })

  it('signs an unsaved webhook test and never returns its secrets', async () => {
    const before = hook.received.length
    const signing = `whsec_${randomBytes(32).toString('base64')}`
    const response = await as(writer, 'POST', `${BASE}/webhook/test`, {
      url: hook.url,
      username: 'herald',
      password: 'hook-Canary-Password',
      signing_secret: signing,
    })
    assert.equal(response.status, 200, response.text)
    assert.equal(response.json.status, 'sent')
    assert.equal((response.json.response as Json).status_code, 200)
    assert.equal(hook.received.length, before + 1)
    const request = hook.received.at(-1)
    assert.match(String(request?.headers['webhook-signature']), /^v1,/)
    assert.equal(
      request?.headers.authorization,
      `Basic ${Buffer.from('herald:hook-Canary-Password').toString('base64')}`,
    )
    const delivered = JSON.parse(request?.body ?? '{}') as Json
    assert.equal(JSON.stringify(delivered).includes(TEST_EVENT_TYPE), true)
    for (const secret of ['hook-Canary-Password', signing, signing.slice('whsec_'.length)])
      assert.ok(!response.text.includes(secret))
  })

  it('calls a 5xx answer a failure that may be retried', async () => {
    hookStatus = 503
    try {
      const response = await as(writer, 'POST', `${BASE}/webhook/test`, { url: hook.url })
      assert.equal(response.json.status, 'failed')
      assert.equal((response.json.response as Json).status_code, 503)
      assert.equal(response.json.retriable, true)
      assert.equal(response.json.error_code, 'http_status')
    } finally {
      hookStatus = 200
    }
  })

  it('mails a test through a real SMTP server, and a refused login quotes no password', async () => {
    const before = smtp.received.length
    const base = {
      smtp_host: '127.0.0.1',
      smtp_port: smtp.port,
      tls_mode: 'none',
      from: 'herald@acme.example',
      to: ['secops@acme.example'],
      username: SMTP_USER.username,
    }
    const sent = await as(writer, 'POST', `${BASE}/email/test`, { ...base, password: SMTP_USER.password })
    assert.equal(sent.status, 200, sent.text)
    assert.equal(sent.json.status, 'sent', sent.text)
    assert.equal((sent.json.response as Json).status_code, 250)
    assert.equal(smtp.received.length, before + 1)
    assert.deepEqual(smtp.received.at(-1)?.to, ['secops@acme.example'])

    const refused = await as(writer, 'POST', `${BASE}/email/test`, {
      ...base,
      password: 'wrong-Canary-Secret',
    })
    assert.equal(refused.json.status, 'rejected', refused.text)
    assert.equal((refused.json.response as Json).status_code, 535)
    assert.ok(!refused.text.includes('wrong-Canary-Secret'), refused.text)
    assert.equal(smtp.received.length, before + 1)
  })

  it('tests a stored configuration with its sealed secret, for its own account only', async () => {
    const created = await as(writer, 'POST', `${BASE}/teams/configurations`, { url: teams.workflowUrl })
    assert.equal(created.status, 201, created.text)
    const path = `${BASE}/teams/configurations/${created.json.uuid}/test`
    const before = teams.cards.length
    const tested = await as(writer, 'POST', path)
    assert.equal(tested.status, 200, tested.text)
    assert.equal(tested.json.status, 'sent')
    assert.equal((tested.json.response as Json).status_code, 202)
    assert.equal(teams.cards.length, before + 1)
    assert.deepEqual(teams.problems, [])
    const sig = new URL(teams.workflowUrl).searchParams.get('sig') ?? ''
    assert.ok(!tested.text.includes(sig))

    assert.equal((await as(stranger, 'POST', path)).status, 404)
    assert.equal((await as(writer, 'POST', `${BASE}/teams/configurations/not-a-uuid/test`)).status, 404)
    assert.equal(
      (await as(writer, 'POST', `${BASE}/slack/configurations/${created.json.uuid}/test`)).status,
      404,
    )
    assert.equal((await as(reader, 'POST', path)).status, 403)
    assert.equal((await as(reader, 'POST', `${BASE}/slack/test`, { url: slack.webhookUrl })).status, 403)
    // What is tested is what is stored: a body that would change it for the test is refused.
    const changed = await as(writer, 'POST', path, { url: slack.webhookUrl })
    assert.equal(changed.status, 400, changed.text)
    assert.deepEqual(
      (changed.json.errors as Json[]).map((e) => e.path),
      ['url'],
    )
    assert.equal(teams.cards.length, before + 1)
    assert.equal((await as(writer, 'POST', path, {})).json.status, 'sent')
    // Its UUID in upper case names the same configuration.
    const upper = `${BASE}/teams/configurations/${String(created.json.uuid).toUpperCase()}/test`
    assert.equal((await as(writer, 'POST', upper)).json.status, 'sent')
  })

  it('answers a stored configuration whose secrets its keys cannot decrypt as failed, naming them, and sends nothing; a PUT giving them again fixes it', async () => {
    const created = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: hook.url,
      username: 'u',
      password: 'pw-Canary-old',
    })
    assert.equal(created.status, 201, created.text)
    // Herald started again with another key, the one that sealed them lost.
    const rekeyed = mount(
      createNotificationConfigService({
        store,
        box: createSecretBox({ current: randomBytes(32).toString('base64') }),
        clock: Date.now,
        newId: randomUUID,
      }),
    )
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const before = hook.received.length
    const tested = await as(writer, 'POST', `${path}/test`, undefined, rekeyed)
    assert.equal(tested.status, 200, tested.text)
    assert.equal(tested.json.status, 'failed')
    assert.equal(tested.json.error_code, 'secret_undecryptable')
    assert.match(
      (tested.json.response as Json).body as string,
      /password, signing_secret cannot be decrypted/,
    )
    assert.equal(hook.received.length, before)
    // Reads still show them redacted; a write keeping them is refused, naming each.
    const read = await as(writer, 'GET', path, undefined, rekeyed)
    assert.deepEqual([read.json.password, read.json.signing_secret], ['<redacted>', '<redacted>'])
    const kept = await as(writer, 'PUT', path, { description: 'x' }, rekeyed)
    assert.equal(kept.status, 422, kept.text)
    assert.equal(kept.json.code, 'secret_required')
    assert.deepEqual(
      (kept.json.errors as Json[]).map((e) => e.path),
      ['password', 'signing_secret'],
    )
    assert.match(kept.json.detail as string, /cannot be decrypted/)
    const signing = `whsec_${randomBytes(32).toString('base64')}`
    const fixed = await as(
      writer,
      'PUT',
      path,
      { password: 'pw-Canary-new', signing_secret: signing },
      rekeyed,
    )
    assert.equal(fixed.status, 200, fixed.text)
    assert.equal((await as(writer, 'POST', `${path}/test`, undefined, rekeyed)).json.status, 'sent')
    assert.equal(hook.received.length, before + 1)
  })

  it('logs and audits each test of a stored configuration, naming who sent its secrets where, and with which token', async () => {
    const created = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: hook.url,
      password: 'hook-Canary-pw',
    })
    assert.equal(created.status, 201, created.text)
    const id = String(created.json.uuid)
    const tester: Principal = { ...writer, tokenId: '0123456789abcdef01234567' }
    const tested = await as(tester, 'POST', `${BASE}/webhook/configurations/${id}/test`)
    assert.equal(tested.json.status, 'sent', tested.text)
    const line = lines.find(
      (l) => l.event === 'notifications.configuration_tested' && l.fields.configuration_id === id,
    )
    assert.deepEqual(line?.fields, {
      configuration_id: id,
      endpoint: 'webhook',
      account: 'acme',
      status: 'sent',
      by: 'acme/read-write',
      token_id: tester.tokenId,
    })
    const audit = await readAudit(store, writer, { aggregateId: id, limit: 10 })
    const sent = audit.items.find((e) => e.event === 'ConfigurationTestSent')
    assert.deepEqual(
      [sent?.by, sent?.account, sent?.aggregate, sent?.changes],
      [
        'acme/read-write',
        'acme',
        { type: 'notification_configuration', id },
        { endpoint: 'webhook', status: 'sent', token_id: tester.tokenId },
      ],
    )
    // Another account's audit does not show it; an unsaved configuration's test is not audited.
    assert.ok(!(await readAudit(store, stranger, { limit: 1000 })).items.some((e) => e.aggregate.id === id))
    const tests = () => lines.filter((l) => l.event === 'notifications.configuration_tested').length
    const before = tests()
    const unsaved = await as(tester, 'POST', `${BASE}/webhook/test`, { url: hook.url })
    assert.equal(unsaved.json.status, 'sent', unsaved.text)
    assert.equal(tests(), before)
  })

  it('refuses to test an endpoint type an admin switched off, and sends nothing', async () => {
    const admin: Principal = { account: 'admin', role: 'admin' }
    const created = await as(writer, 'POST', `${BASE}/webhook/configurations`, { url: hook.url })
    assert.equal(created.status, 201, created.text)
    const stored = `${BASE}/webhook/configurations/${created.json.uuid}/test`
    const before = hook.received.length
    await endpoints.set(admin, 'webhook', false)
    try {
      for (const [path, body] of [
        [`${BASE}/webhook/test`, { url: hook.url }],
        [stored, undefined],
      ] as const) {
        const refused = await as(writer, 'POST', path, body)
        assert.equal(refused.status, 409, refused.text)
        assert.equal(refused.json.code, 'endpoint_disabled')
        assert.match(String(refused.json.detail), /webhook endpoint type is switched off/)
      }
      // Another account's configuration is still not found: the refusal tells it nothing.
      assert.equal((await as(stranger, 'POST', stored)).status, 404)
      assert.equal(hook.received.length, before)
    } finally {
      await endpoints.set(admin, 'webhook', true)
    }
    const tested = await as(writer, 'POST', stored)
    assert.equal(tested.json.status, 'sent', tested.text)
    assert.equal(hook.received.length, before + 1)
  })

  it('answers 404 for an endpoint type Herald does not have', async () => {
    assert.equal((await as(writer, 'POST', `${BASE}/pager/test`, {})).status, 404)
  })

  it('publishes a test event for the caller’s account to the engine events topic', async () => {
    const response = await as(writer, 'POST', '/v1/test_event')
    assert.equal(response.status, 202, response.text)
    assert.equal(response.json.type, TEST_EVENT_TYPE)
    assert.equal(response.json.account, 'acme')
    const messages: LogMessage[] = []
    const consumer = await log.consume(
      { groupId: `read-${randomUUID()}`, topics: ['engine.events'] },
      async (b) => {
        messages.push(...b.messages)
      },
    )
    const deadline = Date.now() + 5_000
    while (!messages.some((m) => m.key === 'acme') && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50))
    await consumer.stop()
    const events = messages.map(decodeLogEvent).flatMap((d) => (d.ok ? [d.value] : []))
    const published = events.find((e) => e.id === response.json.id)
    assert.ok(published, 'the event is on the topic')
    // The same contract every way in enforces: the catalog accepts it with its level and resource type.
    const engine = decodeEngineEvent(published)
    assert.ok(engine.ok)
    assert.deepEqual(
      [engine.value.type, engine.value.account, engine.value.level, engine.value.resourcetype],
      [TEST_EVENT_TYPE, 'acme', 'info', 'compliance_test'],
    )
    assert.equal((await as(reader, 'POST', '/v1/test_event')).status, 403)
    assert.equal((await as(writer, 'POST', '/v1/test_event', {})).status, 202)
    // The event is always the caller's account's: a field asking otherwise is refused, not ignored.
    const other = await as(writer, 'POST', '/v1/test_event', { account: 'globex' })
    assert.equal(other.status, 400, other.text)
    assert.deepEqual(
      (other.json.errors as Json[]).map((e) => e.path),
      ['account'],
    )
  })

  it('never returned a secret in any response', () => {
    const all = bodies.join('\n')
    for (const canary of ['xoxSecretToken4f9c2a7e81b3d6', SMTP_USER.password, 'hook-Canary-Password'])
      assert.ok(!all.includes(canary), canary)
  })
})
