import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Hono } from 'hono'
import type { AppEnv, Principal } from '../../src/access/index.ts'
import { authorize, createExternalAuthorizer, toProblem } from '../../src/http/index.ts'

/** A real HTTP authorizer: allows what its rule allows, or misbehaves as told. */
const startAuthorizer = async () => {
  const received: unknown[] = []
  let mode: 'rule' | 'error' | 'slow' | 'garbage' = 'rule'
  const readBody = async (req: IncomingMessage) => {
    let text = ''
    for await (const chunk of req) text += chunk
    return JSON.parse(text) as { principal: Principal; action: string }
  }
  const server: Server = createServer(async (req, res) => {
    const body = await readBody(req)
    received.push(body)
    if (mode === 'error') res.writeHead(500).end('boom')
    else if (mode === 'slow') setTimeout(() => res.writeHead(200).end('{"allowed":true}'), 1_000)
    else if (mode === 'garbage') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}')
    else {
      // The rule: acme may only list; everyone else nothing.
      const allowed = body.principal.account === 'acme' && body.action === 'listNotificationEndpoints'
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ allowed }))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/decide`,
    received,
    setMode: (m: typeof mode) => {
      mode = m
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe('external authorizer', () => {
  let authorizer: Awaited<ReturnType<typeof startAuthorizer>>
  let app: Hono<AppEnv>

  before(async () => {
    authorizer = await startAuthorizer()
    const decide = createExternalAuthorizer({ endpoint: authorizer.url, timeoutMs: 300 })
    app = new Hono<AppEnv>()
    app.onError((error, c) => {
      const problem = toProblem(error)
      return c.json(problem, problem.status as 400)
    })
    app.use(async (c, next) => {
      c.set('principal', { account: c.req.header('x-account') ?? 'acme', role: 'admin' })
      c.set('authorizer', decide)
      await next()
    })
    app.get('/endpoints', authorize('listNotificationEndpoints'), (c) => c.json({ ok: true }))
    app.put('/endpoints', authorize('updateNotificationEndpoint'), (c) => c.json({ ok: true }))
  })
  after(async () => {
    await authorizer.close()
  })

  it('lets the authorizer decide, whatever the role table would say, and tells it who asks for what', async () => {
    authorizer.setMode('rule')
    assert.equal((await app.request('/endpoints')).status, 200)
    // An admin role, yet the authorizer says no.
    assert.equal((await app.request('/endpoints', { method: 'PUT' })).status, 403)
    assert.equal((await app.request('/endpoints', { headers: { 'x-account': 'globex' } })).status, 403)
    assert.deepEqual(authorizer.received[0], {
      principal: { account: 'acme', role: 'admin' },
      action: 'listNotificationEndpoints',
      request: { method: 'GET', path: '/endpoints' },
    })
  })

  it('fails closed with 503 when the authorizer errs, is slow or answers nonsense', async () => {
    for (const mode of ['error', 'slow', 'garbage'] as const) {
      authorizer.setMode(mode)
      const response = await app.request('/endpoints')
      assert.equal(response.status, 503, mode)
      const body = (await response.json()) as { code: string }
      assert.equal(body.code, 'unavailable')
    }
  })

  it('fails closed with 503 when the authorizer is unreachable', async () => {
    const unreachable = new Hono<AppEnv>()
    unreachable.onError((error, c) => c.json(toProblem(error), toProblem(error).status as 400))
    unreachable.use(async (c, next) => {
      c.set('principal', { account: 'acme', role: 'admin' })
      c.set('authorizer', createExternalAuthorizer({ endpoint: 'http://127.0.0.1:9/decide', timeoutMs: 300 }))
      await next()
    })
    unreachable.get('/endpoints', authorize('listNotificationEndpoints'), (c) => c.json({ ok: true }))
    assert.equal((await unreachable.request('/endpoints')).status, 503)
  })
})
