import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toLogMessage } from './consumer.ts'

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
