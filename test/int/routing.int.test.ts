import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Subscription } from 'rxjs'
import { validDataOf } from '../../schemas/fixtures.ts'
import { ACCOUNT_NAME_RULE } from '../../src/access/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore, type SqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel, type DeliveryReadModel } from '../../src/deliveries/index.ts'
import { type CloudEvent, encodeLogEvent } from '../../src/events/index.ts'
import {
  createNotificationConfigService,
  emptySelectorSet,
  type SelectorSet,
  type WebhookConfiguration,
} from '../../src/notifications/index.ts'
import type { LogFields, Logger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import type { Consumer, EventLog } from '../../src/ports/index.ts'
import { createSecretBox } from '../../src/secrets/index.ts'
import { toChannelConfiguration } from '../../src/wiring/channel-configuration.ts'
import {
  buildSelectorIndex,
  createDeliveryChannels,
  createRouterHandler,
  type DeliveryEngine,
  deliveryIdFor,
  emptySelectorIndex,
  type SelectorIndex,
  startDeliveryEngine,
  verifyWebhook,
} from '../../streams/index.ts'
import { eventually } from '../support/eventually.ts'
import { type ReceivedRequest, startWebhookReceiver } from '../support/webhook-receiver.ts'

const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
}

// Retries within milliseconds, so the test waits for no real schedule.
const FAST_RETRIES = { scheduleMs: [0, 20, 20], jitter: 0, maxRetryAfterMs: 1_000 }

const anEvent = (overrides: Partial<CloudEvent> = {}): CloudEvent => ({
  specversion: '1.0',
  id: `evt-${randomUUID()}`,
  source: '/engine/policy',
  type: 'user.checks.tag.policy_evaluation.update',
  account: 'acme',
  level: 'warning',
  resourcetype: 'tag',
  time: new Date().toISOString(),
  ...overrides,
  data: overrides.data ?? validDataOf(overrides.type ?? 'user.checks.tag.policy_evaluation.update'),
})

describe('routing: engine event → router → deliveries topic → delivery log → delivery queue → signed webhook', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-routing-'))
  let log: EventLog
  let store: SqliteEventStore
  let deliveryStore: SqliteEventStore
  let view: DeliveryReadModel
  let engine: DeliveryEngine | undefined
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>
  let respond: () => number = () => 204
  let configuration: WebhookConfiguration
  let latestSet: SelectorSet = emptySelectorSet
  let index: SelectorIndex = emptySelectorIndex
  let readModel: Subscription
  const consumers: Consumer[] = []
  // Deliveries go through the real channel layer and SSRF guard; the receiver is on loopback.
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const lines: { event: string; fields: LogFields }[] = []
  const logger: Logger = (_level, event, fields = {}) => lines.push({ event, fields })

  const requestsFor = (event: CloudEvent): ReceivedRequest[] =>
    receiver.received.filter((r) => r.headers['webhook-id'] === deliveryIdFor(event, configuration.id))

  /**
   * Waits for a later event to arrive: both topics are keyed so it shares the partitions of
   * what came before, and the configuration's queue sends in order, so by then every earlier
   * delivery was settled, and any duplicate would already have arrived.
   */
  const drain = async () => {
    const sentinel = anEvent()
    await log.publish(TOPICS.events, [encodeLogEvent(sentinel)])
    await eventually(() => assert.equal(requestsFor(sentinel).length, 1))
  }

  before(async () => {
    receiver = await startWebhookReceiver(() => respond())
    log = createSqliteEventLog({
      path: join(dir, 'eventlog.sqlite'),
      idlePollMs: 50,
      retryBackoffMs: { min: 20, max: 200 },
    })
    store = createSqliteEventStore({ path: join(dir, 'eventstore.sqlite') })
    // The delivery log in its own file beside the configuration store, as the embedded wiring keeps it.
    deliveryStore = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
    view = createDeliveryReadModel({ path: join(dir, 'deliveries-view.sqlite'), newId: randomUUID })
    view.follow(deliveryStore)
    await log.createTopics([
      { topic: TOPICS.events, partitions: 3 },
      { topic: TOPICS.deliveries, partitions: 3 },
      { topic: TOPICS.outcomes, partitions: 3 },
    ])

    const service = createNotificationConfigService({
      store,
      box: createSecretBox({ current: randomBytes(32).toString('base64') }),
      clock: Date.now,
      newId: randomUUID,
      // The first snapshot then holds the whole history, so no event is routed on a partial index.
      readAll: (options) => store.readAll(options),
    })
    const acme = { account: 'acme', role: 'read-write' } as const
    const created = await service.createConfiguration(acme, 'webhook', {
      fields: { url: receiver.url },
      options: { description: 'int test' },
    })
    const delivery = service.webhookDelivery(created.value, Date.now())
    assert.ok(delivery !== undefined)
    configuration = delivery
    // Two selectors of one configuration match the policy events: still one delivery each.
    await service.addSelector(acme, 'webhook', configuration.id, {
      scope: 'account',
      event: { level: '*', type: 'user.checks.*', resource_type: '*' },
      pattern: null,
    })
    await service.addSelector(acme, 'webhook', configuration.id, {
      scope: 'account',
      event: { level: 'warning', type: 'user.checks.tag.policy_evaluation.update', resource_type: 'tag' },
      pattern: null,
    })

    // What the composition root does: keep the latest snapshot and its index.
    readModel = service.selectors$().subscribe((set) => {
      latestSet = set
      index = buildSelectorIndex(set)
    })
    await eventually(() => assert.equal(index.size, 2))

    // The deliverer as the composition root wires it: its consumer records each command in the
    // delivery log (`createDeliveryRequestHandler`), its queues send from there.
    engine = startDeliveryEngine({
      store: deliveryStore,
      view,
      log,
      outcomesTopic: TOPICS.outcomes,
      getConfiguration: (id) => {
        const stored = latestSet.configurations.get(id)
        if (stored === undefined) return undefined
        const secrets = () => {
          const delivery = service.webhookDelivery(stored, Date.now())
          return delivery === undefined ? [] : [delivery.signingSecret]
        }
        return {
          enabled: stored.enabled,
          changedAt: Date.parse(stored.updatedAt),
          channel: toChannelConfiguration(stored, (field) => service.openSecret(stored, field), secrets),
        }
      },
      send: createDeliveryChannels({ guard, logger }).send,
      uiUrl: null,
      timeoutMs: 2_000,
      logger,
      clock: Date.now,
      newId: randomUUID,
      random: () => 0.5,
      policy: FAST_RETRIES,
    })
    consumers.push(
      await log.consume(
        { groupId: 'herald-router', topics: [TOPICS.events] },
        createRouterHandler({
          log,
          topics: { deliveries: TOPICS.deliveries },
          getIndex: () => index,
          clock: Date.now,
          logger,
        }),
      ),
      await log.consume({ groupId: 'herald-deliverer', topics: [TOPICS.deliveries] }, engine.handler),
    )
  })

  after(async () => {
    await Promise.all(consumers.map((c) => c.stop()))
    await engine?.stop(0)
    guard.close()
    readModel?.unsubscribe()
    view?.close()
    await deliveryStore?.close()
    await log?.close()
    await store?.close()
    await receiver?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('delivers a matching event exactly once, as a correctly signed Standard Webhooks POST', async () => {
    const event = anEvent()
    await log.publish(TOPICS.events, [encodeLogEvent(event)])

    const [request] = await eventually(() => {
      const requests = requestsFor(event)
      assert.equal(requests.length, 1)
      return requests
    })
    assert.ok(request)
    const { headers, body } = request
    assert.equal(headers['content-type'], 'application/json')
    assert.equal(headers['webhook-id'], deliveryIdFor(event, configuration.id))
    assert.ok(
      verifyWebhook({
        secret: configuration.signingSecret,
        id: String(headers['webhook-id']),
        timestamp: String(headers['webhook-timestamp']),
        body,
        signature: String(headers['webhook-signature']),
        nowSeconds: Math.floor(Date.now() / 1000),
      }),
      'signature verifies with the secret returned at creation',
    )
    assert.deepEqual(JSON.parse(body), { type: event.type, timestamp: event.time, data: event })

    await drain()
    assert.equal(requestsFor(event).length, 1)
    // Recorded once in the delivery log, with the selectors that matched it.
    const recorded = view.get(deliveryIdFor(event, configuration.id))
    assert.equal(recorded?.status, 'sent')
    assert.equal(recorded?.attempts, 1)
    assert.equal(recorded?.matchedSelectorIds.length, 2)
  })

  it('skips events no selector matches and messages that are not events, without blocking', async () => {
    const unmatched = anEvent({ type: 'system.feeds.sync.failed', level: 'error' })
    const otherAccount = anEvent({ account: 'globex' })
    // An account that is not an account name: refused like any invalid event, never routed.
    const misnamed = anEvent({ account: 'acme\u0000' })
    await log.publish(TOPICS.events, [
      encodeLogEvent(unmatched),
      { key: 'acme', value: new TextEncoder().encode('{"specversion":"0.3"}') },
      encodeLogEvent(otherAccount),
      encodeLogEvent(misnamed),
    ])
    await drain()
    assert.equal(requestsFor(unmatched).length, 0)
    assert.equal(requestsFor(otherAccount).length, 0)
    assert.equal(requestsFor(misnamed).length, 0)
    // The misnamed event is keyed by its own account, so it may sit in another partition than
    // the sentinel `drain` waited for: its refusal is waited for too.
    const refusals = () => lines.filter((l) => l.event === 'router.event_invalid').map((l) => l.fields)
    await eventually(() => assert.ok(refusals().length >= 2, JSON.stringify(refusals())))
    const invalid = refusals()
    assert.ok(
      invalid.some(
        (f) =>
          f.code === 'event_invalid' &&
          JSON.stringify(f.issues) === JSON.stringify([{ path: 'account', message: ACCOUNT_NAME_RULE }]),
      ),
      JSON.stringify(invalid),
    )
  })

  it('retries a delivery the endpoint refused with 503 until it succeeds, then never again', async () => {
    let failures = 2
    respond = () => (failures-- > 0 ? 503 : 204)
    try {
      const event = anEvent()
      await log.publish(TOPICS.events, [encodeLogEvent(event)])
      await eventually(() => assert.equal(requestsFor(event).length, 3))
      await drain()
      const requests = requestsFor(event)
      assert.equal(requests.length, 3, 'two refused attempts and one success')
      for (const r of requests) {
        assert.ok(
          verifyWebhook({
            secret: configuration.signingSecret,
            id: String(r.headers['webhook-id']),
            timestamp: String(r.headers['webhook-timestamp']),
            body: r.body,
            signature: String(r.headers['webhook-signature']),
          }),
        )
      }
      assert.ok(lines.some((l) => l.event === 'delivery.webhook.failed' && l.fields.status === 503))
      const id = deliveryIdFor(event, configuration.id)
      assert.deepEqual(
        view.attemptsOf(id).map((a) => [a.attempt, a.outcome, a.status]),
        [
          [1, 'failed', 503],
          [2, 'failed', 503],
          [3, 'sent', 204],
        ],
      )
      assert.equal(view.get(id)?.status, 'sent')
    } finally {
      respond = () => 204
    }
  })
})
