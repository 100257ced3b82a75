import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startMetricsSchedule } from './schedule.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const quietLogger = () => {
  const events: string[] = []
  return { events, logger: (_level: string, event: string) => void events.push(event) }
}

describe('startMetricsSchedule', () => {
  it('records each boundary once the projection has passed it, in order, none skipped', async () => {
    let lagSeconds = 60 // the projector is a minute behind
    const recorded: number[] = []
    const { events, logger } = quietLogger()
    const schedule = startMetricsSchedule({
      record: async (instant) => void recorded.push(instant),
      intervalSeconds: 1,
      lag: async () => lagSeconds,
      clock: Date.now,
      logger,
      settleMs: 50,
      retryMs: 50,
    })
    await sleep(2_300)
    // Two boundaries have passed (and the one at start-up), none recorded while behind.
    assert.equal(recorded.length, 0)
    assert.ok(events.includes('reports.metrics_waiting'))
    lagSeconds = 0 // caught up
    await sleep(300)
    await schedule.stop()
    assert.ok(recorded.length >= 3, `${recorded.length} points`)
    for (let i = 1; i < recorded.length; i++)
      assert.equal((recorded[i] as number) - (recorded[i - 1] as number), 1_000, 'every boundary, in order')
    assert.ok(recorded.every((instant) => instant % 1_000 === 0))
  })

  it('tries a recording that failed again instead of skipping its instant', async () => {
    let failures = 2
    const recorded: number[] = []
    const { events, logger } = quietLogger()
    const schedule = startMetricsSchedule({
      record: async (instant) => {
        if (failures-- > 0) throw new Error('warehouse unavailable')
        recorded.push(instant)
      },
      intervalSeconds: 3_600,
      lag: async () => 0,
      clock: Date.now,
      logger,
      settleMs: 0,
      retryMs: 20,
    })
    await sleep(200)
    await schedule.stop()
    assert.equal(events.filter((e) => e === 'reports.metrics_failed').length, 2)
    assert.deepEqual(recorded, [Math.floor(Date.now() / 3_600_000) * 3_600_000])
  })
})
