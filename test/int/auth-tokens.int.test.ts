import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createTokenRoutes, createTokenService } from '../../src/auth/index.ts'
import { chainAuthenticators, createAdminTokenAuthenticator, createHttpApp } from '../../src/http/index.ts'
import { createMetrics, silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import type { EventStore } from '../../src/ports/event-store.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'

const ADMIN = 'admin-token-for-tests-0123456789'

describe('API tokens: issued, used and revoked through the HTTP API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-tokens-'))
  let log: EventLog
  let store: EventStore
  let warehouse: Warehouse
  let app: ReturnType<typeof createHttpApp>

  const call = async (
    token: string,
    method: string,
    path: string,
    body?: unknown,
    type = 'application/json',
  ) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return {
      status: response.status,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    }
  }
  const event = (account: string) => ({
    specversion: '1.0',
    id: randomUUID(),
    source: '/engine',
    type: 'user.image.analysis.completed',
    account,
    data: { digest: 'sha256:ab' },
  })

  before(async () => {
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    store = createSqliteEventStore({ path: join(dir, 'store.sqlite') })
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    const tokens = createTokenService({ store, clock: Date.now, newId: randomUUID })
    app = createHttpApp({
      log,
      eventsTopic: 'engine.events',
      warehouse,
      readiness: {},
      authenticate: chainAuthenticators(createAdminTokenAuthenticator(ADMIN), tokens.authenticate),
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      mounts: [{ path: '/v1/auth', app: createTokenRoutes({ tokens }) }],
    })
  })
  after(async () => {
    await log.close()
    await store.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('issues a token once, lists it without the secret, and revokes it', async () => {
    const issued = await call(ADMIN, 'POST', '/v1/auth/tokens', {
      account: 'acme',
      role: 'read-write',
      description: 'ci',
    })
    assert.equal(issued.status, 201, JSON.stringify(issued.body))
    const token = String(issued.body?.token)
    assert.match(token, /^hrld_/)

    const listed = await call(ADMIN, 'GET', '/v1/auth/tokens')
    assert.equal(listed.status, 200)
    assert.ok(!JSON.stringify(listed.body).includes(token), 'the listing leaked the secret')
    assert.ok(!JSON.stringify(listed.body).includes('tokenHash'))
    const items = listed.body?.items as { id: string; account: string; role: string }[]
    assert.ok(items.some((i) => i.id === issued.body?.id && i.account === 'acme' && i.role === 'read-write'))

    // A read-write token publishes for its own account only and cannot manage tokens.
    const events = '/v1/events'
    assert.equal(
      (await call(token, 'POST', events, event('acme'), 'application/cloudevents+json')).status,
      202,
    )
    const foreign = await call(token, 'POST', events, event('globex'), 'application/cloudevents+json')
    assert.equal(foreign.status, 403)
    assert.equal(foreign.body?.code, 'forbidden')
    assert.deepEqual(foreign.body?.errors, [{ path: 'account', message: 'must be acme' }])
    // In a batch, the first event of another account, by its index.
    const batch = await call(
      token,
      'POST',
      events,
      [event('acme'), event('globex')],
      'application/cloudevents-batch+json',
    )
    assert.equal(batch.status, 403)
    assert.deepEqual(batch.body?.errors, [{ path: '[1].account', message: 'must be acme' }])
    // In binary mode the account is the ce-account header, and the refusal names it.
    const { data, ...attributes } = event('globex')
    const binary = await app.request(events, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...Object.fromEntries(Object.entries(attributes).map(([name, value]) => [`ce-${name}`, value])),
      },
      body: JSON.stringify(data),
    })
    assert.equal(binary.status, 403)
    assert.deepEqual(((await binary.json()) as { errors: unknown }).errors, [
      { path: 'ce-account', message: 'must be acme' },
    ])
    assert.equal((await call(token, 'GET', '/v1/auth/tokens')).status, 403)

    // Its hex id in upper case names the same token.
    const id = String(issued.body?.id).toUpperCase()
    assert.equal((await call(ADMIN, 'DELETE', `/v1/auth/tokens/${id}`)).status, 204)
    assert.equal(
      (await call(token, 'POST', events, event('acme'), 'application/cloudevents+json')).status,
      401,
    )
    assert.equal((await call(ADMIN, 'DELETE', '/v1/auth/tokens/000000000000000000000000')).status, 404)
    const long = await call(ADMIN, 'DELETE', `/v1/auth/tokens/${'0'.repeat(10_000)}`)
    assert.equal(long.status, 404)
    assert.equal(long.body?.detail, `no token ${'0'.repeat(64)}…`)
  })

  it('issues admin tokens for the admin account only', async () => {
    const refused = await call(ADMIN, 'POST', '/v1/auth/tokens', { account: 'acme', role: 'admin' })
    assert.equal(refused.status, 400, JSON.stringify(refused.body))
    assert.deepEqual(
      ((refused.body?.errors ?? []) as { path: string }[]).map((e) => e.path),
      ['role'],
    )
    const listed = await call(ADMIN, 'GET', '/v1/auth/tokens')
    const items = (listed.body?.items ?? []) as { account: string; role: string }[]
    assert.ok(!items.some((i) => i.account === 'acme' && i.role === 'admin'))
    const operator = await call(ADMIN, 'POST', '/v1/auth/tokens', { account: 'admin', role: 'admin' })
    assert.equal(operator.status, 201, JSON.stringify(operator.body))
  })

  it('lets a read-only token read reports but not publish', async () => {
    const issued = await call(ADMIN, 'POST', '/v1/auth/tokens', { account: 'acme', role: 'read-only' })
    const token = String(issued.body?.token)
    const query = await call(token, 'POST', '/v1/reports/graphql', {
      query: '{ events { pageInfo { count } } }',
    })
    assert.equal(query.status, 200)
    const publish = await call(token, 'POST', '/v1/events', event('acme'), 'application/cloudevents+json')
    assert.equal(publish.status, 403)
    assert.equal(publish.body?.code, 'forbidden')
  })

  it('tells any caller whom its token stands for, and no caller without one', async () => {
    const issued = await call(ADMIN, 'POST', '/v1/auth/tokens', { account: 'acme', role: 'read-only' })
    const token = String(issued.body?.token)
    const who = await call(token, 'GET', '/v1/auth/whoami')
    assert.equal(who.status, 200, JSON.stringify(who.body))
    assert.deepEqual(who.body, { account: 'acme', role: 'read-only', token_id: issued.body?.id })
    assert.ok(!JSON.stringify(who.body).includes(token))
    assert.deepEqual((await call(ADMIN, 'GET', '/v1/auth/whoami')).body, {
      account: 'admin',
      role: 'admin',
      token_id: 'admin_token',
    })
    assert.equal((await call('hrld_not-a-token', 'GET', '/v1/auth/whoami')).status, 401)
    assert.equal((await call(token, 'GET', '/v1/auth/whoami?x=1')).status, 400)
    // The token routes stay the admin's.
    assert.equal((await call(token, 'GET', '/v1/auth/tokens')).status, 403)
    assert.equal((await call(token, 'DELETE', `/v1/auth/tokens/${issued.body?.id}`)).status, 403)
  })

  it('names every bad field of a token request', async () => {
    const response = await call(ADMIN, 'POST', '/v1/auth/tokens', { account: '', role: 'owner' })
    assert.equal(response.status, 400)
    const paths = ((response.body?.errors ?? []) as { path: string }[]).map((e) => e.path).sort()
    assert.deepEqual(paths, ['account', 'role'])
  })

  it('refuses a token request with a field it does not know, issuing nothing', async () => {
    const before = (await call(ADMIN, 'GET', '/v1/auth/tokens')).body?.items as unknown[]
    // A token meant to expire must not be issued as one that never does.
    const response = await call(ADMIN, 'POST', '/v1/auth/tokens', {
      account: 'acme',
      role: 'read-only',
      expires_at: '2026-12-01T00:00:00Z',
    })
    assert.equal(response.status, 400)
    assert.deepEqual(
      ((response.body?.errors ?? []) as { path: string }[]).map((e) => e.path),
      ['expires_at'],
    )
    assert.equal(response.body?.token, undefined)
    const after = (await call(ADMIN, 'GET', '/v1/auth/tokens')).body?.items as unknown[]
    assert.equal(after.length, before.length)
  })
})
