import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isDeepStrictEqual } from 'node:util'
import { filter, firstValueFrom } from 'rxjs'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import {
  LimitReachedError,
  NotFoundError,
  PreconditionFailedError,
  SecretRequiredError,
  UnavailableError,
  ValidationError,
} from '../errors/index.ts'
import type { EventStore } from '../ports/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import { SigningSecret } from './codecs.ts'
import { streamName } from './configuration.ts'
import type { Principal } from './model.ts'
import { createNotificationConfigService, type NotificationConfigService } from './service.ts'

const event = { level: '*', type: 'user.checks.*', resource_type: '*' } as const
const selector = { scope: 'account', event, pattern: null } as const
const acme: Principal = { account: 'acme', role: 'read-write' }
const globex: Principal = { account: 'globex', role: 'read-write' }
const NOW = Date.UTC(2026, 10, 22)

describe('createNotificationConfigService', () => {
  let store: EventStore
  let service: NotificationConfigService
  let now = NOW
  const box = createSecretBox({ current: randomBytes(32).toString('base64') })

  const serviceOn = (s: EventStore, readAll = false) =>
    createNotificationConfigService({
      store: s,
      box,
      clock: () => now,
      newId: randomUUID,
      ...(readAll ? { readAll: (options) => s.readAll(options) } : {}),
    })

  const webhook = (fields: Record<string, unknown> = {}) =>
    service.createConfiguration(acme, 'webhook', {
      fields: { url: 'https://hooks.example.com/a', ...fields },
      options: {},
    })

  beforeEach(() => {
    now = NOW
    store = createSqliteEventStore({ path: ':memory:' })
    service = serviceOn(store)
  })
  afterEach(async () => {
    await store.close()
  })

  it('creates a webhook configuration with a generated secret, returned once and stored sealed', async () => {
    const created = await webhook({ password: 'basic-pw' })
    const secret = created.generated.signing_secret
    assert.ok(SigningSecret.is(secret), 'a Standard Webhooks secret')
    assert.equal(created.value.enabled, true)
    assert.equal(created.revision, 0)
    const [stored] = await store.readStream(streamName(created.value.id))
    const raw = JSON.stringify(stored?.data)
    assert.ok(!raw.includes(secret ?? '') && !raw.includes('basic-pw'), 'no secret in plaintext in the store')
    assert.match(raw, /enc:v1:/)
    assert.equal(service.openSecret(created.value, 'signing_secret'), secret)
    assert.equal(service.openSecret(created.value, 'password'), 'basic-pw')
    assert.equal(service.webhookDelivery(created.value, now)?.signingSecret, secret)
  })

  it('keeps the origin of a secret URL as a hint, never its path', async () => {
    const created = await service.createConfiguration(acme, 'slack', {
      fields: { url: 'https://hooks.slack.com/services/T0/B0/sekrit' },
      options: {},
    })
    assert.deepEqual(created.value.hints, { url: 'https://hooks.slack.com' })
    assert.deepEqual(created.value.settings, {})
  })

  it('refuses an invalid secret before sealing it, naming the field without echoing the value', async () => {
    await assert.rejects(
      service.createConfiguration(acme, 'slack', { fields: { url: 'not a url canary-1' }, options: {} }),
      (error: unknown) =>
        error instanceof ValidationError &&
        error.issues.some((i) => i.path === 'url') &&
        !JSON.stringify([error.message, error.issues]).includes('canary-1'),
    )
  })

  it('names a bad secret, bad settings and bad options in one ValidationError', async () => {
    const issues = (error: unknown) =>
      error instanceof ValidationError ? error.issues.map((i) => i.path) : []
    const email = {
      fields: { smtp_host: 'smtp.example.com', from: 'nope', to: ['secops@acme.example'], password: '' },
      options: { description: 'x'.repeat(1025) },
    }
    await assert.rejects(service.createConfiguration(acme, 'email', email), (error: unknown) => {
      assert.deepEqual(issues(error).sort(), ['description', 'from', 'password'])
      return true
    })
    const { value } = await webhook()
    await assert.rejects(
      service.updateConfiguration(acme, 'webhook', value.id, {
        fields: { password: '', username: 5 },
        options: { digest_window_seconds: 0 },
      }),
      (error: unknown) => {
        assert.deepEqual(issues(error).sort(), ['digest_window_seconds', 'password', 'username'])
        return true
      },
    )
  })

  it('checks a create or an update as it would be decided, writing nothing', async () => {
    const { value } = await webhook()
    const before = await store.readAll({})
    const good = { fields: { url: 'https://hooks.example.com/b' }, options: { description: 'b' } }
    await service.checkConfiguration(acme, 'webhook', good)
    await service.checkConfiguration(acme, 'webhook', good, value.id)
    await assert.rejects(
      service.checkConfiguration(acme, 'webhook', { fields: { url: 'nope', username: 5 }, options: {} }),
      (error: unknown) =>
        error instanceof ValidationError &&
        isDeepStrictEqual(error.issues.map((i) => i.path).sort(), ['url', 'username']),
    )
    // An update is checked against what is stored: the required URL cannot be removed.
    await assert.rejects(
      service.checkConfiguration(acme, 'webhook', { fields: { url: null }, options: {} }, value.id),
      (error: unknown) => error instanceof ValidationError && error.issues.some((i) => i.path === 'url'),
    )
    await assert.rejects(service.checkConfiguration(globex, 'webhook', good, value.id), NotFoundError)
    await assert.rejects(service.checkConfiguration(acme, 'webhook', good, randomUUID()), NotFoundError)
    assert.deepEqual(await store.readAll({}), before)
  })

  it('updates fields it is given, keeps the rest and the secrets not sent again', async () => {
    const created = await webhook({ password: 'pw-1' })
    now += 1_000
    const updated = await service.updateConfiguration(acme, 'webhook', created.value.id, {
      fields: { username: 'bot' },
      options: { description: 'security team' },
    })
    assert.equal(updated.revision, 1)
    assert.equal(updated.value.settings.url, 'https://hooks.example.com/a')
    assert.equal(updated.value.settings.username, 'bot')
    assert.equal(updated.value.description, 'security team')
    assert.equal(service.openSecret(updated.value, 'password'), 'pw-1')
    // Sending the same secret again is not a change.
    const same = await service.updateConfiguration(acme, 'webhook', created.value.id, {
      fields: { password: 'pw-1' },
      options: {},
    })
    assert.equal(same.revision, 1)
    // null removes an optional field or secret.
    const cleared = await service.updateConfiguration(acme, 'webhook', created.value.id, {
      fields: { username: null, password: null },
      options: { description: null },
    })
    assert.equal(cleared.value.settings.username, undefined)
    assert.equal(cleared.value.secrets.password, undefined)
    assert.equal(cleared.value.description, null)
  })

  it('refuses an update that would send a stored secret to another server unless it gives the secret again', async () => {
    const created = await service.createConfiguration(acme, 'github', {
      fields: { owner: 'o', repository: 'r', token: 'ghp_stored' },
      options: {},
    })
    const redirect = { api_url: 'https://attacker.example.net/api/v3' }
    await assert.rejects(
      service.updateConfiguration(acme, 'github', created.value.id, { fields: redirect, options: {} }),
      (error) =>
        error instanceof SecretRequiredError &&
        /changing api_url requires token to be given again/.test(error.message) &&
        !error.message.includes('ghp_stored'),
    )
    const read = await service.getConfiguration('acme', 'github', created.value.id)
    assert.equal(read.revision, 0)
    const updated = await service.updateConfiguration(acme, 'github', created.value.id, {
      fields: { ...redirect, token: 'ghp_fresh' },
      options: {},
    })
    assert.equal(service.openSecret(updated.value, 'token'), 'ghp_fresh')
  })

  it('takes new values for secrets its keys can no longer decrypt, and refuses an update keeping one, naming each', async () => {
    const created = await webhook({ username: 'u', password: 'pw-old' })
    const github = await service.createConfiguration(acme, 'github', {
      fields: { owner: 'o', repository: 'r', token: 'ghp_old' },
      options: {},
    })
    // Started again with another key, the one that sealed them lost.
    const rekeyed = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: () => now,
      newId: randomUUID,
    })
    const read = await rekeyed.getConfiguration('acme', 'webhook', created.value.id)
    assert.deepEqual([...rekeyed.undecryptableSecrets(read.value.configuration)].sort(), [
      'password',
      'signing_secret',
    ])
    // A new token is taken without opening the old one.
    const token = await rekeyed.updateConfiguration(acme, 'github', github.value.id, {
      fields: { token: 'ghp_new' },
      options: {},
    })
    assert.equal(rekeyed.openSecret(token.value, 'token'), 'ghp_new')
    assert.deepEqual(rekeyed.undecryptableSecrets(token.value), [])
    // Keeping one that cannot be opened is refused, naming every such secret.
    for (const [fields, missing] of [
      [{}, ['password', 'signing_secret']],
      [{ password: 'pw-new' }, ['signing_secret']],
    ] as const) {
      await assert.rejects(
        rekeyed.updateConfiguration(acme, 'webhook', created.value.id, {
          fields,
          options: { description: 'x' },
        }),
        (error) =>
          error instanceof SecretRequiredError &&
          isDeepStrictEqual(
            error.issues.map((i) => i.path),
            missing,
          ) &&
          /cannot be decrypted/.test(error.message),
      )
    }
    const signing = `whsec_${randomBytes(32).toString('base64')}`
    const fixed = await rekeyed.updateConfiguration(acme, 'webhook', created.value.id, {
      fields: { password: 'pw-new', signing_secret: signing },
      options: {},
    })
    assert.equal(rekeyed.openSecret(fixed.value, 'password'), 'pw-new')
    // The replaced signing secret, which no key opens, signs nothing during its grace period.
    assert.equal(fixed.value.secrets.signing_secret?.previous?.length, 1)
    const delivery = rekeyed.webhookDelivery(fixed.value, now)
    assert.equal(delivery?.signingSecret, signing)
    assert.equal(delivery?.previousSigningSecrets, undefined)
    // Removing one is no keeping.
    const plain = await webhook({ username: 'u', password: 'pw' })
    await rekeyed.updateConfiguration(acme, 'webhook', plain.value.id, {
      fields: { username: null, password: null, signing_secret: signing },
      options: {},
    })
  })

  it('signs with every secret replaced in the last 24 h, each until its own 24 h are over, also once read back from the store', async () => {
    const created = await webhook()
    const id = created.value.id
    const first = created.generated.signing_secret
    const second = `whsec_${randomBytes(32).toString('base64')}`
    const third = `whsec_${randomBytes(32).toString('base64')}`
    now += 60_000
    const firstReplaced = now
    await service.updateConfiguration(acme, 'webhook', id, {
      fields: { signing_secret: second },
      options: {},
    })
    now += 60 * 60 * 1000
    const secondReplaced = now
    const rotated = await service.updateConfiguration(acme, 'webhook', id, {
      fields: { signing_secret: third },
      options: {},
    })
    const day = 24 * 60 * 60 * 1000
    const signing = (configuration: typeof rotated.value, at: number) => {
      const delivery = service.webhookDelivery(configuration, at)
      return [delivery?.signingSecret, ...(delivery?.previousSigningSecrets ?? [])]
    }
    assert.deepEqual(signing(rotated.value, now), [third, second, first])
    assert.deepEqual(signing(rotated.value, firstReplaced + day - 1), [third, second, first])
    assert.deepEqual(signing(rotated.value, firstReplaced + day), [third, second])
    assert.deepEqual(signing(rotated.value, secondReplaced + day), [third])

    // A service started on the stored history folds the same secrets, as the deliverer reads them.
    const reader = serviceOn(store, true)
    const set = await firstValueFrom(reader.selectors$())
    const stored = set.configurations.get(id)
    if (stored === undefined) assert.fail('the stored configuration is not read back')
    assert.deepEqual(signing(stored, now), [third, second, first])
  })

  it('refuses a rotation while 10 replaced signing secrets still sign, naming signing_secret and none of them', async () => {
    const created = await webhook()
    const id = created.value.id
    const secrets = [created.generated.signing_secret]
    for (let n = 0; n < 10; n++) {
      now += 60_000
      secrets.push(`whsec_${randomBytes(32).toString('base64')}`)
      await service.updateConfiguration(acme, 'webhook', id, {
        fields: { signing_secret: secrets.at(-1) },
        options: {},
      })
    }
    now += 60_000
    const eleventh = `whsec_${randomBytes(32).toString('base64')}`
    await assert.rejects(
      service.updateConfiguration(acme, 'webhook', id, { fields: { signing_secret: eleventh }, options: {} }),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError, String(error))
        assert.deepEqual(
          error.issues.map((i) => i.path),
          ['signing_secret'],
        )
        const shown = `${error.message} ${JSON.stringify(error.issues)} ${JSON.stringify(error.context)}`
        for (const secret of [...secrets, eleventh])
          assert.ok(!shown.includes(secret ?? ''), 'no secret in the error')
        return true
      },
    )
  })

  it('honours an expected revision: a stale one fails with PreconditionFailedError and writes nothing', async () => {
    const created = await webhook()
    const id = created.value.id
    await service.updateConfiguration(
      acme,
      'webhook',
      id,
      { fields: { username: 'a' }, options: {} },
      { expectedRevision: 0 },
    )
    await assert.rejects(
      service.updateConfiguration(
        acme,
        'webhook',
        id,
        { fields: { username: 'b' }, options: {} },
        { expectedRevision: 0 },
      ),
      PreconditionFailedError,
    )
    const { value, revision } = await service.getConfiguration('acme', 'webhook', id)
    assert.equal(revision, 1)
    assert.equal(value.configuration.settings.username, 'a')
  })

  it('answers an append lost to another instance with the revision it lost to, and retries one without If-Match before giving up with 503', async () => {
    const created = await webhook()
    const id = created.value.id
    // Another instance, on the same store, writes just before each of this one's appends.
    const other = serviceOn(store)
    let interpose: (() => Promise<unknown>) | undefined
    let appends = 0
    const racy: EventStore = Object.create(store, {
      append: {
        value: async (...args: Parameters<EventStore['append']>) => {
          appends++
          await interpose?.()
          return store.append(...args)
        },
      },
    })
    const racing = serviceOn(racy)
    const describe = (description: string) =>
      other.updateConfiguration(acme, 'webhook', id, { fields: {}, options: { description } })
    interpose = () => describe('by the other')
    const lost = await racing
      .updateConfiguration(
        acme,
        'webhook',
        id,
        { fields: {}, options: { description: 'mine' } },
        { expectedRevision: 0 },
      )
      .then(
        () => assert.fail('written over a change it did not see'),
        (error: unknown) => error,
      )
    assert.ok(lost instanceof PreconditionFailedError)
    assert.match(lost.message, /changed since revision 0 \(it is now at 1\)/)
    // Without If-Match: lost four times, it is decided again and written the fifth.
    let races = 0
    interpose = () => (++races <= 4 ? describe(`race ${races}`) : Promise.resolve())
    appends = 0
    const won = await racing.updateConfiguration(acme, 'webhook', id, {
      fields: {},
      options: { description: 'mine at last' },
    })
    assert.equal(won.value.description, 'mine at last')
    assert.equal(appends, 5)
    // Lost every time: a 503 to send again, naming no stream.
    interpose = () => describe(`race ${++races}`)
    const gaveUp = await racing
      .updateConfiguration(acme, 'webhook', id, { fields: {}, options: { description: 'never' } })
      .then(
        () => assert.fail('written'),
        (error: unknown) => error,
      )
    assert.ok(gaveUp instanceof UnavailableError, String(gaveUp))
    assert.equal(gaveUp.code, 'unavailable')
    assert.match(gaveUp.message, new RegExp(`configuration ${id} .*changed by another writer.*send it again`))
    assert.ok(!gaveUp.message.includes('notification-configuration-'), gaveUp.message)
  })

  it('disables a configuration on Herald\u2019s own account, once, visibly in its history', async () => {
    const created = await webhook()
    const id = created.value.id
    await service.disableConfiguration(id, 'endpoint_gone')
    await service.disableConfiguration(id, 'endpoint_gone')
    const { value, revision } = await service.getConfiguration('acme', 'webhook', id)
    assert.equal(value.configuration.enabled, false)
    assert.equal(revision, 1, 'the second call changed nothing')
    const events = await store.readStream(streamName(id))
    assert.equal(events[1]?.data.by, 'system/endpoint_gone')
    assert.deepEqual(events[1]?.data.changed, ['enabled'])
    await service.deleteConfiguration(acme, 'webhook', id)
    await assert.rejects(service.disableConfiguration(id, 'endpoint_gone'), NotFoundError)
  })

  it('leaves a configuration changed since the deciding attempt read it enabled: its owner may have just fixed it', async () => {
    const created = await webhook()
    const id = created.value.id
    const readByAttempt = Date.parse(created.value.updatedAt)
    now += 1_000
    await service.updateConfiguration(acme, 'webhook', id, {
      fields: { url: 'https://hooks.example.com/fixed' },
      options: {},
    })
    assert.equal(
      await service.disableConfiguration(id, 'endpoint_gone', { unchangedSince: readByAttempt }),
      false,
    )
    const kept = await service.getConfiguration('acme', 'webhook', id)
    assert.deepEqual([kept.value.configuration.enabled, kept.revision], [true, 1], 'nothing written')
    const current = Date.parse(kept.value.configuration.updatedAt)
    assert.equal(await service.disableConfiguration(id, 'endpoint_gone', { unchangedSince: current }), true)
    const disabled = await service.getConfiguration('acme', 'webhook', id)
    assert.equal(disabled.value.configuration.enabled, false)
  })

  it('keeps a disable for a failure unannounced in the live snapshot until it is marked announced, even after a fresh read', async () => {
    const created = await webhook()
    const id = created.value.id
    const unannounced = async (on: NotificationConfigService) => [
      ...(await firstValueFrom(on.selectors$())).unannounced.values(),
    ]
    await service.disableConfiguration(id, 'sustained_failure', {
      failure: { failingSince: NOW - 60_000, lastError: 'HTTP 503' },
    })
    const expected = {
      configurationId: id,
      account: 'acme',
      endpoint: 'webhook',
      revision: 1,
      at: new Date(NOW).toISOString(),
      reason: 'sustained_failure',
      failingSince: new Date(NOW - 60_000).toISOString(),
      lastError: 'HTTP 503',
    }
    assert.deepEqual(await unannounced(service), [expected])
    // What a restart reads: the whole history again.
    assert.deepEqual(await unannounced(serviceOn(store, true)), [expected])
    const [disable] = await unannounced(service)
    assert.ok(disable)
    await service.markAnnounced(disable)
    await service.markAnnounced(disable)
    assert.deepEqual(await unannounced(serviceOn(store, true)), [])
    assert.equal((await store.readStream('notification-announcements')).length, 1, 'recorded once')
    assert.equal(
      (await service.getConfiguration('acme', 'webhook', id)).revision,
      1,
      'its own stream untouched',
    )
  })

  it('leaves a disable without a failure, or one left alone, out of the unannounced', async () => {
    const created = await webhook()
    await service.disableConfiguration(created.value.id, 'endpoint_gone')
    const other = await webhook()
    now += 1_000
    await service.updateConfiguration(acme, 'webhook', other.value.id, {
      fields: {},
      options: { description: 'x' },
    })
    await service.disableConfiguration(other.value.id, 'endpoint_gone', {
      unchangedSince: NOW,
      failure: { failingSince: NOW, lastError: null },
    })
    assert.equal((await firstValueFrom(serviceOn(store, true).selectors$())).unannounced.size, 0)
  })

  it('hides another account\u2019s configuration, and one of another endpoint type, as not found', async () => {
    const created = await webhook()
    const id = created.value.id
    await assert.rejects(service.getConfiguration('globex', 'webhook', id), NotFoundError)
    await assert.rejects(service.getConfiguration('acme', 'slack', id), NotFoundError)
    await assert.rejects(
      service.updateConfiguration(globex, 'webhook', id, { fields: {}, options: {} }),
      NotFoundError,
    )
    await assert.rejects(service.deleteConfiguration(globex, 'webhook', id), NotFoundError)
    await assert.rejects(service.addSelector(globex, 'webhook', id, selector), NotFoundError)
  })

  it('adds many selectors to one configuration at once, every one of them: commands to one configuration take turns', async () => {
    const created = await webhook()
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => service.addSelector(acme, 'webhook', created.value.id, selector)),
    )
    assert.deepEqual(
      results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
      [],
    )
    assert.equal((await store.readStream(streamName(created.value.id))).length, 21)
  })

  it('reads a configuration with 10,000 selectors in time linear in its history: loading one is every request\u2019s first step', async () => {
    const created = await webhook()
    const id = created.value.id
    // Written straight to the stream, as a history from before selectors were capped.
    const added = Array.from({ length: 10_000 }, (_, i) => ({
      id: randomUUID(),
      type: 'SelectorAdded',
      data: {
        selectorId: randomUUID(),
        configurationId: id,
        account: 'acme',
        ...selector,
        event: { ...event, type: `user.checks.${i}` },
        by: 'acme/read-write',
        at: new Date(NOW).toISOString(),
      },
    }))
    // In appends of 1,000, each within what the store takes in one append.
    for (let i = 0; i < added.length; i += 1_000)
      await store.append(streamName(id), added.slice(i, i + 1_000), { expectedRevision: i })
    const started = performance.now()
    const read = await service.getConfiguration('acme', 'webhook', id)
    const ms = performance.now() - started
    assert.equal(read.value.selectors.length, 10_000)
    // Copying the selector map for each event took about 20 s here; one pass takes about 0.5 s.
    assert.ok(ms < 5_000, `read in ${Math.round(ms)} ms`)
  })

  it('reads only the events appended since it last read a configuration, asking the store every time', async () => {
    const read: number[] = []
    const counting: EventStore = {
      ...store,
      readStream: async (stream, o) => {
        const events = await store.readStream(stream, o)
        read.push(events.length)
        return events
      },
    }
    service = serviceOn(counting)
    const created = await webhook()
    const id = created.value.id
    for (let i = 0; i < 50; i++) await service.addSelector(acme, 'webhook', id, selector)
    assert.equal((await service.getConfiguration('acme', 'webhook', id)).revision, 50)
    read.length = 0
    assert.equal((await service.getConfiguration('acme', 'webhook', id)).revision, 50)
    // Another writer (another instance on the same store) appends twice.
    const other = serviceOn(store)
    await other.updateConfiguration(acme, 'webhook', id, {
      fields: {},
      options: { description: 'elsewhere' },
    })
    await other.addSelector(acme, 'webhook', id, selector)
    const after = await service.getConfiguration('acme', 'webhook', id)
    assert.equal(after.revision, 52)
    assert.equal(after.value.configuration.description, 'elsewhere')
    assert.equal(after.value.selectors.length, 51)
    // The event it had read last, then the ones appended since: none, then two.
    assert.deepEqual(read, [1, 3])
  })

  it('sees every change another process makes to a configuration it read before, its deletion too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-config-'))
    const [mine, theirs] = [0, 1].map(() => createSqliteEventStore({ path: join(dir, 'eventstore.sqlite') }))
    try {
      const here = serviceOn(mine as EventStore)
      const there = serviceOn(theirs as EventStore)
      const created = await here.createConfiguration(acme, 'webhook', {
        fields: { url: 'https://hooks.example.com/a' },
        options: {},
      })
      const id = created.value.id
      assert.equal((await here.getConfiguration('acme', 'webhook', id)).revision, 0)

      const added = await there.addSelector(acme, 'webhook', id, selector)
      const read = await here.getConfiguration('acme', 'webhook', id)
      assert.deepEqual([read.revision, read.value.selectors.map((s) => s.id)], [1, [added.value.id]])
      // A write on a revision this process read before the other's: refused with If-Match,
      // decided on the other's state without.
      await there.updateConfiguration(acme, 'webhook', id, { fields: {}, options: { description: 'theirs' } })
      await assert.rejects(
        here.updateConfiguration(
          acme,
          'webhook',
          id,
          { fields: {}, options: { enabled: false } },
          {
            expectedRevision: 1,
          },
        ),
        PreconditionFailedError,
      )
      const mineToo = await here.updateConfiguration(acme, 'webhook', id, {
        fields: {},
        options: { enabled: false },
      })
      assert.deepEqual(
        [mineToo.revision, mineToo.value.description, mineToo.value.enabled],
        [3, 'theirs', false],
      )

      await there.deleteConfiguration(acme, 'webhook', id)
      await assert.rejects(here.getConfiguration('acme', 'webhook', id), NotFoundError)
      await assert.rejects(here.addSelector(acme, 'webhook', id, selector), NotFoundError)
    } finally {
      await mine?.close()
      await theirs?.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('answers each of many reads racing writes with the state at the revision it names', async () => {
    const created = await webhook()
    const id = created.value.id
    const other = serviceOn(store)
    const descriptions = new Map<number, string | null>([[0, null]])
    const reads: Promise<{ revision: number; description: string | null }>[] = []
    for (let i = 1; i <= 30; i++) {
      const writing = (i % 2 === 0 ? service : other).updateConfiguration(acme, 'webhook', id, {
        fields: {},
        options: { description: `d${i}` },
      })
      for (let r = 0; r < 3; r++)
        reads.push(
          service
            .getConfiguration('acme', 'webhook', id)
            .then(({ value, revision }) => ({ revision, description: value.configuration.description })),
        )
      const { revision, value } = await writing
      descriptions.set(revision, value.description)
    }
    for (const { revision, description } of await Promise.all(reads))
      assert.equal(description, descriptions.get(revision), `revision ${revision}`)
    const last = await service.getConfiguration('acme', 'webhook', id)
    assert.deepEqual([last.revision, last.value.configuration.description], [30, 'd30'])
  })

  it('with limits, refuses a configuration past the account\u2019s and a selector past the configuration\u2019s, counting only the live ones of that account', async () => {
    service = createNotificationConfigService({
      store,
      box,
      clock: () => now,
      newId: randomUUID,
      limits: { selectorsPerConfiguration: 2, configurationsPerAccount: 2 },
    })
    const full = (path: string) => (error: unknown) =>
      error instanceof LimitReachedError &&
      isDeepStrictEqual(
        error.issues.map((i) => i.path),
        [path],
      )
    // Asked for together: creations of one account take turns, so they cannot pass it together.
    const created = await Promise.allSettled([webhook(), webhook(), webhook()])
    assert.deepEqual(
      created.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected'],
    )
    await assert.rejects(webhook(), full('configurations'))
    await service.createConfiguration(globex, 'webhook', {
      fields: { url: 'https://hooks.example.com/g' },
      options: {},
    })
    const [first] = created
    assert.ok(first?.status === 'fulfilled')
    const id = first.value.value.id
    await service.addSelector(acme, 'webhook', id, selector)
    const removed = await service.addSelector(acme, 'webhook', id, selector)
    await assert.rejects(service.addSelector(acme, 'webhook', id, selector), full('selectors'))
    await service.removeSelector(acme, 'webhook', id, removed.value.id)
    await service.addSelector(acme, 'webhook', id, selector)
    assert.equal((await service.getConfiguration('acme', 'webhook', id)).value.selectors.length, 2)
    await service.deleteConfiguration(acme, 'webhook', id)
    await webhook()
  })

  it('manages selectors and lists them per account', async () => {
    const created = await webhook()
    const id = created.value.id
    const added = await service.addSelector(acme, 'webhook', id, {
      ...selector,
      pattern: { source: [{ prefix: '/engine' }] },
    })
    assert.equal(added.revision, 1)
    assert.deepEqual(added.value.pattern, { source: [{ prefix: '/engine' }] })
    const updated = await service.updateSelector(acme, 'webhook', id, added.value.id, {
      ...selector,
      scope: 'account',
    })
    assert.equal(updated.value.pattern, null)
    assert.deepEqual(
      (await service.listSelectors('acme')).map((s) => s.id),
      [added.value.id],
    )
    assert.deepEqual(await service.listSelectors('globex'), [])
    await service.removeSelector(acme, 'webhook', id, added.value.id)
    assert.deepEqual(await service.listSelectors('acme'), [])
  })

  it('lists only the account\u2019s live configurations, of the endpoint type asked for', async () => {
    const a = await webhook()
    const b = await webhook()
    await service.createConfiguration(globex, 'webhook', {
      fields: { url: 'https://hooks.example.com/g' },
      options: {},
    })
    await service.deleteConfiguration(acme, 'webhook', b.value.id)
    assert.deepEqual(
      (await service.listConfigurations('acme', 'webhook')).map((c) => c.id),
      [a.value.id],
    )
    assert.deepEqual(await service.listConfigurations('acme', 'slack'), [])
  })

  it('keeps the read model live: changes and deletions appear in the next snapshots', async () => {
    const created = await webhook()
    const snapshots = service.selectors$()
    const withSelector = firstValueFrom(snapshots.pipe(filter((set) => set.selectors.size === 1)))
    const added = await service.addSelector(acme, 'webhook', created.value.id, selector)
    assert.deepEqual((await withSelector).selectors.get(added.value.id), added.value)
    const empty = firstValueFrom(snapshots.pipe(filter((set) => set.configurations.size === 0)))
    await service.deleteConfiguration(acme, 'webhook', created.value.id)
    assert.equal((await empty).selectors.size, 0, 'a deleted configuration takes its selectors along')
  })

  it('reads the history once for every listing, and follows its own writes and others\u2019 after, with nothing else subscribed', async () => {
    let reads = 0
    const reader = createNotificationConfigService({
      store,
      box,
      clock: () => now,
      newId: randomUUID,
      readAll: (options) => {
        reads++
        return store.readAll(options)
      },
    })
    try {
      await webhook()
      for (let i = 0; i < 3; i++) assert.equal((await reader.listConfigurations('acme')).length, 1)
      assert.equal(reads, 1, 'the history read once, then followed')
      // Its own write and another service's, each in the next listing, without reading it again.
      await reader.createConfiguration(acme, 'webhook', {
        fields: { url: 'https://hooks.example.com/b' },
        options: {},
      })
      assert.equal((await reader.listConfigurations('acme')).length, 2)
      await webhook()
      const deadline = Date.now() + 2_000
      while ((await reader.listConfigurations('acme')).length < 3) {
        if (Date.now() > deadline) assert.fail('another service\u2019s write never listed')
        await sleep(5)
      }
      assert.equal(reads, 1)
    } finally {
      reader.close()
    }
    // Closed, it follows nothing: a listing reads the history again.
    assert.equal((await reader.listConfigurations('acme')).length, 3)
    assert.equal(reads, 2)
    reader.close()
  })

  it('with readAll, starts from the whole history, then follows live changes', async () => {
    const sqlite = createSqliteEventStore({ path: ':memory:' })
    try {
      service = serviceOn(sqlite)
      // More than one page of the store's catch-up (500), so a partial first snapshot would show.
      for (let i = 0; i < 1_200; i++) await webhook()
      const reader = serviceOn(sqlite, true)
      const snapshots = reader.selectors$()
      assert.equal((await firstValueFrom(snapshots)).configurations.size, 1_200)
      const more = firstValueFrom(snapshots.pipe(filter((set) => set.configurations.size === 1_201)))
      await webhook()
      assert.equal((await more).configurations.size, 1_201)
    } finally {
      await sqlite.close()
    }
  })

  describe('resealSecrets', () => {
    const k1 = randomBytes(32).toString('base64')
    const k2 = randomBytes(32).toString('base64')
    const keyIds = (value: unknown) =>
      [...JSON.stringify(value).matchAll(/enc:v1:([0-9a-f]{8})/g)].map((m) => m[1])
    const onBox = (b: ReturnType<typeof createSecretBox>) =>
      createNotificationConfigService({ store, box: b, clock: () => now, newId: randomUUID })

    it('seals every secret again with the current key, replaced signing values too, once however many instances ask', async () => {
      const old = onBox(createSecretBox({ current: k1 }))
      const created = await old.createConfiguration(acme, 'webhook', {
        fields: { url: 'https://hooks.example.com/a', password: 'basic-pw' },
        options: {},
      })
      const id = created.value.id
      const first = created.generated.signing_secret
      now += 60_000
      const next = `whsec_${randomBytes(32).toString('base64')}`
      await old.updateConfiguration(acme, 'webhook', id, { fields: { signing_secret: next }, options: {} })
      const updatedAt = (await old.getConfiguration('acme', 'webhook', id)).value.configuration.updatedAt

      // Two instances with the new key current and the old one listed, starting together.
      const rotated = createSecretBox({ current: k2, previous: [k1] })
      const [a, b] = [onBox(rotated), onBox(rotated)]
      now += 60_000
      const results = await Promise.all([a.resealSecrets(id), b.resealSecrets(id)])
      const events = await store.readStream(streamName(id))
      assert.deepEqual(
        events.filter((e) => e.type === 'SecretsResealed').map((e) => e.data.by),
        ['system/reseal'],
      )
      assert.deepEqual(results.map((r) => r?.resealed.length).sort(), [0, 2])
      const { configuration } = (await a.getConfiguration('acme', 'webhook', id)).value
      assert.deepEqual([...new Set(keyIds(configuration.secrets))], [rotated.currentKeyId])
      assert.equal(configuration.updatedAt, updatedAt, 'the values did not change')
      assert.equal(a.openSecret(configuration, 'password'), 'basic-pw')
      const delivery = a.webhookDelivery(configuration, now)
      assert.deepEqual([delivery?.signingSecret, delivery?.previousSigningSecrets], [next, [first]])
      // The key that sealed the history is no longer needed to deliver.
      const newOnly = onBox(createSecretBox({ current: k2 }))
      assert.equal(newOnly.openSecret(configuration, 'password'), 'basic-pw')

      // Again: nothing left to re-seal, nothing stored.
      assert.deepEqual((await b.resealSecrets(id))?.resealed, [])
      assert.equal((await store.readStream(streamName(id))).length, events.length)
    })

    it('leaves a secret no known key opens as it is, naming it, and a deleted configuration alone', async () => {
      const lost = onBox(createSecretBox({ current: randomBytes(32).toString('base64') }))
      const created = await lost.createConfiguration(acme, 'webhook', {
        fields: { url: 'https://hooks.example.com/a', password: 'basic-pw' },
        options: {},
      })
      const id = created.value.id
      const known = onBox(createSecretBox({ current: k1 }))
      const result = await known.resealSecrets(id)
      assert.deepEqual(
        [result?.resealed, result?.undecryptable?.slice().sort()],
        [[], ['password', 'signing_secret']],
      )
      assert.deepEqual(result?.configuration.secrets, created.value.secrets)
      await known.deleteConfiguration(acme, 'webhook', id)
      assert.equal(await known.resealSecrets(id), undefined)
      assert.equal(await known.resealSecrets(randomUUID()), undefined)
    })
  })
})
