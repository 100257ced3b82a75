import type { DatabaseSync } from 'node:sqlite'
import { type SupervisedThread, superviseThread } from './supervised-thread.ts'

export interface BackgroundCheckpoints {
  /**
   * The owner's connection has just committed. Checkpoints on that same connection (`here`)
   * cannot run while its transaction is open; one that fell due meanwhile runs now. A no-op
   * for the checkpoint thread, whose connection is its own.
   */
  committed(): void
  /** Stops checkpointing (what is left in the WAL is checkpointed by the next opener or writer). */
  stop(): void
  /** Resolves once nothing checkpoints the file any more: stopped (its connection closed), or unable to open it. */
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
 * How a WAL file's writer and the checkpoints share the work: with checkpoints every
 * `intervalMs` (not for `:memory:` or 0), the writer's `wal_autocheckpoint` is the far backstop;
 * without, `pagesWithout` (undefined: SQLite's default of 1,000). `start` starts them, on the
 * process's checkpoint thread, or — `here`, for a writer that is itself off the event loop —
 * on a timer of the calling thread, over the writer's own connection `db`.
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
  start(here?: { readonly db: DatabaseSync }): BackgroundCheckpoints | undefined
} => {
  const inBackground = intervalMs > 0 && path !== ':memory:'
  const pages = inBackground ? BACKSTOP_CHECKPOINT_PAGES : pagesWithout
  return {
    pragmas: pages === undefined ? {} : { walAutocheckpoint: pages },
    start: (here) => {
      if (!inBackground) return undefined
      return here === undefined
        ? startBackgroundCheckpoints(path, intervalMs)
        : checkpointsHere(here.db, intervalMs)
    },
  }
}

/**
 * PASSIVE checkpoints of `db` every `intervalMs` on the calling thread, until `stop`. A
 * connection cannot checkpoint inside its own transaction (SQLITE_LOCKED), and a writer that
 * begins its next transaction in the same turn as it commits the last (a fold catching up, page
 * after page) has one open at every tick: a checkpoint that falls due then waits for the
 * owner's next `committed`, so the WAL stays bounded however long the writer stays busy.
 */
export const checkpointsHere = (db: DatabaseSync, intervalMs: number): BackgroundCheckpoints => {
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
  let due = false
  let stopped = false
  const run = (): void => {
    due = false
    try {
      checkpoint.get()
    } catch {
      // Busy, or the file closed under it: the next tick, or the backstop, checkpoints.
    }
  }
  const timer = setInterval(() => {
    if (db.isTransaction) due = true
    else run()
  }, intervalMs)
  timer.unref()
  const { promise: ended, resolve: end } = Promise.withResolvers<void>()
  return {
    ended,
    committed: () => {
      if (due && !stopped && !db.isTransaction) run()
    },
    stop: () => {
      stopped = true
      clearInterval(timer)
      end()
    },
  }
}

/** What the main thread tells the checkpoint thread, and what it answers. */
export type CheckpointerRequest =
  | { readonly type: 'add'; readonly id: number; readonly path: string; readonly intervalMs: number }
  | { readonly type: 'remove'; readonly id: number }
  | { readonly type: 'close' }
export type CheckpointerReply =
  /** The file of `id` is closed (removed), or could not be opened. */
  | { readonly type: 'ended'; readonly id: number }
  /** Every file is closed; the thread ends. */
  | { readonly type: 'closed' }

/** Waits before the checkpoint thread is started again after it stopped: 1 s, doubling to 30 s. */
const RESTART_DELAY_MS = 1_000
const MAX_RESTART_DELAY_MS = 30_000

interface CheckpointedFile {
  readonly path: string
  readonly intervalMs: number
  /** `stop` was called: not added to a thread started again. */
  stopped: boolean
  readonly end: () => void
}

// One thread checkpoints every file of the process: each thread is an isolate of its own,
// about 15 MiB resident, and a checkpoint every 200 ms is little work.
let shared: { readonly thread: SupervisedThread; readonly files: Map<number, CheckpointedFile> } | undefined
let nextId = 0
let onThreadStopped: ((error: Error) => void) | undefined

/**
 * Hears of the checkpoint thread stopping unexpectedly (it is started again, its files added
 * anew); the writers' backstops checkpoint meanwhile. One listener for the process.
 */
export const onCheckpointThreadStopped = (listener: ((error: Error) => void) | undefined): void => {
  onThreadStopped = listener
}

/** The running checkpoint thread, if any (tests). */
export const checkpointWorker = () => shared?.thread.worker()

const checkpointThread = () => {
  if (shared !== undefined) return shared
  const files = new Map<number, CheckpointedFile>()
  const end = (id: number) => {
    files.get(id)?.end()
    files.delete(id)
    if (files.size > 0) return
    // The last file went: the thread ends, and the next file starts another.
    if (shared?.files === files) shared = undefined
    void thread.close()
  }
  const thread = superviseThread<CheckpointerReply>({
    url: new URL('./sqlite-checkpointer-worker.ts', import.meta.url),
    name: 'wal-checkpoint',
    workerData: {},
    // A thread started again takes up every file not stopped meanwhile.
    onStarted: (worker) => {
      for (const [id, file] of [...files]) {
        if (file.stopped) end(id)
        else
          worker.postMessage({
            type: 'add',
            id,
            path: file.path,
            intervalMs: file.intervalMs,
          } satisfies CheckpointerRequest)
      }
    },
    onMessage: (reply) => {
      if (reply.type === 'ended') end(reply.id)
    },
    onStopped: (crash, code) =>
      onThreadStopped?.(
        new Error(
          `the WAL checkpoint thread stopped (${crash?.message ?? `exit code ${code}`}); starting it again`,
        ),
      ),
    restartDelayMs: RESTART_DELAY_MS,
    maxRestartDelayMs: MAX_RESTART_DELAY_MS,
  })
  shared = { thread, files }
  return shared
}

/**
 * Checkpoints `path` every `intervalMs` from the process's checkpoint thread (started with
 * the first file and ended with the last; started again should it stop), until `stop`.
 *
 * @example
 * const checkpoints = startBackgroundCheckpoints('data/eventlog.sqlite', 200)
 * checkpoints.stop()
 * await checkpoints.ended
 */
export const startBackgroundCheckpoints = (path: string, intervalMs: number): BackgroundCheckpoints => {
  const { thread, files } = checkpointThread()
  const id = ++nextId
  const { promise: ended, resolve: end } = Promise.withResolvers<void>()
  const file: CheckpointedFile = { path, intervalMs, stopped: false, end }
  files.set(id, file)
  thread.worker()?.postMessage({ type: 'add', id, path, intervalMs } satisfies CheckpointerRequest)
  return {
    ended,
    committed: () => undefined,
    stop: () => {
      if (file.stopped) return
      file.stopped = true
      if (!files.has(id)) return
      const worker = thread.worker()
      // Between two threads: the next one would not take it up, so it ends here.
      if (worker === undefined) {
        end()
        files.delete(id)
        if (files.size === 0) {
          if (shared?.files === files) shared = undefined
          void thread.close()
        }
      } else worker.postMessage({ type: 'remove', id } satisfies CheckpointerRequest)
    },
  }
}
