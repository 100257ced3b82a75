import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createRateLimiter, rateLimitTarget } from './rate-limit.ts'

describe('createRateLimiter', () => {
  it('spaces requests to one target evenly: 60 a minute is one a second', () => {
    const limiter = createRateLimiter()
    assert.equal(limiter.take('slack:a', 60, 0), 0)
    assert.equal(limiter.take('slack:a', 60, 0), 1_000)
    assert.equal(limiter.take('slack:a', 60, 400), 600)
    assert.equal(limiter.take('slack:a', 60, 1_000), 0)
    assert.equal(limiter.take('slack:a', 60, 1_500), 500)
  })

  it('keeps targets apart, and 0 is no limit', () => {
    const limiter = createRateLimiter()
    assert.equal(limiter.take('slack:a', 60, 0), 0)
    assert.equal(limiter.take('slack:b', 60, 0), 0)
    for (let i = 0; i < 100; i++) assert.equal(limiter.take('webhook:c', 0, 0), 0)
  })

  it('holds a target until an endpoint-given time, even without a limit', () => {
    const limiter = createRateLimiter()
    limiter.holdUntil('webhook:c', 5_000)
    assert.equal(limiter.take('webhook:c', 0, 1_000), 4_000)
    assert.equal(limiter.take('webhook:c', 0, 5_000), 0)
    // An earlier hold does not shorten a later slot.
    assert.equal(limiter.take('slack:a', 1, 0), 0)
    limiter.holdUntil('slack:a', 10)
    assert.equal(limiter.take('slack:a', 1, 10), 59_990)
  })

  it('forgets targets whose slot has passed once it remembers too many', () => {
    const limiter = createRateLimiter({ maxTargets: 2 })
    for (const target of ['a', 'b', 'c']) assert.equal(limiter.take(target, 60, 0), 0)
    assert.equal(limiter.take('d', 60, 5_000), 0)
    // Forgotten targets get a slot at once, as they would have anyway.
    assert.equal(limiter.take('a', 60, 5_000), 0)
  })
})

describe('rateLimitTarget', () => {
  const base = { id: 'cfg', account: 'acme' }
  it('names the service unit the limit counts against, never its URL or token', () => {
    const url = 'https://hooks.slack.com/services/T000/B000/XXXXSECRET'
    const slack = rateLimitTarget({ ...base, endpoint: 'slack', webhookUrl: url })
    assert.match(slack, /^slack:[0-9a-f]{32}$/)
    assert.ok(!slack.includes('SECRET'))
    // Two configurations on one webhook share its limit; another webhook has its own.
    assert.equal(rateLimitTarget({ ...base, id: 'other', endpoint: 'slack', webhookUrl: url }), slack)
    assert.notEqual(rateLimitTarget({ ...base, endpoint: 'slack', webhookUrl: `${url}2` }), slack)
    const github = rateLimitTarget({
      ...base,
      endpoint: 'github',
      owner: 'o',
      repository: 'r',
      token: 'ghp_secret',
    })
    assert.ok(!github.includes('ghp_secret'))
    assert.equal(
      rateLimitTarget({ ...base, endpoint: 'github', owner: 'x', repository: 'y', token: 'ghp_secret' }),
      github,
      'GitHub limits by token',
    )
  })
})
