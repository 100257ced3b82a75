import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Hono } from 'hono'
import type { AppEnv, Principal } from '../../src/access/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { toProblem } from '../../src/http/index.ts'
import { createEndpointRoutes, createEndpointStatusService } from '../../src/notifications/index.ts'
import type { EventStore } from '../../src/ports/event-store.ts'

describe('endpoint status on the embedded event store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-endpoints-'))
  let store: EventStore
  let app: Hono<AppEnv>
  const as = (principal: Principal) => ({
    'x-test-role': principal.role,
    'x-test-account': principal.account,
  })

  before(() => {
    store = createSqliteEventStore({ path: join(dir, 'store.sqlite') })
    const endpoints = createEndpointStatusService({ store, clock: Date.now, newId: randomUUID })
    app = new Hono<AppEnv>()
    // Stands in for the authentication middleware: the principal comes from test headers.
    app.use(async (c, next) => {
      c.set('principal', {
        account: c.req.header('x-test-account') ?? 'acme',
        role: (c.req.header('x-test-role') ?? 'read-only') as Principal['role'],
      })
      await next()
    })
    app.onError((error, c) => {
      const problem = toProblem(error)
      return c.json(problem, problem.status as 400)
    })
    app.route('/v1/notifications', createEndpointRoutes({ endpoints }))
  })
  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists the six endpoint types, all enabled at first', async () => {
    const response = await app.request('/v1/notifications/endpoints', {
      headers: as({ account: 'acme', role: 'read-only' }),
    })
    assert.equal(response.status, 200)
    const { items } = (await response.json()) as { items: { name: string; enabled: boolean }[] }
    assert.deepEqual(
      items.map((i) => i.name),
      ['slack', 'teams', 'email', 'webhook', 'github', 'jira'],
    )
    assert.ok(items.every((i) => i.enabled))
  })

  it('lets only an admin switch an endpoint type, and records it in the store', async () => {
    const put = (role: Principal['role'], enabled: unknown) =>
      app.request('/v1/notifications/endpoints/slack', {
        method: 'PUT',
        headers: {
          ...as({ account: role === 'admin' ? 'admin' : 'acme', role }),
          'content-type': 'application/json',
        },
        body: JSON.stringify({ enabled }),
      })
    assert.equal((await put('read-write', false)).status, 403)
    assert.equal((await put('admin', 'no')).status, 400)
    const response = await put('admin', false)
    assert.equal(response.status, 200)
    assert.deepEqual(await response.json(), { name: 'slack', enabled: false })
    const one = await app.request('/v1/notifications/endpoints/slack', {
      headers: as({ account: 'x', role: 'read-only' }),
    })
    assert.deepEqual(await one.json(), { name: 'slack', enabled: false })
    const history = await store.readStream('notification-endpoint-slack')
    assert.deepEqual(
      history.map((e) => e.type),
      ['EndpointDisabled'],
    )
    assert.equal(history[0]?.data.by, 'admin/admin')
  })

  it('refuses a switch with a field it does not know, changing nothing', async () => {
    const response = await app.request('/v1/notifications/endpoints/jira', {
      method: 'PUT',
      headers: { ...as({ account: 'admin', role: 'admin' }), 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: false, reason: 'maintenance' }),
    })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { errors: { path: string }[] }
    assert.deepEqual(
      problem.errors.map((e) => e.path),
      ['reason'],
    )
    assert.deepEqual(await store.readStream('notification-endpoint-jira'), [])
  })

  it('answers 404 for an unknown endpoint type', async () => {
    const response = await app.request('/v1/notifications/endpoints/pager', {
      headers: as({ account: 'a', role: 'admin' }),
    })
    assert.equal(response.status, 404)
  })
})
