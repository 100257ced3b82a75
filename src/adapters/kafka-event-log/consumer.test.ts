import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createHeldPartitions, toLogMessage } from './consumer.ts'

describe('toLogMessage', () => {
  it('decodes key and headers as UTF-8 and keeps the value bytes', () => {
    const message = toLogMessage('t', 2, {
      key: Buffer.from('clé'),
      value: Buffer.from([0, 255]),
      timestamp: '1700000000123',
      attributes: 0,
      offset: '41',
      headers: {
        ce_type: Buffer.from('x.y'),
        plain: 'text',
        twice: [Buffer.from('first'), 'second'],
        gone: undefined,
      },
    })
    assert.deepEqual(
      { ...message, value: [...message.value] },
      {
        topic: 't',
        partition: 2,
        offset: 41,
        key: 'clé',
        value: [0, 255],
        headers: { ce_type: 'x.y', plain: 'text', twice: 'second' },
        timestamp: 1700000000123,
      },
    )
  })

  it('names the headers whose bytes are no UTF-8 text, not one that holds U+FFFD itself', () => {
    const message = toLogMessage('t', 0, {
      key: null,
      value: Buffer.from('{}'),
      timestamp: '0',
      attributes: 0,
      offset: '0',
      headers: {
        ce_id: Buffer.from([0x65, 0xff, 0x31]),
        ce_source: Buffer.from('/engine \uFFFD'),
        trace: [Buffer.from([0xc3]), Buffer.from([0xc3, 0x28])],
        ce_type: Buffer.from('x.y'),
      },
    })
    assert.deepEqual(message.undecodableHeaders, ['ce_id', 'trace'])
    assert.equal(message.headers.ce_id, 'e\uFFFD1')
    assert.equal(message.headers.ce_source, '/engine \uFFFD')
  })

  it('reads a header without a value (null, as Kafka allows) as absent', () => {
    const message = toLogMessage('t', 0, {
      key: null,
      value: Buffer.from('{}'),
      timestamp: '0',
      attributes: 0,
      offset: '0',
      // kafkajs's types say no null, but its decoder hands one over for a header of length -1.
      headers: { trace: null, twice: [Buffer.from('a'), null], ce_id: Buffer.from('e1') } as never,
    })
    assert.deepEqual(message.headers, { ce_id: 'e1' })
    assert.equal('undecodableHeaders' in message, false)
  })

  it('says nothing of undecodable headers when every one is UTF-8', () => {
    const message = toLogMessage('t', 0, {
      key: null,
      value: Buffer.from('{}'),
      timestamp: '0',
      attributes: 0,
      offset: '0',
      headers: { ce_id: Buffer.from('é1') },
    })
    assert.equal('undecodableHeaders' in message, false)
  })

  it('maps a null key to null and a tombstone to empty bytes', () => {
    const message = toLogMessage('t', 0, {
      key: null,
      value: null,
      timestamp: '0',
      attributes: 0,
      offset: '0',
      size: 9,
    })
    assert.equal(message.key, null)
    assert.equal(message.value.length, 0)
    assert.deepEqual(message.headers, {})
  })
})

describe('createHeldPartitions', () => {
  it('holds what the last join assigned, from the join, and keeps the time of what it keeps', () => {
    let now = 1_000
    const held = createHeldPartitions(() => now)
    assert.equal(held.since('t', 0), undefined, 'nothing before the first join')
    held.joined('m-1', { t: [0, 1] })
    now = 2_000
    held.rebalancing()
    assert.equal(held.since('t', 0), undefined, 'nothing while the group rebalances')
    held.joined('m-1', { t: [1, 2] })
    assert.equal(held.since('t', 0), undefined, 'a partition given away')
    assert.equal(held.since('t', 1), 1_000, 'a partition kept through the rebalance')
    assert.equal(held.since('t', 2), 2_000, 'a partition taken over')
  })

  it('starts the time again when the member rejoins under a new id, and holds nothing once released', () => {
    let now = 1_000
    const held = createHeldPartitions(() => now)
    held.joined('m-1', { t: [0] })
    now = 5_000
    held.joined('m-2', { t: [0] })
    assert.equal(held.since('t', 0), 5_000)
    held.release()
    assert.equal(held.since('t', 0), undefined)
    now = 9_000
    held.joined('m-2', { t: [0] })
    assert.equal(held.since('t', 0), 9_000, 'after a crash, nothing is kept')
  })
})
