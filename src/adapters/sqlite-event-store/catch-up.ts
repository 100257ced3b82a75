import type { Subscriber } from 'rxjs'
import type { RecordedEvent } from '../../ports/index.ts'

export interface CatchUp {
  /** New events may exist: read them soon. Cheap to call often; calls coalesce. */
  wake(): void
  /** Ends the subscription without an error (the store is closing). */
  complete(): void
  /** Ends the subscription with an error (the store can no longer be read). */
  fail(error: unknown): void
  /** Stops reading and releases timers; the teardown of the Observable. */
  stop(): void
}

export interface CatchUpOptions {
  readonly subscriber: Subscriber<RecordedEvent>
  readonly after: number
  readonly pageSize: number
  /**
   * Events with position > after, in position order, at most `limit` (and fewer when they are
   * large); `full` when more may follow. Synchronous, so reads never interleave.
   */
  readonly readPage: (
    after: number,
    limit: number,
  ) => { readonly events: readonly RecordedEvent[]; readonly full: boolean }
  readonly onStop: () => void
}

/**
 * Drives one subscription from a checkpoint. Every read is `position > checkpoint` against the
 * store itself, never a copy of what an append wrote, so catch-up and live delivery are the
 * same code path: an append that races with catch-up is simply found by the next read, and
 * each event is emitted exactly once, in position order.
 *
 * @example
 * const catchUp = startCatchUp({ subscriber, after: 0, pageSize: 500, readPage, onStop })
 * catchUp.wake() // after a commit, or when polling saw another process write
 */
export const startCatchUp = (options: CatchUpOptions): CatchUp => {
  const { subscriber, pageSize, readPage, onStop } = options
  let checkpoint = options.after
  let stopped = false
  let wakeQueued = false
  let nextPage: NodeJS.Immediate | undefined

  const stop = (): void => {
    if (stopped) return
    stopped = true
    if (nextPage !== undefined) clearImmediate(nextPage)
    nextPage = undefined
    onStop()
  }

  const fail = (error: unknown): void => {
    stop()
    subscriber.error(error)
  }

  // Only ever called from a microtask or an immediate, never from inside another drain, so
  // a subscriber whose handler appends simply queues the next read behind this one.
  const drain = (): void => {
    if (stopped) return
    try {
      const page = readPage(checkpoint, pageSize)
      for (const event of page.events) {
        if (stopped) return
        checkpoint = event.position
        subscriber.next(event)
      }
      if (page.full && !stopped) {
        // More may follow: let the event loop breathe between pages so a long catch-up
        // does not starve appenders, timers and I/O.
        nextPage ??= setImmediate(() => {
          nextPage = undefined
          drain()
        })
      }
    } catch (error) {
      fail(error)
    }
  }

  return {
    wake: () => {
      if (stopped || wakeQueued) return
      wakeQueued = true
      // A microtask, not a synchronous call: the appender's code finishes first and a
      // subscriber never runs inside someone else's append.
      queueMicrotask(() => {
        wakeQueued = false
        drain()
      })
    },
    complete: () => {
      stop()
      subscriber.complete()
    },
    fail,
    stop,
  }
}
