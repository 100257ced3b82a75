import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeLogEvent } from '../src/events/index.ts'
import type { LogFields, Logger, LogLevel } from '../src/observability/index.ts'
import type { Batch, LogMessage, OutgoingMessage, PublishedPosition } from '../src/ports/index.ts'
import { createRouterHandler } from './router.ts'
import { buildSelectorIndex, decodeDeliveryCommand } from './routing/index.ts'
import { aConfiguration, anEvent, aSelector } from './routing/test-fixtures.ts'

const capturingLogger = () => {
  const lines: { level: LogLevel; event: string; fields: LogFields }[] = []
  const logger: Logger = (level, event, fields = {}) => lines.push({ level, event, fields })
  return { lines, logger }
}

const batchOf = (values: Uint8Array[]): Batch => ({
  topic: 'engine.events',
  partition: 0,
  messages: values.map(
    (value, offset): LogMessage => ({
      topic: 'engine.events',
      partition: 0,
      offset,
      key: 'acme',
      value,
      headers: {},
      timestamp: 0,
    }),
  ),
})

const index = buildSelectorIndex({
  position: 1,
  configurations: new Map([['cfg-1', aConfiguration()]]),
  selectors: new Map([['sel-1', aSelector({ type: 'user.checks.*' })]]),
})

describe('createRouterHandler', () => {
  it('publishes one command per matched event to the deliveries topic, and skips undecodable messages', async () => {
    const published: { topic: string; messages: readonly OutgoingMessage[] }[] = []
    const log = {
      publish: async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
        published.push({ topic, messages })
        return []
      },
    }
    const { lines, logger } = capturingLogger()
    const routed: unknown[] = []
    const handler = createRouterHandler({
      log,
      topics: { deliveries: 'notifications.deliveries' },
      getIndex: () => index,
      clock: () => 0,
      logger,
      onRouted: (counts) => routed.push(counts),
    })

    await handler(
      batchOf([
        encodeLogEvent(anEvent({ id: 'e1' })).value,
        new TextEncoder().encode('{"not":"an event"}'),
        encodeLogEvent(anEvent({ id: 'e2', type: 'user.image.analysis.completed' })).value,
        encodeLogEvent(anEvent({ id: 'e3' })).value,
      ]),
    )

    assert.equal(published.length, 1)
    assert.equal(published[0]?.topic, 'notifications.deliveries')
    const commands = published[0]?.messages.map((m) => {
      const decoded = decodeDeliveryCommand({
        topic: '',
        partition: 0,
        offset: 0,
        key: m.key,
        value: m.value,
        headers: {},
        timestamp: 0,
      })
      assert.ok(decoded.ok)
      assert.equal(m.key, 'cfg-1')
      return decoded.value.event.id
    })
    assert.deepEqual(commands, ['e1', 'e3'])
    const invalid = lines.filter((l) => l.event === 'router.event_invalid')
    assert.equal(invalid.length, 1)
    assert.equal(invalid[0]?.fields.offset, 1)
    assert.deepEqual(routed, [{ events: 3, invalid: 1, deliveries: 2 }])
  })

  it('publishes nothing when nothing matched', async () => {
    let publishes = 0
    const handler = createRouterHandler({
      log: {
        publish: async () => {
          publishes++
          return []
        },
      },
      topics: { deliveries: 'd' },
      getIndex: () => index,
      clock: () => 0,
      logger: () => {},
    })
    await handler(batchOf([encodeLogEvent(anEvent({ type: 'system.feeds.sync.failed' })).value]))
    assert.equal(publishes, 0)
  })

  it('rejects when publishing fails, so the batch is not committed', async () => {
    const handler = createRouterHandler({
      log: {
        publish: async () => {
          throw new Error('log unavailable')
        },
      },
      topics: { deliveries: 'd' },
      getIndex: () => index,
      clock: () => 0,
      logger: () => {},
    })
    await assert.rejects(handler(batchOf([encodeLogEvent(anEvent()).value])), /log unavailable/)
  })
})
