import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isValidationError } from '../../errors/index.ts'
import { silentLogger } from '../../observability/index.ts'
import { BackfillRunningError, createBackfillRunner, ProjectionBehindError } from './backfill.ts'

const at = (iso: string) => Date.parse(iso)

describe('metric backfill runner', () => {
  it('checks a request’s range before whether a backfill runs, so a bad one is a 400 naming its field either way', async () => {
    let finish = () => {}
    const backfills = createBackfillRunner({
      // A recording that waits until the test lets it end: the first backfill keeps running.
      recorder: { backfill: () => new Promise<number>((resolve) => (finish = () => resolve(1))) },
      intervalSeconds: 3600,
      logger: silentLogger,
      clock: () => at('2026-11-24T00:00:00Z'),
    })
    await backfills.start(at('2026-11-20T00:00:00Z'), at('2026-11-21T00:00:00Z'))
    assert.equal(backfills.status().state, 'running')
    await assert.rejects(
      backfills.start(at('2026-11-22T00:00:00Z'), at('2026-11-21T00:00:00Z')),
      (error: unknown) => isValidationError(error) && error.issues[0]?.path === 'end',
    )
    await assert.rejects(
      backfills.start(at('2026-11-20T00:00:00Z'), at('2026-11-21T00:00:00Z')),
      BackfillRunningError,
    )
    finish()
    await backfills.stop()
  })

  it('refuses a range ending after what the report tables hold, which would miss the events still waiting', async () => {
    let lagSeconds = 3_600 // an hour of events waits: data ingress off, say
    const recorded: number[] = []
    const backfills = createBackfillRunner({
      recorder: {
        backfill: async (instant) => {
          recorded.push(instant)
          return 1
        },
      },
      intervalSeconds: 3600,
      logger: silentLogger,
      clock: () => at('2026-11-24T12:00:00Z'),
      lag: async () => lagSeconds,
    })
    await assert.rejects(
      backfills.start(at('2026-11-24T10:00:00Z'), at('2026-11-24T11:30:00Z')),
      (error: unknown) =>
        error instanceof ProjectionBehindError && /up to 2026-11-24T10:59:59\.000Z only/.test(error.message),
    )
    assert.deepEqual(recorded, [])
    // Before it: taken.
    await backfills.start(at('2026-11-24T09:00:00Z'), at('2026-11-24T10:00:00Z'))
    lagSeconds = 0
    await backfills.stop()
    assert.deepEqual(recorded, [at('2026-11-24T09:00:00Z'), at('2026-11-24T10:00:00Z')])
  })
})
