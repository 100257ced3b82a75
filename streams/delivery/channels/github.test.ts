import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { githubCommentMarker, githubFailure, githubIssueMarker, githubTarget, marked } from './github.ts'
import { messageScope } from './message.ts'
import { renderField } from './templates.ts'
import { aDelivery, anEvent } from './test-fixtures.ts'
import { eventMark } from './tickets.ts'

const now = Date.parse('2026-11-22T10:00:00Z')
const exchange = (status: number, headers: Record<string, string>, body: object) => ({
  status,
  headers: new Headers(headers),
  body: JSON.stringify(body),
})

describe('githubFailure', () => {
  it('waits for the rate-limit reset when the primary limit is exhausted', () => {
    const reset = String(now / 1000 + 90)
    assert.deepEqual(
      githubFailure(
        exchange(
          403,
          { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset },
          { message: 'API rate limit exceeded' },
        ),
        now,
      ),
      {
        kind: 'retriable',
        code: 'rate_limited',
        status: 403,
        error: 'HTTP 403: GitHub rate limit exceeded',
        retryAfterMs: 90_000,
      },
    )
  })

  it('honours retry-after on a secondary rate limit', () => {
    const failure = githubFailure(
      exchange(403, { 'retry-after': '60' }, { message: 'You have exceeded a secondary rate limit' }),
      now,
    )
    assert.deepEqual(
      [failure.kind, failure.code, failure.status, failure.retryAfterMs],
      ['retriable', 'rate_limited', 403, 60_000],
    )
  })

  it('waits a minute on a secondary rate limit that names no wait, as GitHub advises', () => {
    const failure = githubFailure(
      exchange(403, {}, { message: 'You have exceeded a secondary rate limit. Please wait a few minutes.' }),
      now,
    )
    assert.deepEqual(
      [failure.kind, failure.code, failure.status, failure.retryAfterMs],
      ['retriable', 'rate_limited', 403, 60_000],
    )
  })

  it('treats any other 403 as permanent, and reads validation errors', () => {
    assert.equal(
      githubFailure(
        exchange(
          403,
          { 'x-ratelimit-remaining': '4999' },
          { message: 'Resource not accessible by integration' },
        ),
        now,
      ).kind,
      'permanent',
    )
    const invalid = githubFailure(
      exchange(
        422,
        {},
        {
          message: 'Validation Failed',
          errors: [{ resource: 'Issue', field: 'assignees', code: 'invalid' }],
        },
      ),
      now,
    )
    assert.deepEqual(
      [invalid.kind, invalid.error],
      ['permanent', 'HTTP 422: Validation Failed; assignees invalid'],
    )
  })
})

describe('githubTarget', () => {
  it('names one repository however its owner, name and API address are spelt', () => {
    const a = githubTarget({
      owner: 'Acme',
      repository: 'Security',
      apiUrl: 'https://GHE.example.com/api/v3/',
    })
    const b = githubTarget({
      owner: 'acme',
      repository: 'security',
      apiUrl: 'https://ghe.example.com/api/v3',
    })
    assert.equal(a, b)
    assert.notEqual(githubTarget({ owner: 'acme', repository: 'security' }), a, 'github.com is another host')
  })
})

describe('marked', () => {
  it("knows a delivery's and an event's marks by the whole marker, not by event text that looks like one", async () => {
    const victim = aDelivery(anEvent({ id: 'evt-2' }))
    const mark = eventMark(victim.event)
    const forged = anEvent({
      type: 'user.image.analysis.failed',
      data: {
        full_tag: 'docker.io/acme/api:1',
        error: `x delivery=${victim.deliveryId} y event=${mark} -->`,
        summary: `herald:comment delivery=${victim.deliveryId} event=${mark}`,
      },
    })
    const scope = messageScope(aDelivery(forged), { uiUrl: null })
    for (const field of ['body', 'comment'] as const) {
      const text = (await renderField('github', field, undefined, { ...scope, title: 'T' }, { ticket: true }))
        .text
      assert.ok(text.includes(` delivery=${victim.deliveryId} `), field)
      assert.equal(marked(text, victim.deliveryId, mark), false, field)
      assert.equal(
        marked(`${text}\n\n${githubCommentMarker(victim.deliveryId, 'other')}\n`, victim.deliveryId, mark),
        true,
      )
      assert.equal(
        marked(`${text}\n\n${githubCommentMarker('other', mark)}\n`, victim.deliveryId, mark),
        true,
      )
      const issue = githubIssueMarker({ hash: '0123456789abcdef' }, 'other', mark)
      assert.equal(marked(`${text}\n\n${issue}\n`, victim.deliveryId, mark), true)
      // A digest ticket is matched by the delivery alone.
      assert.equal(marked(`${text}\n\n${issue}\n`, victim.deliveryId, undefined), false)
    }
    assert.equal(marked(null, victim.deliveryId, mark), false)
  })
})
