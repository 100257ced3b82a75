import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { createFingerprintWindow } from './fingerprint-window.ts'

describe('fingerprint window', () => {
  it('takes no resident memory for the capacity it has not used yet', () => {
    // Four million keys of capacity: 96 MiB of table and ring, of which a handful of keys touch
    // a few pages. Filling the table ahead (its empty markers) would make 32 MiB resident at once.
    const before = process.memoryUsage().rss
    const window = createFingerprintWindow(4_000_000)
    for (let i = 0; i < 100; i++) window.add(i * 7_919, i * 104_729, i)
    const grown = (process.memoryUsage().rss - before) / 2 ** 20
    assert.equal(window.size, 100)
    assert.ok(grown < 16, `resident memory grew by ${grown.toFixed(1)} MiB`)
  })

  it('holds exactly the last `capacity` distinct fingerprints, as a model set would', () => {
    const op = fc.record({
      // A small key space forces collisions in the table and repeats in the stream.
      hi: fc.integer({ min: 0, max: 3 }),
      lo: fc.integer({ min: 0, max: 40 }),
      add: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 300 }), (capacity, ops) => {
        const window = createFingerprintWindow(capacity)
        const model = new Map<string, number>()
        let time = 0
        for (const { hi, lo, add } of ops) {
          const key = `${hi}/${lo}`
          if (add) {
            time++
            window.add(hi, lo, time)
            if (!model.has(key)) {
              if (model.size === capacity) model.delete(model.keys().next().value as string)
              model.set(key, time)
            }
          }
          assert.equal(window.timeOf(hi, lo), model.get(key))
          assert.equal(window.size, model.size)
        }
        for (const [key, at] of model) {
          const [hi, lo] = key.split('/').map(Number) as [number, number]
          assert.equal(window.timeOf(hi, lo), at)
        }
      }),
      { numRuns: 2_000 },
    )
  })

  it('evicts by time from the oldest', () => {
    const window = createFingerprintWindow(10)
    window.add(1, 1, 100)
    window.add(1, 2, 200)
    window.add(1, 3, 300)
    window.evictBefore(250)
    assert.deepEqual(
      [window.timeOf(1, 1), window.timeOf(1, 2), window.timeOf(1, 3)],
      [undefined, undefined, 300],
    )
    assert.equal(window.size, 1)
  })

  it('takes full 32-bit words', () => {
    const window = createFingerprintWindow(4)
    window.add(0xffffffff, 0x80000000, 1)
    window.add(-1, -2147483648, 2)
    assert.equal(window.size, 1)
    assert.equal(window.timeOf(0xffffffff, 0x80000000), 1)
  })
})
