import { setImmediate as nextTurn } from 'node:timers/promises'
import { errorText } from '../errors/index.ts'
import type { Logger } from '../observability/index.ts'
import type { EventStore } from '../ports/index.ts'
import { deliveryStream } from './events.ts'
import type { DeliveryReadModel, ForgottenDelivery } from './read-model.ts'

export interface DeliveryRetentionOptions {
  readonly store: Pick<EventStore, 'deleteStreams'>
  readonly view: Pick<DeliveryReadModel, 'prunable' | 'forget'>
  /** A settled delivery is deleted once it was requested and last changed longer ago than this. */
  readonly retentionMs: number
  /** Between passes (default an hour); the first pass runs after `firstPassMs` (default a minute). */
  readonly intervalMs?: number
  readonly firstPassMs?: number
  /** Deliveries looked at per store write (default 500); the event loop gets a turn between batches. */
  readonly batchSize?: number
  readonly clock: () => number
  readonly logger: Logger
}

/** What one pass did. */
export interface RetentionPass {
  /** Streams deleted from the store, and forgotten by the read model. */
  readonly deleted: number
  /** Deleted from the store before (by another process, or a pass that stopped short): forgotten now. */
  readonly absent: number
  /** Changed since they were looked at (replayed, say): kept. */
  readonly changed: number
}

export interface DeliveryRetention {
  /** One pass now (a pass already running is awaited instead): for tests and the first start. */
  pass(): Promise<RetentionPass>
  /** Stops the timer and waits for a running pass to end at its next batch. */
  stop(): Promise<void>
}

/**
 * The delivery log's retention: settled deliveries older than `retentionMs` are deleted from the
 * store (their streams, each only while still at the revision the read model knows, so a
 * delivery replayed meanwhile is kept) and then forgotten by the read model, in batches, every
 * `intervalMs`. Unsettled deliveries (pending, retrying) are never deleted, however old.
 *
 * A crash between the two writes leaves rows whose streams are gone: the next pass finds them
 * again, the store answers `absent`, and they are forgotten then. A delivery requested again
 * between them (its command redelivered) starts its stream anew: the read model folds that
 * request in as the delivery's row, in place of the old one, which alone is forgotten. With several processes on one
 * store (KurrentDB) each forgets from its own read model; whichever deletes a stream first, the
 * others hear `absent`.
 *
 * @example
 * const retention = startDeliveryRetention({ store, view, retentionMs: 30 * 86_400_000, clock: Date.now, logger })
 * await retention.stop()
 */
export const startDeliveryRetention = (options: DeliveryRetentionOptions): DeliveryRetention => {
  const { store, view, retentionMs, clock, logger } = options
  const batchSize = options.batchSize ?? 500
  const intervalMs = options.intervalMs ?? 3_600_000
  let stopped = false
  let running: Promise<RetentionPass> | undefined

  const runPass = async (): Promise<RetentionPass> => {
    const started = performance.now()
    const before = clock() - retentionMs
    const totals = { deleted: 0, absent: 0, changed: 0 }
    let after = 0
    while (!stopped) {
      const page = view.prunable(before, after, batchSize)
      after = page.through
      if (page.deliveries.length > 0) {
        const outcomes = await store.deleteStreams(
          page.deliveries.map((d) => ({
            stream: deliveryStream(d.deliveryId),
            expectedRevision: d.revision,
          })),
        )
        const gone: ForgottenDelivery[] = []
        page.deliveries.forEach((delivery, i) => {
          const outcome = outcomes[i] ?? 'changed'
          totals[outcome] += 1
          if (outcome !== 'changed') gone.push({ seq: delivery.seq, revision: delivery.revision })
        })
        view.forget(gone)
      }
      if (page.done) break
      await nextTurn()
    }
    if (totals.deleted + totals.absent + totals.changed > 0)
      logger('info', 'delivery.retention_pass', {
        ...totals,
        older_than: new Date(before).toISOString(),
        ms: Math.round(performance.now() - started),
      })
    return totals
  }

  const pass = (): Promise<RetentionPass> => {
    running ??= runPass().finally(() => {
      running = undefined
    })
    return running
  }

  let timer: NodeJS.Timeout | undefined
  const schedule = (delayMs: number): void => {
    if (stopped) return
    timer = setTimeout(() => {
      pass()
        .catch((error: unknown) => logger('error', 'delivery.retention_failed', { error: errorText(error) }))
        .finally(() => schedule(intervalMs))
    }, delayMs)
    timer.unref()
  }
  schedule(options.firstPassMs ?? 60_000)

  return {
    pass,
    stop: async () => {
      stopped = true
      clearTimeout(timer)
      await running?.catch(() => undefined)
    },
  }
}
