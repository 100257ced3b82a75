import type { Worker } from 'node:worker_threads'
import { startWorkerThread } from './worker-thread.ts'

export interface SupervisedThreadOptions<From extends { readonly type: string }> {
  /** The module the thread runs, and the thread's name (see `startWorkerThread`). */
  readonly url: URL
  readonly name: string
  /** What each thread is started with, the first and every restarted one. */
  readonly workerData: unknown
  /** Every message of the running thread; a `closed` one also ends `close`'s wait. */
  readonly onMessage: (message: From, worker: Worker) => void
  /** Each thread as it starts, before any message of it. */
  readonly onStarted?: (worker: Worker) => void
  /** The thread stopped without being closed (`crash`: its uncaught error, if any); it is started again. */
  readonly onStopped: (crash: Error | undefined, exitCode: number) => void
  /** The thread exited while closing, before saying `closed`. */
  readonly onExitWhileClosing?: (crash: Error | undefined, exitCode: number) => void
  /** Wait before starting a thread again after one stopped. */
  readonly restartDelayMs: number
  /** Doubles the wait while starts keep failing, up to this (default: `restartDelayMs`, a fixed wait). */
  readonly maxRestartDelayMs?: number
}

export interface SupervisedThread {
  /** The running thread; undefined while one is being started again, and once closed. */
  readonly worker: () => Worker | undefined
  /** The thread showed it works (it answered): the next restart waits the first delay again. */
  healthy(): void
  /** Whether `close` was called. */
  readonly closing: () => boolean
  /**
   * Starts no thread again, posts `{type: 'close'}` to the running one, waits until it says
   * `closed` (or exits), then ends it.
   */
  close(): Promise<void>
}

/**
 * A worker thread that is started again when it stops without being closed (an uncaught error,
 * a crash, `terminate()`): the owner hears of the stop through `onStopped` and decides what
 * the requests the thread had not answered become; the restart comes after `restartDelayMs`.
 *
 * @example
 * const thread = superviseThread<FromWriter>({ url: new URL('./writer-worker.ts', import.meta.url),
 *   name: 'store-writer', workerData: { path }, onMessage, onStopped, restartDelayMs: 100,
 *   maxRestartDelayMs: 5_000 })
 * thread.worker()?.postMessage(request)
 */
export const superviseThread = <From extends { readonly type: string }>(
  options: SupervisedThreadOptions<From>,
): SupervisedThread => {
  const maxDelay = Math.max(options.restartDelayMs, options.maxRestartDelayMs ?? options.restartDelayMs)
  let delay = options.restartDelayMs
  let worker: Worker | undefined
  let restart: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined
  let onClosed: (() => void) | undefined

  const start = (): void => {
    const current = startWorkerThread(options.url, options.name, options.workerData)
    worker = current
    let crash: Error | undefined
    options.onStarted?.(current)
    current.on('message', (message: From) => {
      options.onMessage(message, current)
      if (message.type === 'closed') onClosed?.()
    })
    current.on('error', (error) => {
      crash = error
    })
    current.on('exit', (code) => {
      if (worker !== current) return
      worker = undefined
      if (closing !== undefined) {
        options.onExitWhileClosing?.(crash, code)
        onClosed?.()
        return
      }
      options.onStopped(crash, code)
      restart = setTimeout(() => {
        restart = undefined
        if (closing === undefined) start()
      }, delay)
      restart.unref()
      delay = Math.min(delay * 2, maxDelay)
    })
  }

  start()

  return {
    worker: () => worker,
    healthy: () => {
      delay = options.restartDelayMs
    },
    closing: () => closing !== undefined,
    close: () => {
      closing ??= (async () => {
        clearTimeout(restart)
        const current = worker
        if (current === undefined) return
        current.ref()
        const closed = new Promise<void>((resolve) => {
          onClosed = resolve
        })
        current.postMessage({ type: 'close' })
        await closed
        await current.terminate()
      })()
      return closing
    },
  }
}
