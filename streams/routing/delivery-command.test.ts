import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LogMessage } from '../../src/ports/index.ts'
import {
  type DeliveryCommand,
  decodeDeliveryCommand,
  deliveryIdFor,
  encodeDeliveryCommand,
} from './delivery-command.ts'
import { anEvent } from './test-fixtures.ts'

const asLogMessage = (value: Uint8Array, key: string | null = null): LogMessage => ({
  topic: 'notifications.deliveries',
  partition: 0,
  offset: 0,
  key,
  value,
  headers: {},
  timestamp: 0,
})

const command: DeliveryCommand = {
  deliveryId: deliveryIdFor('evt-1', 'cfg-1'),
  account: 'acme',
  endpoint: 'webhook',
  configurationId: 'cfg-1',
  event: anEvent(),
  matchedSelectorIds: ['s1'],
  createdAt: '2026-11-22T10:00:00.000Z',
}

describe('deliveryIdFor', () => {
  it('is the hex sha256 of event id, NUL, configuration id', () => {
    // printf 'evt-1\0cfg-1' | sha256sum
    assert.equal(
      deliveryIdFor('evt-1', 'cfg-1'),
      '6c9e8995fa3243ed9a41e1f2eb1186ff5b6e18daab5a41f4111be6e554f413c7',
    )
  })

  it('separates the two ids, so shifting characters between them changes the id', () => {
    assert.notEqual(deliveryIdFor('evt-1', 'cfg-1'), deliveryIdFor('evt-1c', 'fg-1'))
    assert.notEqual(deliveryIdFor('evt-1', 'cfg-1'), deliveryIdFor('evt-1', 'cfg-2'))
  })
})

describe('encodeDeliveryCommand / decodeDeliveryCommand', () => {
  it('keys by configuration and round-trips as JSON', () => {
    const message = encodeDeliveryCommand(command)
    assert.equal(message.key, 'cfg-1')
    assert.equal(message.headers?.['content-type'], 'application/json')
    const decoded = decodeDeliveryCommand(asLogMessage(message.value, message.key))
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.value, command)
  })

  it('reports undecodable values as issues', () => {
    const garbage = decodeDeliveryCommand(asLogMessage(new Uint8Array([0xff, 0xfe])))
    assert.ok(!garbage.ok)
    assert.equal(garbage.issues[0]?.path, '(value)')
    const incomplete = decodeDeliveryCommand(
      asLogMessage(
        new TextEncoder().encode(JSON.stringify({ ...command, endpoint: 'fax', event: { id: 'x' } })),
      ),
    )
    assert.ok(!incomplete.ok)
    assert.ok(incomplete.issues.some((i) => i.path === 'endpoint'))
    assert.ok(incomplete.issues.some((i) => i.path.startsWith('event.')))
  })
})
