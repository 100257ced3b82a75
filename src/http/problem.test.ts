import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ValidationError } from '../errors/index.ts'
import { toProblem } from './problem.ts'

describe('toProblem', () => {
  it('answers a recursion too deep for the stack as an internal error: only a body’s reader may blame the request', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)])
    let overflow: unknown
    try {
      nest(1_000_000)
    } catch (error) {
      overflow = error
    }
    assert.ok(overflow instanceof RangeError)
    assert.deepEqual(toProblem(overflow, '/v1/x'), {
      type: 'urn:herald:problem:internal',
      title: 'Internal Server Error',
      status: 500,
      code: 'internal',
      detail: 'an internal error occurred; see the server log',
      instance: '/v1/x',
    })
    assert.equal(toProblem(new RangeError('Invalid time value')).status, 500)
    // What a body's reader makes of one keeps its status and names the part nested too deeply.
    const refused = toProblem(
      new ValidationError('too deep', [{ path: 'sample[0].data', message: 'is nested too deeply' }]),
    )
    assert.deepEqual(
      [refused.status, refused.errors],
      [400, [{ path: 'sample[0].data', message: 'is nested too deeply' }]],
    )
  })
})
