import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { encodeFrame, FRAME_HEADER_BYTES, MAGIC_BYTE, parseFrame } from './wire-format.ts'

const schemaId = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })

describe('Confluent wire format', () => {
  it('reads back the schema id and payload it framed', () => {
    fc.assert(
      fc.property(schemaId, fc.uint8Array({ maxLength: 256 }), (id, payload) => {
        const frame = parseFrame(encodeFrame(id, payload))
        assert.equal(frame.kind, 'framed')
        if (frame.kind !== 'framed') return
        assert.equal(frame.schemaId, id)
        assert.deepEqual(frame.payload, payload)
      }),
    )
  })

  it('writes the magic byte and the id big-endian', () => {
    assert.deepEqual([...encodeFrame(0x01020304, new Uint8Array([9]))], [MAGIC_BYTE, 1, 2, 3, 4, 9])
    assert.deepEqual([...encodeFrame(-1, new Uint8Array())], [0, 255, 255, 255, 255])
  })

  it('reads any value without throwing: plain unless it starts with a zero byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (value) => {
        const frame = parseFrame(value)
        if (value[0] !== 0) assert.equal(frame.kind, 'plain')
        else if (value.length < FRAME_HEADER_BYTES)
          assert.deepEqual(frame, { kind: 'truncated', length: value.length })
        else assert.equal(frame.kind, 'framed')
      }),
      { numRuns: 5_000 },
    )
  })

  it('keeps the payload a view of the value, not a copy', () => {
    const value = encodeFrame(7, new Uint8Array([1, 2, 3]))
    const frame = parseFrame(value)
    assert.ok(frame.kind === 'framed' && frame.payload.buffer === value.buffer)
  })

  it('refuses ids that do not fit in 32 bits', () => {
    assert.throws(() => encodeFrame(2 ** 31, new Uint8Array()), RangeError)
    assert.throws(() => encodeFrame(1.5, new Uint8Array()), RangeError)
  })
})
