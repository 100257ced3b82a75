import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ValidationError } from '../errors/index.ts'
import { toProblem } from './problem.ts'

describe('toProblem', () => {
  it('answers a recursion too deep for the stack (input nested thousands deep) as a 400 on the body', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)])
    let overflow: unknown
    try {
      nest(1_000_000)
    } catch (error) {
      overflow = error
    }
    assert.deepEqual(toProblem(overflow, '/v1/x'), {
      type: 'urn:herald:problem:validation_failed',
      title: 'Bad Request',
      status: 400,
      code: 'validation_failed',
      detail: 'the request is nested too deeply to be processed',
      instance: '/v1/x',
      errors: [{ path: '(body)', message: 'is nested too deeply' }],
    })
    // Any other RangeError is still an internal error, and Herald's own keep their status.
    assert.equal(toProblem(new RangeError('Invalid time value')).status, 500)
    assert.equal(toProblem(new ValidationError('bad', [])).status, 400)
  })
})
