import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'

/** An external authorizer that refuses everything and remembers what it was asked. */
const startDenyingAuthorizer = async () => {
  const asked: { action: string; request: { method: string; path: string } }[] = []
  const readBody = async (req: IncomingMessage) => {
    let text = ''
    for await (const chunk of req) text += chunk
    return JSON.parse(text) as (typeof asked)[number]
  }
  const server = createServer(async (req, res) => {
    asked.push(await readBody(req))
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"allowed":false}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/decide`,
    asked,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

// One route of every mount at least, with the action the external authorizer must be asked.
const ID = randomUUID()
const ROUTES: readonly { method: string; path: string; action: string; body?: string }[] = [
  { method: 'POST', path: '/v1/events', action: 'publishEvents', body: '{}' },
  { method: 'GET', path: '/v1/notifications/endpoints', action: 'listNotificationEndpoints' },
  {
    method: 'PUT',
    path: '/v1/notifications/endpoints/slack',
    action: 'updateNotificationEndpoint',
    body: '{}',
  },
  {
    method: 'GET',
    path: '/v1/notifications/endpoints/webhook/configurations',
    action: 'listNotificationEndpointConfigurations',
  },
  {
    method: 'GET',
    path: `/v1/notifications/endpoints/webhook/configurations/${ID}/selectors`,
    action: 'getNotificationEndpointConfiguration',
  },
  {
    method: 'POST',
    path: '/v1/notifications/endpoints/webhook/test',
    action: 'createNotificationEndpointConfiguration',
    body: '{}',
  },
  {
    method: 'POST',
    path: '/v1/notifications/selectors/preview',
    action: 'listNotificationEndpointConfigurations',
    body: '{}',
  },
  {
    method: 'GET',
    path: `/v1/notifications/events/${ID}/explain`,
    action: 'getNotificationEndpointConfiguration',
  },
  { method: 'GET', path: '/v1/notifications/deliveries', action: 'listNotificationDeliveries' },
  { method: 'POST', path: '/v1/notifications/deliveries/replay', action: 'replayNotificationDeliveries' },
  { method: 'POST', path: '/v1/test_event', action: 'publishEvents', body: '{}' },
  { method: 'GET', path: '/v1/auth/tokens', action: 'manageTokens' },
  { method: 'GET', path: '/v1/audit', action: 'readAudit' },
  {
    method: 'POST',
    path: '/v1/reports/graphql',
    action: 'listImages',
    body: '{"query":"{ metrics { id } }"}',
  },
  { method: 'GET', path: '/v1/reports/metrics', action: 'listImages' },
  { method: 'GET', path: '/v1/reports/metrics/images.all', action: 'listImages' },
  { method: 'GET', path: '/v1/reports/metrics/backfill', action: 'manageReports' },
  { method: 'GET', path: '/v1/reports/rebuild', action: 'manageReports' },
]

describe('an external authorizer decides every API request', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-authz-'))
  const adminToken = `admin-${randomUUID()}`
  let authorizer: Awaited<ReturnType<typeof startDenyingAuthorizer>>
  let herald: HeraldProcess

  before(async () => {
    authorizer = await startDenyingAuthorizer()
    herald = await startHeraldProcess({
      HERALD_DATA_DIR: dataDir,
      HERALD_ADMIN_TOKEN: adminToken,
      HERALD_AUTHORIZATION_HANDLER: 'external',
      HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT: authorizer.url,
    })
  })
  after(async () => {
    await herald?.stop()
    await authorizer?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('refuses an admin whatever the role table allows, having asked for the route’s action', async () => {
    for (const route of ROUTES) {
      const before = authorizer.asked.length
      const response = await fetch(`${herald.url}${route.path}`, {
        method: route.method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          'content-type': route.path === '/v1/events' ? 'application/cloudevents+json' : 'application/json',
        },
        ...(route.body === undefined ? {} : { body: route.body }),
      })
      const label = `${route.method} ${route.path}`
      assert.equal(response.status, 403, `${label}: ${await response.text()}`)
      assert.deepEqual(
        authorizer.asked.slice(before).map((a) => a.action),
        [route.action],
        label,
      )
      assert.deepEqual(authorizer.asked.at(-1)?.request, { method: route.method, path: route.path }, label)
    }
  })

  it('leaves the health, readiness and metrics probes to the operator’s network', async () => {
    const before = authorizer.asked.length
    for (const path of ['/health', '/ready', '/metrics'])
      assert.equal((await fetch(`${herald.url}${path}`)).status, 200, path)
    assert.equal(authorizer.asked.length, before)
  })
})
