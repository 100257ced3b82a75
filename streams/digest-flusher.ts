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
import { errorText, isHeraldError } from '../src/errors/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { EventLog } from '../src/ports/index.ts'
import { digestCommand } from './digest.ts'
import type { DigestStore, PendingDigest } from './digest-store.ts'
import { encodeDeliveryCommand } from './routing/index.ts'

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
  /** For tests in virtual time. */
  readonly scheduler?: SchedulerLike
  /** After each flush that published something: for metrics. */
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
 * Storm control's second half: publishes one digest command per closed window to the
 * deliveries topic, then marks the window flushed. A crash between the two publishes the
 * window again at the next start, with the same delivery id (configuration and window start),
 * so the deliverer and downstream consumers see a repeat they already deduplicate, and no
 * window is ever lost.
 *
 * @example
 * const flusher = createDigestFlusher({ store, log, topic: 'notifications.deliveries', clock, logger })
 * flusher.start()
 * // on shutdown, after the router's consumer stopped:
 * await flusher.stop()
 */
export const createDigestFlusher = (options: DigestFlusherOptions): DigestFlusher => {
  const { store, log, topic, clock, logger } = options
  const intervalMs = options.intervalMs ?? 1_000
  const batchSize = options.batchSize ?? 100
  let subscription: Subscription | undefined
  let inFlight: Promise<unknown> = Promise.resolve()

  const publish = async (due: readonly PendingDigest[], now: number): Promise<void> => {
    const createdAt = new Date(now).toISOString()
    const commands = due.map((pending) => digestCommand(pending, createdAt, options.instance))
    await log.publish(
      topic,
      commands.map((command) => encodeDeliveryCommand(command)),
    )
    await store.markFlushed(due, now)
    for (const command of commands)
      logger('info', 'router.digest_flushed', {
        configuration_id: command.configurationId,
        delivery_id: command.deliveryId,
        window_start: command.digest?.windowStart,
        window_end: command.digest?.windowEnd,
        events: command.digest?.total,
      })
  }

  const flushDue = async (): Promise<FlushReport> => {
    let digests = 0
    let events = 0
    for (;;) {
      const now = clock()
      const due = await store.due(now, batchSize)
      if (due.length > 0) {
        await publish(due, now)
        digests += due.length
        for (const pending of due) events += pending.total
      }
      if (due.length < batchSize) break
    }
    const report = { digests, events }
    if (digests > 0) options.onFlushed?.(report)
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
