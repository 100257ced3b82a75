import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel, type DeliveryReadModel } from '../../src/deliveries/index.ts'
import type { EndpointConfiguration, SelectorSet } from '../../src/notifications/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import type { Consumer, EventLog } from '../../src/ports/index.ts'
import { deliverableConfiguration } from '../../src/wiring/channel-configuration.ts'
import {
  createDeliveryChannels,
  type DeliveryEngine,
  startDeliveryEngine,
} from '../../streams/delivery/index.ts'
import { encodeDeliveryCommand } from '../../streams/routing/index.ts'
import { eventually } from '../support/eventually.ts'
import { startHttpStandIn } from '../support/http-stand-in.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'
import {
  deliveryEngineDefaults,
  startWebhookConfigurations,
  type WebhookConfigurations,
  webhookCommand,
} from '../support/webhook-configurations.ts'

/** One deliverer instance: what it sent and skipped, by delivery id. */
interface Instance {
  readonly view: DeliveryReadModel
  readonly consumer: Consumer
  readonly engine: DeliveryEngine
  readonly sent: Set<string>
  readonly skipped: string[]
  /**
   * Set, the instance reads its configurations from this selector set rather than the live one:
   * its feed lags behind (or fails), as another instance's may.
   */
  held: SelectorSet | undefined
}

/**
 * Two deliverers sharing the work, as two Herald instances on Kafka do: one consumer group on
 * `notifications.deliveries`, one delivery log (here one SQLite store both open), each with its
 * own read model, which shows every delivery to both. Each configuration's queue is attempted
 * only by the instance that reads its partition, after the hand-over wait, so every delivery
 * reaches its endpoint once, also across the rebalance when the second instance joins.
 */
describe('deliverers sharing one delivery log', () => {
  const TOPIC = 'notifications.deliveries'
  const HANDOVER_MS = 1_000
  let dir: string
  let kafka: KafkaMock
  const arrivals = new Map<string, number>()
  // Paths the endpoint answers 503 on, as a failing endpoint would.
  const failing = new Set<string>()
  let endpoint: Awaited<ReturnType<typeof startHttpStandIn>>
  // Whatever a test started, closed last-first even when it fails.
  const cleanups: (() => Promise<void> | void)[] = []

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-delivery-sharing-'))
    kafka = await startKafkaMock()
    await kafka.createTopic(TOPIC, 4)
    await kafka.createTopic('notifications.outcomes', 4)
    endpoint = await startHttpStandIn((request) => {
      if (failing.has(request.path)) return { status: 503 }
      const id = String(request.headers['webhook-id'])
      arrivals.set(id, (arrivals.get(id) ?? 0) + 1)
      return { status: 204 }
    })
  })
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
    await endpoint?.close()
    await kafka?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  // The two instances of the first test, running on for the next.
  let hooks: WebhookConfigurations
  let instances: Instance[] = []
  let configurations: EndpointConfiguration[] = []
  let publisher: EventLog

  it('sends every delivery once, each queue from the instance that reads its partition', async () => {
    const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
    hooks = startWebhookConfigurations(join(dir, 'eventstore.sqlite'))
    cleanups.push(
      () => guard.close(),
      () => hooks.close(),
    )
    configurations = []
    for (let i = 0; i < 12; i++)
      configurations.push(
        await hooks.create({ account: 'acme', role: 'read-write' }, endpoint.url(`/hook/${i}`)),
      )
    const channels = createDeliveryChannels({ guard, logger: silentLogger })
    const startInstance = async (name: string): Promise<Instance> => {
      const sent = new Set<string>()
      const skipped: string[] = []
      const instance: { held: SelectorSet | undefined } = { held: undefined }
      const selectors = () => instance.held ?? hooks.selectors()
      const log = createKafkaEventLog(mockLogOptions(kafka.bootstrapServers))
      const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite'), pollIntervalMs: 20 })
      const view = createDeliveryReadModel({ path: join(dir, `view-${name}.sqlite`), newId: randomUUID })
      view.follow(store)
      let consumer: Consumer | undefined
      const engine = startDeliveryEngine({
        store,
        view,
        log,
        ...deliveryEngineDefaults,
        logger: (_level, event, fields = {}) => {
          if (event === 'delivery.webhook.skipped') skipped.push(String(fields.delivery_id))
        },
        getConfiguration: (id) => {
          const stored = selectors().configurations.get(id)
          return stored === undefined ? undefined : deliverableConfiguration(hooks.service, stored, Date.now)
        },
        snapshot: { position: () => selectors().position },
        send: (delivery, configuration, context) => {
          sent.add(delivery.deliveryId)
          return channels.send(delivery, configuration, context)
        },
        timeoutMs: HANDOVER_MS,
        queueOwnedFrom: (configurationId) => {
          const since = consumer?.holdsSince(TOPIC, configurationId)
          return since === undefined ? undefined : since + HANDOVER_MS
        },
      })
      consumer = await log.consume({ groupId: 'herald-deliverer', topics: [TOPIC] }, engine.handler)
      cleanups.push(async () => {
        await consumer?.stop()
        await engine.stop(1_000)
        view.close()
        await store.close()
        await log.close()
      })
      return Object.assign(instance, { view, consumer, sent, skipped, engine })
    }

    publisher = createKafkaEventLog(mockLogOptions(kafka.bootstrapServers))
    cleanups.push(() => publisher.close())
    const publishRound = async () => {
      const commands = configurations.flatMap((configuration) =>
        Array.from({ length: 3 }, () => webhookCommand(configuration)),
      )
      await publisher.publish(
        TOPIC,
        commands.map((c) => encodeDeliveryCommand(c)),
      )
      return commands.map((c) => c.deliveryId)
    }

    const one = await startInstance('one')
    const expected = await publishRound()
    // The first instance alone reads every partition and delivers the first round.
    await eventually(() => assert.equal(expected.filter((id) => arrivals.has(id)).length, expected.length), {
      timeoutMs: 30_000,
      intervalMs: 100,
    })
    // A second instance joins: the partitions are shared, then a second round goes out.
    const two = await startInstance('two')
    await eventually(
      () => {
        const holders = configurations.map((c) =>
          [one, two].filter((i) => i.consumer.holdsSince(TOPIC, c.id) !== undefined),
        )
        assert.ok(holders.every((h) => h.length === 1))
        assert.ok(holders.some((h) => h[0] === two))
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    expected.push(...(await publishRound()))
    await eventually(() => assert.equal(expected.filter((id) => arrivals.has(id)).length, expected.length), {
      timeoutMs: 30_000,
      intervalMs: 100,
    })
    // Both read models show every delivery settled; none went out twice, also after a while.
    await eventually(() => {
      for (const instance of [one, two]) {
        for (const id of expected) assert.equal(instance.view.get(id)?.status, 'sent', id)
      }
    })
    await sleep(HANDOVER_MS * 2)
    const twice = [...arrivals].filter(([, n]) => n > 1)
    assert.deepEqual(twice, [], 'no delivery reached its endpoint twice')
    // The work was shared: each instance sent some of the second round.
    assert.ok(two.sent.size > 0, 'the second instance delivered its share')
    assert.equal(one.sent.size + two.sent.size, expected.length)
    instances = [one, two]
  })

  it('settles a disabled configuration’s waiting queue at once, from the instance that serves it', async () => {
    assert.equal(instances.length, 2, 'the instances of the first test')
    const down = configurations.slice(0, 4)
    for (let i = 0; i < down.length; i++) failing.add(`/hook/${i}`)
    const commands = down.flatMap((configuration) =>
      Array.from({ length: 3 }, () => webhookCommand(configuration)),
    )
    await publisher.publish(
      TOPIC,
      commands.map((c) => encodeDeliveryCommand(c)),
    )
    const heads = down.map((configuration) => commands.find((c) => c.configurationId === configuration.id))
    // The default schedule: at once, 5 s, then 5 minutes. Each head waits for that last one.
    await eventually(
      () => {
        for (const head of heads) {
          const delivery = instances[0]?.view.get(head?.deliveryId ?? '')
          assert.equal(delivery?.attempts, 3)
          assert.ok((delivery?.nextAttemptAt ?? 0) > Date.now() + 60_000)
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    const sentBefore = instances.map((i) => i.sent.size)
    const disabledAt = Date.now()
    for (const configuration of down)
      await hooks.service.disableConfiguration(configuration.id, 'endpoint_gone')
    await eventually(() => {
      for (const configuration of down)
        assert.equal(hooks.selectors().configurations.get(configuration.id)?.enabled, false)
    })
    // As the wiring does from each instance's configuration feed: both are told.
    for (const instance of instances)
      for (const configuration of down) instance.engine.configurationDisabled(configuration.id)
    await eventually(
      () => {
        for (const instance of instances)
          for (const command of commands)
            assert.equal(instance.view.get(command.deliveryId)?.status, 'skipped')
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    )
    const settledInMs = Date.now() - disabledAt
    assert.ok(settledInMs < 3_000, `settled ${settledInMs} ms after the disable`)
    await sleep(HANDOVER_MS)
    // Each skipped once, by the instance that reads its configuration's partition; nothing sent.
    for (const command of commands) {
      const by = instances.filter((i) => i.skipped.includes(command.deliveryId))
      assert.equal(by.length, 1, command.deliveryId)
      assert.ok(by[0]?.consumer.holdsSince(TOPIC, command.configurationId) !== undefined)
      assert.deepEqual(
        instances[0]?.view.attemptsOf(command.deliveryId).map((a) => a.outcome),
        heads.includes(command) ? ['failed', 'failed', 'failed', 'skipped'] : ['skipped'],
      )
    }
    assert.deepEqual(
      instances.map((i) => i.sent.size),
      sentBefore,
    )
  })
  it('sends to a configuration created on another instance once the deliverer has read it, never skipping it', async () => {
    assert.equal(instances.length, 2, 'the instances of the first test')
    // Both deliverers' configurations lag: they still read the set from before the creation.
    const before = hooks.selectors()
    for (const instance of instances) instance.held = before
    const fresh = await hooks.create({ account: 'acme', role: 'read-write' }, endpoint.url('/hook/fresh'))
    const routedWith = hooks.selectors()
    assert.ok(routedWith.position > before.position)
    // The router of an instance that has read it routes an event to it, stamped with its set.
    const command = { ...webhookCommand(fresh), selectorSetPosition: routedWith.position }
    await publisher.publish(TOPIC, [encodeDeliveryCommand(command)])
    await sleep(1_000)
    for (const instance of instances) {
      assert.equal(instance.view.get(command.deliveryId), undefined, 'not recorded while behind')
      assert.deepEqual(
        instance.skipped.filter((id) => id === command.deliveryId),
        [],
      )
    }
    // The feeds catch up: recorded, and sent once.
    for (const instance of instances) instance.held = undefined
    await eventually(() => assert.equal(arrivals.get(command.deliveryId), 1), {
      timeoutMs: 20_000,
      intervalMs: 100,
    })
    await eventually(() => {
      for (const instance of instances) assert.equal(instance.view.get(command.deliveryId)?.status, 'sent')
    })
    assert.deepEqual(
      instances.flatMap((i) => i.skipped).filter((id) => id === command.deliveryId),
      [],
    )
  })
})
