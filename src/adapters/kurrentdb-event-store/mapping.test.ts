import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { ANY, NO_STREAM, STREAM_EXISTS } from '@kurrent/kurrentdb-client'
import fc from 'fast-check'
import { isHeraldError } from '../../errors/index.ts'
import type { JsonObject } from '../../ports/index.ts'
import {
  decodeEvent,
  HERALD_ID_KEY,
  isNativeEventId,
  isSystemEvent,
  restoreEventId,
  toSafeNumber,
  toStreamState,
  uuidV5,
  type VendorEvent,
  vendorEventId,
  vendorMetadata,
} from './mapping.ts'

const DNS_NAMESPACE = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const jsonObject = (): fc.Arbitrary<JsonObject> =>
  fc.dictionary(fc.string(), fc.jsonValue()).map((o) => JSON.parse(JSON.stringify(o)) as JsonObject)

describe('toStreamState', () => {
  it('maps the named expectations to the client constants', () => {
    assert.equal(toStreamState('no_stream'), NO_STREAM)
    assert.equal(toStreamState('stream_exists'), STREAM_EXISTS)
    assert.equal(toStreamState('any'), ANY)
  })

  it('maps an exact revision to the same bigint', () => {
    fc.assert(fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (n) => toStreamState(n) === BigInt(n)))
  })
})

describe('uuidV5', () => {
  it('matches the RFC 9562 / Python reference value', () => {
    assert.equal(uuidV5('python.org', DNS_NAMESPACE), '886313e1-3b8a-5372-9b90-0c9aee199e5d')
  })

  it('is a version 5, RFC-variant UUID for any name', () => {
    fc.assert(fc.property(fc.string(), (name) => UUID.test(uuidV5(name, DNS_NAMESPACE))))
  })
})

describe('event ids', () => {
  it('keeps lower-case UUIDs as they are, and only those', () => {
    const id = randomUUID()
    assert.ok(isNativeEventId(id))
    assert.equal(vendorEventId('s', id), id)
    assert.equal(vendorMetadata(id, undefined), undefined)
    assert.equal(vendorMetadata(id, {}), undefined)
    assert.deepEqual(vendorMetadata(id, { a: 1 }), { a: 1 })
    for (const other of [
      id.toUpperCase(),
      '00000000-0000-0000-0000-000000000000',
      'delivery-1',
      `${id}x`,
      '',
    ]) {
      assert.ok(!isNativeEventId(other), other)
    }
  })

  it('derives a stable UUID per (stream, id) for any other id', () => {
    assert.equal(vendorEventId('config-1', 'created'), vendorEventId('config-1', 'created'))
    assert.notEqual(vendorEventId('config-1', 'created'), vendorEventId('config-2', 'created'))
    // The pair is encoded without ambiguity: moving a character across the boundary changes the UUID.
    assert.notEqual(vendorEventId('ab', 'c'), vendorEventId('a', 'bc'))
    fc.assert(
      fc.property(fc.string(), fc.string(), (stream, id) => {
        const uuid = vendorEventId(stream, id)
        return isNativeEventId(uuid) && (isNativeEventId(id) ? uuid === id : UUID.test(uuid))
      }),
    )
  })

  it('gives back the original id and metadata on read, whatever they were', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.oneof(
          fc.string(),
          fc.uuid().map((u) => u.toLowerCase()),
        ),
        fc.option(jsonObject(), { nil: undefined }),
        (stream, id, metadata) => {
          const stored = vendorMetadata(id, metadata) ?? {}
          assert.deepEqual(restoreEventId(stream, vendorEventId(stream, id), stored), {
            id,
            metadata: metadata ?? {},
          })
        },
      ),
    )
  })

  it('ignores a $herald.id that does not derive the stored UUID', () => {
    const storedId = randomUUID()
    const metadata = { [HERALD_ID_KEY]: 'spoofed', other: true }
    assert.deepEqual(restoreEventId('s', storedId, metadata), { id: storedId, metadata })
    assert.deepEqual(restoreEventId('s', storedId, { [HERALD_ID_KEY]: 42 }), {
      id: storedId,
      metadata: { [HERALD_ID_KEY]: 42 },
    })
  })
})

describe('decodeEvent', () => {
  const vendor = (overrides: Partial<VendorEvent> = {}): VendorEvent => ({
    streamId: 'config-1',
    id: vendorEventId('config-1', 'e-1'),
    type: 'ConfigurationCreated',
    revision: 3n,
    created: new Date(1_700_000_000_123),
    isJson: true,
    data: { a: [1, 'two'] },
    metadata: { [HERALD_ID_KEY]: 'e-1', correlationId: 'c' },
    position: { commit: 4096n, prepare: 4096n },
    ...overrides,
  })

  it('carries a Herald event across with its original id and the commit position', () => {
    assert.deepEqual(decodeEvent(vendor()), {
      ok: true,
      event: {
        stream: 'config-1',
        id: 'e-1',
        type: 'ConfigurationCreated',
        data: { a: [1, 'two'] },
        metadata: { correlationId: 'c' },
        revision: 3,
        position: 4096,
        recordedAt: 1_700_000_000_123,
      },
    })
  })

  it('reads absent metadata as an empty object', () => {
    const id = randomUUID()
    const decoded = decodeEvent(vendor({ id, metadata: undefined }))
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.event.metadata, {})
    assert.equal(decoded.event.id, id)
  })

  it('falls back to the resolved commit position, and refuses a server that gives none', () => {
    const decoded = decodeEvent(vendor({ position: undefined }), 8192n)
    assert.ok(decoded.ok)
    assert.equal(decoded.event.position, 8192)
    assert.throws(
      () => decodeEvent(vendor({ position: undefined })),
      (e: unknown) => isHeraldError(e) && e.code === 'event_store_unsupported',
    )
  })

  it('reports shapes the port cannot carry instead of guessing', () => {
    for (const overrides of [
      { isJson: false, data: new Uint8Array([1, 2]) },
      { data: [1, 2] },
      { data: 'not json' },
      { data: null },
      { metadata: new Uint8Array([0xff]) },
      { metadata: ['x'] },
    ] satisfies Partial<VendorEvent>[]) {
      const decoded = decodeEvent(vendor(overrides))
      assert.equal(decoded.ok, false, JSON.stringify(overrides))
      if (!decoded.ok) assert.match(decoded.reason, /config-1@3 \(ConfigurationCreated\)/)
    }
  })

  it('refuses positions and revisions a JS number cannot hold exactly', () => {
    assert.equal(toSafeNumber(BigInt(Number.MAX_SAFE_INTEGER), 'position'), Number.MAX_SAFE_INTEGER)
    for (const value of [BigInt(Number.MAX_SAFE_INTEGER) + 1n, -1n]) {
      assert.throws(
        () => toSafeNumber(value, 'position'),
        (e: unknown) => isHeraldError(e) && e.code === 'event_store_failed',
      )
    }
  })
})

describe('isSystemEvent', () => {
  it('flags $-prefixed types and streams', () => {
    assert.ok(isSystemEvent({ streamId: '$stats-127.0.0.1:2113', type: '$statsCollected' }))
    assert.ok(isSystemEvent({ streamId: '$$config-1', type: '$metadata' }))
    assert.ok(isSystemEvent({ streamId: 'config-1', type: '$>' }))
    assert.ok(isSystemEvent({ streamId: '$projections-x', type: 'Created' }))
    assert.ok(!isSystemEvent({ streamId: 'config-1', type: 'ConfigurationCreated' }))
    assert.ok(!isSystemEvent({ streamId: 'price-$5', type: 'a$b' }))
  })
})
