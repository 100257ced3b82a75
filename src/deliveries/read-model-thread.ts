import type { Worker } from 'node:worker_threads'
import { receiveSqliteError, type SentSqliteError } from '../adapters/sqlite-errors.ts'
import type { SqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { watchStorage } from '../adapters/storage-health.ts'
import { type SupervisedThread, superviseThread } from '../adapters/supervised-thread.ts'
import { ClosedError, type FieldIssue } from '../errors/index.ts'
import type { RecordedEvent } from '../ports/index.ts'
import {
  createDeliveryQueries,
  DEFAULT_FAILURE_GAP_MS,
  type DeliveryReadModel,
  type DeliveryReadModelOptions,
  type ForgottenDelivery,
  openDeliveryViewFile,
  readsOf,
} from './read-model.ts'

/** A store that says when it committed its own appends (the embedded one). */
const isCommitSource = (store: object): store is Pick<SqliteEventStore, 'onCommitted'> =>
  typeof (store as Partial<SqliteEventStore>).onCommitted === 'function'

/** What the folding thread is started with. */
export interface FoldingData {
  readonly path: string
  readonly storePath: string
  readonly storePollMs: number
  readonly failureGapMs: number
  readonly resubscribeMs: number
  readonly checkpointIntervalMs?: number
  readonly maxPageCount?: number
  readonly busyCommitWaitMs?: number
  readonly busyCommitEvents?: number
}

export type ToFolder =
  /** The outcomes up to `through` were published: kept with the read model. */
  | { readonly type: 'published'; readonly through: number }
  /** The store committed appends: look for them now. */
  | { readonly type: 'committed' }
  /** Retention deleted these deliveries' streams: forget them (`DeliveryReadModel.forget`). */
  | { readonly type: 'forget'; readonly deliveries: readonly ForgottenDelivery[] }
  | { readonly type: 'close' }

export type FromFolder =
  /** Every store event up to `position` is folded in and committed. */
  | { readonly type: 'committed'; readonly position: number }
  | { readonly type: 'invalid'; readonly event: RecordedEvent; readonly issues: readonly FieldIssue[] }
  /** The fold failed; `sqlite`: with this SQLite error (a write that failed, its cause). */
  | { readonly type: 'error'; readonly message: string; readonly sqlite?: SentSqliteError }
  | { readonly type: 'closed'; readonly position: number }
  /** These deliveries were forgotten (or were no more), on disk. */
  | { readonly type: 'forgotten'; readonly deliveries: readonly ForgottenDelivery[] }

export interface ThreadedDeliveryReadModelOptions extends DeliveryReadModelOptions {
  /** The embedded delivery store's file, which the folding thread reads through a connection of its own. */
  readonly storePath: string
  /**
   * How often the folding thread looks for appends in the store file that it was not told of
   * (default 250 ms). The store `follow` is given tells it of each of its own commits, so they
   * are folded at once; the poll finds those of other processes sharing the file.
   */
  readonly storePollMs?: number
  /** Each folding thread as it starts, first and restarted: for tests that stop one as a crash would. */
  readonly onStarted?: (worker: Worker) => void
}

/**
 * The delivery read model over the embedded store, folded by a thread of its own: that thread
 * follows the store file, reads each appended delivery event back, folds it in and commits
 * (all of which the in-process read model does on the event loop), then says how far it got.
 * The event loop answers every query from its own connection to the file (WAL: readers never
 * wait for the writer), and `waitFor` resolves once the thread's commit covering the position
 * is reported, so a read made after it sees that commit: a queue whose attempt waited for its
 * outcome never reads its head from before it.
 *
 * `follow` starts the thread, which reads `storePath` itself: the store passed must be the
 * embedded store on that file. A thread that stops (an uncaught error, a crash) is reported
 * through `onFollowError` and started again after `resubscribeMs`, resuming from the file's
 * checkpoint; waiters keep waiting meanwhile.
 *
 * @example
 * const view = createThreadedDeliveryReadModel({ path: 'data/deliveries-view.sqlite',
 *   storePath: 'data/deliveries.sqlite', newId: randomUUID })
 * view.follow(deliveryStore)
 * await view.waitFor(appended.position)
 */
export const createThreadedDeliveryReadModel = (
  options: ThreadedDeliveryReadModelOptions,
): DeliveryReadModel => {
  // Opened here first, so any upgrade is this connection's, and the thread finds the file current.
  const { db, instanceId } = openDeliveryViewFile(
    options.path,
    options.newId,
    options.onUpgrade === undefined ? {} : { onUpgrade: options.onUpgrade },
  )
  // The thread's writes, as it reports them, and the file this connection opened: for `ping`.
  const health = watchStorage(options.path, 'delivery read model')
  const queries = createDeliveryQueries(db)
  const resubscribeMs = options.resubscribeMs ?? 1000
  let committed = Number(queries.meta('checkpoint') ?? 0)
  let publishedThrough = Number(queries.meta('published_through') ?? 0)
  const listeners = new Set<() => void>()
  let waiters: { position: number; resolve: () => void }[] = []
  let thread: SupervisedThread | undefined
  let following = false
  let stopTelling: (() => void) | undefined
  // Told to the thread and not yet forgotten on disk, by seq: told again to each thread started,
  // as one that stops (or is starting again) loses its messages.
  const unforgotten = new Map<number, ForgottenDelivery>()

  const reached = (position: number): void => {
    if (position <= committed) return
    // Every commit of the thread's folds moves its position on: one that did, wrote.
    health.wrote()
    committed = position
    const answered: typeof waiters = []
    const kept: typeof waiters = []
    for (const waiter of waiters) (waiter.position <= committed ? answered : kept).push(waiter)
    if (answered.length > 0) {
      waiters = kept
      for (const answer of answered) answer.resolve()
    }
    for (const listener of listeners) listener()
  }

  const start = (): SupervisedThread =>
    superviseThread<FromFolder>({
      url: new URL('./read-model-worker.ts', import.meta.url),
      name: 'delivery-fold',
      workerData: {
        path: options.path,
        storePath: options.storePath,
        storePollMs: options.storePollMs ?? 250,
        failureGapMs: options.failureGapMs ?? DEFAULT_FAILURE_GAP_MS,
        resubscribeMs,
        ...(options.checkpointIntervalMs === undefined
          ? {}
          : { checkpointIntervalMs: options.checkpointIntervalMs }),
        ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
        ...(options.busyCommitWaitMs === undefined ? {} : { busyCommitWaitMs: options.busyCommitWaitMs }),
        ...(options.busyCommitEvents === undefined ? {} : { busyCommitEvents: options.busyCommitEvents }),
      } satisfies FoldingData,
      restartDelayMs: resubscribeMs,
      onStarted: (worker) => {
        worker.ref()
        // What the thread before it may not have kept.
        if (publishedThrough > 0)
          worker.postMessage({ type: 'published', through: publishedThrough } satisfies ToFolder)
        if (unforgotten.size > 0)
          worker.postMessage({ type: 'forget', deliveries: [...unforgotten.values()] } satisfies ToFolder)
        options.onStarted?.(worker)
      },
      onMessage: (message) => {
        switch (message.type) {
          case 'committed':
          case 'closed':
            reached(message.position)
            return
          case 'forgotten':
            for (const { seq, revision } of message.deliveries)
              if (unforgotten.get(seq)?.revision === revision) unforgotten.delete(seq)
            return
          case 'invalid':
            options.onInvalidEvent?.(message.event, message.issues)
            return
          case 'error': {
            // The error as the thread's model gave it, its SQLite error kept as the cause.
            const error = new Error(
              message.message,
              message.sqlite === undefined ? undefined : { cause: receiveSqliteError(message.sqlite) },
            )
            if (message.sqlite !== undefined) health.wrote(error)
            options.onFollowError?.(error)
          }
        }
      },
      onStopped: (crash, code) =>
        options.onFollowError?.(
          new Error(`the read model's folding thread stopped (${crash?.message ?? `exit code ${code}`})`),
        ),
    })

  let closing: Promise<void> | undefined
  return {
    instanceId,
    position: () => committed,
    ...readsOf(queries),
    unpublished: (limit) => queries.unpublished(publishedThrough, limit),
    prunable: (before, after, limit) => queries.prunable(before, after, limit, publishedThrough),
    // The folding thread writes the file: it forgets them between its folds, and says once it did.
    forget: (deliveries) => {
      if (deliveries.length === 0 || closing !== undefined) return
      for (const delivery of deliveries) unforgotten.set(delivery.seq, delivery)
      thread?.worker()?.postMessage({ type: 'forget', deliveries } satisfies ToFolder)
    },
    markPublished: (positions) => {
      const through = positions.reduce((highest, p) => Math.max(highest, p), publishedThrough)
      if (through === publishedThrough) return
      publishedThrough = through
      thread?.worker()?.postMessage({ type: 'published', through } satisfies ToFolder)
    },
    waitFor: (target) => {
      if (target <= committed || closing !== undefined) return Promise.resolve()
      return new Promise<void>((resolve) => waiters.push({ position: target, resolve }))
    },
    onChange: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    ping: async () => {
      if (closing !== undefined) throw new ClosedError('delivery read model')
      health.check()
      db.prepare('SELECT 1').get()
    },
    follow: (store) => {
      if (following || closing !== undefined) return
      following = true
      // One message per commit of the store's appends (a group of them), so the thread folds
      // them at once instead of at its next poll.
      if (isCommitSource(store))
        stopTelling = store.onCommitted(() =>
          thread?.worker()?.postMessage({ type: 'committed' } satisfies ToFolder),
        )
      thread = start()
    },
    close: () => {
      closing ??= (async () => {
        stopTelling?.()
        await thread?.close()
        for (const waiter of waiters.splice(0)) waiter.resolve()
        db.close()
      })()
      return closing
    },
  }
}
