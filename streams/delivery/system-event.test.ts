import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { decodeEngineEvent } from '../../src/events/index.ts'
import { createIngressDecoder } from '../../src/ingress/index.ts'
import type { LogFields } from '../../src/observability/index.ts'
import type { LogMessage } from '../../src/ports/index.ts'
import { eventually } from '../../test/support/eventually.ts'
import type { SustainedFailure } from './attempt.ts'
import {
  announceConfigurationDisabled,
  CONFIGURATION_DISABLED_TYPE,
  configurationDisabledEvent,
} from './system-event.ts'

const failure: SustainedFailure = {
  configurationId: '0b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
  account: 'acme',
  endpoint: 'slack',
  failingSince: Date.parse('2026-11-21T10:00:00Z'),
  lastError: 'HTTP 503',
}

const TOPIC = 'engine.events'

/**
 * Announces on a fresh embedded log, then reads back what reached the topic: everything ahead
 * of a sentinel published after it, so an announcement that published nothing is seen too.
 */
const announceOnLog = async (f: SustainedFailure, reason = 'sustained_failure') => {
  const log = createSqliteEventLog({ path: ':memory:', idlePollMs: 10 })
  try {
    await log.createTopics([{ topic: TOPIC, partitions: 1 }])
    const lines: { event: string; fields: LogFields }[] = []
    const published = await announceConfigurationDisabled({
      log,
      topic: TOPIC,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
      clock: () => Date.parse('2026-11-22T10:00:00Z'),
      newId: () => 'evt-2',
    })(f, reason)
    await log.publish(TOPIC, [{ key: 'admin', value: new TextEncoder().encode('sentinel') }])
    const received: LogMessage[] = []
    const consumer = await log.consume({ groupId: 'test', topics: [TOPIC] }, async (batch) => {
      received.push(...batch.messages)
    })
    try {
      await eventually(() => assert.equal(new TextDecoder().decode(received.at(-1)?.value), 'sentinel'))
    } finally {
      await consumer.stop()
    }
    return { published, received: received.slice(0, -1), lines }
  } finally {
    await log.close()
  }
}

describe('the configuration-disabled system event', () => {
  it('is a catalog event for the admin account, naming the configuration and why', () => {
    const event = configurationDisabledEvent(failure, {
      id: 'evt-1',
      now: Date.parse('2026-11-22T10:00:00Z'),
      reason: 'sustained_failure',
    })
    const decoded = decodeEngineEvent(event)
    assert.ok(decoded.ok, JSON.stringify(decoded))
    assert.equal(decoded.value.type, CONFIGURATION_DISABLED_TYPE)
    assert.equal(event.account, 'admin')
    assert.equal(event.level, 'error')
    assert.equal(event.resourcetype, 'notification_configuration')
    assert.equal(event.subject, failure.configurationId)
    assert.deepEqual(event.data, {
      configuration_id: failure.configurationId,
      account: 'acme',
      endpoint: 'slack',
      reason: 'sustained_failure',
      failing_since: '2026-11-21T10:00:00.000Z',
      last_error: 'HTTP 503',
    })
  })

  it('leaves out a missing or empty last error, and bounds a long one to what the catalog takes', () => {
    const at = { id: 'evt-1', now: Date.parse('2026-11-22T10:00:00Z'), reason: 'sustained_failure' }
    for (const lastError of [null, '']) {
      const event = configurationDisabledEvent({ ...failure, lastError }, at)
      assert.ok(!('last_error' in (event.data as object)))
      assert.ok(decodeEngineEvent(event).ok, String(lastError))
    }
    // Astral characters: the catalog counts code points, not UTF-16 units.
    for (const lastError of ['x'.repeat(5000), '\u{1F6A8}'.repeat(1000), '\u{1F6A8}'.repeat(1001)]) {
      const event = configurationDisabledEvent({ ...failure, lastError }, at)
      const decoded = decodeEngineEvent(event)
      assert.ok(decoded.ok, JSON.stringify(decoded).slice(0, 300))
      const kept = (event.data as { last_error: string }).last_error
      assert.ok([...kept].length <= 1000)
      assert.equal(kept === lastError, [...lastError].length <= 1000)
    }
  })

  it('is published to the engine events topic, where the router decodes it as a catalog event', async () => {
    const { published, received, lines } = await announceOnLog(failure)
    assert.equal(published, true)
    assert.deepEqual(lines, [])
    assert.equal(received.length, 1)
    assert.equal(received[0]?.key, 'admin')
    // The router's own decoder: structured mode, then the event contract.
    const [result] = await createIngressDecoder().decodeBatch(received)
    assert.ok(result?.ok, JSON.stringify(result))
    assert.equal(result.event.type, CONFIGURATION_DISABLED_TYPE)
    assert.equal(result.event.id, 'evt-2')
    assert.equal(result.event.time, '2026-11-22T10:00:00.000Z')
    assert.deepEqual(result.event.data, {
      configuration_id: failure.configurationId,
      account: 'acme',
      endpoint: 'slack',
      reason: 'sustained_failure',
      failing_since: '2026-11-21T10:00:00.000Z',
      last_error: 'HTTP 503',
    })
  })

  it('is not published when the catalog would refuse it, and the log says why', async () => {
    const { published, received, lines } = await announceOnLog({ ...failure, configurationId: 'cfg-1' })
    assert.equal(published, false)
    assert.equal(received.length, 0)
    assert.deepEqual(
      lines.map((l) => [l.event, l.fields.type, l.fields.configuration_id]),
      [['delivery.system_event_invalid', CONFIGURATION_DISABLED_TYPE, 'cfg-1']],
    )
    const issues = lines[0]?.fields.issues as { path: string }[]
    assert.deepEqual(
      issues.map((i) => i.path),
      ['data.configuration_id'],
    )
  })
})
