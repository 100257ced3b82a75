import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSqliteEventLog } from '../adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { compileJsonSchema, heraldSubjects } from '../ingress/index.ts'
import type { EventLog, LogMessage } from '../ports/index.ts'
import { createDeliveryLog } from './log.ts'
import { encodeOutcome, outcomeRecord, startOutcomePublisher } from './outcomes.ts'
import { type AttemptRow, createDeliveryReadModel } from './read-model.ts'

const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
}
const subject = heraldSubjects(TOPICS).find((s) => s.subject === 'notifications.outcomes-value')
assert.ok(subject)
const validate = compileJsonSchema(subject.schema.schema)

const row = (overrides: Partial<AttemptRow>): AttemptRow => ({
  position: 7,
  deliveryId: 'c'.repeat(64),
  account: 'acme',
  endpoint: 'slack',
  configurationId: 'cfg-1',
  eventId: 'e1',
  eventType: 'user.image.analysis.completed',
  attempt: 1,
  outcome: 'sent',
  status: 200,
  code: null,
  error: null,
  latencyMs: 41.5,
  at: Date.parse('2026-11-22T10:00:01Z'),
  nextAttemptAt: null,
  ...overrides,
})

/** A delivery log on an in-memory store, its read model following it, and an in-memory event log. */
const inMemory = () => {
  const store = createSqliteEventStore({ path: ':memory:' })
  const log = createSqliteEventLog({ path: ':memory:', idlePollMs: 20 })
  const view = createDeliveryReadModel({ path: ':memory:', newId: randomUUID })
  view.follow(store)
  const deliveries = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId })
  return { store, log, view, deliveries }
}

describe('delivery outcomes', () => {
  it('match the registered notifications.outcomes schema, whatever the outcome', () => {
    for (const r of [
      row({}),
      row({
        outcome: 'failed',
        status: 503,
        code: 'http_status',
        error: 'HTTP 503',
        nextAttemptAt: Date.now(),
      }),
      row({ outcome: 'failed', status: null, code: 'timeout', error: 'no answer within 15000 ms' }),
      row({ outcome: 'rejected', status: 400, code: 'http_status', error: 'HTTP 400: invalid_payload' }),
      row({
        outcome: 'skipped',
        status: null,
        code: 'skipped',
        error: 'configuration_disabled',
        latencyMs: null,
      }),
      row({ outcome: 'dead_lettered', attempt: 9, status: 502, code: 'http_status', error: 'HTTP 502' }),
    ]) {
      const record = outcomeRecord(r)
      assert.ok(validate(record), `${r.outcome}: ${JSON.stringify(validate.errors)}`)
      const message = encodeOutcome(r)
      assert.equal(message.key, 'cfg-1')
      assert.deepEqual(JSON.parse(new TextDecoder().decode(message.value)), record)
    }
    assert.deepEqual(
      outcomeRecord(row({ outcome: 'skipped', status: null, latencyMs: null })).status,
      undefined,
    )
  })

  it('are published from the read model, and kept until the log takes them', async () => {
    const { store, log, view, deliveries } = inMemory()
    const errors: unknown[] = []
    // The topic does not exist yet: the first tries fail, and nothing is lost.
    const publisher = startOutcomePublisher({
      view,
      log,
      topic: TOPICS.outcomes,
      retryMs: 20,
      onError: (e) => errors.push(e),
    })
    try {
      const request = {
        deliveryId: 'd'.repeat(64),
        account: 'acme',
        endpoint: 'webhook' as const,
        configurationId: 'cfg-1',
        event: { specversion: '1.0' as const, id: 'e1', source: '/engine', type: 't', account: 'acme' },
        matchedSelectorIds: ['s'],
        createdAt: new Date().toISOString(),
      }
      await view.waitFor(await deliveries.request(request))
      const stored = view.get(request.deliveryId)
      assert.ok(stored)
      const answer = { ok: true, status: 204, latencyMs: 3, code: null, error: null, response: 'ok' }
      await view.waitFor((await deliveries.record(stored, answer, { outcome: 'sent' })).position)
      await sleep(60)
      assert.ok(errors.length > 0)
      assert.equal(view.unpublished(10).length, 1)

      await log.createTopics([{ topic: TOPICS.outcomes, partitions: 1 }])
      const received: LogMessage[] = []
      const consumer = await log.consume({ groupId: 'test', topics: [TOPICS.outcomes] }, async (batch) => {
        received.push(...batch.messages)
      })
      for (let i = 0; i < 100 && received.length === 0; i++) await sleep(20)
      await consumer.stop()
      assert.equal(received.length, 1)
      const value = JSON.parse(new TextDecoder().decode(received[0]?.value)) as Record<string, unknown>
      assert.equal(value.outcome, 'sent')
      assert.equal(value.status, 204)
      assert.ok(validate(value))
      assert.equal(view.unpublished(10).length, 0)
    } finally {
      await publisher.stop()
      view.close()
      await log.close()
      await store.close()
    }
  })

  it('go out at once alone, and together when more follow within the linger', async () => {
    const { store, log, view, deliveries } = inMemory()
    await log.createTopics([{ topic: TOPICS.outcomes, partitions: 1 }])
    const publishes: number[] = []
    const counted: Pick<EventLog, 'publish'> = {
      publish: (topic, messages) => {
        publishes.push(messages.length)
        return log.publish(topic, messages)
      },
    }
    const publisher = startOutcomePublisher({ view, log: counted, topic: TOPICS.outcomes, lingerMs: 300 })
    const deliver = async (n: number) => {
      const deliveryId = n.toString(16).padStart(64, '0')
      await view.waitFor(
        await deliveries.request({
          deliveryId,
          account: 'acme',
          endpoint: 'webhook',
          configurationId: `cfg-${n}`,
          event: { specversion: '1.0', id: `e${n}`, source: '/engine', type: 't', account: 'acme' },
          matchedSelectorIds: ['s'],
          createdAt: new Date().toISOString(),
        }),
      )
      const stored = view.get(deliveryId)
      assert.ok(stored)
      const answer = { ok: true, status: 204, latencyMs: 3, code: null, error: null, response: 'ok' }
      await view.waitFor((await deliveries.record(stored, answer, { outcome: 'sent' })).position)
    }
    try {
      await deliver(1)
      for (let i = 0; i < 50 && publishes.length === 0; i++) await sleep(5)
      assert.deepEqual(publishes, [1], 'a lone outcome is not held back')
      await deliver(2)
      await deliver(3)
      assert.deepEqual(publishes, [1], 'outcomes within the linger wait for it')
      assert.equal(view.unpublished(10).length, 2)
      for (let i = 0; i < 100 && publishes.length < 2; i++) await sleep(10)
      assert.deepEqual(publishes, [1, 2])
      assert.equal(view.unpublished(10).length, 0)
    } finally {
      await publisher.stop()
      view.close()
      await log.close()
      await store.close()
    }
  })
})
