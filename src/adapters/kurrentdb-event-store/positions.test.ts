import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  boundedSet,
  CHUNK_SIZE,
  chunkStartOf,
  type ProbeResult,
  resolveStart,
  type StartProbes,
} from './positions.ts'

/**
 * A log as the server sees it: records start at the given positions and the last event is at
 * `last`; reading from anywhere else inside the log is refused, as KurrentDB does.
 */
const log = (recordStarts: readonly number[], known: readonly number[] = []) => {
  const probed: number[] = []
  const end = Math.max(0, ...recordStarts)
  const probes: StartProbes = {
    known: (p) => known.includes(p),
    probe: async (p): Promise<ProbeResult> => {
      probed.push(p)
      if (p > end) return 'end'
      return recordStarts.includes(p) ? 'event' : 'invalid'
    },
    lastPosition: async () => (recordStarts.length === 0 ? undefined : end),
  }
  return { probes, probed }
}

describe('resolveStart', () => {
  it('starts from the beginning without a checkpoint, or with checkpoint 0', async () => {
    const { probes, probed } = log([100, 200])
    assert.equal(await resolveStart(undefined, probes), 'start')
    assert.equal(await resolveStart(0, probes), 'start')
    assert.deepEqual(probed, [])
  })

  it('starts at a checkpoint it handed out without asking the server', async () => {
    const { probes, probed } = log([100, 200], [200])
    assert.equal(await resolveStart(200, probes), 200)
    assert.deepEqual(probed, [])
  })

  it('starts at a checkpoint the server confirms starts a record', async () => {
    const { probes } = log([100, 200, 300])
    assert.equal(await resolveStart(200, probes), 200)
  })

  it('falls back to the chunk start, then to the beginning, for a checkpoint inside a record', async () => {
    const inFirstChunk = log([100, 200])
    assert.equal(await resolveStart(199, inFirstChunk.probes), 'start')
    assert.deepEqual(inFirstChunk.probed, [199])

    const inThirdChunk = log([100, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 500])
    assert.equal(await resolveStart(2 * CHUNK_SIZE + 499, inThirdChunk.probes), 2 * CHUNK_SIZE)

    // A server with another chunk size refuses our guess too: the beginning is always valid.
    const otherChunks = log([100, 2 * CHUNK_SIZE + 10, 2 * CHUNK_SIZE + 500])
    assert.equal(await resolveStart(2 * CHUNK_SIZE + 499, otherChunks.probes), 'start')
  })

  it('starts at the last event for a checkpoint past the end, or at the beginning of an empty log', async () => {
    assert.equal(await resolveStart(10_000, log([100, 200]).probes), 200)
    assert.equal(await resolveStart(10_000, log([]).probes), 'start')
  })

  it('probes again when appends move the end past the checkpoint meanwhile', async () => {
    let calls = 0
    const probes: StartProbes = {
      known: () => false,
      probe: async () => (calls++ === 0 ? 'end' : 'event'),
      lastPosition: async () => 500,
    }
    assert.equal(await resolveStart(300, probes), 300)
  })

  it('never starts later than the checkpoint, whatever the log looks like', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.nat({ max: 4 * CHUNK_SIZE }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 5 * CHUNK_SIZE }),
        async (starts, after) => {
          const chunkStarts = [...new Set([...starts, ...[1, 2, 3, 4].map((n) => n * CHUNK_SIZE)])]
          const start = await resolveStart(after, log(chunkStarts).probes)
          return start === 'start' || start <= after
        },
      ),
    )
  })
})

describe('chunkStartOf', () => {
  it('rounds down to a multiple of the chunk size', () => {
    assert.equal(chunkStartOf(0), 0)
    assert.equal(chunkStartOf(CHUNK_SIZE - 1), 0)
    assert.equal(chunkStartOf(CHUNK_SIZE), CHUNK_SIZE)
    assert.equal(chunkStartOf(3 * CHUNK_SIZE + 7), 3 * CHUNK_SIZE)
  })
})

describe('boundedSet', () => {
  it('forgets the least recently added member first', () => {
    const set = boundedSet(2)
    set.add(1)
    set.add(2)
    set.add(1)
    set.add(3)
    assert.ok(set.has(1) && set.has(3) && !set.has(2))
  })
})
