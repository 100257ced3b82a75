import { superviseThread } from '../adapters/supervised-thread.ts'
import { type ExchangeAnswer, type Exchanger, ExchangeTimeoutError } from './exchange.ts'
import {
  type Batch,
  decodeAnswers,
  encodeRequest,
  type FromSender,
  receiveFailure,
  type ToSender,
} from './sender-wire.ts'

/**
 * Outbound HTTP on a thread of its own (`http-sender`): the event loop hands each exchange
 * over as plain data and gets the answer back, so connecting, TLS, writing the request and
 * parsing the answer leave it. Requests made in one turn go over in one message, and so do
 * the answers the thread has in one turn (`sender-wire.ts`).
 */

export interface SenderThreadOptions {
  /** Extra trusted CA certificates (PEM), added to Node's on the thread. */
  readonly ca: readonly string[]
  /** The thread stopped unexpectedly (it is started again after `restartDelayMs`); `error` says why. */
  readonly onStopped?: (error: Error) => void
  /** Wait before starting a thread again after one stopped (default 100 ms), doubled while starts keep failing, up to 5 s. */
  readonly restartDelayMs?: number
  /** Each thread as it starts: for tests that stop one as a crash would. */
  readonly onStarted?: (worker: import('node:worker_threads').Worker) => void
}

/** Why an exchange failed without an answer from the thread: retriable, as a failed request is. */
const senderStopped = (message: string): Error =>
  Object.assign(new Error(message), { code: 'ESENDERSTOPPED' })

// Past the exchange's own time limit, the thread is given this long to answer before the
// exchange is given up on here (a thread that stopped answering must not hold a queue forever).
const BACKSTOP_MS = 5_000

/**
 * An `Exchanger` whose exchanges run on the `http-sender` thread, started at the first
 * exchange. Aborts and time limits work as on the event loop. When the thread stops without
 * being closed (a crash), the exchanges it had not answered fail as request errors (code
 * `ESENDERSTOPPED`, retriable: each may or may not have reached its target) and it is started
 * again. It keeps the process alive only while exchanges wait for it.
 *
 * @example
 * const exchanger = startSenderThread({ ca: [] })
 * const answer = await exchanger.exchange(request, signal)
 * await exchanger.close()
 */
export const startSenderThread = (options: SenderThreadOptions): Exchanger => {
  let nextId = 1
  const waiting = new Map<
    number,
    { resolve: (answer: ExchangeAnswer) => void; reject: (error: unknown) => void }
  >()
  // The requests of this turn, and their ids.
  let outbox: Batch = []
  let outboxIds: number[] = []
  let thread: ReturnType<typeof superviseThread<FromSender>> | undefined
  let closed = false

  /** The caller waiting for `id`, no longer waiting: each exchange is answered once. */
  const takeWaiter = (id: number) => {
    const waiter = waiting.get(id)
    waiting.delete(id)
    return waiter
  }

  const failWaiting = (error: Error) => {
    for (const { reject } of waiting.values()) reject(error)
    waiting.clear()
  }

  const start = () =>
    superviseThread<FromSender>({
      url: new URL('./sender-worker.ts', import.meta.url),
      name: 'http-sender',
      workerData: { ca: options.ca },
      restartDelayMs: options.restartDelayMs ?? 100,
      maxRestartDelayMs: 5_000,
      ...(options.onStarted === undefined ? {} : { onStarted: options.onStarted }),
      onMessage: (message, worker) => {
        if (message.type !== 'answers') return
        thread?.healthy()
        decodeAnswers(
          message.answers,
          (id, answer) => takeWaiter(id)?.resolve(answer),
          (id, failure) => takeWaiter(id)?.reject(receiveFailure(failure)),
        )
        if (waiting.size === 0 && outboxIds.length === 0) worker.unref()
      },
      onStopped: (crash, code) => {
        const stopped = senderStopped(
          `the HTTP sender thread stopped (${crash === undefined ? `exit code ${code}` : crash.message}); ` +
            'a request it had not answered may or may not have reached its target',
        )
        outbox = []
        outboxIds = []
        failWaiting(stopped)
        options.onStopped?.(stopped)
      },
    })

  const flush = () => {
    const requests = outbox
    const ids = outboxIds
    outbox = []
    outboxIds = []
    const worker = thread?.worker()
    if (ids.length === 0) return
    if (worker === undefined) {
      // Being started again after a stop: these fail as the ones it had taken did.
      const down = senderStopped('the HTTP sender thread is being started again')
      for (const id of ids) {
        takeWaiter(id)?.reject(down)
      }
      return
    }
    worker.postMessage({ type: 'exchange', requests } satisfies ToSender)
  }

  return {
    exchange: (request, signal) => {
      if (signal?.aborted === true) return Promise.reject(signal.reason)
      if (closed) return Promise.reject(senderStopped('the HTTP sender is closed'))
      thread ??= start()
      const id = nextId++
      return new Promise<ExchangeAnswer>((resolve, reject) => {
        // Given up on here (the caller's abort, or the backstop): the thread stops it too, and
        // the waiter's reject clears the other of the two.
        const giveUp = (error: unknown) => {
          const waiter = takeWaiter(id)
          if (waiter === undefined) return
          thread?.worker()?.postMessage({ type: 'abort', id } satisfies ToSender)
          waiter.reject(error)
        }
        const backstop = setTimeout(
          () =>
            giveUp(
              new ExchangeTimeoutError(`no answer from the sender thread within ${request.timeoutMs} ms`),
            ),
          request.timeoutMs + BACKSTOP_MS,
        )
        const onAbort = () => giveUp(signal?.reason)
        signal?.addEventListener('abort', onAbort, { once: true })
        const done = () => {
          clearTimeout(backstop)
          signal?.removeEventListener('abort', onAbort)
        }
        waiting.set(id, {
          resolve: (answer) => {
            done()
            resolve(answer)
          },
          reject: (error) => {
            done()
            reject(error)
          },
        })
        if (outboxIds.length === 0) setImmediate(flush)
        outboxIds.push(id)
        encodeRequest(outbox, id, request)
        thread?.worker()?.ref()
      })
    },
    close: async () => {
      if (closed) return
      closed = true
      flush()
      await thread?.close()
      failWaiting(senderStopped('the HTTP sender is closed'))
    },
  }
}
