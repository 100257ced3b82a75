import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Hono } from 'hono'
import type { AppEnv } from '../access/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { toProblem } from '../http/problem.ts'
import { createEndpointStatusService, createNotificationConfigService } from '../notifications/index.ts'
import type { EventStore } from '../ports/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import { readAudit } from './audit.ts'
import { createAuditRoutes } from './routes.ts'

describe('readAudit', () => {
  let store: EventStore
  let now = Date.UTC(2026, 10, 22, 10)
  const acme = { account: 'acme', role: 'read-write' } as const
  const globex = { account: 'globex', role: 'read-write' } as const
  const admin = { account: 'admin', role: 'admin' } as const

  beforeEach(() => {
    now = Date.UTC(2026, 10, 22, 10)
    store = createSqliteEventStore({ path: ':memory:' })
  })
  afterEach(async () => {
    await store.close()
  })

  const seed = async () => {
    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: () => now,
      newId: randomUUID,
    })
    const created = await service.createConfiguration(acme, 'jira', {
      fields: {
        url: 'https://acme.atlassian.net',
        username: 'bot',
        api_token: 'audit-canary-token',
        project_key: 'SEC',
      },
      options: {},
    })
    now += 60_000
    await service.updateConfiguration(acme, 'jira', created.value.id, {
      fields: { api_token: 'audit-canary-token-2', priority: 'High' },
      options: {},
    })
    now += 60_000
    await service.createConfiguration(globex, 'webhook', {
      fields: { url: 'https://hooks.example.com/g' },
      options: {},
    })
    await createEndpointStatusService({ store, clock: () => now, newId: randomUUID }).set(
      admin,
      'slack',
      false,
    )
    return created.value.id
  }

  it('shows who changed what and when, with secrets redacted', async () => {
    const id = await seed()
    const page = await readAudit(store, acme, { limit: 100 })
    assert.deepEqual(
      page.items.map((e) => [e.event, e.aggregate.id, e.by, e.at]),
      [
        ['ConfigurationCreated', id, 'acme/read-write', '2026-11-22T10:00:00.000Z'],
        ['ConfigurationUpdated', id, 'acme/read-write', '2026-11-22T10:01:00.000Z'],
      ],
    )
    assert.equal(page.items[0]?.changes.api_token, '<redacted>')
    assert.equal(page.items[0]?.changes.project_key, 'SEC')
    assert.deepEqual(page.items[1]?.changes, { api_token: '<redacted>', priority: 'High' })
    assert.ok(!JSON.stringify(page).includes('audit-canary'))
  })

  it('shows a re-seal: by Herald, which secrets, and the key id, never a value', async () => {
    const k1 = randomBytes(32).toString('base64')
    const onKeys = (current: string, previous: string[] = []) =>
      createNotificationConfigService({
        store,
        box: createSecretBox({ current, previous }),
        clock: () => now,
        newId: randomUUID,
      })
    const created = await onKeys(k1).createConfiguration(acme, 'webhook', {
      fields: { url: 'https://hooks.example.com/a', password: 'audit-canary-pw' },
      options: {},
    })
    now += 60_000
    const k2 = randomBytes(32).toString('base64')
    await onKeys(k2, [k1]).resealSecrets(created.value.id)
    const [, resealed] = (await readAudit(store, acme, { limit: 100 })).items
    assert.deepEqual(
      [resealed?.event, resealed?.by, resealed?.account, resealed?.changes.resealed],
      ['SecretsResealed', 'system/reseal', 'acme', ['password', 'signing_secret']],
    )
    assert.equal(resealed?.changes.key_id, createSecretBox({ current: k2 }).currentKeyId)
    assert.ok(!JSON.stringify(resealed).includes('enc:v1') && !JSON.stringify(resealed).includes('canary'))
  })

  it('shows max_in_flight where it was set or changed, and null where it was reset', async () => {
    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: () => now,
      newId: randomUUID,
    })
    const hook = { url: 'https://hooks.example.com/a' }
    const { value } = await service.createConfiguration(acme, 'webhook', {
      fields: hook,
      options: { max_in_flight: 8 },
    })
    await service.updateConfiguration(acme, 'webhook', value.id, {
      fields: hook,
      options: { max_in_flight: 2 },
    })
    await service.updateConfiguration(acme, 'webhook', value.id, {
      fields: hook,
      options: { max_in_flight: null },
    })
    await service.createConfiguration(acme, 'webhook', { fields: hook, options: {} })
    const changes = (await readAudit(store, acme, { limit: 100 })).items.map((e) => e.changes.max_in_flight)
    assert.deepEqual(changes, [8, 2, null, undefined])
  })

  it('shows an account only its own changes, and an admin everything', async () => {
    await seed()
    assert.equal((await readAudit(store, globex, { limit: 100 })).items.length, 1)
    const all = await readAudit(store, admin, { limit: 100 })
    assert.deepEqual(
      all.items.map((e) => e.aggregate.type),
      [
        'notification_configuration',
        'notification_configuration',
        'notification_configuration',
        'notification_endpoint',
      ],
    )
    assert.deepEqual(all.items.at(-1)?.changes, { enabled: false })
  })

  it('filters by time and aggregate, and pages with a token', async () => {
    const id = await seed()
    const later = await readAudit(store, admin, { since: '2026-11-22T10:01:00Z', limit: 100 })
    assert.equal(later.items[0]?.event, 'ConfigurationUpdated')
    const earlier = await readAudit(store, admin, { until: '2026-11-22T10:01:00Z', limit: 100 })
    assert.deepEqual(
      earlier.items.map((e) => e.event),
      ['ConfigurationCreated'],
    )
    // A leap second is an instant like any other (it read as NaN, and filtered nothing).
    assert.deepEqual((await readAudit(store, admin, { since: '2099-12-31T23:59:60Z', limit: 100 })).items, [])
    assert.deepEqual((await readAudit(store, admin, { until: '2016-12-31T23:59:60Z', limit: 100 })).items, [])
    const one = await readAudit(store, admin, { aggregateId: id, limit: 1 })
    assert.equal(one.items.length, 1)
    assert.notEqual(one.next, null)
    const two = await readAudit(store, admin, { aggregateId: id, limit: 1, after: one.next ?? 0 })
    assert.equal(two.items[0]?.event, 'ConfigurationUpdated')
    const endpoints = await readAudit(store, admin, { aggregateType: 'notification_endpoint', limit: 100 })
    assert.deepEqual(
      endpoints.items.map((e) => e.aggregate.id),
      ['slack'],
    )
  })
})

describe('GET /v1/audit', () => {
  let store: EventStore
  let app: Hono<AppEnv>

  beforeEach(() => {
    store = createSqliteEventStore({ path: ':memory:' })
    app = new Hono<AppEnv>()
    app.onError((error, c) => {
      const problem = toProblem(error)
      return c.json(problem, problem.status as 400)
    })
    app.use(async (c, next) => {
      c.set('principal', { account: 'admin', role: 'admin' })
      await next()
    })
    app.route('/v1/audit', createAuditRoutes({ store }))
  })
  afterEach(async () => {
    await store.close()
  })

  it('refuses an unknown, repeated or ambiguous query parameter, naming it', async () => {
    const refused = async (query: string) => {
      const response = await app.request(`/v1/audit?${query}`)
      const body = (await response.json()) as { errors?: { path: string }[] }
      assert.equal(response.status, 400, `${query}: ${JSON.stringify(body)}`)
      return (body.errors ?? []).map((e) => e.path)
    }
    assert.deepEqual(await refused('sinse=2026-11-22T10:00:00Z'), ['sinse'])
    assert.deepEqual(await refused('limit=5&limit=x'), ['limit'])
    assert.deepEqual(await refused('since=2026-02-30T00:00:00Z'), ['since'])
    assert.deepEqual(await refused('until=2026-11-22T10:00:00'), ['until'])
    assert.deepEqual(await refused('next_token='), ['next_token'])
    assert.equal((await app.request('/v1/audit?since=2026-11-22T10:00:00Z&limit=5')).status, 200)
  })

  it('finds an aggregate by its id in any case', async () => {
    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
    })
    const created = await service.createConfiguration({ account: 'acme', role: 'read-write' }, 'webhook', {
      fields: { url: 'https://hooks.example.com/a' },
      options: {},
    })
    for (const id of [created.value.id, created.value.id.toUpperCase()]) {
      const response = await app.request(`/v1/audit?aggregate_id=${id}`)
      const body = (await response.json()) as { items: { aggregate: { id: string } }[] }
      assert.deepEqual(
        body.items.map((e) => e.aggregate.id),
        [created.value.id],
        id,
      )
    }
  })

  it('refuses a since after its until, as the report routes refuse a start after its end', async () => {
    const response = await app.request('/v1/audit?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z')
    assert.equal(response.status, 400)
    const body = (await response.json()) as { code: string; errors: unknown }
    assert.equal(body.code, 'validation_failed')
    assert.deepEqual(body.errors, [{ path: 'since', message: 'must not be after until' }])
    // An offset changes the instant: 10:00+02:00 is before 09:00Z.
    const same = '/v1/audit?since=2026-11-22T10:00:00%2B02:00&until=2026-11-22T09:00:00Z'
    assert.equal((await app.request(same)).status, 200)
  })
})
