import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ValidationError } from '../../../src/errors/index.ts'
import {
  OutboundBlockedError,
  OutboundRequestError,
  OutboundTimeoutError,
  OutboundUnresolvableError,
} from '../../../src/outbound/index.ts'
import {
  abortError,
  failureFromError,
  failureFromStatus,
  kindOfStatus,
  parseRetryAfter,
  RedirectNotFollowedError,
} from './classify.ts'

const now = Date.parse('2026-11-22T10:00:00Z')

describe('parseRetryAfter', () => {
  const cases: [value: string | null | undefined, expected: number | undefined][] = [
    ['120', 120_000],
    [' 0 ', 0],
    ['Sun, 22 Nov 2026 10:00:30 GMT', 30_000],
    ['Sunday, 22-Nov-26 10:01:00 GMT', 60_000],
    ['Sun Nov 22 10:00:05 2026', 5_000],
    ['Sun, 22 Nov 2026 09:59:00 GMT', 0],
    // Repeated (Headers.get joins the values): the longest wait.
    ['3600, 3600', 3_600_000],
    ['30,120', 120_000],
    ['30, soon', undefined],
    ['30,', undefined],
    ['-5', undefined],
    ['1.5', undefined],
    ['soon', undefined],
    ['2026-11-22', undefined],
    ['', undefined],
    [null, undefined],
    [undefined, undefined],
  ]
  for (const [value, expected] of cases) {
    it(`reads ${JSON.stringify(value)} as ${expected}`, () => {
      assert.equal(parseRetryAfter(value, now), expected)
    })
  }
})

describe('kindOfStatus', () => {
  const table: [number, string][] = [
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [422, 'permanent'],
    [301, 'permanent'],
    [410, 'gone'],
    [408, 'permanent'],
    [425, 'permanent'],
    [429, 'retriable'],
    [500, 'retriable'],
    [502, 'retriable'],
    [503, 'retriable'],
    [504, 'retriable'],
  ]
  for (const [status, kind] of table)
    it(`${status} is ${kind}`, () => assert.equal(kindOfStatus(status), kind))
})

describe('failureFromStatus', () => {
  it('carries Retry-After on a retriable answer, with the service detail', () => {
    const failure = failureFromStatus(429, new Headers({ 'retry-after': '7' }), now, 'rate_limited')
    assert.deepEqual(failure, {
      kind: 'retriable',
      code: 'rate_limited',
      status: 429,
      error: 'HTTP 429: rate_limited',
      retryAfterMs: 7000,
    })
  })

  it('ignores Retry-After on a final answer, and calls 410 gone', () => {
    assert.deepEqual(failureFromStatus(410, new Headers({ 'retry-after': '7' }), now), {
      kind: 'gone',
      code: 'gone',
      status: 410,
      error: 'HTTP 410',
    })
  })
})

describe('failureFromError', () => {
  it("classifies the SSRF guard's errors, also when a vendor client wrapped them", () => {
    const wrap = (error: Error) =>
      Object.assign(new Error('HttpError: request failed'), { cause: error, status: 500 })
    assert.deepEqual(failureFromError(wrap(new OutboundTimeoutError('hooks.example.com', 1000))), {
      kind: 'retriable',
      code: 'timeout',
      status: null,
      error: 'the notification target did not answer within 1000 ms',
    })
    assert.equal(failureFromError(new OutboundBlockedError({ reason: 'loopback' })).kind, 'permanent')
    assert.equal(failureFromError(new OutboundBlockedError({ reason: 'loopback' })).code, 'blocked')
    const refused = failureFromError(
      wrap(new OutboundRequestError('h', Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))),
    )
    assert.deepEqual(
      [refused.kind, refused.code, refused.error],
      ['retriable', 'network', 'the request to the notification target failed (ECONNREFUSED)'],
    )
    const tls = failureFromError(
      new OutboundRequestError('h', Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })),
    )
    assert.deepEqual([tls.kind, tls.code], ['permanent', 'tls'])
    assert.equal(failureFromError(new OutboundUnresolvableError('h', new Error('x'))).kind, 'retriable')
  })

  it('a redirect, a validation error and a bug are permanent; an abort is retriable', () => {
    assert.deepEqual(failureFromError(new RedirectNotFollowedError(302)), {
      kind: 'permanent',
      code: 'redirect',
      status: 302,
      error: 'the endpoint answered HTTP 302 (a redirect), which Herald does not follow',
    })
    const invalid = failureFromError(
      new ValidationError('bad', [{ path: 'secret', message: 'must start with whsec_' }]),
    )
    assert.deepEqual(
      [invalid.kind, invalid.code, invalid.error],
      ['permanent', 'configuration', 'bad: secret must start with whsec_'],
    )
    assert.deepEqual(failureFromError(new TypeError('x is undefined')), {
      kind: 'permanent',
      code: 'internal',
      status: null,
      error: 'internal error: TypeError',
    })
    assert.equal(failureFromError(abortError(new Error('shutting down'))).code, 'aborted')
    assert.equal(failureFromError(abortError(new Error('shutting down'))).kind, 'retriable')
  })
})
