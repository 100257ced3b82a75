import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rebuildProgress } from './rebuild.ts'

describe('rebuildProgress', () => {
  it('gives the share replayed and the time left at the rate so far', () => {
    assert.deepEqual(rebuildProgress(2_500, 10_000, 5_000), {
      replayed: 2_500,
      total: 10_000,
      percent: 25,
      etaSeconds: 15,
    })
  })

  it('rounds the share down to a tenth, never showing 100 before the end, and the time left up', () => {
    assert.deepEqual(rebuildProgress(9_999, 10_000, 1_000), {
      replayed: 9_999,
      total: 10_000,
      percent: 99.9,
      etaSeconds: 1,
    })
    assert.equal(rebuildProgress(1, 3, 1_000).percent, 33.3)
  })

  it('knows no time left before anything was replayed, and none once everything was', () => {
    assert.deepEqual(rebuildProgress(0, 10_000, 2_000), {
      replayed: 0,
      total: 10_000,
      percent: 0,
      etaSeconds: null,
    })
    assert.deepEqual(rebuildProgress(10_000, 10_000, 2_000), {
      replayed: 10_000,
      total: 10_000,
      percent: 100,
      etaSeconds: 0,
    })
  })

  it('is done at once when there is nothing to replay', () => {
    assert.deepEqual(rebuildProgress(0, 0, 0), { replayed: 0, total: 0, percent: 100, etaSeconds: 0 })
  })
})
