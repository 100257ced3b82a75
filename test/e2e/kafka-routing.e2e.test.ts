import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import kafkajs from 'kafkajs'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { binaryMessage as binary, structuredMessage as structured } from '../support/cloudevents-kafka.ts'
import { eventually } from '../support/eventually.ts'
import { heraldApi, type SelectorBody } from '../support/herald-api.ts'
import { HERALD_TOPICS, type HeraldOnKafka, startHeraldOnKafka } from '../support/herald-on-kafka.ts'
import { type Collector, collectTopic } from '../support/kafka-collector.ts'
import { startWebhookReceiver } from '../support/webhook-receiver.ts'

/**
 * Routing through Kafka, end to end: a real Herald process on the Kafka event log (the
 * librdkafka mock cluster), configured through its REST API, fed by a plain kafkajs producer
 * in both CloudEvents Kafka modes, and judged by an independent kafkajs consumer of
 * `notifications.deliveries` and `engine.events.dlq`. What should come out is worked out here,
 * from the selectors' documented meaning, with no Herald code.
 */

type Spec = SelectorBody & { readonly name: string }
interface ConfigurationSpec {
  readonly name: string
  readonly owner: 'acme' | 'globex' | 'admin'
  readonly selectors: readonly Spec[]
}

const sel = (name: string, scope: 'account' | 'global', level: string, type: string, resource_type: string) =>
  ({ name, scope, event: { level, type, resource_type } }) satisfies Spec

// Created in this order; the last selector is the one the readiness probe needs.
const CONFIGURATIONS: readonly ConfigurationSpec[] = [
  {
    name: 'acme-images',
    owner: 'acme',
    selectors: [
      sel('a1', 'account', '*', 'user.image.analysis.completed', '*'),
      // Overlaps a1 on purpose: an event both match is still one command.
      sel('a2', 'account', 'info', 'user.image.*', 'image_*'),
    ],
  },
  {
    name: 'acme-checks',
    owner: 'acme',
    selectors: [
      sel('a3', 'account', '*', 'user.checks.*', 'image_tag'),
      sel('a4', 'account', 'error', '*', '*'),
      sel('a5', 'account', 'warning', 'com.ibm.cloud.compliance.posture', '*'),
    ],
  },
  {
    name: 'globex-vulnerabilities',
    owner: 'globex',
    selectors: [
      sel('g1', 'account', '*', 'user.checks.tag.vulnerabilities.update', '*'),
      sel('g2', 'account', 'error', 'user.image.*', '*'),
    ],
  },
  {
    name: 'admin-feeds',
    owner: 'admin',
    selectors: [sel('x2', 'account', '*', 'system.feeds.sync.*', 'feed')],
  },
  {
    name: 'admin-global',
    owner: 'admin',
    selectors: [
      sel('x3', 'global', 'error', '*', '*'),
      sel('x1', 'global', '*', 'user.checks.tag.policy_evaluation.update', '*'),
    ],
  },
]

/** Anchore's wildcard: `*` is any run of characters, everything else literal. */
const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  )

/** The selectors' documented meaning, written independently of Herald's matcher. */
const selects = (spec: Spec, owner: string, event: EngineEvent): boolean =>
  (spec.scope === 'global' || event.account === owner) &&
  glob(spec.event.type).test(event.type) &&
  (spec.event.level === '*' || spec.event.level === event.level) &&
  (spec.event.resource_type === '*' ||
    (typeof event.resourcetype === 'string' && glob(spec.event.resource_type).test(event.resourcetype)))

// The README's formula, written out again: sha256 of account, source, event id, configuration id.
const deliveryIdOf = (event: Record<string, unknown>, configurationId: string) =>
  createHash('sha256')
    .update(
      `${String(event.account)}\u0000${String(event.source)}\u0000${String(event.id)}\u0000${configurationId}`,
    )
    .digest('hex')

interface Command {
  readonly deliveryId: string
  readonly account: string
  readonly endpoint: string
  readonly configurationId: string
  readonly event: Record<string, unknown>
  readonly matchedSelectorIds: readonly string[]
  readonly createdAt: string
}

describe('routing engine events from Kafka to notifications.deliveries, through a running Herald', () => {
  let rig: HeraldOnKafka
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>
  let producer: kafkajs.Producer
  let deliveries: Collector
  let deadLetters: Collector
  /** Configuration and selector names → their ids. */
  const ids = new Map<string, string>()
  /** Configuration id → the account that owns it. */
  const owners = new Map<string, string>()

  const events: EngineEvent[] = [
    ...generateActivity({
      seed: 'kafka-routing-e2e',
      accounts: ['acme', 'globex', 'initech'],
      count: 300,
      clock: () => Date.UTC(2026, 10, 22),
    }),
  ]
  const probeSource = events.find(
    (e) => e.account === 'initech' && e.type === 'user.checks.tag.policy_evaluation.update',
  ) as EngineEvent

  const commandsIn = (collector: Collector): Command[] =>
    collector.messages.map((m) => {
      assert.equal(m.headers['herald-type'], 'DeliveryCommand')
      assert.equal(m.headers['content-type'], 'application/json')
      const command = JSON.parse(m.value.toString('utf8')) as Command
      assert.equal(m.key, command.configurationId, 'keyed by configuration id')
      return command
    })

  before(async () => {
    receiver = await startWebhookReceiver(() => 204)
    rig = await startHeraldOnKafka({ env: { HERALD_LOG_LEVEL: 'info' } })
    const client = new kafkajs.Kafka({
      brokers: [...rig.brokers],
      clientId: 'e2e-producer',
      logLevel: kafkajs.logLevel.NOTHING,
    })
    // Murmur2 by key, as Kafka's own clients place messages; the mock has no controller for
    // an idempotent producer.
    producer = client.producer({
      createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
      idempotent: false,
      allowAutoTopicCreation: false,
    })
    await producer.connect()
    deliveries = await collectTopic({ brokers: rig.brokers, topic: HERALD_TOPICS.deliveries })
    deadLetters = await collectTopic({ brokers: rig.brokers, topic: HERALD_TOPICS.dlq })

    const admin = heraldApi(rig.herald.url, rig.adminToken)
    const apis = {
      admin,
      acme: heraldApi(rig.herald.url, await admin.issueToken('acme', 'read-write')),
      globex: heraldApi(rig.herald.url, await admin.issueToken('globex', 'read-write')),
    }
    // Global scope is the admin account's alone.
    const configuration = await apis.acme.createWebhook(receiver.url, 'refused global')
    const refused = await apis.acme.call(
      'POST',
      `/v1/notifications/endpoints/webhook/configurations/${configuration}/selectors`,
      sel('no', 'global', '*', '*', '*'),
    )
    assert.ok(refused.status >= 400 && refused.status < 500, refused.text)
    assert.equal(
      (await apis.acme.call('DELETE', `/v1/notifications/endpoints/webhook/configurations/${configuration}`))
        .status,
      204,
    )

    for (const spec of CONFIGURATIONS) {
      const api = apis[spec.owner]
      const id = await api.createWebhook(receiver.url, spec.name)
      ids.set(spec.name, id)
      owners.set(id, spec.owner)
      for (const selector of spec.selectors) {
        const { name: _, ...body } = selector
        ids.set(selector.name, await api.addSelector(id, body))
      }
    }
    await Promise.all([deliveries.joined, deadLetters.joined])

    // The router swaps in a new selector index after each change; once an event only the last
    // selector matches comes out, every earlier one is in the index too (an event routed
    // before that is simply not routed there, so the probe is repeated under a new id).
    const adminGlobal = ids.get('admin-global') as string
    let probes = 0
    await eventually(
      async () => {
        const probe = { ...probeSource, id: `probe-${probes++}` }
        await producer.send({ topic: HERALD_TOPICS.events, messages: [structured(probe)] })
        await eventually(
          () =>
            assert.ok(
              commandsIn(deliveries).some(
                (c) => String(c.event.id).startsWith('probe-') && c.configurationId === adminGlobal,
              ),
              `no probe routed yet; router: ${JSON.stringify(rig.herald.lines.filter((l) => String(l.event).startsWith('router.')).slice(-5))}`,
            ),
          { timeoutMs: 8_000, intervalMs: 100 },
        )
      },
      { timeoutMs: 90_000, intervalMs: 0 },
    )
  })

  after(async () => {
    await producer?.disconnect()
    await deliveries?.stop()
    await deadLetters?.stop()
    await rig?.stop()
    await receiver?.close()
  })

  /** Every (event, configuration) pair the selectors call for, with the selectors that matched. */
  const expectedCommands = () => {
    const expected = new Map<string, { event: EngineEvent; configurationId: string; selectorIds: string[] }>()
    for (const event of events) {
      for (const spec of CONFIGURATIONS) {
        const matched = spec.selectors.filter((s) => selects(s, spec.owner, event))
        if (matched.length === 0) continue
        const configurationId = ids.get(spec.name) as string
        expected.set(deliveryIdOf(event, configurationId), {
          event,
          configurationId,
          selectorIds: matched.map((s) => ids.get(s.name) as string).sort(),
        })
      }
    }
    return expected
  }

  it('routes both Kafka modes to exactly the configurations whose selectors match, once each; sets aside what is invalid without stopping its partition', async () => {
    // Poison pills first, under the key many valid events share: the events behind them in
    // that partition must still be routed.
    const unknownType = JSON.stringify({ ...events[0], id: 'pill-unknown', type: 'com.example.unknown' })
    const { data: _, ...attributes } = events[0] as EngineEvent
    const pills: kafkajs.Message[] = [
      {
        key: 'acme',
        value: Buffer.from('{"specversion":"1.0","id":'),
        headers: { 'content-type': 'application/cloudevents+json' },
      },
      { key: 'acme', value: unknownType, headers: { 'content-type': 'application/cloudevents+json' } },
      {
        key: 'acme',
        value: '{"digest":"sha256:00"}',
        headers: {
          ...Object.fromEntries(
            Object.entries(attributes)
              .filter(([name]) => name !== 'source' && name !== 'datacontenttype')
              .map(([name, value]) => [`ce_${name}`, String(value)]),
          ),
          'content-type': 'application/json',
        },
      },
    ]
    const [sent] = await producer.send({ topic: HERALD_TOPICS.events, messages: pills })
    assert.ok(sent)

    // Half in structured mode, half in binary mode, interleaved, a few sends.
    for (let i = 0; i < events.length; i += 50) {
      await producer.send({
        topic: HERALD_TOPICS.events,
        messages: events.slice(i, i + 50).map((e, j) => ((i + j) % 2 === 0 ? structured(e) : binary(e))),
      })
    }

    const expected = expectedCommands()
    const routed = () => commandsIn(deliveries).filter((c) => !String(c.event.id).startsWith('probe-'))
    await eventually(() => assert.equal(routed().length, expected.size), {
      timeoutMs: 60_000,
      intervalMs: 200,
    })
    // Anything extra or repeated would arrive within moments of the rest.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const commands = routed()
    assert.equal(commands.length, expected.size, 'no command repeated or unexpected')

    const published = new Map(events.map((e) => [e.id, e]))
    const seen = new Set<string>()
    for (const command of commands) {
      const want = expected.get(command.deliveryId)
      assert.ok(
        want,
        `unexpected command: event ${String(command.event.id)} (${String(command.event.type)}, ${String(command.event.account)}) to ${command.configurationId}`,
      )
      assert.ok(!seen.has(command.deliveryId), `command ${command.deliveryId} twice`)
      seen.add(command.deliveryId)
      assert.equal(command.deliveryId, deliveryIdOf(command.event, command.configurationId))
      assert.equal(command.configurationId, want.configurationId)
      assert.equal(command.account, owners.get(command.configurationId), 'the configuration owner')
      assert.equal(command.endpoint, 'webhook')
      assert.deepEqual(command.matchedSelectorIds, want.selectorIds)
      assert.ok(!Number.isNaN(Date.parse(command.createdAt)))
      const original = published.get(String(command.event.id)) as EngineEvent
      for (const field of [
        'id',
        'source',
        'type',
        'account',
        'subject',
        'time',
        'level',
        'resourcetype',
      ] as const)
        assert.equal(command.event[field], original[field], `event.${field}`)
      assert.deepEqual(command.event.data, original.data)
    }
    assert.equal(seen.size, expected.size)

    // The workload exercised every rule it claims to.
    const want = [...expected.values()]
    const configurationOf = (name: string) => ids.get(name) as string
    const routedTo = (name: string, account: string) =>
      want.filter((w) => w.configurationId === configurationOf(name) && w.event.account === account)
    assert.ok(
      want.some((w) => w.selectorIds.length > 1),
      'an event matched by two selectors of one configuration',
    )
    for (const account of ['acme', 'globex', 'initech'])
      assert.ok(routedTo('admin-global', account).length > 0, `a global selector matched ${account}'s event`)
    assert.ok(routedTo('admin-feeds', 'admin').length > 0, "the admin account's own events")
    assert.equal(
      routedTo('acme-images', 'globex').length + routedTo('globex-vulnerabilities', 'acme').length,
      0,
    )
    const unrouted = events.filter((e) => !want.some((w) => w.event.id === e.id))
    for (const account of ['acme', 'globex', 'initech', 'admin'])
      assert.ok(
        unrouted.some((e) => e.account === account),
        `a non-matching event of ${account}`,
      )
    assert.ok(
      events.some((e) => e.account === 'globex' && e.type === 'user.image.analysis.completed'),
      "globex's analysis events, which acme's account selectors must not take",
    )

    // Every pill is on the dead-letter topic, byte for byte, with its reason and origin.
    const letters = await eventually(
      () => {
        assert.equal(deadLetters.count(), pills.length)
        return [...deadLetters.messages].sort(
          (a, b) => Number(a.headers['herald.original.offset']) - Number(b.headers['herald.original.offset']),
        )
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    const codes = ['payload_undecodable', 'event_type_unknown', 'event_invalid']
    letters.forEach((letter, i) => {
      const pill = pills[i] as kafkajs.Message
      assert.equal(letter.key, 'acme')
      assert.deepEqual(letter.value, Buffer.from(pill.value as string | Buffer))
      assert.equal(
        letter.headers['herald.error.code'],
        codes[i],
        String(letter.headers['herald.error.message']),
      )
      assert.equal(letter.headers['herald.original.topic'], HERALD_TOPICS.events)
      assert.equal(Number(letter.headers['herald.original.partition']), sent.partition)
      assert.equal(Number(letter.headers['herald.original.offset']), Number(sent.baseOffset) + i)
      assert.equal(letter.headers['herald.dead_letter.group'], 'herald-router')
    })
    // Behind the pills, in their partition, the acme events were routed.
    assert.ok(routedTo('acme-images', 'acme').length > 0)
  })

  it('delivers every command to its webhook under the delivery id', async () => {
    const expected = new Set(expectedCommands().keys())
    const received = () =>
      new Set(receiver.received.map((r) => String(r.headers['webhook-id'])).filter((id) => expected.has(id)))
    await eventually(() => assert.equal(received().size, expected.size), {
      timeoutMs: 60_000,
      intervalMs: 200,
    })
  })
})
