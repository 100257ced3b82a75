import type { Logger } from '../../observability/index.ts'
import type { BoundaryClaim, BoundaryClaimResult } from './claims.ts'
import type { LateNotes } from './late-notes.ts'

/** How long past an instant events may still be appended with a time before it, by default. */
export const DEFAULT_SETTLE_MS = 1_000

export interface MetricsScheduleOptions {
  /**
   * Records every metric as of `instant` (a boundary), e.g. `MetricsRecorder.record`; with
   * `claim`, given the claim to check before it publishes.
   */
  readonly record: (instant: number, claim?: Pick<BoundaryClaim, 'assertHeld'>) => Promise<unknown>
  /**
   * For instances sharing the warehouse: claims each boundary before it is recorded
   * (`createBoundaryClaims`), so that one instance records and publishes it. A boundary
   * another instance records is waited for (tried again every `retryMs`), one it recorded is
   * skipped, and the events this instance's projector stored meanwhile with a time before it
   * are corrected as events projected late (`correct`). Absent: every boundary is recorded here.
   */
  readonly claim?: (instant: number) => Promise<BoundaryClaimResult>
  /** Seconds between boundaries: `reports.cycle_timers.metrics`. */
  readonly intervalSeconds: number
  /**
   * The projection lag in seconds (`createProjectionLag`): everything appended to the log
   * before now minus the lag is in the report tables.
   */
  readonly lag: () => Promise<number>
  readonly clock: () => number
  /**
   * The warehouse's own clock in milliseconds (`SELECT now64(3)`): no boundary after it is
   * recorded, so a process clock stepped ahead records no point of an instant still to come.
   * Absent: the process clock alone.
   */
  readonly now?: () => Promise<number>
  /** A clock that never steps (default `performance.now`), to tell `clock` stepping apart from time passing. */
  readonly monotonic?: () => number
  readonly logger: Logger
  /** How long past a boundary events may still be appended with a time before it (default 1 s). */
  readonly settleMs?: number
  /** How often a boundary waiting for the projection (or a failed recording) is tried again (default 5 s). */
  readonly retryMs?: number
  /**
   * How many boundaries may wait to be recorded (default 1,000): past that, the oldest are
   * dropped with a `reports.metrics_dropped` warning (`POST /v1/reports/metrics/backfill`
   * records them from history).
   */
  readonly maxDue?: number
  /**
   * Records the points of some accounts as of a boundary again, e.g. `MetricsRecorder.correct`:
   * for events projected after the boundary was recorded with a time before it. Absent, none is.
   */
  readonly correct?: (instant: number, accounts: readonly string[]) => Promise<unknown>
  /**
   * How many of the latest boundaries recorded may be recorded again for events projected late
   * (`reports.metric_corrections`, default 24); older ones are named in a
   * `reports.metrics_late_uncorrected` warning for a backfill. 0: none is.
   */
  readonly correctBoundaries?: number
  /**
   * The latest `limit` boundaries already recorded (by an earlier run, another instance or a
   * backfill), newest first, e.g. `MetricsRecorder.recorded`: read before anything is recorded,
   * so that events projected late are corrected at (or named for) those boundaries too. Absent:
   * none is known.
   */
  readonly recorded?: (limit: number) => Promise<readonly number[]>
  /**
   * Where the notes of late events wait to be corrected, e.g. `openLateNotes`: read at start,
   * and each note written before `projected` returns, so before the projector commits the events
   * it is about. A crash then loses none: the next start corrects them. Absent: kept in memory,
   * and those still waiting at `stop` are named for a backfill.
   */
  readonly notes?: LateNotes
}

export interface MetricsSchedule {
  /**
   * The projector stored events: each account's earliest instant they changed the history at
   * (`ProjectorOptions.onEventTimes`). The boundaries already recorded at or after it are
   * recorded again for the account, the latest `correctBoundaries` of them, within the retry
   * interval: the notes of that long are corrected together. With `notes`, a note is on disk
   * when this returns.
   */
  projected(earliest: ReadonlyMap<string, number>): void
  /**
   * Stops scheduling; waits for a recording in progress (the warehouse closes after this). The
   * boundaries still waiting are named in a `reports.metrics_pending` warning: the next start-up
   * records them (`recorded`); so are the notes not corrected yet
   * (`reports.metrics_late_uncorrected`), which the next start-up corrects when kept in `notes`.
   */
  stop(): Promise<void>
}

/** What to do about points recorded before events of before their instant were projected. */
const BACKFILL_REMEDY =
  'POST /v1/reports/metrics/backfill {start: from, end: to} (admin) records these boundaries again from history'

/**
 * Records a data point of every metric at start-up (as of each boundary since the latest one
 * recorded before, that one included, up to `maxDue`; with none, the latest) and at each
 * multiple of the interval after it, each once the projection has passed the boundary: a
 * point recorded while the projector still had events of before the boundary to project
 * would miss them. The values are computed as of the boundary from the history tables, so
 * recording late is exact. Boundaries wait in order, every one a late timer or a long
 * recording spanned included; a recording that fails is tried again, never skipped.
 *
 * An event may still be appended with a time before a boundary after the projection passed it
 * (a producer's backlog, a Kafka partition catching up). The projector says which accounts it
 * stored such events of (`projected`), and the boundaries this schedule recorded since their
 * time are recorded again for those accounts (`correct`): computed from history as of the
 * boundary, the new points are exact, and replace the old ones (`metric_points` keeps the
 * later recording of an instant). At most the latest `correctBoundaries` of the boundaries recorded
 * one after the other, those of earlier runs included (`recorded`, read at start); older ones
 * are logged as `reports.metrics_late_uncorrected` for a backfill.
 *
 * The projector commits the events a note is about once they are stored, so the notes not
 * corrected yet are kept in `notes` (written before `projected` returns, removed once their
 * boundaries are recorded again), and a start-up corrects those an earlier run left, whether
 * it stopped or crashed. In a deployment of several instances each keeps the notes of the
 * events its own projector stored; a correction computes the points from the shared history,
 * so one made twice (two instances, a crash partway through) writes the same values.
 *
 * Such instances each run a schedule, and with `claim` one records and publishes each
 * boundary: the others skip it once it is marked recorded. An instance's projector may store
 * events of before a boundary after another instance began recording it and before this
 * schedule learns it was: the events of before the boundaries another instance may have begun
 * recording are noted too (`recordableThrough`), and once the boundary is settled the notes
 * taken before its recording began are dropped, the others corrected.
 *
 * @example
 * const schedule = startMetricsSchedule({ record: recorder.record, intervalSeconds: 3600, lag, clock: Date.now, logger })
 * await schedule.stop()
 */
export const startMetricsSchedule = (options: MetricsScheduleOptions): MetricsSchedule => {
  const { record, clock, logger, lag } = options
  const intervalMs = options.intervalSeconds * 1000
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS
  const retryMs = options.retryMs ?? 5_000
  const maxDue = options.maxDue ?? 1_000
  const correctBoundaries = options.correct === undefined ? 0 : (options.correctBoundaries ?? 24)
  const monotonic = options.monotonic ?? (() => performance.now())
  /** How far `clock` may move other than time does before it counts as stepped. */
  const STEP_MS = 1_000
  const boundaryOf = (ms: number) => Math.floor(ms / intervalMs) * intervalMs
  /** The first boundary a point recorded as of an event's instant `ms` or later counts it in. */
  const boundaryFrom = (ms: number) => Math.ceil(ms / intervalMs) * intervalMs

  const due: number[] = []
  let lastQueued = Number.NEGATIVE_INFINITY
  let waitingFor: number | undefined
  /** The boundary last found being recorded by another instance (logged once). */
  let busyFor: number | undefined
  let timer: NodeJS.Timeout | undefined
  /** When the timer fires: a note of late events brings a later one forward. */
  let timerAt = Number.POSITIVE_INFINITY
  let running: Promise<void> = Promise.resolve()
  let busy = false
  let stopped = false
  /**
   * The boundaries recorded one after the other, the only ones this schedule records again:
   * through the latest whose recording began (which may have read the tables before a note's
   * events were stored), from the first after the last gap (boundaries dropped, or not recorded
   * while no run was), those recorded before start-up included (`recorded`).
   */
  let recordedThrough = Number.NEGATIVE_INFINITY
  let recordedFrom: number | undefined
  /** The latest boundary recorded before start-up: the first queued, with those after it. */
  let resumeFrom: number | undefined
  /** Whether the boundaries recorded before start-up are known (read once, tried again until then). */
  let loaded = options.recorded === undefined
  /** Each account's earliest instant of events projected after boundaries since were recorded. */
  const late = new Map<string, number>()
  /**
   * With `claim`: the accounts whose note in `late` falls after every boundary this schedule
   * knows recorded, before one another instance may be recording (`recordableThrough`), each
   * with the warehouse's clock read just after it was last noted (`now`; infinite without it,
   * or should the read fail), so at or after its events were stored. At that boundary the note
   * is dropped if its events are in its points (recorded here, or by another instance that
   * began reading after that), and corrected otherwise.
   */
  const provisional = new Map<string, Promise<number>>()
  /** The warehouse's clock minus `clock`, as last read (0 without `now`). */
  let skew = 0
  /**
   * The latest boundary whose recording may have begun, by this schedule or (with `claim`)
   * another instance: events stored with a time at or before it are noted for a correction.
   * Another instance records a boundary once the warehouse's clock is `settleMs` past it; the
   * margin is for the clock read here being off (the warehouse's as last read, and more).
   */
  const recordableThrough = () =>
    options.claim === undefined
      ? recordedThrough
      : Math.max(recordedThrough, boundaryOf(clock() + skew + Math.max(settleMs, STEP_MS)))
  /** The notes a correction under way took from `late`: kept in `notes` until it is done. */
  const correcting = new Map<string, number>()
  /** What `options.notes` holds, as last written. */
  const kept = options.notes?.read() ?? new Map<string, number>()
  for (const [account, at] of kept) late.set(account, at)

  /**
   * Writes to `notes` what it should hold for `accounts`: the earliest of each one's note and
   * the one a correction under way took, or none. Should that fail (a full disk), the notes
   * are still corrected while this run lasts, and the error says what a crash would leave.
   */
  const keep = (accounts: Iterable<string>) => {
    if (options.notes === undefined) return
    const changes = new Map<string, number | undefined>()
    for (const account of accounts) {
      const noted = late.get(account)
      const taken = correcting.get(account)
      const at = noted === undefined ? taken : taken === undefined ? noted : Math.min(noted, taken)
      if (at !== kept.get(account)) changes.set(account, at)
    }
    if (changes.size === 0) return
    try {
      options.notes.write(changes)
    } catch (error) {
      logger('error', 'reports.metrics_late_unsaved', {
        ...namesOf([...changes.keys()].sort()),
        error: String(error),
        remedy: `corrected while Herald runs; should it stop first, ${BACKFILL_REMEDY}`,
      })
      return
    }
    for (const [account, at] of changes) {
      if (at === undefined) kept.delete(account)
      else kept.set(account, at)
    }
  }

  /** The clock and the monotonic clock when last read, to notice the clock stepping. */
  let lastRead: { at: number; monotonic: number } | undefined
  const stepped = (now: number) => {
    const read = { at: now, monotonic: monotonic() }
    const byMs = lastRead === undefined ? 0 : read.at - lastRead.at - (read.monotonic - lastRead.monotonic)
    lastRead = read
    if (Math.abs(byMs) > STEP_MS)
      logger('warn', 'reports.metrics_clock_stepped', {
        to: new Date(now).toISOString(),
        by_ms: Math.round(byMs),
      })
  }

  /**
   * Queues every boundary since the last one queued (at start-up, the latest only). The queue
   * is always consecutive boundaries; past `maxDue` the oldest go, with a warning. After the
   * clock stepped back, the boundaries queued past its time wait for it again, and those it
   * reaches are queued (again) as it does: recorded while the clock was ahead, they are
   * recorded anew, and replace what was.
   */
  const queueBoundaries = () => {
    const now = clock()
    stepped(now)
    const latest = boundaryOf(now)
    if (latest < lastQueued) {
      while (due.length > 0 && (due[due.length - 1] as number) > latest) due.pop()
      lastQueued = due.length > 0 ? (due[due.length - 1] as number) : latest - intervalMs
    }
    if (latest <= lastQueued) return
    // At start-up, from the latest boundary recorded before: recorded again, its points are
    // published again too, in case a crash came between storing and publishing them.
    const next =
      lastQueued !== Number.NEGATIVE_INFINITY
        ? lastQueued + intervalMs
        : resumeFrom !== undefined && resumeFrom <= latest
          ? resumeFrom
          : latest
    const lostFrom = due[0] ?? next
    for (
      let boundary = Math.max(next, latest - (maxDue - 1) * intervalMs);
      boundary <= latest;
      boundary += intervalMs
    )
      due.push(boundary)
    lastQueued = latest
    if (due.length > maxDue) due.splice(0, due.length - maxDue)
    const kept = due[0] as number
    if (kept > lostFrom) {
      // What follows is not recorded one after the other with what this schedule recorded.
      recordedFrom = undefined
      logger('warn', 'reports.metrics_dropped', {
        from: new Date(lostFrom).toISOString(),
        to: new Date(kept - intervalMs).toISOString(),
        boundaries: (kept - lostFrom) / intervalMs,
      })
    }
  }

  /** Reads the boundaries recorded before start-up: the run of consecutive ones ending at the latest. */
  const load = async (): Promise<boolean> => {
    let boundaries: readonly number[]
    try {
      boundaries = (await options.recorded?.(Math.max(correctBoundaries, 1))) ?? []
    } catch (error) {
      logger('warn', 'reports.metrics_recorded_unknown', { error: String(error) })
      return false
    }
    const aligned = boundaries.filter((b) => b % intervalMs === 0).sort((a, b) => b - a)
    const latest = aligned[0]
    if (latest !== undefined && latest > recordedThrough) {
      let from = latest
      for (const boundary of aligned.slice(1)) {
        if (boundary !== from - intervalMs) break
        from = boundary
      }
      recordedThrough = latest
      recordedFrom = from
      resumeFrom = latest
    }
    loaded = true
    return true
  }

  /** Records the due boundaries the projection has passed, oldest first. */
  const recordDue = async (): Promise<void> => {
    while (due.length > 0 && !stopped) {
      const instant = due[0] as number
      let projectedBefore: number
      try {
        const [lagSeconds, warehouseAt] = await Promise.all([lag(), options.now?.()])
        const at = clock()
        projectedBefore = Math.min(at, warehouseAt ?? Number.POSITIVE_INFINITY) - lagSeconds * 1000
        if (Number.isNaN(projectedBefore))
          throw new Error(`no time read: lag ${lagSeconds}, warehouse clock ${warehouseAt}`)
        if (warehouseAt !== undefined) skew = warehouseAt - at
      } catch (error) {
        logger('warn', 'reports.metrics_lag_unknown', { error: String(error) })
        return
      }
      if (projectedBefore < instant + settleMs) {
        if (waitingFor !== instant)
          logger('info', 'reports.metrics_waiting', {
            collected_at: new Date(instant).toISOString(),
            projected_before: new Date(projectedBefore).toISOString(),
          })
        waitingFor = instant
        return
      }
      let claimed: BoundaryClaim | undefined
      if (options.claim !== undefined) {
        let result: BoundaryClaimResult
        try {
          result = await options.claim(instant)
        } catch (error) {
          logger('error', 'reports.metrics_failed', {
            collected_at: new Date(instant).toISOString(),
            error: String(error),
          })
          return
        }
        if ('busy' in result) {
          if (busyFor !== instant)
            logger('info', 'reports.metrics_recording_elsewhere', {
              collected_at: new Date(instant).toISOString(),
              holder: result.busy.holder,
              claim_ms: result.busy.remainingMs,
            })
          busyFor = instant
          return
        }
        if ('recorded' in result) {
          // Its points and their publication are another instance's. Notes taken since it
          // began may be about events it did not see: corrected, as events projected late.
          await settleProvisional(instant, result.recorded.beganAt)
          recorded(instant)
          due.shift()
          continue
        }
        claimed = result.claim
        // This recording reads the tables after every event noted so far was stored.
        dropProvisional(instant)
      }
      recorded(instant)
      try {
        await record(instant, claimed)
        await claimed?.recorded()
      } catch (error) {
        logger('error', 'reports.metrics_failed', {
          collected_at: new Date(instant).toISOString(),
          error: String(error),
        })
        return
      } finally {
        await claimed?.release()
      }
      due.shift()
    }
  }

  /** `instant` is recorded, here or elsewhere: it joins the run of boundaries corrections may cover. */
  const recorded = (instant: number) => {
    // A boundary after a gap starts the run corrections may cover again.
    if (recordedFrom === undefined || instant > recordedThrough + intervalMs) recordedFrom = instant
    recordedThrough = Math.max(recordedThrough, instant)
  }

  /**
   * With `claim`, once `instant` is recorded here or by another instance, before it counts as
   * recorded: the provisional notes whose events all fall at or before it (and after the
   * boundary before) are dropped when `counted` says their events are in its points, the
   * others kept as notes to correct.
   */
  const settleNotes = (instant: number, counted: (account: string) => boolean) => {
    const dropped: string[] = []
    for (const account of [...provisional.keys()]) {
      const at = late.get(account)
      if (at === undefined || at <= recordedThrough) {
        provisional.delete(account)
        continue
      }
      if (boundaryFrom(at) > instant) continue
      if (boundaryFrom(at) === instant && counted(account)) {
        late.delete(account)
        dropped.push(account)
      }
      provisional.delete(account)
    }
    keep(dropped)
  }

  /** This schedule records `instant` now: every provisional note of it so far is in its points. */
  const dropProvisional = (instant: number) => settleNotes(instant, () => true)

  /**
   * Another instance recorded `instant`, reading the tables from `beganAt` on (the warehouse's
   * clock): a provisional note of it is dropped when stamped before then (its events were
   * stored by then), and kept when stamped later, or noted again while this waits.
   */
  const settleProvisional = async (instant: number, beganAt: number) => {
    const stamps = new Map(provisional)
    const times = new Map<string, number>()
    await Promise.all([...stamps].map(async ([account, stamp]) => times.set(account, await stamp)))
    settleNotes(
      instant,
      (account) =>
        provisional.get(account) === stamps.get(account) &&
        (times.get(account) ?? Number.POSITIVE_INFINITY) < beganAt,
    )
  }

  /** Logs the boundaries from `from` to `to` that miss late events of `accounts`, for a backfill. */
  const uncorrected = (from: number, to: number, accounts: readonly string[], remedy = BACKFILL_REMEDY) => {
    if (to < from) return
    logger('warn', 'reports.metrics_late_uncorrected', {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      boundaries: (to - from) / intervalMs + 1,
      ...namesOf(accounts),
      remedy,
    })
  }

  /**
   * Corrects the notes taken so far (`correctNotes`), kept in `notes` until it is done with
   * them: what it put back, or what came meanwhile, is kept instead.
   */
  const correctLate = async (): Promise<void> => {
    if (late.size === 0) return
    for (const [account, at] of late) correcting.set(account, at)
    late.clear()
    try {
      await correctNotes([...correcting])
    } finally {
      const accounts = [...correcting.keys()]
      correcting.clear()
      keep(accounts)
    }
  }

  /**
   * Records again the boundaries the late events noted fall before, each for the accounts whose
   * events do, oldest first; names those it may not. A failed recording puts back what is left.
   */
  const correctNotes = async (taken: readonly (readonly [string, number])[]): Promise<void> => {
    // Notes taken before the boundaries recorded earlier were known may fall after all of them:
    // the next recording counts their events. With `claim`, those of boundaries another
    // instance may be recording wait for them (`settleProvisional`).
    const waiting = recordableThrough()
    for (const [account, at] of taken) if (at > recordedThrough && at <= waiting) note(account, at)
    const notes = taken
      .filter(([, at]) => at <= recordedThrough)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    if (notes.length === 0) return
    const first = recordedFrom ?? recordedThrough + intervalMs
    const oldest = Math.max(first, recordedThrough - (correctBoundaries - 1) * intervalMs)
    const earliest = notes.reduce((min, [, at]) => Math.min(min, at), Number.POSITIVE_INFINITY)
    uncorrected(
      boundaryFrom(earliest),
      oldest - intervalMs,
      notes.filter(([, at]) => boundaryFrom(at) < oldest).map(([account]) => account),
    )
    const from = Math.max(oldest, boundaryFrom(earliest))
    /** What is left from `instant` on waits for the next try, or for `stop` to name it. */
    const putBack = (instant: number) => {
      for (const [account, at] of notes) note(account, Math.max(at, instant))
    }
    for (let instant = from; instant <= recordedThrough; instant += intervalMs) {
      if (stopped) return putBack(instant)
      const accounts = notes.filter(([, at]) => at <= instant).map(([account]) => account)
      try {
        await options.correct?.(instant, accounts)
      } catch (error) {
        logger('error', 'reports.metrics_correction_failed', {
          collected_at: new Date(instant).toISOString(),
          error: String(error),
        })
        return putBack(instant)
      }
    }
    if (from <= recordedThrough)
      logger('info', 'reports.metrics_corrected', {
        from: new Date(from).toISOString(),
        to: new Date(recordedThrough).toISOString(),
        boundaries: (recordedThrough - from) / intervalMs + 1,
        ...namesOf(notes.map(([account]) => account)),
      })
  }

  const note = (account: string, at: number) => {
    const known = late.get(account)
    if (known === undefined || at < known) late.set(account, at)
  }

  const tick = () => {
    timerAt = Number.POSITIVE_INFINITY
    busy = true
    running = (async () => {
      if (!loaded && !(await load())) return
      queueBoundaries()
      await recordDue()
      if (!stopped) await correctLate()
    })().finally(() => {
      busy = false
      schedule()
    })
  }

  const setTimer = (ms: number) => {
    clearTimeout(timer)
    timerAt = clock() + ms
    timer = setTimeout(tick, ms)
    timer.unref()
  }

  const schedule = () => {
    if (stopped) return
    const now = clock()
    const nextBoundary = boundaryOf(now) + intervalMs
    const untilNext = nextBoundary - now + settleMs
    setTimer(due.length > 0 || late.size > 0 || !loaded ? Math.min(retryMs, untilNext) : untilNext)
  }

  tick()
  return {
    projected: (earliest) => {
      // Once stopped, still kept in `notes` for the next start-up: a consumer may finish a batch
      // after this schedule stopped.
      if (correctBoundaries === 0 || (stopped && options.notes === undefined)) return
      const added: string[] = []
      const through = recordableThrough()
      let stamp: Promise<number> | undefined
      for (const [account, at] of earliest) {
        // After every boundary recorded, the next recording counts it anyway (those recorded
        // before start-up are known once read); with `claim`, unless another instance may be
        // recording it already.
        if (loaded && !(at <= through)) continue
        note(account, at)
        added.push(account)
        if (at > recordedThrough && options.claim !== undefined) {
          // Read after these events were stored: a recording that began reading after it saw them.
          stamp ??= (options.now?.() ?? Promise.resolve(Number.POSITIVE_INFINITY)).then(
            (ms) => (Number.isFinite(ms) ? ms : Number.POSITIVE_INFINITY),
            () => Number.POSITIVE_INFINITY,
          )
          provisional.set(account, stamp)
        }
      }
      // On disk before the projector commits these events.
      keep(added)
      // A run in progress schedules the next try itself.
      if (added.length > 0 && !stopped && !busy && timerAt > clock() + retryMs) setTimer(retryMs)
    },
    stop: async () => {
      stopped = true
      clearTimeout(timer)
      await running
      if (due.length > 0) {
        const from = due[0] as number
        const to = due[due.length - 1] as number
        logger('warn', 'reports.metrics_pending', {
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
          boundaries: due.length,
          remedy: options.recorded === undefined ? BACKFILL_REMEDY : 'recorded at the next start-up',
        })
      }
      if (late.size > 0) {
        let earliest = Number.POSITIVE_INFINITY
        for (const at of late.values()) earliest = Math.min(earliest, at)
        if (options.notes === undefined) {
          uncorrected(boundaryFrom(earliest), recordedThrough, [...late.keys()].sort())
          late.clear()
        } else {
          // Kept (those it failed to write aside), and `late` with them, which notes taken after
          // this are compared with: the next start-up corrects them.
          const remedy = 'corrected at the next start-up'
          uncorrected(boundaryFrom(earliest), recordedThrough, [...late.keys()].sort(), remedy)
        }
      }
    },
  }
}

/** Accounts for a log line: the first 20 by name, and how many there are. */
const namesOf = (accounts: readonly string[]) =>
  accounts.length <= 20 ? { accounts } : { accounts: accounts.slice(0, 20), account_count: accounts.length }
