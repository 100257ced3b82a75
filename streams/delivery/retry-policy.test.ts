import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DEFAULT_RETRY_POLICY,
  DEFAULT_RETRY_SCHEDULE_MS,
  longestRetryWait,
  MAX_RETRY_WAIT_MS,
  type RetryPolicy,
  retryDelay,
} from './retry-policy.ts'

const middle = () => 0.5
const lowest = () => 0
const highest = () => 0.999_999

describe('retryDelay', () => {
  it('follows the default schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    assert.deepEqual(
      DEFAULT_RETRY_SCHEDULE_MS.map((_, failures) =>
        retryDelay(DEFAULT_RETRY_POLICY, failures, undefined, middle),
      ),
      [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
    )
  })

  it('gives up when the schedule is used up: the delivery is dead-lettered', () => {
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY, 8, undefined, middle), undefined)
    const short: RetryPolicy = { scheduleMs: [10], jitter: 0, maxRetryAfterMs: 1000 }
    assert.equal(retryDelay(short, 0, undefined, middle), 10)
    assert.equal(retryDelay(short, 1, undefined, middle), undefined)
  })

  it('spreads each wait by the jitter, both ways, and never below zero', () => {
    const waits = [lowest, middle, highest].map((random) =>
      retryDelay(DEFAULT_RETRY_POLICY, 2, undefined, random),
    )
    assert.deepEqual(waits, [240_000, 300_000, 360_000])
    for (let i = 0; i < 200; i++) {
      const wait = retryDelay(DEFAULT_RETRY_POLICY, 1, undefined, Math.random) ?? -1
      assert.ok(wait >= 4_000 && wait <= 6_000, String(wait))
    }
    // "Immediately" stays immediate whatever the jitter.
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY, 0, undefined, highest), 0)
  })

  it('waits at least as long as Retry-After asked, up to the policy cap', () => {
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY, 0, 30_000, middle), 30_000)
    // A shorter Retry-After does not shorten the schedule's wait.
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY, 2, 1_000, middle), 300_000)
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 0, 365 * 86_400_000, middle),
      DEFAULT_RETRY_POLICY.maxRetryAfterMs,
    )
    // Retry-After does not extend the schedule: exhausted is exhausted.
    assert.equal(retryDelay(DEFAULT_RETRY_POLICY, 8, 1_000, middle), undefined)
  })

  it('never waits longer than 7 days, however long the step or Retry-After, so the next attempt is a date', () => {
    const now = Date.parse('2026-11-22T10:00:00Z')
    const huge: RetryPolicy = { scheduleMs: [8.64e15, 0], jitter: 0.2, maxRetryAfterMs: 8.64e15 }
    for (const [failures, retryAfterMs] of [
      [0, undefined],
      [1, 1e18],
      [1, Number.POSITIVE_INFINITY],
    ] as const) {
      const wait = retryDelay(huge, failures, retryAfterMs, highest)
      assert.equal(wait, MAX_RETRY_WAIT_MS)
      assert.ok(Number.isFinite(new Date(now + (wait ?? 0)).getTime()))
    }
    assert.equal(MAX_RETRY_WAIT_MS, 7 * 86_400_000)
  })
})

describe('longestRetryWait', () => {
  it('is the longest wait retryDelay gives: the longest step at the most jitter, or the longest Retry-After', () => {
    assert.equal(longestRetryWait(DEFAULT_RETRY_POLICY), 43_200_000)
    const policies: RetryPolicy[] = [
      DEFAULT_RETRY_POLICY,
      { scheduleMs: [0, 400], jitter: 0, maxRetryAfterMs: 300 },
      { scheduleMs: [7], jitter: 0.3, maxRetryAfterMs: 1 },
      { scheduleMs: [0], jitter: 0, maxRetryAfterMs: 60_000 },
      { scheduleMs: [30 * 86_400_000], jitter: 0.2, maxRetryAfterMs: 0 },
    ]
    for (const policy of policies) {
      const longest = longestRetryWait(policy)
      for (let failures = 0; failures < policy.scheduleMs.length; failures++)
        for (const random of [lowest, middle, highest])
          for (const retryAfter of [undefined, 0, policy.maxRetryAfterMs, 2 * policy.maxRetryAfterMs + 1])
            assert.ok(
              (retryDelay(policy, failures, retryAfter, random) ?? 0) <= longest,
              JSON.stringify(policy),
            )
    }
    assert.equal(longestRetryWait({ scheduleMs: [0, 400], jitter: 0, maxRetryAfterMs: 300 }), 400)
    assert.equal(longestRetryWait({ scheduleMs: [0], jitter: 0, maxRetryAfterMs: 60_000 }), 60_000)
    assert.equal(
      longestRetryWait({ scheduleMs: [30 * 86_400_000], jitter: 0.2, maxRetryAfterMs: 0 }),
      MAX_RETRY_WAIT_MS,
    )
  })
})
