import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { LogMessage } from '../../src/ports/index.ts'
import {
  type DeliveryCommand,
  decodeDeliveryCommand,
  deliveryIdFor,
  digestDeliveryIdFor,
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
  deliveryId: deliveryIdFor(anEvent(), 'cfg-1'),
  account: 'acme',
  endpoint: 'webhook',
  configurationId: 'cfg-1',
  event: anEvent(),
  matchedSelectorIds: ['s1'],
  createdAt: '2026-11-22T10:00:00.000Z',
}

describe('deliveryIdFor', () => {
  const event = { account: 'acme', source: '/engine', id: 'evt-1' }

  it('is the hex sha256 of account, source, event id and configuration id, NUL between them', () => {
    // printf 'acme\0/engine\0evt-1\0cfg-1' | sha256sum
    assert.equal(
      deliveryIdFor(event, 'cfg-1'),
      'c71e54e5f5d4d4d16981d862ef8c632daacfbe73082956b1c30bff39e5835ec6',
    )
  })

  it('tells apart events that share an id but not a source or account, and separates the parts', () => {
    const ids = new Set([
      deliveryIdFor(event, 'cfg-1'),
      deliveryIdFor({ ...event, source: '/other' }, 'cfg-1'),
      deliveryIdFor({ ...event, account: 'globex' }, 'cfg-1'),
      deliveryIdFor(event, 'cfg-2'),
      deliveryIdFor({ ...event, id: 'evt-1c' }, 'fg-1'),
    ])
    assert.equal(ids.size, 5)
  })
})

describe('digestDeliveryIdFor', () => {
  it('is the hex sha256 of "digest", configuration id and window start, apart from every event delivery id', () => {
    // printf 'digest\0cfg-1\0002026-11-22T10:00:00.000Z' | sha256sum
    assert.equal(
      digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'),
      'a5971f7eddebd6a320de3309504147326025a00a1e66970536ddebba569760db',
    )
    assert.notEqual(
      digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'),
      digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:30.000Z'),
    )
    assert.notEqual(
      digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'),
      digestDeliveryIdFor('cfg-2', '2026-11-22T10:00:00.000Z'),
    )
  })

  it("tells two routers' digests of one window apart by their buffers' ids", () => {
    const start = '2026-11-22T10:00:00.000Z'
    const a = digestDeliveryIdFor('cfg-1', start, 'buffer-a')
    assert.match(a, /^[0-9a-f]{64}$/)
    assert.equal(a, digestDeliveryIdFor('cfg-1', start, 'buffer-a'))
    assert.notEqual(a, digestDeliveryIdFor('cfg-1', start, 'buffer-b'))
    assert.notEqual(a, digestDeliveryIdFor('cfg-1', start))
  })
})

const digestCommand: DeliveryCommand = {
  ...command,
  deliveryId: digestDeliveryIdFor('cfg-1', '2026-11-22T10:00:00.000Z'),
  matchedSelectorIds: ['s1', 's2'],
  digest: {
    windowStart: '2026-11-22T10:00:00.000Z',
    windowEnd: '2026-11-22T10:00:30.000Z',
    total: 12,
    counts: [
      { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 11 },
      { type: 'system.feeds.sync.failed', level: 'error', count: 1 },
    ],
    levels: [
      { level: 'error', count: 1 },
      { level: 'info', count: 11 },
    ],
    events: [anEvent(), anEvent({ id: 'evt-2' })],
  },
}

describe('encodeDeliveryCommand / decodeDeliveryCommand', () => {
  it('gives the same bytes with the event serialised once, whatever the characters', () => {
    for (const event of [
      anEvent(),
      anEvent({ id: 'ünïcødé-✓', data: { tag: 'registry.example.com/ça:va', note: '\u0000"\\\n😀' } }),
    ]) {
      const single = { ...command, event, account: 'acmé', configurationId: 'cfg-"1"' }
      const once = encodeDeliveryCommand(single, JSON.stringify(event))
      assert.deepEqual(Uint8Array.from(once.value), new TextEncoder().encode(JSON.stringify(single)))
      assert.deepEqual(once.value, encodeDeliveryCommand(single).value)
      assert.equal(once.key, 'cfg-"1"')
    }
  })

  it('carries the position of the selector set the router routed with, optional so earlier commands still read', () => {
    const stamped: DeliveryCommand = { ...command, selectorSetPosition: 4_096 }
    const once = encodeDeliveryCommand(stamped, JSON.stringify(stamped.event))
    assert.deepEqual(Uint8Array.from(once.value), new TextEncoder().encode(JSON.stringify(stamped)))
    const decoded = decodeDeliveryCommand(asLogMessage(once.value, once.key))
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.value, stamped)
    const earlier = decodeDeliveryCommand(asLogMessage(encodeDeliveryCommand(command).value))
    assert.ok(earlier.ok)
    assert.equal(earlier.value.selectorSetPosition, undefined)
    for (const position of [-1, 1.5, '7']) {
      const bad = decodeDeliveryCommand(
        asLogMessage(new TextEncoder().encode(JSON.stringify({ ...command, selectorSetPosition: position }))),
      )
      assert.ok(!bad.ok)
      assert.ok(bad.issues.some((i) => i.path === 'selectorSetPosition'))
    }
  })

  it('round-trips a digest, which keeps every field of a single delivery', () => {
    const message = encodeDeliveryCommand(digestCommand, JSON.stringify(digestCommand.event))
    assert.equal(message.key, 'cfg-1')
    const decoded = decodeDeliveryCommand(asLogMessage(message.value, message.key))
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.value, digestCommand)
    // What a consumer that knows no digests reads: a valid command about the window's first event.
    const { digest: _, ...single } = JSON.parse(new TextDecoder().decode(message.value))
    assert.equal(single.event.id, 'evt-1')
  })

  it('refuses a digest that is not one', () => {
    const bad = (digest: unknown) =>
      decodeDeliveryCommand(asLogMessage(new TextEncoder().encode(JSON.stringify({ ...command, digest }))))
    const noCounts = bad({ ...digestCommand.digest, counts: undefined })
    assert.ok(!noCounts.ok)
    assert.ok(noCounts.issues.some((i) => i.path.startsWith('digest.counts')))
    const negative = bad({ ...digestCommand.digest, total: -1 })
    assert.ok(!negative.ok)
    assert.ok(negative.issues.some((i) => i.path.startsWith('digest.total')))
    const level = bad({ ...digestCommand.digest, levels: [{ level: 'fatal', count: 1 }] })
    assert.ok(!level.ok)
  })

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
