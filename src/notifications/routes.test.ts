import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Hono } from 'hono'
import { validateTemplates } from '../../streams/delivery/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { toProblem } from '../http/problem.ts'
import { MAX_PATTERN_DEPTH } from '../matching/index.ts'
import { OutboundBlockedError } from '../outbound/index.ts'
import type { EventStore } from '../ports/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import { SigningSecret } from './codecs.ts'
import type { Target } from './endpoint-fields.ts'
import { createDeliveryHealth } from './health.ts'
import type { NotificationsEnv, Principal } from './model.ts'
import { createNotificationRoutes } from './routes.ts'
import { createNotificationConfigService } from './service.ts'

const BASE = '/v1/notifications/endpoints'
type Json = Record<string, unknown>

describe('notification configuration routes', () => {
  let store: EventStore
  let app: Hono<NotificationsEnv>
  const health = createDeliveryHealth()
  const checked: Target[] = []

  const as = async (
    principal: Principal,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const response = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json', 'x-principal': JSON.stringify(principal), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
    const text = await response.text()
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: (text === '' ? {} : JSON.parse(text)) as Json,
    }
  }
  const writer: Principal = { account: 'acme', role: 'read-write' }
  const reader: Principal = { account: 'acme', role: 'read-only' }
  const stranger: Principal = { account: 'globex', role: 'read-write' }
  const admin: Principal = { account: 'admin', role: 'admin' }
  const selectorBody = {
    scope: 'account',
    event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
  }
  const createWebhook = () =>
    as(writer, 'POST', `${BASE}/webhook/configurations`, { url: 'https://hooks.example.com/a' })

  beforeEach(() => {
    checked.length = 0
    store = createSqliteEventStore({ path: ':memory:' })
    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
    })
    app = new Hono<NotificationsEnv>()
    app.onError((error, c) => {
      const problem = toProblem(error)
      return c.json(problem, problem.status as 400)
    })
    // Stands in for the authentication middleware.
    app.use(async (c, next) => {
      c.set('principal', JSON.parse(c.req.header('x-principal') ?? '{}') as Principal)
      await next()
    })
    app.route(
      '/v1/notifications',
      createNotificationRoutes({
        service,
        health,
        checkTemplates: validateTemplates,
        checkTarget: async (target) => {
          checked.push(target)
          if (('url' in target ? target.url : target.smtpHost).includes('169.254.169.254'))
            throw new OutboundBlockedError({ reason: 'cloud_metadata' })
        },
      }),
    )
  })
  afterEach(async () => {
    await store.close()
  })

  it('creates a webhook configuration: 201, the generated secret once, an ETag and a Location', async () => {
    const created = await createWebhook()
    assert.equal(created.status, 201)
    assert.ok(SigningSecret.is(created.json.signing_secret))
    assert.equal(created.headers.get('etag'), '"0"')
    assert.equal(created.headers.get('location'), `${BASE}/webhook/configurations/${created.json.uuid}`)
    assert.deepEqual(checked, [{ url: 'https://hooks.example.com/a' }])
    const read = await as(writer, 'GET', `${BASE}/webhook/configurations/${created.json.uuid}`)
    assert.equal(read.status, 200)
    assert.equal(read.json.signing_secret, '<redacted>')
    assert.equal(read.headers.get('etag'), '"0"')
    assert.deepEqual(read.json.selectors, [])
  })

  it('shows a Slack webhook URL only by its origin, everywhere', async () => {
    const secretUrl = 'https://hooks.slack.com/services/T000/B000/canary-slack-path'
    const created = await as(writer, 'POST', `${BASE}/slack/configurations`, {
      url: secretUrl,
      description: 'chat',
    })
    assert.equal(created.status, 201)
    const list = await as(writer, 'GET', `${BASE}/slack/configurations`)
    for (const response of [created, list]) {
      assert.ok(!response.text.includes('canary-slack-path'), response.text)
      assert.match(response.text, /https:\/\/hooks\.slack\.com\/<redacted>/)
    }
  })

  it('keeps every stored secret when a PUT sends back what GET shows for it, and refuses the placeholder anywhere else', async () => {
    const secrets = {
      webhook: {
        body: {
          url: 'https://hooks.example.com/a',
          password: 'pw-canary',
          signing_secret: `whsec_${'A'.repeat(44)}`,
        },
        fields: ['password', 'signing_secret'],
      },
      github: { body: { owner: 'acme', repository: 'app', token: 'ghp-canary' }, fields: ['token'] },
      jira: {
        body: {
          url: 'https://acme.atlassian.net',
          username: 'bot',
          api_token: 'jira-canary',
          project_key: 'SEC',
        },
        fields: ['api_token'],
      },
      email: {
        body: {
          smtp_host: 'smtp.example.com',
          from: 'a@example.com',
          to: ['b@example.com'],
          username: 'u',
          password: 'smtp-canary',
        },
        fields: ['password'],
      },
      slack: { body: { url: 'https://hooks.slack.com/services/T0/B0/slack-canary' }, fields: ['url'] },
      teams: { body: { url: 'https://acme.webhook.office.com/teams-canary' }, fields: ['url'] },
    } as const
    for (const [endpoint, { body, fields }] of Object.entries(secrets)) {
      const created = await as(writer, 'POST', `${BASE}/${endpoint}/configurations`, body)
      assert.equal(created.status, 201, created.text)
      const path = `${BASE}/${endpoint}/configurations/${created.json.uuid}`
      const read = await as(writer, 'GET', path)
      const shown = Object.fromEntries(fields.map((f) => [f, read.json[f]]))
      // GET → change → PUT, the secrets as GET showed them: a change of the description only.
      const put = await as(writer, 'PUT', path, { ...shown, description: 'edited' })
      assert.equal(put.status, 200, `${endpoint}: ${put.text}`)
      assert.equal(put.headers.get('etag'), '"1"', endpoint)
      const [, updated] = await store.readStream(`notification-configuration-${created.json.uuid}`)
      assert.deepEqual(updated?.data.changed, ['description'], endpoint)
      assert.deepEqual(updated?.data.secrets, {}, endpoint)
      for (const field of fields) {
        // The placeholder where GET would not show it (another origin before it, or on its
        // own in place of a URL) is no secret either: refused, naming the field.
        for (const wrong of ['<redacted>', 'https://elsewhere.example.com/<redacted>'].filter(
          (w) => w !== shown[field],
        )) {
          const refused = await as(writer, 'PUT', path, { [field]: wrong })
          assert.equal(refused.status, 400, `${endpoint}.${field} = ${wrong}: ${refused.text}`)
          assert.deepEqual(
            (refused.json.errors as { path: string }[]).map((e) => e.path),
            [field],
          )
          assert.match(refused.text, /redacted.*leave it out/)
        }
      }
    }
    // On create there is nothing stored to keep.
    const create = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/b',
      password: '<redacted>',
      signing_secret: '<redacted>',
    })
    assert.equal(create.status, 400, create.text)
    assert.deepEqual((create.json.errors as { path: string }[]).map((e) => e.path).sort(), [
      'password',
      'signing_secret',
    ])
    // Nor when the secret is not set: GET shows null for it.
    const bare = await createWebhook()
    const unset = await as(writer, 'PUT', `${BASE}/webhook/configurations/${bare.json.uuid}`, {
      password: '<redacted>',
    })
    assert.equal(unset.status, 400, unset.text)
  })

  it('keeps no stored secret an update would send somewhere else: the request gives it again, or is refused with 422 naming it', async () => {
    const cases: {
      endpoint: string
      create: Json
      redirect: Json
      secret: string
      reason: RegExp
    }[] = [
      {
        endpoint: 'github',
        create: { owner: 'o', repository: 'r', token: 'ghp_stored' },
        redirect: { api_url: 'https://attacker.example.net/api/v3' },
        secret: 'token',
        reason: /changing api_url requires token to be given again/,
      },
      {
        endpoint: 'webhook',
        create: { url: 'https://hooks.example.com/a', username: 'u', password: 'pw-stored' },
        redirect: { url: 'https://attacker.example.net/x' },
        secret: 'password',
        reason: /changing url requires password to be given again/,
      },
      {
        endpoint: 'email',
        create: {
          smtp_host: 'smtp.example.com',
          from: 'a@example.com',
          to: ['b@example.com'],
          username: 'u',
          password: 'smtp-stored',
        },
        redirect: { smtp_host: 'attacker.example.net' },
        secret: 'password',
        reason: /changing smtp_host requires password to be given again/,
      },
      {
        endpoint: 'email',
        create: {
          smtp_host: 'smtp.example.com',
          from: 'a@example.com',
          to: ['b@example.com'],
          username: 'u',
          password: 'smtp-stored',
        },
        redirect: { smtp_port: 2525 },
        secret: 'password',
        reason: /changing smtp_port requires password/,
      },
      {
        endpoint: 'email',
        create: {
          smtp_host: 'smtp.example.com',
          from: 'a@example.com',
          to: ['b@example.com'],
          username: 'u',
          password: 'smtp-stored',
        },
        redirect: { tls_mode: 'none' },
        secret: 'password',
        reason: /setting tls_mode to none requires password/,
      },
      {
        endpoint: 'jira',
        create: {
          url: 'https://acme.atlassian.net',
          username: 'u',
          api_token: 'jira-stored',
          project_key: 'AB',
        },
        redirect: { url: 'https://attacker.example.net' },
        secret: 'api_token',
        reason: /changing url requires api_token to be given again/,
      },
      {
        endpoint: 'jira',
        create: {
          url: 'https://acme.atlassian.net',
          username: 'u',
          api_token: 'jira-stored',
          project_key: 'AB',
        },
        redirect: { verify_tls: false },
        secret: 'api_token',
        reason: /switching verify_tls off requires api_token/,
      },
      {
        endpoint: 'slack',
        create: { url: 'https://hooks.slack.com/services/T0/B0/stored' },
        redirect: { verify_tls: false },
        secret: 'url',
        reason: /switching verify_tls off requires url/,
      },
    ]
    for (const { endpoint, create, redirect, secret, reason } of cases) {
      const label = `${endpoint} ${JSON.stringify(redirect)}`
      const created = await as(writer, 'POST', `${BASE}/${endpoint}/configurations`, create)
      assert.equal(created.status, 201, `${label}: ${created.text}`)
      const path = `${BASE}/${endpoint}/configurations/${created.json.uuid}`
      const before = await as(writer, 'GET', path)
      // Left out, or sent back as a read shows it: both would keep the stored secret.
      for (const body of [redirect, { ...redirect, [secret]: before.json[secret] }]) {
        const refused = await as(writer, 'PUT', path, body)
        assert.equal(refused.status, 422, `${label}: ${refused.text}`)
        assert.equal(refused.json.code, 'secret_required', label)
        assert.match(refused.json.detail as string, reason, label)
        assert.deepEqual(
          (refused.json.errors as { path: string }[]).map((e) => e.path),
          [secret],
          label,
        )
        assert.ok(!refused.text.includes(create[secret] as string), `${label}: no secret in ${refused.text}`)
      }
      const unchanged = await as(writer, 'GET', path)
      assert.deepEqual(unchanged.json, before.json, label)
      // Given again in the same request, it goes with the change.
      const fresh = secret === 'url' ? 'https://hooks.slack.com/services/T0/B0/fresh' : 'fresh-secret'
      const accepted = await as(writer, 'PUT', path, { ...redirect, [secret]: fresh })
      assert.equal(accepted.status, 200, `${label}: ${accepted.text}`)
    }
    // What does not change where a secret goes needs none of them again.
    const github = await as(writer, 'POST', `${BASE}/github/configurations`, {
      owner: 'o',
      repository: 'r',
      token: 'ghp_stored',
    })
    const githubPath = `${BASE}/github/configurations/${github.json.uuid}`
    assert.equal((await as(writer, 'PUT', githubPath, { repository: 'other', labels: ['x'] })).status, 200)
    assert.equal((await as(writer, 'PUT', githubPath, { api_url: 'https://api.github.com' })).status, 200)
    assert.equal((await as(writer, 'PUT', githubPath, { verify_tls: true })).status, 200)
    // Nor a secret that is not set, or one removed in the same request.
    const bare = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/a',
    })
    const barePath = `${BASE}/webhook/configurations/${bare.json.uuid}`
    assert.equal((await as(writer, 'PUT', barePath, { url: 'https://hooks.example.com/b' })).status, 200)
    const withPassword = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/a',
      username: 'u',
      password: 'pw-stored',
    })
    const cleared = await as(writer, 'PUT', `${BASE}/webhook/configurations/${withPassword.json.uuid}`, {
      url: 'https://hooks.example.com/b',
      username: null,
      password: null,
    })
    assert.equal(cleared.status, 200, cleared.text)
    // A bad field besides: one 400 naming it and the secret to give again.
    const both = await as(writer, 'PUT', githubPath, {
      api_url: 'https://attacker.example.net',
      milestone: 'x',
    })
    assert.equal(both.status, 400, both.text)
    assert.deepEqual((both.json.errors as { path: string }[]).map((e) => e.path).sort(), [
      'milestone',
      'token',
    ])
  })

  it('refuses an email username without a password, or a password without a username, naming the one missing', async () => {
    const email = { smtp_host: 'smtp.example.com', from: 'a@example.com', to: ['b@example.com'] }
    const configurations = `${BASE}/email/configurations`
    for (const [credentials, missing] of [
      [{ username: 'u' }, 'password'],
      [{ password: 'p' }, 'username'],
      [{ username: 'u', password: null }, 'password'],
    ] as const) {
      const refused = await as(writer, 'POST', configurations, { ...email, ...credentials })
      assert.equal(refused.status, 400, refused.text)
      assert.deepEqual(
        (refused.json.errors as { path: string }[]).map((e) => e.path),
        [missing],
        JSON.stringify(credentials),
      )
    }
    const plain = await as(writer, 'POST', configurations, email)
    assert.equal(plain.status, 201, plain.text)
    const both = await as(writer, 'POST', configurations, { ...email, username: 'u', password: 'p' })
    assert.equal(both.status, 201, both.text)
    // An update is judged by what it leaves: one half alone, added or left behind, is refused.
    const plainPath = `${configurations}/${plain.json.uuid}`
    const bothPath = `${configurations}/${both.json.uuid}`
    for (const [path, change, missing] of [
      [plainPath, { username: 'u' }, 'password'],
      [plainPath, { password: 'p' }, 'username'],
      [bothPath, { username: null }, 'username'],
      [bothPath, { password: null }, 'password'],
    ] as const) {
      const refused = await as(writer, 'PUT', path, change)
      assert.equal(refused.status, 400, `${JSON.stringify(change)}: ${refused.text}`)
      assert.deepEqual(
        (refused.json.errors as { path: string }[]).map((e) => e.path),
        [missing],
      )
    }
    assert.equal((await as(writer, 'PUT', plainPath, { username: 'u', password: 'p' })).status, 200)
    assert.equal((await as(writer, 'PUT', bothPath, { username: null, password: null })).status, 200)
  })

  it('refuses unknown fields and names every bad one, echoing no value', async () => {
    const response = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'smtp.example.com',
      smtp_port: 70000,
      from: 'not-an-address',
      to: [],
      password: '',
      chanel: '#typo',
    })
    assert.equal(response.status, 400)
    const paths = (response.json.errors as { path: string }[]).map((e) => e.path).sort()
    assert.deepEqual(paths, ['chanel', 'from', 'password', 'smtp_port', 'to'])
    assert.ok(!response.text.includes('#typo'), response.text)
    const second = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'smtp.example.com',
      smtp_port: 70000,
      from: 'not-an-address',
      to: [],
      password: '',
    })
    assert.equal(second.status, 400)
    assert.deepEqual((second.json.errors as { path: string }[]).map((e) => e.path).sort(), [
      'from',
      'password',
      'smtp_port',
      'to',
    ])
  })

  it('names a bad or repeated list element by its index, and what it repeats', async () => {
    const errors = (response: { json: Json }) => response.json.errors as { path: string; message: string }[]
    const email = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'smtp.example.com',
      from: 'alerts@acme.example',
      to: ['a@acme.example', 'b@acme.example', 'not an address', 'b@ACME.example', 'a@acme.example'],
    })
    assert.equal(email.status, 400, email.text)
    assert.deepEqual(errors(email), [
      { path: 'to[2]', message: 'must be one email address such as alerts@example.com' },
      { path: 'to[3]', message: 'repeats to[1]' },
      { path: 'to[4]', message: 'repeats to[0]' },
    ])
    // The mailbox's own part may differ in case only: another mailbox, as far as Herald can tell.
    const cased = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'smtp.example.com',
      from: 'alerts@acme.example',
      to: ['secops@acme.example', 'SecOps@acme.example'],
    })
    assert.equal(cased.status, 201, cased.text)

    const github = await as(writer, 'POST', `${BASE}/github/configurations`, {
      owner: 'acme',
      repository: 'app',
      token: 'ghp_example',
      labels: ['security', '', 'security'],
      assignees: ['alice', 'bob', 'alice'],
    })
    assert.equal(github.status, 400, github.text)
    assert.deepEqual(errors(github), [
      { path: 'labels[1]', message: 'must be 1 to 100 characters' },
      { path: 'labels[2]', message: 'repeats labels[0]' },
      { path: 'assignees[2]', message: 'repeats assignees[0]' },
    ])
    const jira = await as(writer, 'POST', `${BASE}/jira/configurations`, {
      url: 'https://acme.atlassian.net',
      username: 'bot',
      api_token: 'jira-x',
      project_key: 'SEC',
      labels: ['ops', 7],
    })
    assert.equal(jira.status, 400, jira.text)
    assert.deepEqual(errors(jira), [{ path: 'labels[1]', message: 'must be a string' }])
    // Too many, or not a list, is the list's own fault.
    const many = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'smtp.example.com',
      from: 'alerts@acme.example',
      to: Array.from({ length: 51 }, (_, i) => `a${i}@acme.example`),
    })
    assert.deepEqual(errors(many), [{ path: 'to', message: 'must be a list of 1 to 50 email addresses' }])
  })

  it('refuses read-only fields unless sent back as a read shows them, and names inherited ones as unknown', async () => {
    const paths = (response: { json: Json }) =>
      (response.json.errors as { path: string }[]).map((e) => e.path)
    const url = 'https://hooks.example.com/a'
    // Nothing is stored yet for a create to send back, but the endpoint type it is created as.
    const create = await as(
      writer,
      'POST',
      `${BASE}/webhook/configurations`,
      `{"url":"${url}","uuid":"${randomUUID()}","endpoint":"slack","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","selectors":[],"__proto__":{"enabled":false},"constructor":"x","toString":"y"}`,
    )
    assert.equal(create.status, 400, create.text)
    assert.deepEqual(paths(create).sort(), [
      '__proto__',
      'constructor',
      'created_at',
      'endpoint',
      'selectors',
      'toString',
      'updated_at',
      'uuid',
    ])
    assert.match(create.text, /uuid is read-only/)
    assert.deepEqual((await as(writer, 'GET', `${BASE}/webhook/configurations`)).json.items, [])
    assert.equal(
      (await as(writer, 'POST', `${BASE}/webhook/configurations`, { url, endpoint: 'webhook' })).status,
      201,
    )

    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    await as(writer, 'POST', `${path}/selectors`, selectorBody)
    const read = await as(writer, 'GET', path)
    // A configuration read earlier may be sent back whole, as it was read.
    const whole = await as(writer, 'PUT', path, { ...read.json, description: 'edited' })
    assert.equal(whole.status, 200, whole.text)
    const again = await as(writer, 'GET', path)
    for (const [name, value] of [
      ['uuid', randomUUID()],
      ['endpoint', 'slack'],
      ['created_at', '2020-01-01T00:00:00.000Z'],
      ['updated_at', read.json.updated_at],
      ['selectors', []],
    ] as const) {
      const changed = await as(writer, 'PUT', path, {
        ...again.json,
        [name]: value,
        description: 'not saved',
      })
      assert.equal(changed.status, 400, `${name}: ${changed.text}`)
      assert.deepEqual(paths(changed), [name])
      assert.match(changed.text, new RegExp(`${name} is read-only`))
    }
    const unknown = await as(writer, 'PUT', path, '{"__proto__":{"description":"polluted"},"valueOf":1}')
    assert.equal(unknown.status, 400, unknown.text)
    assert.deepEqual(paths(unknown).sort(), ['__proto__', 'valueOf'])
    assert.equal((await as(writer, 'GET', path)).json.description, 'edited')
  })

  it('says why a description is refused, rather than that it expected null', async () => {
    const response = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/a',
      description: 'x'.repeat(1025),
    })
    assert.equal(response.status, 400)
    assert.deepEqual(response.json.errors, [
      { path: 'description', message: 'must be null or a string of at most 1024 characters' },
    ])
  })

  it('refuses a target the SSRF guard refuses, before storing anything', async () => {
    const response = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'http://169.254.169.254/latest',
    })
    assert.equal(response.status, 422)
    assert.equal(response.json.code, 'outbound_blocked')
    assert.deepEqual(await store.readAll({}), [])
  })

  it('refuses what a field cannot hold with a 400 naming it, and counts characters as a reader does', async () => {
    const paths = (response: { json: Json }) =>
      (response.json.errors as { path: string }[]).map((e) => e.path).sort()
    // Nested 20,000 deep: too deep for a recursive JSON.stringify, so written out by hand.
    const nested = `${'['.repeat(20_000)}"x"${']'.repeat(20_000)}`
    const refused = await as(
      writer,
      'POST',
      `${BASE}/webhook/configurations`,
      `{"url":"https://hooks.example.com/a","username":"svc:prod","password":"s3cret","templates":{"title":${nested}}}`,
    )
    assert.equal(refused.status, 400, refused.text)
    assert.deepEqual(paths(refused), ['templates', 'templates.title', 'username'])
    assert.doesNotMatch(refused.text, /s3cret/)
    const github = await as(writer, 'POST', `${BASE}/github/configurations`, {
      owner: 'acme',
      repository: 'app',
      token: 'ghp_example',
      milestone: 1e300,
    })
    assert.equal(github.status, 400, github.text)
    assert.deepEqual(paths(github), ['milestone'])
    const email = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: 'fe80::1%eth0',
      from: 'alerts@acme.example',
      to: ['secops@acme.example'],
    })
    assert.equal(email.status, 400, email.text)
    assert.deepEqual(paths(email), ['smtp_host'])
    // 600 emoji are 600 characters (1,200 UTF-16 units), within the description's 1,024.
    const emoji = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/a',
      description: '😀'.repeat(600),
    })
    assert.equal(emoji.status, 201, emoji.text)
  })

  it('checks every field before the SSRF guard, so a refused host hides no bad field, and names them all', async () => {
    const paths = (response: { json: Json }) =>
      (response.json.errors as { path: string }[]).map((e) => e.path)
    const email = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: '169.254.169.254',
      from: 'not-an-address',
      to: ['secops@acme.example'],
      description: 'x'.repeat(1025),
      templates: { subject: '{% if %}' },
    })
    assert.equal(email.status, 400, email.text)
    assert.equal(email.json.code, 'validation_failed')
    assert.deepEqual(paths(email).sort(), ['description', 'from', 'templates.subject'])
    const webhook = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'http://169.254.169.254/latest',
      username: 5,
    })
    assert.equal(webhook.status, 400, webhook.text)
    assert.deepEqual(paths(webhook), ['username'])
    assert.deepEqual(checked, [])
    // An update too: only a body whose every field passes reaches the guard.
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    checked.length = 0
    const update = await as(writer, 'PUT', path, {
      url: 'http://169.254.169.254/latest',
      digest_window_seconds: 0,
    })
    assert.equal(update.status, 400, update.text)
    assert.deepEqual(paths(update), ['digest_window_seconds'])
    assert.deepEqual(checked, [])
    // With the fields right, the guard judges the host: 422, naming no field it did not check.
    const blocked = await as(writer, 'PUT', path, { url: 'http://169.254.169.254/latest' })
    assert.equal(blocked.status, 422, blocked.text)
    assert.equal(blocked.json.code, 'outbound_blocked')
    const blockedEmail = await as(writer, 'POST', `${BASE}/email/configurations`, {
      smtp_host: '169.254.169.254',
      from: 'herald@acme.example',
      to: ['secops@acme.example'],
    })
    assert.equal(blockedEmail.status, 422, blockedEmail.text)
    assert.deepEqual(checked, [
      { url: 'http://169.254.169.254/latest' },
      { smtpHost: '169.254.169.254', port: 587 },
    ])
    assert.equal((await as(writer, 'GET', path)).json.url, 'https://hooks.example.com/a')
  })

  it('says an If-Match that is no ETag is not one, rather than that the resource changed', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const response = await as(writer, 'PUT', path, { description: 'one' }, { 'if-match': 'v1' })
    assert.equal(response.status, 412)
    assert.equal(response.json.code, 'precondition_failed')
    assert.match(String(response.json.detail), /If-Match v1 is not an ETag Herald issued/)
    assert.equal((await as(writer, 'GET', path)).json.description, null)
  })

  it('refuses a weak ETag in If-Match on every write with 412, even the current one, changing nothing', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const selector = await as(writer, 'POST', `${path}/selectors`, selectorBody)
    assert.equal(selector.status, 201, selector.text)
    const current = String((await as(writer, 'GET', path)).headers.get('etag'))
    const weak = { 'if-match': `W/${current}` }
    const writes = [
      await as(writer, 'PUT', path, { description: 'weak' }, weak),
      await as(writer, 'DELETE', path, undefined, weak),
      await as(writer, 'POST', `${path}/selectors`, selectorBody, weak),
      await as(writer, 'PUT', `${path}/selectors/${selector.json.uuid}`, { pattern: null }, weak),
      await as(writer, 'DELETE', `${path}/selectors/${selector.json.uuid}`, undefined, weak),
    ]
    for (const response of writes) {
      assert.equal(response.status, 412, response.text)
      assert.equal(response.json.code, 'precondition_failed')
      assert.match(
        String(response.json.detail),
        /If-Match W\/"\d+" is a weak ETag, which If-Match cannot use/,
      )
    }
    const read = await as(writer, 'GET', path)
    assert.equal(read.headers.get('etag'), current)
    assert.equal(read.json.description, null)
    assert.equal((read.json.selectors as Json[]).length, 1)
  })

  it('updates with If-Match: the current ETag succeeds, a stale one gets 412 and changes nothing', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const first = await as(writer, 'PUT', path, { description: 'one' }, { 'if-match': '"0"' })
    assert.equal(first.status, 200)
    assert.equal(first.headers.get('etag'), '"1"')
    const stale = await as(writer, 'PUT', path, { description: 'two' }, { 'if-match': '"0"' })
    assert.equal(stale.status, 412)
    assert.equal(stale.json.code, 'precondition_failed')
    const garbage = await as(writer, 'PUT', path, { description: 'two' }, { 'if-match': 'nonsense' })
    assert.equal(garbage.status, 412)
    const read = await as(writer, 'GET', path)
    assert.equal(read.json.description, 'one')
    // Without If-Match the last writer wins.
    assert.equal((await as(writer, 'PUT', path, { description: 'three' })).status, 200)
  })

  it('answers 412, not 400, when a read sent back with its ETag was changed by someone else meanwhile', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const read = await as(writer, 'GET', path)
    const tag = read.headers.get('etag') ?? ''
    // Someone else adds a selector, which changes `selectors` in what the first client read.
    assert.equal((await as(writer, 'POST', `${path}/selectors`, selectorBody)).status, 201)
    const mine = await as(writer, 'PUT', path, { ...read.json, description: 'mine' }, { 'if-match': tag })
    assert.equal(mine.status, 412, JSON.stringify(mine.json))
    assert.equal(mine.json.code, 'precondition_failed')
    assert.equal((await as(writer, 'GET', path)).json.description, null)
  })

  it('takes a list of ETags in If-Match, writing when the current one is among them', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const listed = await as(writer, 'PUT', path, { description: 'one' }, { 'if-match': '"7", "0"' })
    assert.equal(listed.status, 200, JSON.stringify(listed.json))
    const stale = await as(writer, 'PUT', path, { description: 'two' }, { 'if-match': '"7", "0"' })
    assert.equal(stale.status, 412)
    assert.equal((await as(writer, 'GET', path)).json.description, 'one')
  })

  it('takes a configuration’s own max_in_flight for webhook, email, Slack and Teams, and refuses it for tickets', async () => {
    const errors = (response: { json: Json }) => response.json.errors as { path: string; message: string }[]
    const created = await as(writer, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/siem',
      max_in_flight: 8,
    })
    assert.equal(created.status, 201)
    assert.equal(created.json.max_in_flight, 8)
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    const read = await as(writer, 'GET', path)
    assert.equal(read.json.max_in_flight, 8)
    assert.equal(
      ((await as(writer, 'GET', `${BASE}/webhook/configurations`)).json.items as Json[])[0]?.max_in_flight,
      8,
    )

    // Left out it keeps its value; changed, it shows the new one; null takes the type's default.
    assert.equal((await as(writer, 'PUT', path, { description: 'siem' })).json.max_in_flight, 8)
    assert.equal((await as(writer, 'PUT', path, { max_in_flight: 2 })).json.max_in_flight, 2)
    assert.equal((await as(writer, 'GET', path)).json.max_in_flight, 2)
    // A read sent back whole is taken as it is.
    const { selectors: _, ...whole } = (await as(writer, 'GET', path)).json
    assert.equal((await as(writer, 'PUT', path, whole)).status, 200)
    for (const bad of [0, 65, 1.5, '4']) {
      const refused = await as(writer, 'PUT', path, { max_in_flight: bad })
      assert.equal(refused.status, 400, String(bad))
      assert.deepEqual(errors(refused), [
        { path: 'max_in_flight', message: 'must be null or a whole number from 1 to 64' },
      ])
    }
    assert.equal((await as(writer, 'PUT', path, { max_in_flight: null })).json.max_in_flight, null)
    assert.equal((await as(writer, 'GET', path)).json.max_in_flight, null)

    // Without it, another configuration of the type shows null: the type's default applies.
    const plain = await createWebhook()
    assert.equal(plain.json.max_in_flight, null)
    for (const [endpoint, body] of [
      ['slack', { url: 'https://hooks.slack.com/services/T0/B0/x' }],
      ['teams', { url: 'https://acme.webhook.office.com/x' }],
      ['email', { smtp_host: 'smtp.example.com', from: 'h@example.com', to: ['s@example.com'] }],
    ] as const) {
      const other = await as(writer, 'POST', `${BASE}/${endpoint}/configurations`, {
        ...body,
        max_in_flight: 4,
      })
      assert.equal(other.status, 201, other.text)
      assert.equal(other.json.max_in_flight, 4, endpoint)
    }

    const github = { owner: 'acme', repository: 'app', token: 'ghp-x' }
    const refused = await as(writer, 'POST', `${BASE}/github/configurations`, { ...github, max_in_flight: 4 })
    assert.equal(refused.status, 400)
    assert.deepEqual(
      errors(refused).map((e) => e.path),
      ['max_in_flight'],
    )
    assert.match(errors(refused)[0]?.message ?? '', /github configurations, which file one ticket at a time/)
    const jira = await as(writer, 'POST', `${BASE}/jira/configurations`, {
      url: 'https://acme.atlassian.net',
      username: 'bot',
      api_token: 'jira-x',
      project_key: 'SEC',
      max_in_flight: 1,
    })
    assert.equal(jira.status, 400)
    assert.match(errors(jira)[0]?.message ?? '', /jira configurations, which file one ticket at a time/)
    // A ticket configuration shows no max_in_flight, and an update cannot give it one.
    const ticket = await as(writer, 'POST', `${BASE}/github/configurations`, github)
    assert.equal(ticket.status, 201)
    assert.ok(!('max_in_flight' in ticket.json))
    const ticketPath = `${BASE}/github/configurations/${ticket.json.uuid}`
    assert.equal((await as(writer, 'PUT', ticketPath, { max_in_flight: 2 })).status, 400)
    assert.ok(!('max_in_flight' in (await as(writer, 'GET', ticketPath)).json))
  })

  it('deletes with 204, then answers 404', async () => {
    const created = await createWebhook()
    const path = `${BASE}/webhook/configurations/${created.json.uuid}`
    assert.equal((await as(writer, 'DELETE', path, undefined, { 'if-match': '"5"' })).status, 412)
    assert.equal((await as(writer, 'DELETE', path)).status, 204)
    assert.equal((await as(writer, 'GET', path)).status, 404)
    assert.equal((await as(writer, 'DELETE', path)).status, 404)
  })

  it('answers 404 for another account\u2019s id, another endpoint type and malformed ids', async () => {
    const created = await createWebhook()
    const id = created.json.uuid as string
    assert.equal((await as(stranger, 'GET', `${BASE}/webhook/configurations/${id}`)).status, 404)
    assert.equal((await as(stranger, 'PUT', `${BASE}/webhook/configurations/${id}`, {})).status, 404)
    assert.equal(
      (await as(stranger, 'POST', `${BASE}/webhook/configurations/${id}/selectors`, selectorBody)).status,
      404,
    )
    assert.equal((await as(writer, 'GET', `${BASE}/slack/configurations/${id}`)).status, 404)
    assert.equal((await as(writer, 'GET', `${BASE}/webhook/configurations/not-a-uuid`)).status, 404)
    assert.equal((await as(writer, 'GET', `${BASE}/pager/configurations`)).status, 404)
  })

  it('takes a configuration’s or selector’s UUID in any case', async () => {
    const created = await createWebhook()
    const id = String(created.json.uuid)
    const path = `${BASE}/webhook/configurations/${id.toUpperCase()}`
    const read = await as(writer, 'GET', path)
    assert.equal(read.status, 200, read.text)
    assert.equal(read.json.uuid, id)
    assert.equal((await as(writer, 'GET', `${path}/status`)).status, 200)
    const added = await as(writer, 'POST', `${path}/selectors`, selectorBody)
    assert.equal(added.status, 201, added.text)
    assert.equal(added.json.configuration_uuid, id)
    const selector = `${path}/selectors/${String(added.json.uuid).toUpperCase()}`
    assert.equal((await as(writer, 'GET', selector)).status, 200)
    // Sent back with the ids in upper case, as a client may have stored them.
    const upper = {
      ...added.json,
      uuid: String(added.json.uuid).toUpperCase(),
      configuration_uuid: id.toUpperCase(),
    }
    assert.equal((await as(writer, 'PUT', selector, upper)).status, 200)
    const put = await as(writer, 'PUT', path, { uuid: id.toUpperCase(), description: 'upper' })
    assert.equal(put.status, 200, put.text)
    assert.equal((await as(writer, 'DELETE', selector)).status, 204)
    assert.equal((await as(writer, 'DELETE', path)).status, 204)
    assert.equal((await as(writer, 'GET', `${BASE}/webhook/configurations/${id}`)).status, 404)
  })

  it('echoes at most the first 64 characters of an id it cannot find', async () => {
    const long = 'x'.repeat(10_000)
    const configuration = await as(writer, 'GET', `${BASE}/webhook/configurations/${long}`)
    assert.equal(configuration.status, 404)
    assert.equal(configuration.json.detail, `notification configuration ${'x'.repeat(64)}… not found`)
    const created = await createWebhook()
    const selector = await as(
      writer,
      'GET',
      `${BASE}/webhook/configurations/${created.json.uuid}/selectors/${long}`,
    )
    assert.equal(selector.status, 404)
    assert.equal(selector.json.detail, `selector ${'x'.repeat(64)}… not found`)
    const endpoint = await as(writer, 'GET', `${BASE}/${long}/configurations`)
    assert.equal(endpoint.status, 404)
    assert.ok((endpoint.json.detail as string).startsWith(`no endpoint type "${'x'.repeat(64)}…"`))
  })

  it('manages selectors under a configuration, and lists the account\u2019s selectors', async () => {
    const created = await createWebhook()
    const base = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    const added = await as(writer, 'POST', base, {
      ...selectorBody,
      pattern: { data: { severity: ['critical'] } },
    })
    assert.equal(added.status, 201)
    assert.deepEqual(added.json.pattern, { data: { severity: ['critical'] } })
    const selectorPath = `${base}/${added.json.uuid}`
    assert.equal((await as(reader, 'GET', selectorPath)).status, 200)
    const updated = await as(writer, 'PUT', selectorPath, {
      ...selectorBody,
      event: { ...selectorBody.event, level: '*' },
    })
    assert.equal(updated.status, 200)
    assert.equal((updated.json.event as Json).level, '*')
    // Left out, the pattern keeps its value: a partial update never widens routing.
    assert.deepEqual(updated.json.pattern, { data: { severity: ['critical'] } })
    const all = await as(reader, 'GET', '/v1/notifications/selectors')
    assert.deepEqual(
      (all.json.items as Json[]).map((s) => s.uuid),
      [added.json.uuid],
    )
    assert.deepEqual((await as(stranger, 'GET', '/v1/notifications/selectors')).json.items, [])
    assert.equal((await as(writer, 'DELETE', selectorPath)).status, 204)
    assert.equal((await as(writer, 'GET', selectorPath)).status, 404)
  })

  /** Every page of a listing, following next_token from `path` with `limit`; each page's ids and token. */
  const pages = async (path: string, limit: number) => {
    const seen: { ids: string[]; next: unknown; etag: string | null }[] = []
    let token: unknown
    do {
      const query = `limit=${limit}${token === undefined ? '' : `&next_token=${String(token)}`}`
      const page = await as(reader, 'GET', `${path}?${query}`)
      assert.equal(page.status, 200, page.text)
      token = page.json.next_token
      seen.push({
        ids: (page.json.items as Json[]).map((i) => String(i.uuid)),
        next: token,
        etag: page.headers.get('etag'),
      })
    } while (token !== null && seen.length < 20)
    return seen
  }

  it('pages the configuration listing with limit and next_token, in id order, whatever is deleted between pages', async () => {
    const ids: string[] = []
    for (let i = 0; i < 7; i++) ids.push(String((await createWebhook()).json.uuid))
    await as(stranger, 'POST', `${BASE}/webhook/configurations`, { url: 'https://hooks.example.com/g' })
    await as(writer, 'POST', `${BASE}/slack/configurations`, {
      url: 'https://hooks.slack.com/services/T/B/x',
    })
    ids.sort()
    const path = `${BASE}/webhook/configurations`

    const walked = await pages(path, 3)
    assert.deepEqual(
      walked.map((p) => p.ids),
      [ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)],
    )
    assert.deepEqual(
      walked.map((p) => p.next),
      [ids[2], ids[5], null],
    )
    // Unpaged, as clients written before paging ask: every one, and no next page.
    const all = await as(reader, 'GET', path)
    assert.deepEqual([(all.json.items as Json[]).map((i) => i.uuid), all.json.next_token], [ids, null])

    // The page's last item deleted before the next is asked for: the next starts where it would have.
    const first = await as(reader, 'GET', `${path}?limit=2`)
    assert.equal((await as(writer, 'DELETE', `${path}/${ids[1]}`)).status, 204)
    const second = await as(reader, 'GET', `${path}?limit=2&next_token=${String(first.json.next_token)}`)
    assert.deepEqual(
      (second.json.items as Json[]).map((i) => i.uuid),
      ids.slice(2, 4),
    )
    // A token in upper case is the same id.
    const upper = await as(
      reader,
      'GET',
      `${path}?limit=2&next_token=${String(first.json.next_token).toUpperCase()}`,
    )
    assert.deepEqual(upper.json, second.json)
  })

  it('pages a configuration\u2019s selectors and the account\u2019s the same way, each page of one configuration with its ETag', async () => {
    const a = String((await createWebhook()).json.uuid)
    const b = String((await createWebhook()).json.uuid)
    const ids: Record<string, string[]> = { [a]: [], [b]: [] }
    for (const [configuration, count] of [
      [a, 5],
      [b, 2],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const added = await as(
          writer,
          'POST',
          `${BASE}/webhook/configurations/${configuration}/selectors`,
          selectorBody,
        )
        ids[configuration]?.push(String(added.json.uuid))
      }
    }
    const ofA = [...(ids[a] ?? [])].sort()
    const walked = await pages(`${BASE}/webhook/configurations/${a}/selectors`, 2)
    assert.deepEqual(
      walked.map((p) => p.ids),
      [ofA.slice(0, 2), ofA.slice(2, 4), ofA.slice(4)],
    )
    assert.deepEqual(
      walked.map((p) => p.etag),
      ['"5"', '"5"', '"5"'],
    )
    const everyone = [...(ids[a] ?? []), ...(ids[b] ?? [])].sort()
    assert.deepEqual(
      (await pages('/v1/notifications/selectors', 4)).map((p) => p.ids),
      [everyone.slice(0, 4), everyone.slice(4)],
    )
    const unpaged = await as(reader, 'GET', '/v1/notifications/selectors')
    assert.deepEqual(
      [(unpaged.json.items as Json[]).map((i) => i.uuid), unpaged.json.next_token],
      [everyone, null],
    )
  })

  it('answers at most 1,000 items unless asked for fewer, the rest on the next page', async () => {
    const configuration = String((await createWebhook()).json.uuid)
    for (let i = 0; i < 1_001; i++)
      assert.equal(
        (await as(writer, 'POST', `${BASE}/webhook/configurations/${configuration}/selectors`, selectorBody))
          .status,
        201,
      )
    for (const path of [
      `${BASE}/webhook/configurations/${configuration}/selectors`,
      '/v1/notifications/selectors',
    ]) {
      const first = await as(reader, 'GET', path)
      assert.equal((first.json.items as Json[]).length, 1_000)
      const rest = await as(reader, 'GET', `${path}?next_token=${String(first.json.next_token)}`)
      assert.deepEqual([(rest.json.items as Json[]).length, rest.json.next_token], [1, null])
      assert.equal((await as(reader, 'GET', `${path}?limit=1000`)).json.next_token, first.json.next_token)
    }
  })

  it('refuses a bad limit or next_token on every listing with a 400 naming each, as the delivery listing does', async () => {
    const configuration = String((await createWebhook()).json.uuid)
    for (const path of [
      `${BASE}/webhook/configurations`,
      `${BASE}/webhook/configurations/${configuration}/selectors`,
      '/v1/notifications/selectors',
    ]) {
      for (const [query, errors] of [
        ['limit=0', [['limit', 'must be a whole number from 1 to 1000']]],
        ['limit=1001', [['limit', 'must be a whole number from 1 to 1000']]],
        ['limit=1e2', [['limit', 'must be a whole number from 1 to 1000']]],
        [
          'limit=-1&next_token=42',
          [
            ['limit', 'must be a whole number from 1 to 1000'],
            ['next_token', 'must be a next_token from a previous page'],
          ],
        ],
        ['next_token=', [['next_token', 'must be a next_token from a previous page']]],
        ['limit=2&limit=3', [['limit', 'is given more than once']]],
        ['page=2', [['page', 'is not a known query parameter; expected limit, next_token']]],
      ] as const) {
        const answer = await as(reader, 'GET', `${path}?${query}`)
        assert.equal(answer.status, 400, `${path}?${query}: ${answer.text}`)
        assert.deepEqual(
          (answer.json.errors as { path: string; message: string }[]).map((e) => [e.path, e.message]),
          errors,
          `${path}?${query}`,
        )
      }
    }
  })

  it('updates a selector as configurations are: fields left out keep their values, pattern null removes it', async () => {
    const created = await createWebhook()
    const base = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    const pattern = { data: { severity: ['critical'] } }
    const added = await as(writer, 'POST', base, { ...selectorBody, pattern })
    const selectorPath = `${base}/${added.json.uuid}`
    const view = (json: Json) => ({ scope: json.scope, event: json.event, pattern: json.pattern })

    const eventOnly = await as(writer, 'PUT', selectorPath, {
      scope: 'account',
      event: { ...selectorBody.event, type: 'user.image.*' },
    })
    assert.equal(eventOnly.status, 200, eventOnly.text)
    assert.deepEqual(view(eventOnly.json), {
      scope: 'account',
      event: { ...selectorBody.event, type: 'user.image.*' },
      pattern,
    })
    const patternOnly = await as(writer, 'PUT', selectorPath, { pattern: { data: { severity: ['high'] } } })
    assert.equal(patternOnly.status, 200, patternOnly.text)
    assert.deepEqual(view(patternOnly.json), {
      scope: 'account',
      event: { ...selectorBody.event, type: 'user.image.*' },
      pattern: { data: { severity: ['high'] } },
    })
    const etag = patternOnly.headers.get('etag') ?? ''
    const nothing = await as(writer, 'PUT', selectorPath, {}, { 'if-match': etag })
    assert.equal(nothing.status, 200, nothing.text)
    assert.deepEqual(view(nothing.json), view(patternOnly.json))
    assert.equal(nothing.headers.get('etag'), etag)

    const removed = await as(writer, 'PUT', selectorPath, { pattern: null }, { 'if-match': etag })
    assert.equal(removed.status, 200, removed.text)
    assert.equal(removed.json.pattern, null)
    assert.deepEqual(removed.json.event, { ...selectorBody.event, type: 'user.image.*' })
    // If-Match still guards the write: the ETag read before the removal is stale now.
    const stale = await as(writer, 'PUT', selectorPath, { pattern }, { 'if-match': etag })
    assert.equal(stale.status, 412)
    assert.equal((await as(reader, 'GET', selectorPath)).json.pattern, null)

    // A required field sent as null is a wrong value, not a field left out.
    const nullScope = await as(writer, 'PUT', selectorPath, { scope: null })
    assert.equal(nullScope.status, 400)
    assert.deepEqual(nullScope.json.errors, [{ path: 'scope', message: 'must be one of account, global' }])
  })

  it('says a required selector field left out on create is required', async () => {
    const created = await createWebhook()
    const base = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    const response = await as(writer, 'POST', base, { event: selectorBody.event })
    assert.equal(response.status, 400)
    assert.deepEqual(response.json.errors, [{ path: 'scope', message: 'is required: account or global' }])
    const noEvent = await as(writer, 'POST', base, { scope: 'account' })
    assert.equal(noEvent.status, 400)
    assert.deepEqual(noEvent.json.errors, [
      { path: 'event', message: 'is required: an object with level, type and resource_type' },
    ])
    const notAnObject = await as(writer, 'POST', base, { scope: 'account', event: 'user.*' })
    assert.deepEqual(notAnObject.json.errors, [
      { path: 'event', message: 'must be an object with level, type and resource_type' },
    ])
    assert.ok(!JSON.stringify([noEvent.json, notAnObject.json]).includes('Pattern'))
  })

  it('refuses a pattern that does not compile with 400 naming its path', async () => {
    const created = await createWebhook()
    const response = await as(
      writer,
      'POST',
      `${BASE}/webhook/configurations/${created.json.uuid}/selectors`,
      {
        ...selectorBody,
        pattern: { data: { cvss: [{ numeric: ['>', 'seven'] }] } },
      },
    )
    assert.equal(response.status, 400)
    assert.match((response.json.errors as { path: string }[])[0]?.path ?? '', /^pattern\.data\.cvss/)
    // The code selector preview answers for the same pattern.
    assert.equal(response.json.code, 'validation_failed')
  })

  it('accepts a pattern nested to the limit and refuses one level deeper with 400 naming pattern, every time', async () => {
    const created = await createWebhook()
    const base = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    /** `{"data": {"a": … ["x"]}}`, `depth` levels of objects and arrays in all. */
    const nested = (depth: number): unknown => {
      let pattern: unknown = ['x']
      for (let level = 2; level < depth; level++) pattern = { a: pattern }
      return { data: pattern }
    }
    const atLimit = await as(writer, 'POST', base, { ...selectorBody, pattern: nested(MAX_PATTERN_DEPTH) })
    assert.equal(atLimit.status, 201, atLimit.text)
    assert.deepEqual(atLimit.json.pattern, nested(MAX_PATTERN_DEPTH))
    // Written out by hand: JSON.stringify itself cannot write the deepest of these.
    const bodyOf = (depth: number) =>
      `${JSON.stringify(selectorBody).slice(0, -1)},"pattern":{"data":${'{"a":'.repeat(depth - 2)}["x"]${'}'.repeat(depth - 2)}}}`
    assert.deepEqual(JSON.parse(bodyOf(4)), { ...selectorBody, pattern: nested(4) })
    for (const depth of [MAX_PATTERN_DEPTH + 1, MAX_PATTERN_DEPTH + 1, 3_000, 3_000, 20_000]) {
      const deeper = await as(writer, 'POST', base, bodyOf(depth))
      assert.equal(deeper.status, 400, `${depth} levels: ${deeper.text.slice(0, 300)}`)
      assert.deepEqual(deeper.json.errors, [
        {
          path: 'pattern',
          message: `is nested more than ${MAX_PATTERN_DEPTH} levels deep (objects and arrays); at most ${MAX_PATTERN_DEPTH} are allowed`,
        },
      ])
    }
    const listed = await as(reader, 'GET', base)
    assert.equal((listed.json.items as Json[]).length, 1)
  })

  it('refuses a selector with a field it does not know, at the top or in event, storing nothing', async () => {
    const created = await createWebhook()
    const base = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    // A misspelt pattern would otherwise be dropped: a selector matching every event of the type.
    const misspelt = await as(writer, 'POST', base, {
      ...selectorBody,
      patern: { data: { severity: ['critical'] } },
    })
    assert.equal(misspelt.status, 400, misspelt.text)
    assert.deepEqual(
      (misspelt.json.errors as { path: string }[]).map((e) => e.path),
      ['patern'],
    )
    const inEvent = await as(writer, 'POST', base, {
      ...selectorBody,
      event: { ...selectorBody.event, resourcetype: 'image' },
    })
    assert.equal(inEvent.status, 400, inEvent.text)
    assert.deepEqual(
      (inEvent.json.errors as { path: string }[]).map((e) => e.path),
      ['event.resourcetype'],
    )
    assert.deepEqual((await as(writer, 'GET', base)).json.items, [])
    // A selector read earlier may be sent back whole, its ids as read; other ids are refused.
    const added = await as(writer, 'POST', base, selectorBody)
    const again = await as(writer, 'PUT', `${base}/${added.json.uuid}`, added.json)
    assert.equal(again.status, 200, again.text)
    for (const [method, path, body, wrong] of [
      ['PUT', `${base}/${added.json.uuid}`, { ...added.json, uuid: randomUUID() }, 'uuid'],
      [
        'PUT',
        `${base}/${added.json.uuid}`,
        { ...added.json, configuration_uuid: randomUUID() },
        'configuration_uuid',
      ],
      ['POST', base, { ...selectorBody, uuid: added.json.uuid }, 'uuid'],
      ['POST', base, { ...selectorBody, configuration_uuid: randomUUID() }, 'configuration_uuid'],
    ] as const) {
      const refused = await as(writer, method, path, body)
      assert.equal(refused.status, 400, `${method} ${wrong}: ${refused.text}`)
      assert.deepEqual(
        (refused.json.errors as { path: string }[]).map((e) => e.path),
        [wrong],
      )
    }
    assert.equal(
      (await as(writer, 'POST', base, { ...selectorBody, configuration_uuid: created.json.uuid })).status,
      201,
    )
  })

  it('lets only the admin account add global selectors', async () => {
    const mine = await createWebhook()
    const global = { ...selectorBody, scope: 'global' }
    assert.equal(
      (await as(writer, 'POST', `${BASE}/webhook/configurations/${mine.json.uuid}/selectors`, global)).status,
      403,
    )
    const theirs = await as(admin, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/admin',
    })
    assert.equal(
      (await as(admin, 'POST', `${BASE}/webhook/configurations/${theirs.json.uuid}/selectors`, global))
        .status,
      201,
    )
  })

  it('lets only the admin account’s admin change or remove a global selector, whoever else may write its configuration', async () => {
    const adminWriter: Principal = { account: 'admin', role: 'read-write' }
    const configuration = await as(admin, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/admin',
    })
    const selectors = `${BASE}/webhook/configurations/${configuration.json.uuid}/selectors`
    const created = await as(admin, 'POST', selectors, { ...selectorBody, scope: 'global' })
    assert.equal(created.status, 201, created.text)
    const path = `${selectors}/${created.json.uuid}`
    const widen = { event: { type: '*', level: '*', resource_type: '*' } }
    const changed = await as(adminWriter, 'PUT', path, widen)
    assert.equal(changed.status, 403, changed.text)
    assert.match(changed.json.detail as string, /global scope/)
    assert.equal((await as(adminWriter, 'DELETE', path)).status, 403)
    const read = await as(admin, 'GET', path)
    assert.deepEqual(read.json.event, created.json.event)
    // The admin still may; and an account-scoped selector stays the writer's to change.
    assert.equal((await as(admin, 'PUT', path, widen)).status, 200)
    const own = await as(adminWriter, 'POST', selectors, selectorBody)
    assert.equal((await as(adminWriter, 'PUT', `${selectors}/${own.json.uuid}`, widen)).status, 200)
  })

  it('lets only the admin account’s admin update or delete a configuration that has a global selector', async () => {
    const adminWriter: Principal = { account: 'admin', role: 'read-write' }
    const configuration = await as(admin, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://soc.example.com/all',
    })
    const path = `${BASE}/webhook/configurations/${configuration.json.uuid}`
    const global = { ...selectorBody, scope: 'global' }
    assert.equal((await as(admin, 'POST', `${path}/selectors`, global)).status, 201)
    // Redirecting the global selector's events, switching them off or deleting them: the admin's alone.
    for (const body of [
      { url: 'https://elsewhere.example.net/x' },
      { enabled: false },
      { description: 'x' },
    ]) {
      const refused = await as(adminWriter, 'PUT', path, body)
      assert.equal(refused.status, 403, refused.text)
      assert.match(refused.json.detail as string, /global scope/)
    }
    const deleted = await as(adminWriter, 'DELETE', path)
    assert.equal(deleted.status, 403, deleted.text)
    // Another account is told what it is told of any configuration not its own.
    assert.equal((await as(stranger, 'DELETE', path)).status, 404)
    assert.equal((await as(stranger, 'PUT', path, { description: 'x' })).status, 404)
    const read = await as(admin, 'GET', path)
    assert.equal(read.json.url, 'https://soc.example.com/all')
    assert.equal(read.json.enabled, true)
    assert.equal((await as(admin, 'PUT', path, { url: 'https://soc.example.com/new' })).status, 200)
    assert.equal((await as(admin, 'DELETE', path)).status, 204)
    // A configuration of the admin account with account-scoped selectors only stays the writer's.
    const own = await as(adminWriter, 'POST', `${BASE}/webhook/configurations`, {
      url: 'https://hooks.example.com/admin',
    })
    const ownPath = `${BASE}/webhook/configurations/${own.json.uuid}`
    assert.equal((await as(adminWriter, 'POST', `${ownPath}/selectors`, selectorBody)).status, 201)
    assert.equal((await as(adminWriter, 'PUT', ownPath, { description: 'mine' })).status, 200)
    assert.equal((await as(adminWriter, 'DELETE', ownPath)).status, 204)
  })

  it('reports a configuration\u2019s status from its recent delivery outcomes', async () => {
    const created = await createWebhook()
    const id = created.json.uuid as string
    const status = () => as(reader, 'GET', `${BASE}/webhook/configurations/${id}/status`)
    assert.equal((await status()).json.status, 'unknown')
    health.record(id, true, Date.UTC(2026, 10, 22))
    assert.equal((await status()).json.status, 'healthy')
    health.record(id, false, Date.UTC(2026, 10, 22, 0, 1))
    const unhealthy = await status()
    assert.equal(unhealthy.json.status, 'unhealthy')
    assert.deepEqual(unhealthy.json.recent, { succeeded: 1, failed: 1 })
    assert.equal((await as(stranger, 'GET', `${BASE}/webhook/configurations/${id}/status`)).status, 404)
  })

  it('refuses a body that is not a JSON object', async () => {
    assert.equal((await as(writer, 'POST', `${BASE}/webhook/configurations`, '{nope')).status, 400)
    assert.equal((await as(writer, 'POST', `${BASE}/webhook/configurations`, '[1]')).status, 400)
  })

  it('refuses a body not declared as JSON with a 415, storing nothing', async () => {
    const body = { url: 'https://hooks.example.com/plain' }
    const plain = await as(writer, 'POST', `${BASE}/webhook/configurations`, body, {
      'content-type': 'text/plain',
    })
    assert.equal(plain.status, 415)
    assert.equal(plain.json.code, 'unsupported_media_type')
    assert.match(plain.json.detail as string, /application\/json.*got "text\/plain"/)
    assert.deepEqual((await as(writer, 'GET', `${BASE}/webhook/configurations`)).json.items, [])
    const created = await as(writer, 'POST', `${BASE}/webhook/configurations`, body, {
      'content-type': 'application/json; charset=utf-8',
    })
    assert.equal(created.status, 201)
    const selectors = `${BASE}/webhook/configurations/${created.json.uuid}/selectors`
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    assert.equal((await as(writer, 'POST', selectors, selectorBody, form)).status, 415)
  })
})
