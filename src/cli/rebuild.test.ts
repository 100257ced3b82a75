import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { progressLine } from './rebuild.ts'

const status = {
  state: 'catching_up',
  replayed: 1_200,
  total: 5_000,
  percent: 24,
  etaSeconds: 40,
  error: null,
}

describe('herald rebuild-reports progress lines', () => {
  it('print the events replayed of the total, the share done and about how long is left', () => {
    assert.equal(progressLine(status), 'catching_up: 1200 of 5000 events replayed (24%, about 40 s left)\n')
    assert.equal(
      progressLine({ ...status, state: 'swapping', replayed: 4_990, percent: 99.8, etaSeconds: 5_430 }),
      'swapping: 4990 of 5000 events replayed (99.8%, about 1 h 30 min left)\n',
    )
    assert.equal(
      progressLine({ ...status, etaSeconds: 90 }),
      'catching_up: 1200 of 5000 events replayed (24%, about 1 min 30 s left)\n',
    )
  })

  it('print the count alone until the total is known, and no time left once it ended', () => {
    assert.equal(
      progressLine({ ...status, replayed: 0, total: null, percent: null, etaSeconds: null }),
      'catching_up: 0 events replayed\n',
    )
    assert.equal(
      progressLine({ ...status, state: 'done', replayed: 5_000, percent: 100, etaSeconds: 0 }),
      'done: 5000 of 5000 events replayed (100%)\n',
    )
    assert.equal(
      progressLine({ ...status, state: 'failed', error: 'Herald is shutting down' }),
      'failed: 1200 of 5000 events replayed (24%) (Herald is shutting down)\n',
    )
  })
})
