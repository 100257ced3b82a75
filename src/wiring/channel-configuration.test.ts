import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  type ConfigurationFailure,
  createDeliveryChannels,
  type DeliveryEngine,
  startDeliveryEngine,
} from '../../streams/delivery/index.ts'
import { deliveryIdFor, encodeDeliveryCommand } from '../../streams/routing/index.ts'
import { anEvent } from '../../streams/routing/test-fixtures.ts'
import { startWebhookReceiver } from '../../test/support/webhook-receiver.ts'
import { createSqliteEventLog } from '../adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel } from '../deliveries/index.ts'
import { createNotificationConfigService } from '../notifications/index.ts'
import { createOutboundGuard } from '../outbound/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import { deliverableConfiguration } from './channel-configuration.ts'

const acme = { account: 'acme', role: 'read-write' } as const
const OUTCOMES = 'notifications.outcomes'

it('delivers to a configuration whose secret no key decrypts as a failure of its own: retried, dead-lettered, counted toward disabling it, nothing sent', async () => {
  const hook = await startWebhookReceiver()
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const configurations = createSqliteEventStore({ path: ':memory:' })
  const store = createSqliteEventStore({ path: ':memory:' })
  const log = createSqliteEventLog({ path: ':memory:' })
  await log.createTopics([{ topic: OUTCOMES, partitions: 1 }])
  const view = createDeliveryReadModel({ path: ':memory:', newId: randomUUID })
  view.follow(store)
  let engine: DeliveryEngine | undefined
  try {
    const sealing = createNotificationConfigService({
      store: configurations,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
    })
    const { value } = await sealing.createConfiguration(acme, 'webhook', {
      fields: { url: hook.url, username: 'u', password: 'pw-sealed' },
      options: {},
    })
    // Herald started again with another key, the one that sealed them lost.
    const service = createNotificationConfigService({
      store: configurations,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
    })
    const stored = (await service.getConfiguration('acme', 'webhook', value.id)).value.configuration
    const failures: ConfigurationFailure[] = []
    engine = startDeliveryEngine({
      store,
      view,
      log,
      outcomesTopic: OUTCOMES,
      getConfiguration: (id) =>
        id === value.id ? deliverableConfiguration(service, stored, Date.now) : undefined,
      send: createDeliveryChannels({ guard }).send,
      uiUrl: null,
      timeoutMs: 1_000,
      logger: () => {},
      clock: Date.now,
      newId: randomUUID,
      random: () => 0.5,
      policy: { scheduleMs: [0, 40, 40], jitter: 0, maxRetryAfterMs: 60_000 },
      concurrency: 4,
      sustainedFailureMs: 50,
      onSustainedFailure: (failure) => failures.push(failure) > 0,
    })
    const event = anEvent({ id: 'e1' })
    const command = {
      deliveryId: deliveryIdFor(event, value.id),
      account: 'acme',
      endpoint: 'webhook' as const,
      configurationId: value.id,
      event,
      matchedSelectorIds: ['sel-1'],
      createdAt: '2026-11-22T10:00:00.000Z',
    }
    await engine.handler({
      topic: 'notifications.deliveries',
      partition: 0,
      messages: [
        {
          topic: 'notifications.deliveries',
          partition: 0,
          offset: 0,
          key: value.id,
          value: encodeDeliveryCommand(command).value,
          headers: {},
          timestamp: 0,
        },
      ],
    })
    const deadline = Date.now() + 5_000
    while (view.get(command.deliveryId)?.status !== 'dead_lettered') {
      if (Date.now() > deadline) assert.fail(`not dead-lettered: ${view.get(command.deliveryId)?.status}`)
      await sleep(10)
    }
    const attempts = view.attemptsOf(command.deliveryId)
    assert.deepEqual(
      attempts.map((a) => [a.outcome, a.code]),
      [
        ['failed', 'secret_undecryptable'],
        ['failed', 'secret_undecryptable'],
        ['failed', 'secret_undecryptable'],
        ['dead_lettered', 'secret_undecryptable'],
      ],
    )
    assert.match(attempts[0]?.error ?? '', /password, signing_secret cannot be decrypted/)
    assert.equal(hook.received.length, 0, 'nothing sent without its password')
    assert.equal(failures.length, 1, 'reported for disabling once failing for the whole period')
    assert.match(failures[0]?.lastError ?? '', /cannot be decrypted/)
  } finally {
    await engine?.stop(1_000)
    view.close()
    guard.close()
    await Promise.all([log.close(), store.close(), configurations.close(), hook.close()])
  }
})
