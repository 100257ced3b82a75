import {
  catchError,
  EMPTY,
  exhaustMap,
  from,
  map,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  timer,
} from 'rxjs'
import { type Backoff, backoffDelay } from '../src/backoff.ts'
import { errorText, HeraldError, isHeraldError, isRetriable } from '../src/errors/index.ts'
import { DeadLetterHeaders, withoutValue } from '../src/ingress/index.ts'
import type { Logger } from '../src/observability/index.ts'
import { messageBytes } from '../src/ports/event-log.ts'
import type { EventLog, OutgoingMessage } from '../src/ports/index.ts'
import { digestCommand, digestDeadLetter } from './digest.ts'
import type { DigestStore, PendingDigest } from './digest-store.ts'
import { publishAround } from './publish-around.ts'
import { type DeliveryCommand, encodeDeliveryCommand } from './routing/index.ts'

/**
 * Runs `flush` at each tick (a time in ms), one at a time: a tick that comes while a flush is
 * still running is dropped, since the next flush takes everything due by then anyway. A
 * failed flush is reported and the ticks go on, so a log that is down for a while delays
 * digests and loses none.
 *
 * @example
 * timer(0, 1_000).pipe(map(() => clock()), flushDigests(flusher.flushDue, onError)).subscribe()
 */
export const flushDigests =
  <R>(
    flush: (now: number) => ObservableInput<R>,
    onError: (error: unknown, now: number) => void,
  ): OperatorFunction<number, R> =>
  (ticks) =>
    ticks.pipe(
      exhaustMap((now) =>
        from(flush(now)).pipe(
          catchError((error: unknown) => {
            onError(error, now)
            return EMPTY
          }),
        ),
      ),
    )

/** What one flush published. */
export interface FlushReport {
  /** Digest commands published. */
  readonly digests: number
  /** Events they summarise. */
  readonly events: number
  /** Windows given up and set aside on the dead-letter topic (`deadLetterTopic`). */
  readonly deadLettered: number
}

export interface DigestFlusherOptions {
  readonly store: DigestStore
  readonly log: Pick<EventLog, 'publish'>
  /** `notifications.deliveries`. */
  readonly topic: string
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  readonly logger: Logger
  /** How often closed windows are looked for, in ms (default 1 000): a digest leaves at most this long after its window closed. */
  readonly intervalMs?: number
  /** Windows published per log write (default 100). */
  readonly batchSize?: number
  /**
   * Set where several routers each keep a digest buffer (a Kafka deployment): the buffer's
   * `instanceId`, so that two routers' digests of one configuration's window — a global
   * selector matching events of partitions they share out, or a rebalance mid-window — get
   * two delivery ids and both arrive, rather than one being dropped as the other's repeat.
   */
  readonly instance?: string
  /**
   * The log's `maxMessageBytes`: a digest larger lists fewer of its window's events, possibly
   * none (its counts still cover them all); one larger even so waits, as a window the log
   * refuses.
   */
  readonly maxMessageBytes?: number
  /**
   * Wait before a window that could not go out is tried again: doubles from `min` up to `max`
   * ms with each failure of that window (default 1 000 → 600 000).
   */
  readonly retryBackoffMs?: Backoff
  /**
   * Times a window may fail to go out for good (its digest cannot be made, the log refuses it)
   * before it is dead-lettered and leaves the buffer (default `DEFAULT_DIGEST_MAX_ATTEMPTS`:
   * about a day at the default back-off). A log that cannot be reached counts no attempt.
   */
  readonly maxAttempts?: number
  /** Where those windows are set aside (`engine.events.dlq`); without it, they are logged and dropped. */
  readonly deadLetterTopic?: string
  /**
   * The position of the selector set the router routes with now (`SelectorIndex.position`),
   * stamped on each digest as its `selectorSetPosition`: the window's configuration was in
   * that set or an earlier one, so a deliverer that has reached it knows the configuration.
   */
  readonly selectorSetPosition?: () => number | undefined
  /** For tests in virtual time. */
  readonly scheduler?: SchedulerLike
  /** After each flush that published a digest or dead-lettered a window: for metrics. */
  readonly onFlushed?: (report: FlushReport) => void
}

export interface DigestFlusher {
  /** Publishes every window closed by now and marks it flushed; resolves with what it published. */
  flushDue(): Promise<FlushReport>
  /** Flushes at once — windows that closed while Herald was down — then every `intervalMs`. */
  start(): void
  /** Stops the timer and waits for a flush in progress. */
  stop(): Promise<void>
}

/**
 * Failures for good a window may have before it is dead-lettered: with the default back-off
 * (1 s doubling up to 10 min) the 150th comes about a day after the first, time for an operator
 * to fix what a log line named (a topic's limit, a damaged buffer) before its events go.
 */
export const DEFAULT_DIGEST_MAX_ATTEMPTS = 150

/** The consumer group named in a window's dead letter: the flusher is the router's. */
const DEAD_LETTER_GROUP = 'herald-router'

/** A window's digest, ready to go. */
interface Ready {
  readonly pending: PendingDigest
  readonly command: DeliveryCommand
  readonly message: OutgoingMessage
}

/** A window that could not go out this time, and why. */
interface Failed {
  readonly pending: PendingDigest
  readonly error: unknown
}

type Fitted = { readonly command: DeliveryCommand; readonly message: OutgoingMessage; readonly bytes: number }

const encoded = (command: DeliveryCommand): Fitted => {
  const message = encodeDeliveryCommand(command)
  return { command, message, bytes: messageBytes(message) }
}

/**
 * `command` listing those of its events that keep its message within `limit`, in their order:
 * from the first, each that fits in what the ones before it left, possibly none (its `event`
 * still goes, and its counts cover them all). Its message and size, over `limit` only when it
 * is so even listing none.
 */
const fitted = (command: DeliveryCommand, limit: number | undefined): Fitted => {
  const whole = encoded(command)
  const digest = command.digest
  if (limit === undefined || whole.bytes <= limit || digest === undefined) return whole
  const bare = encoded({ ...command, digest: { ...digest, events: [] } })
  // Listing events turns `[]` into `[a,b]`: each one's JSON, and a comma between two.
  let room = limit - bare.bytes
  const events: DeliveryCommand['event'][] = []
  for (const event of digest.events) {
    const bytes = Buffer.byteLength(JSON.stringify(event)) + (events.length > 0 ? 1 : 0)
    if (bytes > room) continue
    events.push(event)
    room -= bytes
  }
  return events.length === 0 ? bare : encoded({ ...command, digest: { ...digest, events } })
}

/**
 * Storm control's second half: publishes one digest command per closed window to the
 * deliveries topic, then marks the window flushed. A crash between the two publishes the
 * window again at the next start, with the same delivery id (configuration and window start),
 * so the deliverer and downstream consumers see a repeat they already deduplicate, and no
 * window is ever lost.
 *
 * One window that cannot go out holds back no other: a window whose digest cannot be made
 * (none of its events could be read back from a damaged file), or is too large for the log
 * listing no event whichever of its events it is about, or that the log refuses for good (an
 * error not retriable: the windows of a publish it refused are then published one by one to
 * find it), is logged as
 * `router.digest_deferred` and tried again after a back-off that doubles with each failure, up
 * to `retryBackoffMs.max`, unflushed in the buffer. Its `maxAttempts`-th such failure is its
 * last: it is set aside on `deadLetterTopic` (`digestDeadLetter`; without its events when the
 * log refuses the letter as too large), logged as `router.digest_dead_lettered`, and marked
 * flushed, so it leaves the buffer as a flushed window does. A log that cannot be reached (a
 * retriable error) fails the whole flush instead, tried again at the next tick, as it would
 * fail every window: that counts no attempt.
 *
 * @example
 * const flusher = createDigestFlusher({ store, log, topic: 'notifications.deliveries', clock, logger })
 * flusher.start()
 * // on shutdown, after the router's consumer stopped:
 * await flusher.stop()
 */
export const createDigestFlusher = (options: DigestFlusherOptions): DigestFlusher => {
  const { store, log, topic, clock, logger, maxMessageBytes } = options
  const intervalMs = options.intervalMs ?? 1_000
  const batchSize = options.batchSize ?? 100
  const backoff = options.retryBackoffMs ?? { min: 1_000, max: 600_000 }
  const maxAttempts = options.maxAttempts ?? DEFAULT_DIGEST_MAX_ATTEMPTS
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new TypeError(`maxAttempts must be a positive integer, not ${maxAttempts}`)
  const { deadLetterTopic } = options
  let subscription: Subscription | undefined
  let inFlight: Promise<unknown> = Promise.resolve()

  const windowFields = (pending: PendingDigest) => ({
    configuration_id: pending.configurationId,
    window_start: new Date(pending.windowStart).toISOString(),
  })

  /**
   * The window's digest command, fitted to the log: when its first event makes it too large
   * even listing none, its `event` is the first of the window's that does not (a window of
   * more types and selectors than the router could foresee, or recorded before it refused such
   * events up front). Throws when none does.
   */
  const prepare = (pending: PendingDigest, createdAt: string): Ready => {
    const position = options.selectorSetPosition?.()
    const digest = digestCommand(pending, createdAt, options.instance)
    const whole = position === undefined ? digest : { ...digest, selectorSetPosition: position }
    let { command, message, bytes } = fitted(whole, maxMessageBytes)
    if (maxMessageBytes !== undefined && bytes > maxMessageBytes) {
      for (const event of pending.events.slice(1)) {
        const instead = fitted({ ...whole, event }, maxMessageBytes)
        if (instead.bytes > maxMessageBytes) continue
        ;({ command, message, bytes } = instead)
        break
      }
    }
    if (maxMessageBytes !== undefined && bytes > maxMessageBytes)
      throw new HeraldError(
        'digest_too_large',
        `digest of ${pending.configurationId}@${pending.windowStart} is ${bytes} bytes listing no event, over the ${maxMessageBytes} the event log takes in one message`,
        { context: { bytes, limit: maxMessageBytes } },
      )
    const listed = command.digest?.events.length ?? 0
    if (listed < pending.events.length)
      logger('warn', 'router.digest_trimmed', {
        ...windowFields(pending),
        listed,
        held: pending.events.length,
        limit: maxMessageBytes,
        ...(command.event === whole.event ? {} : { event_id: command.event.id }),
      })
    return { pending, command, message }
  }

  /**
   * Publishes the digests in one write; when the log refuses that for good, one by one, so
   * that only the windows it refuses are left. A retriable error (the log cannot be reached)
   * fails the flush: digests published before it in this flush go out again next time, with
   * their delivery ids.
   */
  const publishEach = async (ready: readonly Ready[]): Promise<{ sent: Ready[]; refused: Failed[] }> => {
    try {
      if (ready.length > 0)
        await log.publish(
          topic,
          ready.map((r) => r.message),
        )
      return { sent: [...ready], refused: [] }
    } catch (error) {
      if (isRetriable(error)) throw error
      const [only] = ready
      if (ready.length === 1 && only !== undefined)
        return { sent: [], refused: [{ pending: only.pending, error }] }
    }
    const sent: Ready[] = []
    const refused: Failed[] = []
    for (const r of ready) {
      try {
        await log.publish(topic, [r.message])
        sent.push(r)
      } catch (error) {
        if (isRetriable(error)) throw error
        refused.push({ pending: r.pending, error })
      }
    }
    return { sent, refused }
  }

  /** Leaves each failed window for later, growing its wait (one store write for all), and says so. */
  const defer = async (failed: readonly Failed[], now: number): Promise<void> => {
    const deferred = failed.map((f) => ({
      ...f,
      retryAt: now + backoffDelay(backoff, f.pending.attempts + 1),
    }))
    await store.markFailed(deferred.map(({ pending, retryAt }) => ({ ...pending, retryAt })))
    for (const { pending, error, retryAt } of deferred) {
      const attempts = pending.attempts + 1
      const kafkaError = isHeraldError(error) ? error.context.kafkaError : undefined
      logger('error', 'router.digest_deferred', {
        ...windowFields(pending),
        window_end: new Date(pending.windowEnd).toISOString(),
        events: pending.total,
        attempts,
        retry_at: new Date(retryAt).toISOString(),
        error: errorText(error),
        unreadable: pending.unreadable,
        ...(kafkaError === undefined ? {} : { kafka_error: kafkaError }),
      })
    }
  }

  /**
   * Sets aside each window that has failed for the last time: its letter on the dead-letter
   * topic (without its events when the log refuses it as too large, left out when it refuses
   * even that), then the window marked flushed; says so. A log that cannot be reached fails the
   * flush before any window is marked, so they are tried again. Resolves with how many letters
   * the dead-letter topic took.
   */
  const deadLetter = async (failed: readonly Failed[], now: number): Promise<number> => {
    if (failed.length === 0) return 0
    const shortened = new Set<number>()
    const leftOut = new Set<number>()
    if (deadLetterTopic !== undefined) {
      const letters = failed.map(({ pending, error }, i) => {
        const attempts = pending.attempts + 1
        const letter = digestDeadLetter(pending, errorText(error), {
          group: DEAD_LETTER_GROUP,
          now,
          attempts,
        })
        if (maxMessageBytes === undefined || messageBytes(letter) <= maxMessageBytes) return letter
        shortened.add(i)
        return withoutValue(letter)
      })
      await publishAround(log, deadLetterTopic, letters, (i, sent) => {
        if (sent.headers?.[DeadLetterHeaders.valueOmitted] === undefined) {
          shortened.add(i)
          return withoutValue(sent)
        }
        leftOut.add(i)
        return undefined
      })
    }
    await store.markFlushed(
      failed.map((f) => f.pending),
      now,
    )
    failed.forEach(({ pending, error }, i) => {
      const kafkaError = isHeraldError(error) ? error.context.kafkaError : undefined
      logger('error', 'router.digest_dead_lettered', {
        ...windowFields(pending),
        window_end: new Date(pending.windowEnd).toISOString(),
        events: pending.total,
        attempts: pending.attempts + 1,
        error: errorText(error),
        unreadable: pending.unreadable,
        topic: deadLetterTopic,
        value_omitted: shortened.has(i),
        left_out: leftOut.has(i),
        ...(kafkaError === undefined ? {} : { kafka_error: kafkaError }),
      })
    })
    return deadLetterTopic === undefined ? 0 : failed.length - leftOut.size
  }

  /**
   * Publishes what can go of `due`, defers the rest or dead-letters it after its last try;
   * resolves with what went, and how many windows went to the dead-letter topic.
   */
  const flushWindows = async (
    due: readonly PendingDigest[],
    now: number,
  ): Promise<{ sent: Ready[]; deadLettered: number }> => {
    const createdAt = new Date(now).toISOString()
    const ready: Ready[] = []
    const failed: Failed[] = []
    for (const pending of due) {
      try {
        ready.push(prepare(pending, createdAt))
      } catch (error) {
        failed.push({ pending, error })
      }
    }
    const { sent, refused } = await publishEach(ready)
    if (sent.length > 0)
      await store.markFlushed(
        sent.map((r) => r.pending),
        now,
      )
    for (const { pending, command } of sent) {
      if (pending.unreadable > 0)
        logger('warn', 'router.digest_entries_unreadable', {
          ...windowFields(pending),
          unreadable: pending.unreadable,
        })
      logger('info', 'router.digest_flushed', {
        configuration_id: command.configurationId,
        delivery_id: command.deliveryId,
        window_start: command.digest?.windowStart,
        window_end: command.digest?.windowEnd,
        events: command.digest?.total,
      })
    }
    const failures = [...failed, ...refused]
    const last = (f: Failed): boolean => f.pending.attempts + 1 >= maxAttempts
    const deadLettered = await deadLetter(failures.filter(last), now)
    await defer(
      failures.filter((f) => !last(f)),
      now,
    )
    return { sent, deadLettered }
  }

  const flushDue = async (): Promise<FlushReport> => {
    let digests = 0
    let events = 0
    let deadLettered = 0
    for (;;) {
      const now = clock()
      const due = await store.due(now, batchSize)
      // Windows deferred here are not due again now, so the next batch moves on past them.
      const flushed = await flushWindows(due, now)
      for (const { pending } of flushed.sent) {
        digests++
        events += pending.total
      }
      deadLettered += flushed.deadLettered
      if (due.length < batchSize) break
    }
    const report = { digests, events, deadLettered }
    if (digests > 0 || deadLettered > 0) options.onFlushed?.(report)
    return report
  }

  const tracked = (): Promise<FlushReport> => {
    const flush = flushDue()
    inFlight = flush.catch(() => {})
    return flush
  }

  return {
    flushDue: tracked,
    start() {
      if (subscription !== undefined) return
      subscription = timer(0, intervalMs, options.scheduler)
        .pipe(
          map(() => clock()),
          // Tried again at the next tick: a full disk or a failed sync delays digests, loses none.
          flushDigests(tracked, (error) =>
            logger('error', 'router.digest_flush_failed', {
              error: errorText(error),
              sqlite_code: isHeraldError(error) ? error.context.sqliteCode : undefined,
              retried: true,
            }),
          ),
        )
        .subscribe()
    },
    async stop() {
      subscription?.unsubscribe()
      subscription = undefined
      await inFlight
    },
  }
}
