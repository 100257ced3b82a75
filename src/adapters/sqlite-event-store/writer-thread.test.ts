import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ExpectedRevisionConflictError, ValidationError } from '../../errors/index.ts'
import { flattenAnswers, flattenRequests, unflattenAnswers, unflattenRequests } from './writer-thread.ts'
import type { WriteRequest } from './writing.ts'

describe('what crosses to the writer thread', () => {
  it('gives back the requests it flattened, every kind of expectation and count included', () => {
    const event = (n: number) => ({ id: `e-${n}`, type: 'T', data: `{"n":${n}}`, metadata: '{}' })
    const requests: { id: number; request: WriteRequest }[] = [
      {
        id: 1,
        request: {
          operation: 'append',
          recordedAt: 1_700_000_000_000,
          appends: [{ stream: 's-1', expected: 3, events: [event(1), event(2)] }],
        },
      },
      {
        id: 2,
        request: {
          operation: 'appendMany',
          recordedAt: 1_700_000_000_001,
          appends: [
            { stream: 's-2', expected: 'no_stream', events: [event(3)] },
            { stream: 's-3', expected: 'any', events: [] },
            { stream: 's-4', expected: 'stream_exists', events: [event(4)] },
            { stream: 's-5', expected: 0, events: [event(5)] },
          ],
        },
      },
    ]
    const flat = flattenRequests(requests)
    assert.ok(flat.every((v) => typeof v === 'string' || typeof v === 'number'))
    assert.deepEqual(unflattenRequests(structuredClone(flat)), requests)
  })

  it('gives back results and the errors they stand for', () => {
    const flat = flattenAnswers(
      [7, 8, 9],
      [
        {
          ok: true,
          results: [
            { nextExpectedRevision: 0, position: 12 },
            { nextExpectedRevision: 4, position: 13 },
          ],
        },
        { ok: false, error: new ExpectedRevisionConflictError({ stream: 's', expected: 1, actual: 2 }) },
        { ok: false, error: new ValidationError('bad', [{ path: 'events[0].id', message: 'reused' }]) },
      ],
    )
    const [first, second, third] = unflattenAnswers(structuredClone(flat))
    assert.deepEqual(first, {
      id: 7,
      answer: {
        ok: true,
        results: [
          { nextExpectedRevision: 0, position: 12 },
          { nextExpectedRevision: 4, position: 13 },
        ],
      },
    })
    assert.equal(second?.id, 8)
    assert.ok(second?.answer.ok === false && second.answer.error instanceof ExpectedRevisionConflictError)
    assert.deepEqual(second.answer.error.context, { stream: 's', expected: 1, actual: 2 })
    assert.equal(third?.id, 9)
    assert.ok(third?.answer.ok === false && third.answer.error instanceof ValidationError)
    assert.deepEqual(third.answer.error.issues, [{ path: 'events[0].id', message: 'reused' }])
  })
})
