/**
 * Where the queues are kept: the delivery log's read model. A queue is one configuration's
 * unsettled deliveries in order; only its head is ever handed out.
 */
export interface QueueSource<T> {
  /** Heads due by `now` of queues not in `exclude`, earliest due first, at most `limit`. */
  dueHeads(now: number, exclude: ReadonlySet<string>, limit: number): readonly T[]
  /** When the next head of a queue not in `exclude` falls due; undefined when none waits. */
  nextDueAt(exclude: ReadonlySet<string>): number | undefined
  /** The queue's head, due or not; undefined when the queue is empty. */
  headOf(queue: string): T | undefined
  /**
   * The item its queue hands out after `after`, the one handed out last, whether or not `after`
   * is still its head here, `open` being the queue's items whose attempts are not over: the
   * item behind `after` that is not open or, one before it that is unsettled and not open (put
   * back in the queue meanwhile: a replay), that one. `due` by `now`, or `waiting` until
   * `dueAt`; undefined when nothing is queued behind `after`. Without it, a queue waits for each
   * attempt to show in the source before its next item goes.
   */
  nextBehind?(
    after: T,
    now: number,
    open: ReadonlySet<T>,
  ): { readonly due: T } | { readonly dueAt: number; readonly waiting: T } | undefined
}

/**
 * What an attempt asks of its queue: nothing (its result is recorded), or to wait this many
 * milliseconds (a rate limit), timed by the scheduler's `monotonic` clock.
 */
export type AttemptAnswer = { readonly deferMs: number } | undefined

export interface QueueSchedulerOptions<T> {
  readonly source: QueueSource<T>
  /** The queue an item belongs to: its configuration id. */
  readonly queueOf: (item: T) => string
  /**
   * Makes one attempt and records its result where `source` reads it, before resolving: the
   * queue's next head is read right after. The signal aborts at shutdown. `release` says the
   * item is settled for good (its outcome durably recorded) before `source` shows it: its queue
   * goes on to the item behind it (`source.nextBehind`) while the attempt finishes.
   */
  readonly attempt: (item: T, signal: AbortSignal, release: () => void) => Promise<AttemptAnswer>
  /**
   * Attempts sending at the same time, over all queues. An attempt released early no longer
   * holds its slot while it finishes.
   */
  readonly concurrency: number
  /**
   * How many of a queue's items may be in flight at once, asked of the item handed out last
   * (default 1: one at a time, strictly in order). Above 1 the queue goes on to the items behind
   * (`source.nextBehind`) while earlier ones are still sending, so their arrival order is no
   * longer kept, and a restart may send again up to this many whose outcomes were not recorded.
   * Without `nextBehind` a queue always serves one item at a time.
   */
  readonly window?: (item: T) => number
  /** Wall-clock milliseconds: what the source's due times are compared with. */
  readonly clock: () => number
  /**
   * Milliseconds of a clock that never steps (default `performance.now`): what the scheduler's
   * own waits are timed by (deferrals, error back-offs, ownership rechecks), so a step of the
   * wall clock neither stretches nor cuts them.
   */
  readonly monotonic?: () => number
  /** An attempt threw: its queue pauses for `errorBackoffMs` rather than spin on the same head. */
  readonly onError?: (error: unknown, item: T) => void
  readonly errorBackoffMs?: number
  /**
   * Reading the queues (`source`) threw: told here, and the scheduler looks again after
   * `errorBackoffMs`, where the error escaped a timer's callback and ended the process.
   */
  readonly onReadError?: (error: unknown) => void
  /**
   * Where several schedulers share the queues (deliverer instances on one delivery log): from
   * when this one may serve a queue, or `undefined` while another one owns it. Absent: every
   * queue is this scheduler's. Ownership moves without notice, so it is asked again every
   * `ownershipRecheckMs` (default 1 s).
   */
  readonly queueOwnedFrom?: (queue: string) => number | undefined
  readonly ownershipRecheckMs?: number
}

export interface QueueScheduler {
  /** Looks for due heads now: after new deliveries, a replay, or another process's append. */
  wake(): void
  /**
   * Hands out `queue`'s items once each, as soon as the queue is free, however far off they fall
   * due: what they wait for changed (their configuration was disabled, so an attempt settles
   * rather than sends, or fixed). Its head first, then, as each settles, the items behind it
   * (with a window above 1, several may wait for their retries), until one does not settle (its
   * attempt failed again): that one and those behind it are left to their schedule. Only where
   * this scheduler serves the queue: one owned by another scheduler is left to it, at once or,
   * with `waitForOwnerMs` (at start-up, before this scheduler's share of the queues is known),
   * once it has been another's for that long without becoming this one's.
   */
  serveHeadNow(queue: string, options?: { readonly waitForOwnerMs?: number }): void
  /** Attempts in progress. */
  readonly active: () => number
  /**
   * Hands out nothing more, lets attempts in progress finish for up to `graceMs`, then aborts
   * the rest (they record nothing and are attempted again after the next start).
   */
  stop(graceMs: number): Promise<void>
}

/**
 * `queueOwnedFrom` for queues owned while their partition is held: from `handoverMs` after the
 * hold began (`holdsSince`, by the wall clock), timed by the monotonic clock from when it was
 * first seen, so a wall clock stepped back after a rebalance does not hold the queues taken over
 * for the size of the step (nor a step forward hand them over early).
 *
 * @example
 * queueOwnedFrom: ownedAfterHandover({ holdsSince: (q) => consumer.holdsSince(topic, q), handoverMs, clock: Date.now })
 */
export const ownedAfterHandover = ({
  holdsSince,
  handoverMs,
  clock,
  monotonic = () => performance.now(),
}: {
  readonly holdsSince: (queue: string) => number | undefined
  readonly handoverMs: number
  readonly clock: () => number
  readonly monotonic?: () => number
}): ((queue: string) => number | undefined) => {
  // When each hold began by the monotonic clock, by its start on the wall clock (one per join).
  const began = new Map<number, number>()
  return (queue) => {
    const since = holdsSince(queue)
    if (since === undefined) return undefined
    const now = clock()
    const tick = monotonic()
    let at = began.get(since)
    if (at === undefined) {
      at = tick - Math.max(0, now - since)
      if (began.size >= 64) began.clear()
      began.set(since, at)
    }
    return now + Math.max(0, at + handoverMs - tick)
  }
}

// setTimeout's limit is 2^31 - 1 ms; a far-off head is looked at again before that.
const MAX_SLEEP_MS = 2_000_000_000

/** A queue with attempts open (started, not yet finished). */
interface OpenQueue<T> {
  readonly queue: string
  /** Attempts started and not released: each holds a slot of the pool. */
  sending: number
  /** The item handed out last: the queue goes on from the one behind it. */
  last: T
  /** The items whose attempts are open (started, not yet finished). */
  readonly items: Set<T>
  /**
   * An attempt ended without settling its item (a failure, a rate limit, an error): nothing
   * more is handed out until every open attempt is over, then the queue starts again from its
   * head as the source shows it.
   */
  held: boolean
  /** When it was last handed an item, in hand-outs: the queue served longest ago is served first. */
  turn: number
  /** Started by `serveHeadNow`: its items are handed out whether due or not while it is open. */
  hurried: boolean
}

/** Fewest attempts holding a slot first, then the queue served longest ago. */
const byTurn = <T>(a: OpenQueue<T>, b: OpenQueue<T>): number => a.sending - b.sending || a.turn - b.turn

/**
 * One queue per configuration over a shared, bounded pool: a slow or failing endpoint holds
 * one slot and delays only its own queue, and a queue's items go one at a time, in order (or
 * up to `window` at a time, out of order). A head waiting for its retry holds its queue back,
 * so order is kept through retries; the schedule lives in the source, so it survives a restart.
 * A slot that frees goes first to a queue holding none whose head is due, so a queue with a
 * backlog gets more than one slot only while no other queue waits for one: the queues being
 * served share what is left, fewest in flight and longest since served first.
 *
 * @example
 * const scheduler = startQueueScheduler({ source: view, queueOf: (d) => d.configurationId,
 *   attempt, concurrency: 8, clock: Date.now })
 * view.onChange(() => scheduler.wake())
 */
export const startQueueScheduler = <T>(options: QueueSchedulerOptions<T>): QueueScheduler => {
  const { source, queueOf, clock, concurrency } = options
  const monotonic = options.monotonic ?? (() => performance.now())
  const errorBackoffMs = options.errorBackoffMs ?? 5_000
  // Queues with attempts open. While a queue is here the source may still show an item in
  // flight as its head, so it is served only from behind its last item, never from its head.
  const opened = new Map<string, OpenQueue<T>>()
  // Attempts holding a slot of the pool (`sending` summed over the open queues).
  let sending = 0
  // Items handed out so far: each queue's turn is the count when it was last handed one.
  let handedOut = 0
  const { nextBehind } = source
  const windowOf = (item: T): number =>
    nextBehind === undefined || options.window === undefined ? 1 : Math.max(1, options.window(item))
  // Queues waiting (a rate limit, an error, a handover), until when by the monotonic clock.
  const deferred = new Map<string, number>()
  // Queues whose head is to be handed out once it is free, due or not (`serveHeadNow`), with
  // until when (monotonic) they stay so while another scheduler owns them.
  const hurried = new Map<string, number>()
  // Hurried queues found another scheduler's while they wait for an owner (named at start-up):
  // left out of every look, and hurried again at the next ownership recheck.
  const unowned = new Map<string, number>()
  const { queueOwnedFrom } = options
  const recheckMs = options.ownershipRecheckMs ?? 1_000
  // Queues found owned by another scheduler, skipped until the next recheck.
  const foreign = new Set<string>()
  let foreignSince = Number.NEGATIVE_INFINITY
  const inFlight = new Set<Promise<void>>()
  const controller = new AbortController()
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  // When the timer fires, by the monotonic clock.
  let timerAt = Number.POSITIVE_INFINITY

  const excluded = (tick: number): Set<string> => {
    if (tick - foreignSince >= recheckMs) {
      foreign.clear()
      foreignSince = tick
      for (const [queue, until] of unowned)
        if (until > tick) hurried.set(queue, Math.max(hurried.get(queue) ?? 0, until))
      unowned.clear()
    }
    const out = new Set(opened.keys())
    for (const queue of foreign) out.add(queue)
    for (const [queue, until] of deferred) {
      if (until > tick) out.add(queue)
      else deferred.delete(queue)
    }
    return out
  }

  /** Looks again in `ms` (or sooner, if already set to). */
  const sleepFor = (ms: number) => {
    const wait = Math.min(Math.max(0, ms), MAX_SLEEP_MS)
    const at = monotonic() + wait
    if (at >= timerAt && timer !== undefined) return
    clearTimeout(timer)
    timerAt = at
    timer = setTimeout(() => {
      timer = undefined
      timerAt = Number.POSITIVE_INFINITY
      pump()
    }, wait)
    timer.unref()
  }

  const start = (item: T, hurry = false) => {
    const queue = queueOf(item)
    const existing = opened.get(queue)
    const state = existing ?? {
      queue,
      sending: 0,
      last: item,
      items: new Set<T>(),
      held: false,
      turn: 0,
      hurried: hurry,
    }
    if (existing === undefined) opened.set(queue, state)
    state.sending++
    state.items.add(item)
    state.last = item
    state.turn = ++handedOut
    sending++
    let releasedEarly = false
    let settled = false
    const release = () => {
      if (releasedEarly || nextBehind === undefined || stopped) return
      releasedEarly = true
      state.sending--
      sending--
      pumpSoon()
    }
    /**
     * The attempt did not run (a rate limit, a superseded record, an error): the queue waits
     * `ms`; one told to serve its head now does so once the wait is over, rather than wait for
     * the head to fall due (a retry hours off).
     */
    const defer = (ms: number) => {
      deferred.set(queue, monotonic() + Math.max(0, ms))
      if (state.hurried && !stopped) hurried.set(queue, hurried.get(queue) ?? 0)
    }
    const run = (async () => {
      try {
        const answer = await options.attempt(item, controller.signal, release)
        if (answer !== undefined) defer(answer.deferMs)
        else settled = releasedEarly
      } catch (error) {
        options.onError?.(error, item)
        defer(errorBackoffMs)
      } finally {
        if (!releasedEarly) {
          state.sending--
          sending--
        }
        if (!settled) state.held = true
        state.items.delete(item)
        if (state.items.size === 0 && opened.get(queue) === state) opened.delete(queue)
      }
    })()
    inFlight.add(run)
    void run.finally(() => {
      inFlight.delete(run)
      pumpSoon()
    })
    // Room in its window: the items behind go in the same look.
    if (state.sending < windowOf(item)) pumpSoon()
  }

  // Attempts whose outcomes one read-model commit showed all finish in the same run of
  // microtasks; one look for due heads after all of them serves every freed queue at once.
  let pumpQueued = false
  const pumpSoon = () => {
    if (pumpQueued) return
    pumpQueued = true
    queueMicrotask(() => {
      pumpQueued = false
      pump()
    })
  }

  /**
   * Whether this scheduler may serve `queue` at `now` (`tick` by the monotonic clock); if not,
   * it is noted as another scheduler's (until the recheck) or as taken over and deferred until
   * it is handed over.
   */
  const servesNow = (queue: string, now: number, tick: number): boolean => {
    const from = queueOwnedFrom === undefined ? now : queueOwnedFrom(queue)
    if (from === undefined) foreign.add(queue)
    else if (from > now) deferred.set(queue, tick + (from - now))
    return from !== undefined && from <= now
  }

  /**
   * Serves the open queues with room in their window, from the item behind the last one handed
   * out, one item each in turn (fewest in flight first, then the one served longest ago) until
   * `free` are started; returns when the earliest of those not yet due falls due.
   */
  const serveBehind = (now: number, tick: number, free: number): number | undefined => {
    let started = 0
    let nextAt: number | undefined
    if (nextBehind === undefined) return nextAt
    let ready: OpenQueue<T>[] = []
    for (const [queue, state] of opened)
      if (
        !state.held &&
        !foreign.has(queue) &&
        (deferred.get(queue) ?? Number.NEGATIVE_INFINITY) <= tick &&
        state.sending < windowOf(state.last)
      )
        ready.push(state)
    while (ready.length > 0 && started < free) {
      // Order matters only where they are more than the slots left.
      if (ready.length > free - started) ready.sort(byTurn)
      const more: OpenQueue<T>[] = []
      for (const state of ready) {
        if (started >= free) break
        if (!servesNow(state.queue, now, tick)) continue
        const next = nextBehind(state.last, now, state.items)
        if (next === undefined) continue
        if ('dueAt' in next && !state.hurried) {
          if (nextAt === undefined || next.dueAt < nextAt) nextAt = next.dueAt
          continue
        }
        start('due' in next ? next.due : next.waiting)
        started++
        if (state.sending < windowOf(state.last)) more.push(state)
      }
      ready = more
    }
    return nextAt
  }

  /**
   * Serves the hurried queues that are free, their heads whether due or not; returns how many
   * it started. A queue another scheduler owns is left to it (once its wait for an owner is
   * over); one that is busy, released or waiting (a rate limit, a handover) stays hurried until
   * it is free.
   */
  const serveHurried = (now: number, tick: number, exclude: Set<string>, free: number): number => {
    let started = 0
    for (const [queue, ownerWaitUntil] of hurried) {
      if (started >= free) break
      // Another scheduler's: the change reaches it too, and it serves the queue. One waiting for
      // an owner is looked at again at the recheck, not at every look until then.
      const from = foreign.has(queue)
        ? undefined
        : exclude.has(queue) || queueOwnedFrom === undefined
          ? now
          : queueOwnedFrom(queue)
      if (from === undefined) {
        hurried.delete(queue)
        if (ownerWaitUntil > tick) unowned.set(queue, Math.max(unowned.get(queue) ?? 0, ownerWaitUntil))
        continue
      }
      if (exclude.has(queue)) continue
      if (from > now) {
        deferred.set(queue, tick + (from - now))
        exclude.add(queue)
        continue
      }
      hurried.delete(queue)
      const head = source.headOf(queue)
      if (head === undefined) continue
      start(head, true)
      started++
      exclude.add(queue)
    }
    return started
  }

  const pump = () => {
    if (stopped) return
    try {
      look()
    } catch (error) {
      options.onReadError?.(error)
      sleepFor(errorBackoffMs)
    }
  }

  /** Starts what is due, and sets the timer for what falls due next. */
  const look = () => {
    const now = clock()
    const tick = monotonic()
    let exclude = excluded(tick)
    const free = concurrency - sending
    let behindDueAt: number | undefined
    if (free > 0) {
      // Queues holding no slot first: those told to serve their head now, then the due heads of
      // queues with nothing open, earliest due first; what is left goes to the queues open.
      let started = hurried.size > 0 ? serveHurried(now, tick, exclude, free) : 0
      // A queue of another scheduler, or one just taken over (served once its previous owner's
      // attempts are over), is skipped; then the heads behind it are looked at.
      for (let skipped = true; skipped && started < free; ) {
        skipped = false
        for (const item of source.dueHeads(now, exclude, free - started)) {
          const queue = queueOf(item)
          if (servesNow(queue, now, tick)) {
            start(item)
            started++
          } else skipped = true
          exclude.add(queue)
        }
      }
      if (started < free) behindDueAt = serveBehind(now, tick, free - started)
      exclude = excluded(tick)
    }
    // Busy queues wake the pump when they finish; the rest need a timer, which a full pool
    // does not: the next attempt to finish looks again.
    if (sending >= concurrency) return
    // In milliseconds from now: due times by the wall clock, the scheduler's own waits by the
    // monotonic one.
    let wait = Number.POSITIVE_INFINITY
    const dueAt = source.nextDueAt(exclude)
    if (dueAt !== undefined) wait = dueAt - now
    if (behindDueAt !== undefined) wait = Math.min(wait, behindDueAt - now)
    for (const [queue, until] of deferred) if (!opened.has(queue)) wait = Math.min(wait, until - tick)
    // Sharing, queues may become this scheduler's at any time: look again by the recheck.
    if (queueOwnedFrom !== undefined) wait = Math.min(wait, recheckMs)
    if (wait !== Number.POSITIVE_INFINITY) sleepFor(wait)
  }

  // Due work left from before a restart (a retry that was waiting) starts at once.
  queueMicrotask(pump)

  return {
    wake: () => {
      if (!stopped) pump()
    },
    serveHeadNow: (queue, options) => {
      if (stopped) return
      const waitForOwnerMs = options?.waitForOwnerMs ?? 0
      hurried.set(
        queue,
        Math.max(
          hurried.get(queue) ?? Number.NEGATIVE_INFINITY,
          waitForOwnerMs > 0 ? monotonic() + waitForOwnerMs : 0,
        ),
      )
      // One look for all the queues named in one turn (every configuration disabled at start-up).
      pumpSoon()
    },
    active: () => inFlight.size,
    stop: async (graceMs) => {
      stopped = true
      clearTimeout(timer)
      if (inFlight.size > 0) {
        let grace: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise<void>((resolve) => {
            grace = setTimeout(resolve, graceMs)
          }),
        ])
        clearTimeout(grace)
      }
      controller.abort(new Error('the deliverer is stopping'))
      await Promise.allSettled([...inFlight])
    },
  }
}
