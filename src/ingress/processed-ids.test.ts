import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { it } from 'node:test'
import { runProcessedIdsContract } from '../../test/contracts/processed-ids.contract.ts'
import { createMemoryProcessedIds, keyDigest, processedKey } from './processed-ids.ts'

it('keeps of a key the first 16 bytes of its SHA-256, as the stored windows were written', () => {
  for (const key of [
    processedKey({ account: 'acme', source: 'engine://anchore', id: 'evt-1' }),
    '',
    'ünïcødé \u0000 key',
  ]) {
    const expected = createHash('sha256').update(key, 'utf8').digest().subarray(0, 16)
    assert.deepEqual(keyDigest(key), expected)
    assert.equal(keyDigest(key).length, 16)
  }
})

runProcessedIdsContract({
  name: 'memory',
  open: async (options) => createMemoryProcessedIds(options),
  boundedByCount: true,
})
