import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelay } from './backoff.ts'

const bounds = { min: 1_000, max: 60_000 }

test('the first retry waits the minimum and each one after waits twice the one before', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(bounds, attempt)),
    [1_000, 2_000, 4_000, 8_000, 16_000, 32_000],
  )
})

test('the wait never passes the maximum, however many attempts (no Infinity or NaN)', () => {
  assert.equal(backoffDelay(bounds, 7), 60_000)
  assert.equal(backoffDelay(bounds, 10_000), 60_000)
})

test('an attempt below 1 waits the minimum', () => {
  assert.equal(backoffDelay(bounds, 0), 1_000)
  assert.equal(backoffDelay(bounds, -3), 1_000)
})
