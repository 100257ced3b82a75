import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isValidationError } from '../../errors/index.ts'
import { silentLogger } from '../../observability/index.ts'
import { BackfillRunningError, createBackfillRunner } from './backfill.ts'

describe('metric backfill runner', () => {
  it('checks a request’s range before whether a backfill runs, so a bad one is a 400 naming its field either way', async () => {
    let finish = () => {}
    const backfills = createBackfillRunner({
      // A recording that waits until the test lets it end: the first backfill keeps running.
      recorder: { backfill: () => new Promise<number>((resolve) => (finish = () => resolve(1))) },
      intervalSeconds: 3600,
      logger: silentLogger,
      clock: () => Date.parse('2026-11-24T00:00:00Z'),
    })
    backfills.start(Date.parse('2026-11-20T00:00:00Z'), Date.parse('2026-11-21T00:00:00Z'))
    assert.equal(backfills.status().state, 'running')
    assert.throws(
      () => backfills.start(Date.parse('2026-11-22T00:00:00Z'), Date.parse('2026-11-21T00:00:00Z')),
      (error: unknown) => isValidationError(error) && error.issues[0]?.path === 'end',
    )
    assert.throws(
      () => backfills.start(Date.parse('2026-11-20T00:00:00Z'), Date.parse('2026-11-21T00:00:00Z')),
      BackfillRunningError,
    )
    finish()
    await backfills.stop()
  })
})
