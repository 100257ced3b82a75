import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { type Herald, startHerald } from '../../src/herald.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { Lookup } from '../../src/outbound/index.ts'
import { eventually } from '../support/eventually.ts'
import { heraldApi } from '../support/herald-api.ts'
import { startWebhookReceiver } from '../support/webhook-receiver.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const BASE = '/v1/notifications/endpoints/webhook/configurations'
const SELECTOR = { scope: 'account', event: { level: '*', type: 'user.*', resource_type: '*' } } as const

/**
 * What one tenant of an embedded Herald (as `herald start` composes it) must not be able to do
 * to the others, through the real HTTP API.
 */
describe('the HTTP API of an embedded Herald, against a tenant’s abuse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-hardening-'))
  let herald: Herald
  let acme: ReturnType<typeof heraldApi>
  let acmeToken: string
  const logged: string[] = []
  const fieldsOf = new Map<string, unknown[]>()
  const logger: Logger = (_level, event, fields) => {
    logged.push(event)
    fieldsOf.set(event, [...(fieldsOf.get(event) ?? []), fields])
  }
  // Herald's resolver, as a network with internal names would answer.
  const lookup: Lookup = async (hostname) => {
    if (hostname === 'db.corp.internal') return [{ address: '10.0.0.5', family: 4 }]
    throw Object.assign(new Error(`no ${hostname}`), { code: 'ENOTFOUND' })
  }

  before(async () => {
    const config = loadConfig({
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_LISTEN: '127.0.0.1',
        HERALD_PORT: '0',
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
        HERALD_NOTIFICATIONS__LIMITS__SELECTORS_PER_CONFIGURATION: '3',
        HERALD_NOTIFICATIONS__LIMITS__CONFIGURATIONS_PER_ACCOUNT: '2',
      },
    })
    herald = await startHerald(config, { logger, lookup })
    const admin = heraldApi(herald.url, ADMIN_TOKEN)
    acmeToken = await admin.issueToken('acme', 'read-write')
    acme = heraldApi(herald.url, acmeToken)
  })
  after(async () => {
    await herald?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers a host name that does not exist as one that resolves to an internal address, so names cannot be probed', async () => {
    const existing = await acme.createWebhook('http://127.0.0.1:9/probe')
    const answers: Record<string, unknown>[] = []
    try {
      for (const host of ['db.corp.internal', 'nothing.corp.internal'])
        for (const [method, path, body] of [
          ['POST', BASE, { url: `http://${host}/` }],
          ['PUT', `${BASE}/${existing}`, { url: `http://${host}/` }],
          ['POST', '/v1/notifications/endpoints/webhook/test', { url: `http://${host}/` }],
        ] as const) {
          const answer = await acme.call(method, path, body)
          answers.push({ ...answer.json, instance: undefined, status: answer.status })
        }
    } finally {
      await acme.call('DELETE', `${BASE}/${existing}`)
    }
    assert.equal(new Set(answers.map((a) => JSON.stringify(a))).size, 1, JSON.stringify(answers))
    assert.deepEqual(
      [answers[0]?.status, answers[0]?.code, answers[0]?.detail],
      [422, 'outbound_blocked', "the URL's host does not resolve to an address Herald may reach"],
    )
    // The log tells them apart, without the address.
    const refusals = fieldsOf.get('outbound.target_refused') ?? []
    assert.deepEqual(refusals.slice(-6), [
      ...Array(3).fill({ reason: 'private', host: 'db.corp.internal', retriable: false }),
      ...Array(3).fill({ host: 'nothing.corp.internal', dnsCode: 'ENOTFOUND', retriable: true }),
    ])
  })

  it('caps the selectors of a configuration and the configurations of an account with 409 limit_reached, naming what is full', async () => {
    const first = await acme.createWebhook('http://127.0.0.1:9/first')
    const second = await acme.createWebhook('http://127.0.0.1:9/second')
    const third = await acme.call('POST', BASE, { url: 'http://127.0.0.1:9/third' })
    assert.equal(third.status, 409, third.text)
    assert.equal(third.json.code, 'limit_reached')
    assert.equal(third.json.instance, BASE)
    assert.deepEqual(
      (third.json.errors as { path: string }[]).map((e) => e.path),
      ['configurations'],
    )
    assert.match(String(third.json.detail), /notifications\.limits\.configurations_per_account/)

    const selectors = await Promise.all([1, 2, 3].map(() => acme.addSelector(first, SELECTOR)))
    const fourth = await acme.call('POST', `${BASE}/${first}/selectors`, SELECTOR)
    assert.equal(fourth.status, 409, fourth.text)
    assert.equal(fourth.json.code, 'limit_reached')
    assert.deepEqual(
      (fourth.json.errors as { path: string }[]).map((e) => e.path),
      ['selectors'],
    )
    assert.match(String(fourth.json.detail), /notifications\.limits\.selectors_per_configuration/)
    // The limit is the configuration's: another one of the account still takes selectors.
    await acme.addSelector(second, SELECTOR)

    // Removing makes room again.
    const removed = await acme.call('DELETE', `${BASE}/${first}/selectors/${selectors[0]}`)
    assert.equal(removed.status, 204, removed.text)
    await acme.addSelector(first, SELECTOR)
    const deleted = await acme.call('DELETE', `${BASE}/${second}`)
    assert.equal(deleted.status, 204, deleted.text)
    await acme.createWebhook('http://127.0.0.1:9/third')
  })

  it('refuses a body that is not UTF-8 on every JSON route, GraphQL too, naming (body), and a secret escaping half a surrogate pair, naming it', async () => {
    // A configuration POSTed in Latin-1: read as text, its password would be stored with U+FFFD.
    const latin1 = (text: string) => Buffer.from(text, 'latin1')
    const post = async (path: string, body: Buffer | string) => {
      const response = await fetch(`${herald.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body,
      })
      return { status: response.status, json: (await response.json()) as Record<string, unknown> }
    }
    const paths = (json: Record<string, unknown>) => (json.errors as { path: string }[]).map((e) => e.path)
    for (const [path, body] of [
      [BASE, '{"url":"http://127.0.0.1:9/latin1","username":"u","password":"p\u00e4ss-word"}'],
      ['/v1/reports/graphql', '{"query":"{ __typename }","variables":{"tag":"\u00e4"}}'],
      ['/v1/auth/tokens', '{"account":"acme","role":"read-only","description":"\u00e4"}'],
    ] as const) {
      const refused = await post(path, latin1(body))
      assert.equal(refused.status, 400, `${path}: ${JSON.stringify(refused.json)}`)
      assert.deepEqual(refused.json.errors, [{ path: '(body)', message: 'is not valid UTF-8' }], path)
    }

    const surrogate = await post(
      BASE,
      '{"url":"http://127.0.0.1:9/surrogate","username":"u","password":"p\\ud800x"}',
    )
    assert.equal(surrogate.status, 400, JSON.stringify(surrogate.json))
    assert.deepEqual(paths(surrogate.json), ['password'])
    const listed = await heraldApi(herald.url, ADMIN_TOKEN).call('GET', BASE)
    assert.ok(!listed.text.includes('127.0.0.1:9/latin1') && !listed.text.includes('/surrogate'), listed.text)
  })

  it('refuses an event of Herald’s own types or sources over HTTP with 403 naming them, for the admin too, while Herald’s own still reach a global selector', async () => {
    const receiver = await startWebhookReceiver()
    try {
      const admin = heraldApi(herald.url, ADMIN_TOKEN)
      const swaps = logged.filter((e) => e === 'router.index_swapped').length
      const configuration = await admin.createWebhook(receiver.url, 'everything, every account')
      await admin.addSelector(configuration, {
        scope: 'global',
        event: { level: '*', type: '*', resource_type: '*' },
      })
      await eventually(() =>
        assert.ok(logged.filter((e) => e === 'router.index_swapped').length > swaps, 'not swapped yet'),
      )

      const disabled = {
        specversion: '1.0',
        id: `spoof-${randomBytes(4).toString('hex')}`,
        source: '/herald/deliverer',
        type: 'system.notifications.configuration_disabled',
        subject: '7d9f4a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
        account: 'acme',
        level: 'error',
        resourcetype: 'notification_configuration',
        data: {
          configuration_id: '7d9f4a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
          account: 'globex',
          endpoint: 'webhook',
          reason: 'sustained_failure',
          failing_since: '2026-11-20T00:00:00.000Z',
        },
      }
      const test = {
        specversion: '1.0',
        id: `spoof-${randomBytes(4).toString('hex')}`,
        source: '/herald/notifications/test',
        type: 'com.ibm.cloud.compliance.test',
        account: 'acme',
        data: { action: 'test', summary: 'not from Herald' },
      }
      const publish = async (token: string, events: unknown[]) => {
        const response = await fetch(`${herald.url}/v1/events`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/cloudevents-batch+json',
          },
          body: JSON.stringify(events),
        })
        return { status: response.status, json: (await response.json()) as Record<string, unknown> }
      }
      const byAcme = await publish(acmeToken, [disabled, test])
      assert.equal(byAcme.status, 403, JSON.stringify(byAcme.json))
      assert.deepEqual(
        (byAcme.json.errors as { path: string }[]).map((e) => e.path),
        ['[0].type', '[0].source', '[1].source'],
      )
      const byAdmin = await publish(ADMIN_TOKEN, [{ ...disabled, account: 'admin' }])
      assert.equal(byAdmin.status, 403, JSON.stringify(byAdmin.json))
      assert.deepEqual(
        (byAdmin.json.errors as { path: string }[]).map((e) => e.path),
        ['[0].type', '[0].source'],
      )

      // Herald's own test event, from the same source, goes through the log to the global selector.
      const own = await acme.call('POST', '/v1/test_event')
      assert.equal(own.status, 202, own.text)
      await eventually(() => assert.ok(receiver.received.some((r) => r.body.includes(String(own.json.id)))))
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.deepEqual(
        receiver.received.filter((r) => r.body.includes('spoof-')).map((r) => r.body),
        [],
      )
    } finally {
      await receiver.close()
    }
  })
})
