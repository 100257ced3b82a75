import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { causeChain, clipped } from './index.ts'

describe('clipped', () => {
  it('gives back a value of up to 64 characters whole', () => {
    assert.equal(clipped(''), '')
    assert.equal(clipped('x'.repeat(64)), 'x'.repeat(64))
  })

  it('gives the first 64 characters of a longer value and an ellipsis', () => {
    assert.equal(clipped('x'.repeat(65)), `${'x'.repeat(64)}…`)
    assert.equal(clipped('y'.repeat(10_000)), `${'y'.repeat(64)}…`)
  })

  it('counts characters, never cutting one written as two UTF-16 units in half', () => {
    assert.equal(clipped('😀'.repeat(64)), '😀'.repeat(64))
    assert.equal(clipped(`a${'😀'.repeat(64)}`), `a${'😀'.repeat(63)}…`)
  })
})

describe('causeChain', () => {
  it('names each cause under an error, outermost first, an AggregateError with the errors it holds', () => {
    const refused = new AggregateError(
      [new Error('connect ECONNREFUSED ::1:2113'), new Error('connect ECONNREFUSED 127.0.0.1:2113')],
      '',
    )
    const error = new Error('event store readAll', {
      cause: new TypeError('fetch failed', { cause: refused }),
    })
    assert.deepEqual(causeChain(error), [
      'TypeError: fetch failed',
      'AggregateError (connect ECONNREFUSED ::1:2113; connect ECONNREFUSED 127.0.0.1:2113)',
    ])
    assert.deepEqual(causeChain(new Error('alone')), [])
    assert.deepEqual(causeChain('not an error'), [])
  })

  it('stops at a cycle and after `depth` causes', () => {
    const a = new Error('a')
    const b = new Error('b', { cause: a })
    Object.assign(a, { cause: b })
    assert.deepEqual(causeChain(a), ['Error: b'])
    let deep = new Error('0')
    for (let i = 1; i <= 10; i++) deep = new Error(String(i), { cause: deep })
    assert.deepEqual(causeChain(deep, 3), ['Error: 9', 'Error: 8', 'Error: 7'])
  })
})
