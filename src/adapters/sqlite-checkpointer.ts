import { startWorkerThread } from './worker-thread.ts'

export interface BackgroundCheckpoints {
  /** Stops checkpointing (what is left in the WAL is checkpointed by the next opener or writer). */
  stop(): void
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
export const startBackgroundCheckpoints = (path: string, intervalMs: number): BackgroundCheckpoints => {
  const worker = startWorkerThread(new URL('./sqlite-checkpointer-worker.ts', import.meta.url), {
    path,
    intervalMs,
  })
  // A failure leaves checkpoints to the writer's own backstop; nothing else depends on it.
  worker.on('error', () => undefined)
  let stopped = false
  return {
    stop: () => {
      if (stopped) return
      stopped = true
      worker.postMessage('stop')
    },
  }
}
