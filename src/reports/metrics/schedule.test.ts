import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { openLateNotes } from './late-notes.ts'
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

  it('records every boundary a late timer or a long recording spanned, not only the latest', async () => {
    // The clock runs ten times faster than the timers: each timer fires boundaries late.
    const start = Date.now()
    const clock = () => start + (Date.now() - start) * 10
    const recorded: number[] = []
    const { logger } = quietLogger()
    const schedule = startMetricsSchedule({
      record: async (instant) => void recorded.push(instant),
      intervalSeconds: 1,
      lag: async () => 0,
      clock,
      logger,
      settleMs: 0,
      retryMs: 10,
    })
    await sleep(1_300)
    await schedule.stop()
    assert.ok(recorded.length >= 5, `${recorded.length} points`)
    for (let i = 1; i < recorded.length; i++)
      assert.equal((recorded[i] as number) - (recorded[i - 1] as number), 1_000, 'every boundary, in order')
  })

  it('keeps the latest boundaries when more fall due than it may hold, and says so', async () => {
    const start = 1_700_000_000_000
    let now = start
    const recorded: number[] = []
    const dropped: unknown[] = []
    const logger = (_level: string, event: string, fields?: object) => {
      if (event === 'reports.metrics_dropped') dropped.push(fields)
    }
    let lagSeconds = 0
    const schedule = startMetricsSchedule({
      record: async (instant) => void recorded.push(instant),
      intervalSeconds: 1,
      lag: async () => lagSeconds,
      clock: () => now,
      logger,
      settleMs: 0,
      retryMs: 10,
      maxDue: 5,
    })
    await sleep(30)
    assert.deepEqual(recorded, [start])
    lagSeconds = 1e9 // the projection stalls while twenty boundaries pass
    now = start + 20_000
    await sleep(1_100) // the timer set for the next boundary fires
    lagSeconds = 0
    await sleep(60)
    await schedule.stop()
    assert.deepEqual(
      recorded.slice(1),
      [16, 17, 18, 19, 20].map((s) => start + s * 1_000),
      'the five latest boundaries, in order',
    )
    const iso = (s: number) => new Date(start + s * 1_000).toISOString()
    assert.deepEqual(dropped, [{ from: iso(1), to: iso(15), boundaries: 15 }])
  })

  it('records no boundary past the warehouse’s clock while its own is ahead, and goes on at once when it steps back', async () => {
    let skewMs = 0
    const recorded: number[] = []
    const { events, logger } = quietLogger()
    const schedule = startMetricsSchedule({
      record: async (instant) => void recorded.push(instant),
      intervalSeconds: 1,
      lag: async () => 0,
      clock: () => Date.now() + skewMs,
      now: async () => Date.now(),
      logger,
      settleMs: 50,
      retryMs: 50,
    })
    await sleep(1_100)
    skewMs = 60_000 // the clock steps a minute ahead
    await sleep(1_100)
    assert.ok(
      recorded.every((instant) => instant <= Date.now()),
      `a point of an instant still to come: ${recorded.map((i) => new Date(i).toISOString())}`,
    )
    assert.ok(events.includes('reports.metrics_clock_stepped'))
    skewMs = 0 // and back
    const before = recorded.length
    const back = Date.now()
    await sleep(1_600)
    await schedule.stop()
    assert.ok(
      recorded.slice(before).some((instant) => instant >= back - 1_000),
      'records the boundaries it reaches after the step back',
    )
    assert.equal(events.filter((e) => e === 'reports.metrics_clock_stepped').length, 2)
  })

  it('names the boundaries still waiting when stopped', async () => {
    const logged: { event: string; fields?: object }[] = []
    const now = Date.parse('2026-01-01T11:00:00.500Z')
    const schedule = startMetricsSchedule({
      record: async () => undefined,
      intervalSeconds: 3600,
      lag: async () => 10, // the projector is 10 s behind 11:00
      clock: () => now,
      logger: (_level, event, fields) =>
        void logged.push({ event, ...(fields === undefined ? {} : { fields }) }),
      recorded: async () => [],
    })
    await sleep(30)
    await schedule.stop()
    const pending = logged.find((l) => l.event === 'reports.metrics_pending')
    assert.deepEqual(
      { ...pending?.fields, remedy: undefined },
      { from: '2026-01-01T11:00:00.000Z', to: '2026-01-01T11:00:00.000Z', boundaries: 1, remedy: undefined },
    )
  })

  describe('events projected after the boundaries they fall before were recorded', () => {
    const start = 1_700_000_000_000
    const iso = (ms: number) => new Date(ms).toISOString()
    /** A schedule of 1 s boundaries whose clock moves only when told, having recorded `start` to `start + 3 s`. */
    const recordedThrough3s = async (
      options: {
        correctBoundaries?: number
        correct?: (instant: number, accounts: readonly string[]) => Promise<void>
      } = {},
    ) => {
      let now = start
      const corrected: [number, string[]][] = []
      const logged: { event: string; fields?: object }[] = []
      const schedule = startMetricsSchedule({
        record: async () => undefined,
        correct:
          options.correct ??
          (async (instant, accounts) => {
            corrected.push([instant, [...accounts]])
          }),
        intervalSeconds: 1,
        lag: async () => 0,
        clock: () => now,
        logger: (_level, event, fields) =>
          void logged.push({ event, ...(fields === undefined ? {} : { fields }) }),
        settleMs: 0,
        retryMs: 10,
        ...(options.correctBoundaries === undefined ? {} : { correctBoundaries: options.correctBoundaries }),
      })
      await sleep(30)
      now = start + 3_000
      await sleep(1_100) // the timer set for the next boundary fires, and the three are recorded
      return { schedule, corrected, logged, of: (event: string) => logged.filter((l) => l.event === event) }
    }

    it('records again, for those accounts only, each boundary recorded since an event’s time', async () => {
      const { schedule, corrected, of } = await recordedThrough3s()
      schedule.projected(
        new Map([
          ['acme', start + 1_500],
          ['globex', start + 2_999],
          // After every recorded boundary: the next recording counts it anyway.
          ['initech', start + 3_001],
        ]),
      )
      await sleep(100)
      await schedule.stop()
      assert.deepEqual(corrected, [
        [start + 2_000, ['acme']],
        [start + 3_000, ['acme', 'globex']],
      ])
      assert.deepEqual(
        of('reports.metrics_corrected').map((l) => l.fields),
        [{ from: iso(start + 2_000), to: iso(start + 3_000), boundaries: 2, accounts: ['acme', 'globex'] }],
      )
      assert.deepEqual(of('reports.metrics_late_uncorrected'), [])
    })

    it('records again only the latest boundaries it may, and names the older ones for a backfill', async () => {
      const { schedule, corrected, of } = await recordedThrough3s({ correctBoundaries: 2 })
      // Before the first boundary this schedule recorded, too: another run recorded those.
      schedule.projected(new Map([['acme', start - 1_500]]))
      await sleep(100)
      await schedule.stop()
      assert.deepEqual(corrected, [
        [start + 2_000, ['acme']],
        [start + 3_000, ['acme']],
      ])
      const [warning] = of('reports.metrics_late_uncorrected')
      assert.deepEqual(
        { ...warning?.fields, remedy: undefined },
        {
          from: iso(start - 1_000),
          to: iso(start + 1_000),
          boundaries: 3,
          accounts: ['acme'],
          remedy: undefined,
        },
      )
      assert.match(
        String((warning?.fields as { remedy?: string } | undefined)?.remedy),
        /POST \/v1\/reports\/metrics\/backfill/,
      )
    })

    it('tries a correction that failed again, and names what it could not record when stopped', async () => {
      let failures = 2
      const corrected: [number, string[]][] = []
      const { schedule, of } = await recordedThrough3s({
        correct: async (instant, accounts) => {
          if (failures-- > 0) throw new Error('warehouse unavailable')
          corrected.push([instant, [...accounts]])
        },
      })
      schedule.projected(new Map([['acme', start + 2_500]]))
      await sleep(100)
      assert.equal(of('reports.metrics_correction_failed').length, 2)
      assert.deepEqual(corrected, [[start + 3_000, ['acme']]])

      failures = Number.POSITIVE_INFINITY
      schedule.projected(new Map([['globex', start + 1_000]]))
      await schedule.stop()
      const [unrecorded] = of('reports.metrics_late_uncorrected')
      assert.deepEqual(
        { ...unrecorded?.fields, remedy: undefined },
        {
          from: iso(start + 1_000),
          to: iso(start + 3_000),
          boundaries: 3,
          accounts: ['globex'],
          remedy: undefined,
        },
      )
    })

    describe('kept on disk', () => {
      const dir = mkdtempSync(join(tmpdir(), 'herald-late-notes-'))
      after(() => rmSync(dir, { recursive: true, force: true }))
      /** What the file holds, read as the next start-up would. */
      const stored = (path: string) => {
        const notes = openLateNotes(path)
        try {
          return notes.read()
        } finally {
          notes.close()
        }
      }
      /** A schedule that recorded `start` to `start + 3 s` before it started, its clock just after. */
      const restarted = (
        path: string,
        correct: (instant: number, accounts: readonly string[]) => Promise<void>,
        logger: (level: string, event: string, fields?: object) => void = () => {},
      ) =>
        startMetricsSchedule({
          record: async () => undefined,
          correct,
          recorded: async () => [start + 3_000, start + 2_000, start + 1_000, start],
          notes: openLateNotes(path),
          intervalSeconds: 1,
          lag: async () => 0,
          clock: () => start + 3_500,
          logger,
          settleMs: 0,
          retryMs: 10,
        })

      it('corrects at start-up what a run that crashed before or during its correction had noted', async () => {
        const path = join(dir, 'crashed.sqlite')
        // The run that crashed: its correction never ended, nor did it stop.
        const crashed = restarted(path, () => new Promise(() => {}))
        await sleep(30)
        crashed.projected(new Map([['acme', start + 1_500]]))
        assert.deepEqual(stored(path), new Map([['acme', start + 1_500]]), 'on disk at once')
        await sleep(50)

        const corrected: [number, string[]][] = []
        const schedule = restarted(path, async (instant, accounts) => {
          corrected.push([instant, [...accounts]])
        })
        await sleep(100)
        await schedule.stop()
        assert.deepEqual(corrected, [
          [start + 2_000, ['acme']],
          [start + 3_000, ['acme']],
        ])
        assert.deepEqual(stored(path), new Map(), 'removed once corrected')
      })

      it('keeps a note still waiting at stop, and one taken after, for the next start-up, and says so', async () => {
        const path = join(dir, 'stopped.sqlite')
        const logged: { event: string; fields?: object }[] = []
        const schedule = restarted(
          path,
          async () => {
            throw new Error('warehouse unavailable')
          },
          (_level, event, fields) => void logged.push({ event, ...(fields === undefined ? {} : { fields }) }),
        )
        await sleep(30)
        schedule.projected(new Map([['acme', start + 1_500]]))
        await sleep(50)
        await schedule.stop()
        // What a failed correction left: from its first boundary on.
        const [warning] = logged.filter((l) => l.event === 'reports.metrics_late_uncorrected')
        assert.deepEqual(warning?.fields, {
          from: iso(start + 2_000),
          to: iso(start + 3_000),
          boundaries: 2,
          accounts: ['acme'],
          remedy: 'corrected at the next start-up',
        })
        assert.deepEqual(stored(path), new Map([['acme', start + 2_000]]))
        // A batch the consumers finish after the schedule stopped: its notes are kept too, none
        // replacing an earlier one.
        schedule.projected(
          new Map([
            ['acme', start + 2_900],
            ['globex', start + 1_200],
          ]),
        )
        assert.deepEqual(
          stored(path),
          new Map([
            ['acme', start + 2_000],
            ['globex', start + 1_200],
          ]),
        )
      })
    })
  })
})
