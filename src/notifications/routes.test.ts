import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Hono } from 'hono'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { isHeraldError, isValidationError } from '../errors/index.ts'
import type { EventStore } from '../ports/index.ts'
import { SigningSecret } from './codecs.ts'
import type { NotificationsEnv, Principal } from './model.ts'
import { createNotificationRoutes } from './routes.ts'
import { createNotificationConfigService } from './service.ts'

const BASE = '/v1/notifications/endpoints/webhook/configurations'

/** Stands in for the lead's app: a principal per request, and errors rendered as code + issues. */
const appFor = (store: EventStore) => {
  const service = createNotificationConfigService({ store, clock: Date.now, newId: randomUUID })
  const app = new Hono<NotificationsEnv>()
  app.onError((error, c) =>
    c.json(
      {
        code: isHeraldError(error) ? error.code : 'internal',
        errors: isValidationError(error) ? error.issues : undefined,
      },
      isHeraldError(error) ? 400 : 500,
    ),
  )
  app.use(async (c, next) => {
    const header = c.req.header('x-principal')
    if (header !== undefined) c.set('principal', JSON.parse(header) as Principal)
    await next()
  })
  app.route('/v1/notifications', createNotificationRoutes({ service }))
  return app
}

describe('notification routes', () => {
  let store: EventStore
  let app: ReturnType<typeof appFor>

  const as = (principal: Principal | undefined, method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(principal === undefined ? {} : { 'x-principal': JSON.stringify(principal) }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
  const writer: Principal = { account: 'acme', role: 'read-write' }
  const reader: Principal = { account: 'acme', role: 'read-only' }
  const admin: Principal = { account: 'admin', role: 'admin' }
  const selectorBody = {
    scope: 'account',
    event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
  }

  beforeEach(() => {
    store = createSqliteEventStore({ path: ':memory:' })
    app = appFor(store)
  })
  afterEach(async () => {
    await store.close()
  })

  it('creates a configuration, showing its secret once, and lists it without', async () => {
    const res = await as(writer, 'POST', BASE, {
      url: 'https://hooks.example.com/a',
      description: 'sec team',
    })
    assert.equal(res.status, 201)
    const created = (await res.json()) as Record<string, unknown>
    assert.match(String(created.uuid), /^[0-9a-f-]{36}$/)
    assert.ok(SigningSecret.is(created.signing_secret))
    assert.deepEqual(
      { ...created, uuid: undefined, signing_secret: undefined },
      {
        uuid: undefined,
        signing_secret: undefined,
        url: 'https://hooks.example.com/a',
        description: 'sec team',
        enabled: true,
      },
    )

    const list = await as(reader, 'GET', BASE)
    assert.equal(list.status, 200)
    const text = await list.text()
    assert.ok(!text.includes('whsec_') && !text.includes('signing_secret'))
    assert.deepEqual(JSON.parse(text), {
      items: [
        { uuid: created.uuid, url: 'https://hooks.example.com/a', description: 'sec team', enabled: true },
      ],
    })
  })

  it('adds a selector to a configuration', async () => {
    const created = (await (
      await as(writer, 'POST', BASE, { url: 'https://hooks.example.com/a' })
    ).json()) as { uuid: string }
    const res = await as(writer, 'POST', `${BASE}/${created.uuid}/selectors`, selectorBody)
    assert.equal(res.status, 201)
    const selector = (await res.json()) as Record<string, unknown>
    assert.match(String(selector.uuid), /^[0-9a-f-]{36}$/)
    assert.equal(selector.configuration_uuid, created.uuid)
    assert.deepEqual(selector.event, selectorBody.event)
  })

  it('names every bad field of a body', async () => {
    const res = await as(writer, 'POST', BASE, { url: 'gopher://x', signing_secret: 'abc', description: 7 })
    assert.deepEqual(await res.json(), {
      code: 'validation_failed',
      errors: [
        { path: 'url', message: 'must be an http or https URL without credentials, at most 2048 characters' },
        { path: 'signing_secret', message: 'must be "whsec_" followed by the base64 of 24 to 64 bytes' },
        { path: 'description', message: 'must be a string' },
      ],
    })
    const created = (await (
      await as(writer, 'POST', BASE, { url: 'https://hooks.example.com/a' })
    ).json()) as { uuid: string }
    const bad = await as(writer, 'POST', `${BASE}/${created.uuid}/selectors`, {
      scope: 'account',
      event: { level: 'fatal' },
    })
    assert.deepEqual(
      ((await bad.json()) as { errors: { path: string }[] }).errors.map((e) => e.path),
      ['event.level', 'event.type', 'event.resource_type'],
    )
    const notJson = await as(writer, 'POST', BASE, '{url:')
    assert.deepEqual(
      ((await notJson.json()) as { errors: { path: string }[] }).errors.map((e) => e.path),
      ['(body)'],
    )
  })

  it('lets only read-write and admin tokens write, and only admins use global scope', async () => {
    assert.equal(
      (
        (await (await as(reader, 'POST', BASE, { url: 'https://hooks.example.com/a' })).json()) as {
          code: string
        }
      ).code,
      'forbidden',
    )
    assert.equal(((await (await as(undefined, 'GET', BASE)).json()) as { code: string }).code, 'unauthorized')

    const mine = (await (await as(writer, 'POST', BASE, { url: 'https://hooks.example.com/a' })).json()) as {
      uuid: string
    }
    const global = { ...selectorBody, scope: 'global' }
    assert.equal(
      (
        (await (await as(writer, 'POST', `${BASE}/${mine.uuid}/selectors`, global)).json()) as {
          code: string
        }
      ).code,
      'forbidden',
    )

    const admins = (await (await as(admin, 'POST', BASE, { url: 'https://hooks.example.com/b' })).json()) as {
      uuid: string
    }
    assert.equal((await as(admin, 'POST', `${BASE}/${admins.uuid}/selectors`, global)).status, 201)
  })

  it('does not let one account see or touch another\u2019s configurations', async () => {
    const mine = (await (await as(writer, 'POST', BASE, { url: 'https://hooks.example.com/a' })).json()) as {
      uuid: string
    }
    const other: Principal = { account: 'globex', role: 'read-write' }
    assert.deepEqual(await (await as(other, 'GET', BASE)).json(), { items: [] })
    const res = await as(other, 'POST', `${BASE}/${mine.uuid}/selectors`, selectorBody)
    assert.equal(((await res.json()) as { code: string }).code, 'not_found')
    const malformed = await as(writer, 'POST', `${BASE}/not-a-uuid/selectors`, selectorBody)
    assert.equal(((await malformed.json()) as { code: string }).code, 'not_found')
  })
})
