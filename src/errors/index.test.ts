import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { clipped } from './index.ts'

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
