import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { filter, firstValueFrom } from 'rxjs'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { NotFoundError, ValidationError } from '../errors/index.ts'
import type { EventStore } from '../ports/index.ts'
import { SigningSecret } from './codecs.ts'
import { streamName } from './configuration.ts'
import { createNotificationConfigService, type NotificationConfigService } from './service.ts'

const pattern = { level: '*', type: 'user.checks.*', resource_type: '*' } as const

describe('createNotificationConfigService', () => {
  let store: EventStore
  let service: NotificationConfigService

  beforeEach(() => {
    store = createSqliteEventStore({ path: ':memory:' })
    service = createNotificationConfigService({
      store,
      clock: () => Date.UTC(2026, 10, 22),
      newId: randomUUID,
    })
  })
  afterEach(async () => {
    await store.close()
  })

  it('creates a configuration with a generated Standard Webhooks secret and records it as an event', async () => {
    const created = await service.createWebhookConfiguration('acme', {
      url: 'https://hooks.example.com/a',
      description: 'sec',
    })
    assert.ok(SigningSecret.is(created.signingSecret), created.signingSecret)
    assert.equal(created.enabled, true)
    assert.equal(created.description, 'sec')
    const events = await store.readStream(streamName(created.id))
    assert.deepEqual(
      events.map((e) => e.type),
      ['WebhookConfigurationCreated'],
    )
    assert.equal(events[0]?.data.createdAt, '2026-11-22T00:00:00.000Z')
  })

  it('keeps a signing secret that was given, and generates a different one each time otherwise', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
    const given = await service.createWebhookConfiguration('acme', {
      url: 'https://hooks.example.com/a',
      signingSecret: secret,
    })
    assert.equal(given.signingSecret, secret)
    const a = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    const b = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    assert.notEqual(a.signingSecret, b.signingSecret)
  })

  it('refuses invalid input with every bad field named', async () => {
    await assert.rejects(
      service.createWebhookConfiguration('acme', { url: 'not a url', signingSecret: 'secret' }),
      (error: unknown) => error instanceof ValidationError && error.issues.length === 2,
    )
  })

  it('adds selectors to the account\u2019s own configurations only', async () => {
    const created = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    const selector = await service.addSelector('acme', created.id, { scope: 'account', event: pattern })
    assert.equal(selector.configurationId, created.id)
    assert.deepEqual(selector.event, pattern)
    await assert.rejects(
      service.addSelector('globex', created.id, { scope: 'account', event: pattern }),
      NotFoundError,
    )
    await assert.rejects(
      service.addSelector('acme', randomUUID(), { scope: 'account', event: pattern }),
      NotFoundError,
    )
  })

  it('lets concurrent writers to one configuration all succeed', async () => {
    const created = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    const added = await Promise.all(
      ['a', 'b', 'c'].map((type) =>
        service.addSelector('acme', created.id, { scope: 'account', event: { ...pattern, type } }),
      ),
    )
    assert.equal(new Set(added.map((s) => s.id)).size, 3)
    assert.equal((await store.readStream(streamName(created.id))).length, 4)
  })

  it('lists the account\u2019s configurations without their secrets, including what it just wrote', async () => {
    const mine = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    await service.createWebhookConfiguration('globex', { url: 'https://hooks.example.com/b' })
    const listed = await service.listWebhookConfigurations('acme')
    assert.deepEqual(listed, [
      { id: mine.id, account: 'acme', url: 'https://hooks.example.com/a', enabled: true },
    ])
    assert.ok(!JSON.stringify(listed).includes('whsec_'))
  })

  it('keeps the read model live: a new selector appears in the next snapshot', async () => {
    const created = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
    const snapshots = service.selectors$()
    const withSelector = firstValueFrom(snapshots.pipe(filter((set) => set.selectors.size === 1)))
    const selector = await service.addSelector('acme', created.id, { scope: 'account', event: pattern })
    const set = await withSelector
    assert.deepEqual(set.selectors.get(selector.id), selector)
    assert.equal(set.configurations.get(created.id)?.signingSecret, created.signingSecret)
  })

  it('with readAll, starts from the whole history, then follows live changes', async () => {
    const sqlite = createSqliteEventStore({ path: ':memory:' })
    try {
      const writer = createNotificationConfigService({ store: sqlite, clock: Date.now, newId: randomUUID })
      // More than one page of the store's catch-up (500), so a partial first snapshot would show.
      for (let i = 0; i < 1_200; i++)
        await writer.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/a' })
      const reader = createNotificationConfigService({
        store: sqlite,
        clock: Date.now,
        newId: randomUUID,
        readAll: (options) => sqlite.readAll(options),
      })
      const snapshots = reader.selectors$()
      assert.equal((await firstValueFrom(snapshots)).configurations.size, 1_200)
      const more = firstValueFrom(snapshots.pipe(filter((set) => set.configurations.size === 1_201)))
      await writer.createWebhookConfiguration('acme', { url: 'https://hooks.example.com/b' })
      assert.equal((await more).configurations.size, 1_201)
    } finally {
      await sqlite.close()
    }
  })
})
