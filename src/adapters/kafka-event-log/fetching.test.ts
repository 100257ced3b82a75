import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { batchFetch, longestFetchWait } from './fetching.ts'

// The librdkafka mock answers a fetch as soon as it has any data, whatever its minimum
// bytes, so what the broker is asked for is checked here rather than against it.
describe('batchFetch', () => {
  it('waits for about a full batch, 256 bytes a message', () => {
    assert.deepEqual(batchFetch(500, 500, {}), { maxWaitTimeInMs: 500, minBytes: 128_000 })
  })

  it('waits for no more bytes than one partition can bring, which is all a broker counts of it', () => {
    // The projector's 20,000-event batches would ask for 5.12 MB: a broker counts at most a
    // partition's fetch bound of each partition, so a member of up to four partitions would
    // never reach it and wait the whole wait at each fetch, a backlog or not.
    assert.equal(batchFetch(500, 20_000, {})?.minBytes, 1_048_576)
    assert.equal(batchFetch(500, 20_000, { maxBytesPerPartition: 65_536 })?.minBytes, 65_536)
    assert.equal(
      batchFetch(500, 20_000, { maxBytesPerPartition: 8_388_608, maxBytes: 2_097_152 })?.minBytes,
      2_097_152,
    )
  })

  it('waits at most a third of the session timeout', () => {
    assert.equal(batchFetch(86_400_000, 500, {})?.maxWaitTimeInMs, 10_000)
    assert.equal(batchFetch(86_400_000, 500, { sessionTimeoutMs: 4_000 })?.maxWaitTimeInMs, 1_333)
    assert.equal(longestFetchWait(undefined), 10_000)
  })

  it('leaves a consumer without a wait to its own fetch settings', () => {
    assert.equal(batchFetch(undefined, 500, {}), undefined)
    assert.equal(batchFetch(0, 500, {}), undefined)
  })
})
