import { startWorkerThread } from './worker-thread.ts'

export interface BackgroundCheckpoints {
  /** Stops checkpointing (what is left in the WAL is checkpointed by the next opener or writer). */
  stop(): void
  /** Resolves once the thread has ended: stopped, or unable to open its file. */
  readonly ended: Promise<void>
}

/**
 * Checkpoints a WAL-mode SQLite file from a worker thread every `intervalMs`: PASSIVE, so it
 * never waits for, nor holds up, a reader or a writer. A file whose writer commits on the
 * event loop then never pays for a checkpoint there (copying the WAL into the file, and its
 * sync to disk, inside whichever commit crossed `wal_autocheckpoint`); that writer keeps a
 * much larger `wal_autocheckpoint` only as a backstop, should this thread fail.
 *
 * @example
 * const db = openSqliteFile(path, { synchronous: 'NORMAL', walAutocheckpoint: 50_000 })
 * const checkpoints = startBackgroundCheckpoints(path, 200)
 */
/** How often the thread checkpoints, unless a file's owner says otherwise. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 200

// With checkpoints in the background, the writer's own: only should that thread stop.
const BACKSTOP_CHECKPOINT_PAGES = 50_000

/**
 * How a WAL file's writer and the checkpoint thread share the checkpoints: with the thread
 * (every `intervalMs`, not for `:memory:` or 0), the writer's `wal_autocheckpoint` is the far
 * backstop; without it, `pagesWithout` (undefined: SQLite's default of 1,000). `start` starts
 * the thread when there is one.
 *
 * @example
 * const checkpointing = checkpointingOf(path, options.checkpointIntervalMs, 4000)
 * const db = openSqliteFile(path, { synchronous: 'NORMAL', ...checkpointing.pragmas })
 * const checkpoints = checkpointing.start()
 */
export const checkpointingOf = (
  path: string,
  intervalMs = DEFAULT_CHECKPOINT_INTERVAL_MS,
  pagesWithout?: number,
): {
  readonly pragmas: { readonly walAutocheckpoint?: number }
  start(): BackgroundCheckpoints | undefined
} => {
  const inBackground = intervalMs > 0 && path !== ':memory:'
  const pages = inBackground ? BACKSTOP_CHECKPOINT_PAGES : pagesWithout
  return {
    pragmas: pages === undefined ? {} : { walAutocheckpoint: pages },
    start: () => (inBackground ? startBackgroundCheckpoints(path, intervalMs) : undefined),
  }
}

export const startBackgroundCheckpoints = (path: string, intervalMs: number): BackgroundCheckpoints => {
  const worker = startWorkerThread(
    new URL('./sqlite-checkpointer-worker.ts', import.meta.url),
    'wal-checkpoint',
    {
      path,
      intervalMs,
    },
  )
  // A failure leaves checkpoints to the writer's own backstop; nothing else depends on it.
  worker.on('error', () => undefined)
  const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  let stopped = false
  return {
    ended,
    stop: () => {
      if (stopped) return
      stopped = true
      worker.postMessage('stop')
    },
  }
}
