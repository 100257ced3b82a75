import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PARTITION_FRAMING, runEnds } from './requests.ts'

const keyed = (...keys: (string | null)[]) => keys.map((key) => ({ key }))

describe('runEnds', () => {
  it('keeps everything in one run while it fits, counting each key’s partition once', () => {
    const budget = 3 * 100 + 2 * PARTITION_FRAMING
    assert.deepEqual(runEnds(keyed('a', 'b', 'a'), [100, 100, 100], budget), [3])
    assert.deepEqual(runEnds(keyed('a', 'b', 'c'), [100, 100, 100], budget), [2, 3])
  })

  it('counts a partition for each keyless message, which may go to any', () => {
    const budget = 2 * 100 + 2 * PARTITION_FRAMING
    assert.deepEqual(runEnds(keyed(null, null, null), [100, 100, 100], budget), [2, 3])
  })

  it('starts a new run where the next message would not fit, in the messages’ order', () => {
    const budget = 1_000 + PARTITION_FRAMING
    // The last run is full to the byte.
    assert.deepEqual(runEnds(keyed('a', 'a', 'a', 'a', 'a'), [400, 400, 400, 900, 100], budget), [2, 3, 5])
    assert.deepEqual(runEnds(keyed('a', 'a', 'a', 'a', 'a'), [400, 400, 400, 900, 101], budget), [2, 3, 4, 5])
  })

  it('puts a message larger than the budget in a run of its own', () => {
    assert.deepEqual(runEnds(keyed('a', 'a', 'a'), [10, 5_000, 10], 1_000), [1, 2, 3])
  })

  it('makes no run of no messages', () => {
    assert.deepEqual(runEnds([], [], 1_000), [])
  })
})
