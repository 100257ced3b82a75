import { DELIVERY_STREAM_PREFIX, type DeliveryReadModel } from '../deliveries/index.ts'
import { errorText } from '../errors/index.ts'
import type { Logger } from '../observability/index.ts'
import type { EventStore } from '../ports/event-store.ts'

export interface ViewRebuildOptions {
  readonly view: Pick<DeliveryReadModel, 'position' | 'waitFor'>
  /** The delivery log the view folds. */
  readonly store: Pick<EventStore, 'lastPosition'>
  readonly logger: Logger
  /** The view's file, named in the lines. */
  readonly path: string
  /** How often progress is logged while it lasts. Default 10 000 ms. */
  readonly progressMs?: number
}

export interface ViewRebuild {
  /** Resolves once the view has folded the delivery log as it was when the rebuild began (or `stop`). */
  readonly done: Promise<void>
  stop(): void
}

/**
 * Says what a delivery read model begun anew (its file was missing) does while it folds the
 * whole delivery log again, which can take minutes on a large log: `delivery.view_rebuilding`
 * with the position it must reach, `delivery.view_rebuild_progress` every `progressMs`, and
 * `delivery.view_rebuilt` with the time it took. Nothing when the log holds no delivery yet.
 *
 * @example
 * const rebuild = reportViewRebuild({ view, store, logger, path })
 * view.follow(store)
 */
export const reportViewRebuild = (options: ViewRebuildOptions): ViewRebuild => {
  const { view, store, logger, path } = options
  const progressMs = options.progressMs ?? 10_000
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const run = async (): Promise<void> => {
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    let through: number | undefined
    try {
      through = await store.lastPosition({ streamPrefixes: [DELIVERY_STREAM_PREFIX] })
    } catch (error) {
      // The view folds all the same; only how far it must go is unknown.
      logger('warn', 'delivery.view_rebuilding', { path, error: errorText(error) })
      return
    }
    if (stopped || through === undefined || view.position() >= through) return
    logger('info', 'delivery.view_rebuilding', { path, through_position: through })
    timer = setInterval(
      () =>
        logger('info', 'delivery.view_rebuild_progress', {
          position: view.position(),
          through_position: through,
          ms: elapsed(),
        }),
      progressMs,
    )
    timer.unref()
    await view.waitFor(through)
    clearInterval(timer)
    if (!stopped) logger('info', 'delivery.view_rebuilt', { position: view.position(), ms: elapsed() })
  }
  const done = run()
  return {
    done,
    stop: () => {
      stopped = true
      clearInterval(timer)
    },
  }
}
