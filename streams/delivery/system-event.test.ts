import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { UnavailableError } from '../../src/errors/index.ts'
import { decodeEngineEvent } from '../../src/events/index.ts'
import { createIngressDecoder } from '../../src/ingress/index.ts'
import type { UnannouncedDisable } from '../../src/notifications/index.ts'
import type { LogFields } from '../../src/observability/index.ts'
import type { EventLog, LogMessage } from '../../src/ports/index.ts'
import { eventually } from '../../test/support/eventually.ts'
import {
  CONFIGURATION_DISABLED_TYPE,
  configurationDisabledEvent,
  disabledEventId,
  startDisableAnnouncer,
} from './system-event.ts'

const disable: UnannouncedDisable = {
  configurationId: '0b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
  account: 'acme',
  endpoint: 'slack',
  revision: 3,
  at: '2026-11-22T10:00:00.000Z',
  reason: 'sustained_failure',
  failingSince: '2026-11-21T10:00:00.000Z',
  lastError: 'HTTP 503',
}

const TOPIC = 'engine.events'

const keyed = (...disables: UnannouncedDisable[]) =>
  new Map(disables.map((d) => [`${d.configurationId}@${d.revision}`, d]))

/**
 * An announcer on a fresh embedded log whose publish fails `failing` times first (tried again
 * after `retryMs`); `read()`
 * returns what reached the topic, everything ahead of a sentinel published after it.
 */
const onLog = async (failing = 0, retryMs = { min: 20, max: 40 }) => {
  const real = createSqliteEventLog({ path: ':memory:', idlePollMs: 10 })
  await real.createTopics([{ topic: TOPIC, partitions: 1 }])
  let faults = failing
  const log: Pick<EventLog, 'publish'> = {
    publish: async (topic, messages) => {
      if (faults-- > 0) throw new UnavailableError('the log is unreachable')
      return real.publish(topic, messages)
    },
  }
  const lines: { event: string; fields: LogFields }[] = []
  const marked: UnannouncedDisable[] = []
  const announcer = startDisableAnnouncer({
    log,
    topic: TOPIC,
    markAnnounced: async (d) => {
      marked.push(d)
    },
    logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    retryMs,
  })
  const read = async () => {
    await real.publish(TOPIC, [{ key: 'admin', value: new TextEncoder().encode('sentinel') }])
    const received: LogMessage[] = []
    const consumer = await real.consume(
      { groupId: `test-${Math.random()}`, topics: [TOPIC] },
      async (batch) => {
        received.push(...batch.messages)
      },
    )
    try {
      await eventually(() => assert.equal(new TextDecoder().decode(received.at(-1)?.value), 'sentinel'))
    } finally {
      await consumer.stop()
    }
    return received.filter((m) => new TextDecoder().decode(m.value) !== 'sentinel')
  }
  const close = async () => {
    await announcer.stop()
    await real.close()
  }
  return { announcer, lines, marked, read, close }
}

describe('the configuration-disabled system event', () => {
  it('is a catalog event for the admin account, naming the configuration and why, the same for the same disable', () => {
    const event = configurationDisabledEvent(disable)
    const decoded = decodeEngineEvent(event)
    assert.ok(decoded.ok, JSON.stringify(decoded))
    assert.equal(decoded.value.type, CONFIGURATION_DISABLED_TYPE)
    assert.equal(event.id, `configuration-disabled-${disable.configurationId}-3`)
    assert.equal(event.time, disable.at)
    assert.equal(event.account, 'admin')
    assert.equal(event.level, 'error')
    assert.equal(event.resourcetype, 'notification_configuration')
    assert.equal(event.subject, disable.configurationId)
    assert.deepEqual(event.data, {
      configuration_id: disable.configurationId,
      account: 'acme',
      endpoint: 'slack',
      reason: 'sustained_failure',
      failing_since: '2026-11-21T10:00:00.000Z',
      last_error: 'HTTP 503',
    })
    assert.deepEqual(configurationDisabledEvent({ ...disable }), event)
    assert.notEqual(configurationDisabledEvent({ ...disable, revision: 7 }).id, event.id)
  })

  it('leaves out a missing or empty last error, and bounds a long one to what the catalog takes', () => {
    for (const lastError of [null, '']) {
      const event = configurationDisabledEvent({ ...disable, lastError })
      assert.ok(!('last_error' in (event.data as object)))
      assert.ok(decodeEngineEvent(event).ok, String(lastError))
    }
    // Astral characters: the catalog counts code points, not UTF-16 units.
    for (const lastError of ['x'.repeat(5000), '\u{1F6A8}'.repeat(1000), '\u{1F6A8}'.repeat(1001)]) {
      const event = configurationDisabledEvent({ ...disable, lastError })
      const decoded = decodeEngineEvent(event)
      assert.ok(decoded.ok, JSON.stringify(decoded).slice(0, 300))
      const kept = (event.data as { last_error: string }).last_error
      assert.ok([...kept].length <= 1000)
      assert.equal(kept === lastError, [...lastError].length <= 1000)
    }
  })
})

describe('startDisableAnnouncer', () => {
  it('publishes each disable to the engine events topic, where the router decodes it, then records it announced', async () => {
    const world = await onLog()
    try {
      const gone = {
        ...disable,
        configurationId: '1b0c7f3e-1b2a-4c5d-9e8f-123456789abc',
        reason: 'endpoint_gone',
      }
      world.announcer.announce(keyed(disable, gone))
      await eventually(() => assert.equal(world.marked.length, 2))
      const received = await world.read()
      assert.deepEqual(
        received.map((m) => m.key),
        ['admin', 'admin'],
      )
      // The router's own decoder: structured mode, then the event contract.
      const results = await createIngressDecoder().decodeBatch(received)
      assert.deepEqual(
        results.map((r) => (r.ok ? [r.event.id, (r.event.data as { reason: string }).reason] : r)),
        [
          [disabledEventId(disable.configurationId, 3), 'sustained_failure'],
          [disabledEventId(gone.configurationId, 3), 'endpoint_gone'],
        ],
      )
    } finally {
      await world.close()
    }
  })

  it('tries a failed publish again, after a wait, until it passes', async () => {
    const world = await onLog(2)
    try {
      world.announcer.announce(keyed(disable))
      await eventually(() => assert.equal(world.marked.length, 1))
      assert.equal((await world.read()).length, 1)
      assert.deepEqual(
        world.lines
          .filter((l) => l.event === 'delivery.system_event_failed')
          .map((l) => [l.fields.attempt, l.fields.retry_in_ms, l.fields.configuration_id]),
        [
          [1, 20, disable.configurationId],
          [2, 40, disable.configurationId],
        ],
      )
    } finally {
      await world.close()
    }
  })

  it('announces a disable once while later lists still hold it, its record not folded in yet', async () => {
    const world = await onLog()
    try {
      world.announcer.announce(keyed(disable))
      await eventually(() => assert.equal(world.marked.length, 1))
      world.announcer.announce(keyed(disable))
      await sleep(50)
      assert.equal(world.marked.length, 1)
      assert.equal((await world.read()).length, 1)
    } finally {
      await world.close()
    }
  })

  it('records a disable the catalog would refuse without publishing it, and the log says why', async () => {
    const world = await onLog()
    try {
      world.announcer.announce(keyed({ ...disable, configurationId: 'cfg-1' }))
      await eventually(() => assert.equal(world.marked.length, 1))
      assert.equal((await world.read()).length, 0)
      const invalid = world.lines.filter((l) => l.event === 'delivery.system_event_invalid')
      assert.deepEqual(
        invalid.map((l) => [l.fields.type, l.fields.configuration_id]),
        [[CONFIGURATION_DISABLED_TYPE, 'cfg-1']],
      )
      assert.deepEqual(
        ((invalid[0]?.fields.issues ?? []) as { path: string }[]).map((i) => i.path),
        ['data.configuration_id'],
      )
    } finally {
      await world.close()
    }
  })

  it('tries nothing more once stopped', async () => {
    const world = await onLog(1, { min: 200, max: 200 })
    try {
      world.announcer.announce(keyed(disable))
      await eventually(() => assert.ok(world.lines.some((l) => l.event === 'delivery.system_event_failed')))
      await world.announcer.stop()
      await sleep(300)
      assert.equal(world.marked.length, 0)
    } finally {
      await world.close()
    }
  })
})
