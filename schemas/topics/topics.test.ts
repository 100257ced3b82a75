import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compileJsonSchema, heraldSubjects } from '../../src/ingress/index.ts'
import { encodeDeliveryCommand } from '../../streams/routing/index.ts'

const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
}
const validatorOf = (topic: string) => {
  const subject = heraldSubjects(TOPICS).find((s) => s.subject === `${topic}-value`)
  assert.ok(subject, topic)
  return compileJsonSchema(subject.schema.schema)
}
const parse = (bytes: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(bytes))

describe('downstream topic schemas', () => {
  it('accept what the router publishes to notifications.deliveries', () => {
    const validate = validatorOf(TOPICS.deliveries)
    const message = encodeDeliveryCommand({
      deliveryId: 'a'.repeat(64),
      account: 'acme',
      endpoint: 'webhook',
      configurationId: '0b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
      event: {
        specversion: '1.0',
        id: 'e1',
        source: '/engine',
        type: 'user.image.analysis.completed',
        account: 'acme',
        level: 'info',
        resourcetype: 'image_tag',
        data: { digest: 'sha256:ab' },
      },
      matchedSelectorIds: ['sel-1'],
      createdAt: '2026-11-22T10:00:00.000Z',
    })
    const value = parse(message.value) as Record<string, unknown>
    assert.ok(validate(value), JSON.stringify(validate.errors))
    assert.equal(validate({ ...value, deliveryId: 'short' }), false)
    assert.equal(validate({ ...value, event: { ...(value.event as object), account: '' } }), false)
    assert.equal(validate({ ...value, matchedSelectorIds: [] }), false)
    // The position of the selector set it was routed with is optional; when present, a count.
    assert.ok(validate({ ...value, selectorSetPosition: 4_096 }), JSON.stringify(validate.errors))
    assert.equal(validate({ ...value, selectorSetPosition: -1 }), false)
    assert.equal(validate({ ...value, selectorSetPosition: '4096' }), false)

    // A digest is the same command with `digest`; an older reader still finds every field it knows.
    const digest = {
      windowStart: '2026-11-22T10:00:00.000Z',
      windowEnd: '2026-11-22T10:00:30.000Z',
      total: 7,
      counts: [{ type: 'user.image.analysis.completed', level: 'info', count: 7 }],
      levels: [{ level: 'info', count: 7 }],
      events: [value.event],
    }
    assert.ok(validate({ ...value, digest }), JSON.stringify(validate.errors))
    assert.equal(validate({ ...value, digest: { ...digest, total: 0 } }), false)
    assert.equal(validate({ ...value, digest: { ...digest, events: [] } }), false)
    assert.equal(validate({ ...value, digest: { ...digest, levels: [{ level: 'fatal', count: 7 }] } }), false)
  })

  it('describe a delivery outcome and a metric data point', () => {
    const outcome = validatorOf(TOPICS.outcomes)
    const sent = {
      deliveryId: 'b'.repeat(64),
      account: 'acme',
      endpoint: 'slack',
      configurationId: 'cfg-1',
      eventId: 'e1',
      eventType: 'user.image.analysis.completed',
      outcome: 'sent',
      attempt: 1,
      status: 200,
      latencyMs: 41.5,
      at: '2026-11-22T10:00:01Z',
    }
    assert.ok(outcome(sent), JSON.stringify(outcome.errors))
    assert.equal(outcome({ ...sent, outcome: 'lost' }), false)
    assert.equal(outcome({ ...sent, attempt: 0 }), false)

    const metric = validatorOf(TOPICS.metrics)
    const point = {
      account: 'acme',
      metric: 'vulnerabilities.tags.current.critical',
      value: 12,
      collectedAt: '2026-11-22T10:00:00Z',
      interval: 3600,
    }
    assert.ok(metric(point), JSON.stringify(metric.errors))
    assert.equal(metric({ ...point, value: '12' }), false)
    assert.equal(metric({ ...point, collectedAt: 'today' }), false)
  })
})
