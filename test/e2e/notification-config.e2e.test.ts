import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, before, describe, it } from 'node:test'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'
import { startWebhookReceiver } from '../support/webhook-receiver.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const HOOK = 'http://127.0.0.1:9'
const BASE = '/v1/notifications/endpoints'

type Role = 'anonymous' | 'read-only' | 'read-write' | 'admin'
const ROLES: readonly Role[] = ['anonymous', 'read-only', 'read-write', 'admin']

interface Answer {
  readonly status: number
  readonly text: string
  readonly json: Record<string, unknown>
  readonly etag: string | null
}

describe('notification configuration through a running Herald', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-config-e2e-'))
  let herald: HeraldProcess
  const tokens: Partial<Record<Role | 'globex', string>> = {}
  /** Every response body this test received, for the secret canary check. */
  const bodies: string[] = []

  const call = async (
    token: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> => {
    const response = await fetch(`${herald.url}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    bodies.push(text)
    let json: Record<string, unknown> = {}
    try {
      json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)
    } catch {}
    return { status: response.status, text, json, etag: response.headers.get('etag') }
  }

  before(async () => {
    herald = await startHeraldProcess({
      HERALD_DATA_DIR: dataDir,
      HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
      HERALD_LOG_LEVEL: 'debug',
      HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
    })
    tokens.admin = ADMIN_TOKEN
    const issue = async (account: string, role: string) => {
      const answer = await call(ADMIN_TOKEN, 'POST', '/v1/auth/tokens', { account, role, description: 'e2e' })
      assert.equal(answer.status, 201, answer.text)
      return String(answer.json.token)
    }
    tokens['read-only'] = await issue('acme', 'read-only')
    tokens['read-write'] = await issue('acme', 'read-write')
    tokens.globex = await issue('globex', 'read-write')
  })
  after(async () => {
    await herald?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  /** A webhook configuration with one selector, owned by whoever `token` belongs to. */
  const resource = async (token: string) => {
    const created = await call(token, 'POST', `${BASE}/webhook/configurations`, { url: `${HOOK}/hook` })
    assert.equal(created.status, 201, created.text)
    const id = String(created.json.uuid)
    const selector = await call(token, 'POST', `${BASE}/webhook/configurations/${id}/selectors`, {
      scope: 'account',
      event: { level: '*', type: 'user.*', resource_type: '*' },
    })
    assert.equal(selector.status, 201, selector.text)
    return { id, selector: String(selector.json.uuid) }
  }

  it('answers every route for every role and account as the authorization table says', async () => {
    const owners = {
      acme: await resource(tokens['read-write'] as string),
      globex: await resource(tokens.globex as string),
      admin: await resource(ADMIN_TOKEN),
    }
    // For each role, whose resources are its own and whose are another account's.
    const ownership = (role: Role) =>
      role === 'admin' ? { own: 'admin', other: 'acme' } : { own: 'acme', other: 'globex' }
    const writerOf = { acme: tokens['read-write'], globex: tokens.globex, admin: ADMIN_TOKEN } as Record<
      string,
      string
    >
    type Res = { id: string; selector: string }
    type Row = {
      route: string
      method: string
      path: (r: Res) => string
      body?: unknown
      /** A route that consumes its resource gets a fresh one per call. */
      fresh?: boolean
      /** Statuses for anonymous, read-only, read-write, admin: [own, other]. */
      expect: Record<Role, readonly [number, number]>
    }
    const read = {
      anonymous: [401, 401],
      'read-only': [200, 404],
      'read-write': [200, 404],
      admin: [200, 404],
    } as const
    const write = (ok: number) =>
      ({ anonymous: [401, 401], 'read-only': [403, 403], 'read-write': [ok, 404], admin: [ok, 404] }) as const
    const same = (a: number, ro: number, rw: number, ad: number) =>
      ({ anonymous: [a, a], 'read-only': [ro, ro], 'read-write': [rw, rw], admin: [ad, ad] }) as const
    const configuration = (r: Res) => `${BASE}/webhook/configurations/${r.id}`
    const selectorBody = { scope: 'account', event: { level: 'error', type: 'user.*', resource_type: '*' } }
    const rows: Row[] = [
      {
        route: 'list endpoints',
        method: 'GET',
        path: () => '/v1/notifications/endpoints',
        expect: same(401, 200, 200, 200),
      },
      {
        route: 'get endpoint',
        method: 'GET',
        path: () => '/v1/notifications/endpoints/slack',
        expect: same(401, 200, 200, 200),
      },
      {
        route: 'switch endpoint',
        method: 'PUT',
        path: () => '/v1/notifications/endpoints/jira',
        body: { enabled: true },
        expect: same(401, 403, 403, 200),
      },
      {
        route: 'event types',
        method: 'GET',
        path: () => '/v1/notifications/event-types',
        expect: same(401, 200, 200, 200),
      },
      {
        route: 'list configurations',
        method: 'GET',
        path: () => `${BASE}/webhook/configurations`,
        expect: same(401, 200, 200, 200),
      },
      {
        route: 'create configuration',
        method: 'POST',
        path: () => `${BASE}/webhook/configurations`,
        body: { url: `${HOOK}/new` },
        expect: same(401, 403, 201, 201),
      },
      { route: 'get configuration', method: 'GET', path: configuration, expect: read },
      {
        route: 'update configuration',
        method: 'PUT',
        path: configuration,
        body: { description: 'matrix' },
        expect: write(200),
      },
      {
        route: 'delete configuration',
        method: 'DELETE',
        path: configuration,
        fresh: true,
        expect: write(204),
      },
      {
        route: 'configuration status',
        method: 'GET',
        path: (r) => `${configuration(r)}/status`,
        expect: read,
      },
      { route: 'list selectors', method: 'GET', path: (r) => `${configuration(r)}/selectors`, expect: read },
      {
        route: 'add selector',
        method: 'POST',
        path: (r) => `${configuration(r)}/selectors`,
        body: selectorBody,
        expect: write(201),
      },
      {
        route: 'get selector',
        method: 'GET',
        path: (r) => `${configuration(r)}/selectors/${r.selector}`,
        expect: read,
      },
      {
        route: 'update selector',
        method: 'PUT',
        path: (r) => `${configuration(r)}/selectors/${r.selector}`,
        body: selectorBody,
        expect: write(200),
      },
      {
        route: 'delete selector',
        method: 'DELETE',
        path: (r) => `${configuration(r)}/selectors/${r.selector}`,
        fresh: true,
        expect: write(204),
      },
      {
        route: 'all selectors',
        method: 'GET',
        path: () => '/v1/notifications/selectors',
        expect: same(401, 200, 200, 200),
      },
      {
        route: 'list tokens',
        method: 'GET',
        path: () => '/v1/auth/tokens',
        expect: same(401, 403, 403, 200),
      },
      {
        route: 'issue token',
        method: 'POST',
        path: () => '/v1/auth/tokens',
        body: { account: 'acme', role: 'read-only' },
        expect: same(401, 403, 403, 201),
      },
      { route: 'audit', method: 'GET', path: () => '/v1/audit', expect: same(401, 403, 200, 200) },
      { route: 'health', method: 'GET', path: () => '/health', expect: same(200, 200, 200, 200) },
    ]
    const mismatches: string[] = []
    let checked = 0
    for (const row of rows) {
      for (const role of ROLES) {
        for (const [side, index] of [
          ['own', 0],
          ['other', 1],
        ] as const) {
          const owner = ownership(role)[side]
          const target = row.fresh
            ? await resource(writerOf[owner] as string)
            : owners[owner as keyof typeof owners]
          const answer = await call(
            role === 'anonymous' ? undefined : tokens[role],
            row.method,
            row.path(target),
            row.body,
          )
          checked++
          const expected = row.expect[role][index]
          if (answer.status !== expected)
            mismatches.push(
              `${row.route} as ${role} on ${side}: expected ${expected}, got ${answer.status} ${answer.text.slice(0, 120)}`,
            )
        }
      }
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${checked} cells differ`)
    // Every route but the probe refuses a query parameter it does not take, before anything runs.
    const ignored: string[] = []
    for (const row of rows) {
      if (row.route === 'health') continue
      const answer = await call(ADMIN_TOKEN, row.method, `${row.path(owners.admin)}?bogus=1`, row.body)
      const paths = (answer.json.errors as { path: string }[] | undefined)?.map((e) => e.path)
      if (answer.status !== 400 || paths?.[0] !== 'bogus')
        ignored.push(`${row.route}: ${answer.status} ${answer.text.slice(0, 120)}`)
    }
    assert.deepEqual(ignored, [])
    // Lists never show another account's configurations.
    const acmeList = await call(tokens['read-only'], 'GET', `${BASE}/webhook/configurations`)
    const ids = (acmeList.json.items as { uuid: string }[]).map((i) => i.uuid)
    assert.ok(
      ids.includes(owners.acme.id) && !ids.includes(owners.globex.id) && !ids.includes(owners.admin.id),
    )
    // Paged as the delivery listing is: `limit`, and `next_token` continuing after a page's last id.
    const paged: string[] = []
    let token: unknown = null
    do {
      const page = await call(
        tokens['read-only'],
        'GET',
        `${BASE}/webhook/configurations?limit=1${token === null ? '' : `&next_token=${String(token)}`}`,
      )
      assert.equal(page.status, 200, page.text)
      paged.push(...(page.json.items as { uuid: string }[]).map((i) => i.uuid))
      token = page.json.next_token
    } while (token !== null && paged.length <= ids.length)
    assert.deepEqual(paged, [...ids].sort())
  })

  it('refuses a template override that does not parse, naming it, and keeps one that does', async () => {
    const writer = tokens['read-write'] as string
    const bad = await call(writer, 'POST', `${BASE}/slack/configurations`, {
      url: `${HOOK}/services/T/B/x`,
      templates: { title: '{% if %}' },
    })
    assert.equal(bad.status, 400, bad.text)
    assert.match(JSON.stringify(bad.json.errors), /templates\.title/)
    const good = await call(writer, 'POST', `${BASE}/slack/configurations`, {
      url: `${HOOK}/services/T/B/y`,
      templates: { title: 'Herald: {{ headline }}' },
    })
    assert.equal(good.status, 201, good.text)
    assert.deepEqual(good.json.templates, { title: 'Herald: {{ headline }}' })
  })

  it('switches a configuration off when its endpoint answers 410 Gone, and says so in the audit', async () => {
    const receiver = await startWebhookReceiver(() => 410)
    try {
      const writer = tokens['read-write'] as string
      const created = await call(writer, 'POST', `${BASE}/webhook/configurations`, { url: receiver.url })
      assert.equal(created.status, 201, created.text)
      const id = String(created.json.uuid)
      const selector = await call(writer, 'POST', `${BASE}/webhook/configurations/${id}/selectors`, {
        scope: 'account',
        event: { level: '*', type: 'user.image.analysis.completed', resource_type: '*' },
      })
      assert.equal(selector.status, 201, selector.text)
      const event = {
        specversion: '1.0',
        id: `gone-${randomBytes(4).toString('hex')}`,
        source: '/engine/analyzer',
        type: 'user.image.analysis.completed',
        account: 'acme',
        level: 'info',
        resourcetype: 'image',
        data: { digest: `sha256:${'a'.repeat(64)}`, tag: 'docker.io/library/nginx:latest' },
      }
      const published = await fetch(`${herald.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json', authorization: `Bearer ${writer}` },
        body: JSON.stringify(event),
      })
      assert.equal(published.status, 202, await published.text())
      await eventually(
        async () => {
          const read = await call(writer, 'GET', `${BASE}/webhook/configurations/${id}`)
          assert.equal(read.json.enabled, false)
        },
        { timeoutMs: 30_000 },
      )
      assert.equal(receiver.received.length, 1)
      const audit = await call(writer, 'GET', `/v1/audit?aggregate_id=${id}`)
      const last = (audit.json.items as { by: string; changes: Record<string, unknown> }[]).at(-1)
      assert.equal(last?.by, 'system/endpoint_gone')
      assert.deepEqual(last?.changes, { enabled: false })
    } finally {
      await receiver.close()
    }
  })

  it('takes 50 concurrent updates to one configuration: each accepted write is in the history, each refused one got 412', async () => {
    const writer = tokens['read-write'] as string
    const { id } = await resource(writer)
    const path = `${BASE}/webhook/configurations/${id}`
    const start = await call(writer, 'GET', path)
    const etag = start.etag as string
    // Round one: all 50 clients hold the same ETag; exactly one wins.
    const round = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        call(writer, 'PUT', path, { description: `race-${i}` }, { 'if-match': etag }),
      ),
    )
    const accepted = round.filter((a) => a.status === 200)
    assert.equal(accepted.length, 1)
    assert.ok(
      round.every((a) => a.status === 200 || a.status === 412),
      round.map((a) => a.status).join(','),
    )
    // Round two: each client reads and retries on 412 until its write lands; none is lost.
    const refusals = { count: 0 }
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        for (;;) {
          const current = await call(writer, 'GET', path)
          const answer = await call(
            writer,
            'PUT',
            path,
            { description: `retry-${i}` },
            { 'if-match': current.etag as string },
          )
          if (answer.status === 200) return
          assert.equal(answer.status, 412, answer.text)
          refusals.count++
        }
      }),
    )
    const audit = await call(writer, 'GET', `/v1/audit?aggregate_id=${id}&limit=1000`)
    const descriptions = (audit.json.items as { event: string; changes: { description?: string } }[])
      .filter((e) => e.event === 'ConfigurationUpdated')
      .map((e) => e.changes.description)
    assert.deepEqual(
      descriptions.filter((d) => d?.startsWith('race-')),
      [accepted[0]?.json.description],
    )
    assert.deepEqual(
      descriptions.filter((d) => d?.startsWith('retry-')).sort(),
      Array.from({ length: 50 }, (_, i) => `retry-${i}`).sort(),
    )
    const final = await call(writer, 'GET', path)
    assert.equal(
      final.etag,
      `"${1 + 1 + 50}"`,
      'revisions 0 (created), 1 (selector), 2 (race winner), then 50 retries',
    )
  })

  it('keeps every credential secret: canaries never leave in responses, errors, audit, logs or tables, and are stored encrypted', async () => {
    const canary = (field: string) => `canary${field}${randomBytes(6).toString('hex')}`
    const c = {
      slack: canary('slack'),
      teams: canary('teams'),
      smtp: canary('smtp'),
      basic: canary('basic'),
      github: canary('github'),
      jira: canary('jira'),
    }
    const signing = `whsec_${Buffer.from(canary('signing').padEnd(32, 'x')).toString('base64')}`
    const signingCanary = signing.slice(6)
    const all = [...Object.values(c), signingCanary]
    const writer = tokens['read-write'] as string
    const bodiesBefore = bodies.length
    const creations: [string, Record<string, unknown>][] = [
      ['slack', { url: `${HOOK}/services/T0/B0/${c.slack}` }],
      ['teams', { url: `${HOOK}/webhookb2/${c.teams}` }],
      [
        'email',
        {
          smtp_host: '127.0.0.1',
          smtp_port: 2525,
          from: 'herald@example.com',
          to: ['sec@example.com'],
          username: 'herald',
          password: c.smtp,
        },
      ],
      ['webhook', { url: `${HOOK}/hook`, username: 'herald', password: c.basic, signing_secret: signing }],
      ['github', { api_url: `${HOOK}/api`, owner: 'acme', repository: 'platform', token: c.github }],
      ['jira', { url: `${HOOK}/jira`, username: 'bot@acme.io', api_token: c.jira, project_key: 'SEC' }],
    ]
    for (const [endpoint, body] of creations) {
      const created = await call(writer, 'POST', `${BASE}/${endpoint}/configurations`, body)
      assert.equal(created.status, 201, `${endpoint}: ${created.text}`)
      const path = `${BASE}/${endpoint}/configurations/${created.json.uuid}`
      assert.equal((await call(writer, 'GET', path)).status, 200)
      // An update that does not resend the secret keeps it; one with a bad secret fails without echoing it.
      const kept = await call(writer, 'PUT', path, { description: 'rotated later' })
      assert.equal(kept.status, 200, `${endpoint}: ${kept.text}`)
      const secretField = Object.keys(body).find((k) =>
        ['url', 'password', 'token', 'api_token'].includes(k),
      ) as string
      const bad = await call(writer, 'PUT', path, { [secretField]: ` ${body[secretField]} not valid ` })
      assert.ok(bad.status === 400 || bad.status === 422, `${endpoint}: ${bad.status} ${bad.text}`)
    }
    await call(writer, 'GET', '/v1/audit?limit=1000')
    await call(writer, 'GET', '/v1/notifications/selectors')
    for (const endpoint of ['slack', 'teams', 'email', 'webhook', 'github', 'jira'])
      await call(writer, 'GET', `${BASE}/${endpoint}/configurations`)

    const leaked = (text: string) => all.filter((secret) => text.includes(secret))
    for (const body of bodies.slice(bodiesBefore)) assert.deepEqual(leaked(body), [], body.slice(0, 300))

    await herald.stop()
    const logs = herald.lines.map((l) => JSON.stringify(l)).join('\n')
    assert.ok(herald.lines.length > 10, 'the process logged')
    assert.deepEqual(leaked(logs), [], 'no canary in the log')

    const store = new DatabaseSync(join(dataDir, 'eventstore.sqlite'), { readOnly: true })
    const stored = (store.prepare('SELECT data FROM events').all() as { data: string }[])
      .map((r) => String(r.data))
      .join('\n')
    store.close()
    assert.deepEqual(leaked(stored), [], 'no canary in plaintext in the event store')
    assert.ok((stored.match(/enc:v1:/g) ?? []).length >= 7, 'every credential is stored sealed')
    for (const file of ['eventstore.sqlite', 'eventlog.sqlite'])
      assert.deepEqual(leaked(readFileSync(join(dataDir, file)).toString('latin1')), [], file)

    const warehouse = await createChdbWarehouse({ path: join(dataDir, 'warehouse') })
    try {
      const tables = await warehouse.query<{ name: string }>(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View%'",
      )
      assert.ok(tables.length > 0)
      for (const { name } of tables) {
        const rows = await warehouse.query<Record<string, unknown>>(`SELECT * FROM \`${name}\``)
        assert.deepEqual(leaked(JSON.stringify(rows)), [], `table ${name}`)
      }
    } finally {
      await warehouse.close()
    }
  })
})
