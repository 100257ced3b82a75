import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { type Herald, startHerald } from '../../src/herald.ts'
import { silentLogger } from '../../src/observability/index.ts'
import { heraldApi } from '../support/herald-api.ts'

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
    herald = await startHerald(config, { logger: silentLogger })
    const admin = heraldApi(herald.url, ADMIN_TOKEN)
    acme = heraldApi(herald.url, await admin.issueToken('acme', 'read-write'))
  })
  after(async () => {
    await herald?.stop()
    rmSync(dir, { recursive: true, force: true })
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
})
