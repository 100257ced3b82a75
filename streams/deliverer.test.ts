import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { createSqliteEventStore } from '../src/adapters/sqlite-event-store/index.ts'
import {
  createDeliveryLog,
  decodeDeliveryEvent,
  deliveryStream,
  MAX_DELIVERY_COMMAND_BYTES,
} from '../src/deliveries/index.ts'
import type { LogFields, Logger, LogLevel } from '../src/observability/index.ts'
import { messageBytes } from '../src/ports/event-log.ts'
import type { Batch, LogMessage } from '../src/ports/index.ts'
import { createDeliveryRequestHandler } from './deliverer.ts'
import { type DeliveryCommand, deliveryIdFor, encodeDeliveryCommand } from './routing/index.ts'
import { anEvent } from './routing/test-fixtures.ts'

/** The delivery id of the fixture event `eventId` to `configurationId`. */
const deliveryIdOf = (eventId: string, configurationId: string): string =>
  deliveryIdFor(anEvent({ id: eventId }), configurationId)

const capturingLogger = () => {
  const lines: { level: LogLevel; event: string; fields: LogFields }[] = []
  const logger: Logger = (level, event, fields = {}) => lines.push({ level, event, fields })
  return { lines, logger }
}

const commandFor = (eventId: string, configurationId: string): DeliveryCommand => {
  const event = anEvent({ id: eventId })
  return {
    deliveryId: deliveryIdFor(event, configurationId),
    account: 'acme',
    endpoint: 'webhook',
    configurationId,
    event,
    matchedSelectorIds: ['sel-1'],
    createdAt: '2026-11-22T10:00:00.000Z',
  }
}

const batchOf = (values: Uint8Array[]): Batch => ({
  topic: 'notifications.deliveries',
  partition: 0,
  messages: values.map(
    (value, offset): LogMessage => ({
      topic: 'notifications.deliveries',
      partition: 0,
      offset,
      key: null,
      value,
      headers: {},
      timestamp: 0,
    }),
  ),
})

describe('createDeliveryRequestHandler', () => {
  it('records each command in the delivery log once, in order, and skips undecodable ones', async () => {
    const store = createSqliteEventStore({ path: ':memory:' })
    try {
      const deliveries = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: 'test' })
      const { lines, logger } = capturingLogger()
      const positions: number[] = []
      const handler = createDeliveryRequestHandler({
        deliveries,
        logger,
        onRecorded: (p) => positions.push(p),
      })
      const batch = batchOf([
        encodeDeliveryCommand(commandFor('e1', 'ok')).value,
        new TextEncoder().encode('{"deliveryId":1}'),
        encodeDeliveryCommand(commandFor('e2', 'ok')).value,
        encodeDeliveryCommand(commandFor('e1', 'down')).value,
      ])
      await handler(batch)
      // Redelivered after a crash before the commit: nothing is recorded twice.
      await handler(batch)

      const all = await store.readAll()
      assert.ok(all.every((e) => e.type === 'DeliveryRequested'))
      const streams = all.map((e) => e.stream)
      assert.deepEqual(
        [...streams].sort(),
        [deliveryIdOf('e1', 'ok'), deliveryIdOf('e2', 'ok'), deliveryIdOf('e1', 'down')]
          .map(deliveryStream)
          .sort(),
      )
      // Configurations are recorded side by side; one configuration's in order (its queue order).
      assert.ok(
        streams.indexOf(deliveryStream(deliveryIdOf('e1', 'ok'))) <
          streams.indexOf(deliveryStream(deliveryIdOf('e2', 'ok'))),
      )
      const decoded = decodeDeliveryEvent(
        all.find((e) => e.stream.endsWith(deliveryIdOf('e1', 'ok'))) ?? { type: '', data: {} },
      )
      assert.ok(decoded.ok && decoded.value.type === 'DeliveryRequested')
      assert.equal(decoded.value.data.event.id, 'e1')
      assert.deepEqual(decoded.value.data.matchedSelectorIds, ['sel-1'])
      assert.deepEqual(
        lines.map((l) => [l.event, l.fields.offset]),
        [
          ['delivery.command_invalid', 1],
          ['delivery.command_invalid', 1],
        ],
      )
      assert.equal(positions[0], Math.max(...all.map((e) => e.position)))
    } finally {
      await store.close()
    }
  })

  it('records a command as large as the router lets through, which the event store takes in one append', async () => {
    const store = createSqliteEventStore({ path: ':memory:' })
    try {
      const deliveries = createDeliveryLog({
        store,
        clock: Date.now,
        newId: randomUUID,
        origin: randomUUID(),
      })
      const handler = createDeliveryRequestHandler({ deliveries, logger: () => {} })
      const command = commandFor('large', 'cfg-1')
      const sized = (pad: number): DeliveryCommand => ({
        ...command,
        event: { ...command.event, data: { pad: 'é'.repeat(pad) } },
      })
      // Two-byte characters, as many as fit the router's limit.
      const over = messageBytes(encodeDeliveryCommand(sized(0)))
      const largest = sized(Math.floor((MAX_DELIVERY_COMMAND_BYTES - over) / 2))
      assert.ok(messageBytes(encodeDeliveryCommand(largest)) > MAX_DELIVERY_COMMAND_BYTES - 2)
      assert.ok(messageBytes(encodeDeliveryCommand(largest)) <= MAX_DELIVERY_COMMAND_BYTES)
      await handler(batchOf([encodeDeliveryCommand(largest).value]))
      assert.equal((await store.readStream(deliveryStream(largest.deliveryId))).length, 1)
    } finally {
      await store.close()
    }
  })

  it('records a whole batch in one store write, a command repeated in it once', async () => {
    const store = createSqliteEventStore({ path: ':memory:' })
    try {
      let writes = 0
      const deliveries = createDeliveryLog({
        store: {
          append: (...args) => {
            writes += 1
            return store.append(...args)
          },
          appendMany: (...args) => {
            writes += 1
            return store.appendMany(...args)
          },
          readStream: (...args) => store.readStream(...args),
        },
        clock: Date.now,
        newId: randomUUID,
        origin: 'test',
      })
      const handler = createDeliveryRequestHandler({ deliveries, logger: () => {} })
      const commands = Array.from({ length: 50 }, (_, i) => commandFor(`e${i}`, `cfg-${i % 3}`))
      const repeated = [...commands, ...commands.slice(0, 5)]
      await handler(batchOf(repeated.map((c) => encodeDeliveryCommand(c).value)))

      assert.equal(writes, 1)
      assert.deepEqual(
        (await store.readAll()).map((e) => e.stream),
        commands.map((c) => deliveryStream(c.deliveryId)),
      )
    } finally {
      await store.close()
    }
  })
})
