import { startWorkerThread } from '../../src/adapters/worker-thread.ts'
import type { Config } from '../../src/config/index.ts'
import { type ErrorContext, errorText, HeraldError, UnavailableError } from '../../src/errors/index.ts'
import type { LogFields, Logger, LogLevel } from '../../src/observability/index.ts'
import type { Batch, BatchHandler, Headers, LogMessage } from '../../src/ports/event-log.ts'
import type { LogReset } from './log-guard.ts'

/**
 * The projector on a thread of its own (`projector`): the event loop hands each batch over as
 * bytes and waits for the thread to say it is stored, so decoding, folding and writing the
 * warehouse's blocks — most of a projected event's JavaScript — leave the event loop, which
 * keeps HTTP ingest and the router. The thread opens the warehouse through a connection of its
 * own (chDB shares one engine between every connection to its directory, across threads),
 * its own schema registry client and the projector's processed-id window
 * (`data_dir/projected-ids.sqlite`), and runs `createProjectorHandler` on them: the same
 * rows, tokens and commit rule as in process.
 */

/** A batch as it crosses: every value in one buffer (moved, not copied), the rest beside it. */
export interface CrossingBatch {
  readonly topic: string
  readonly partition: number
  readonly values: ArrayBuffer
  /** Where each message's value ends in `values`; it starts where the one before ends. */
  readonly ends: readonly number[]
  readonly offsets: readonly number[]
  readonly keys: readonly (string | null)[]
  readonly timestamps: readonly number[]
  /** Each distinct headers object once; `headerOf` picks each message's. */
  readonly headers: readonly Headers[]
  readonly headerOf: readonly number[]
}

export type ToProjector =
  | { readonly type: 'batch'; readonly id: number; readonly run: number; readonly batch: CrossingBatch }
  /** Answered with a `pong` once the thread's processed-id window answered its `ping`. */
  | { readonly type: 'ping'; readonly id: number }
  | { readonly type: 'close' }

/** A Herald error as it crosses from the thread, which would keep only its name and message. */
export interface SentError {
  readonly code: string
  readonly message: string
  readonly retriable: boolean
  readonly context: ErrorContext
  /** What a client is told in place of the message (`HeraldErrorOptions.shown`), when not the message. */
  readonly shown?: string
}

export type FromProjector =
  | { readonly type: 'done'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly name: string; readonly message: string }
  | { readonly type: 'projected'; readonly count: number }
  | { readonly type: 'invalid'; readonly count: number }
  | { readonly type: 'halted'; readonly resets: readonly LogReset[] }
  | { readonly type: 'event_times'; readonly earliest: ReadonlyMap<string, number> }
  | { readonly type: 'pong'; readonly id: number; readonly error: SentError | null }
  | { readonly type: 'log'; readonly level: LogLevel; readonly event: string; readonly fields?: LogFields }
  | { readonly type: 'closed' }

/** What the thread is started with. */
export interface ProjectorThreadData {
  readonly config: Config
}

/** `batch` as it crosses to the thread; `values` is a buffer of its own, to be moved. */
export const crossingBatch = (batch: Batch): CrossingBatch => {
  const { messages } = batch
  let size = 0
  for (const message of messages) size += message.value.byteLength
  const values = new Uint8Array(size)
  const ends: number[] = new Array(messages.length)
  const offsets: number[] = new Array(messages.length)
  const keys: (string | null)[] = new Array(messages.length)
  const timestamps: number[] = new Array(messages.length)
  const headers: Headers[] = []
  const headerOf: number[] = new Array(messages.length)
  // Producers pass one frozen headers object per kind of message: each crosses once.
  const known = new Map<Headers, number>()
  let end = 0
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as LogMessage
    values.set(message.value, end)
    end += message.value.byteLength
    ends[i] = end
    offsets[i] = message.offset
    keys[i] = message.key
    timestamps[i] = message.timestamp
    let index = known.get(message.headers)
    if (index === undefined) {
      index = headers.push(message.headers) - 1
      known.set(message.headers, index)
    }
    headerOf[i] = index
  }
  return {
    topic: batch.topic,
    partition: batch.partition,
    values: values.buffer,
    ends,
    offsets,
    keys,
    timestamps,
    headers,
    headerOf,
  }
}

/** The batch `crossingBatch` made, as the thread's handler takes it. */
export const receivedBatch = (crossing: CrossingBatch): Batch => {
  const { topic, partition, ends } = crossing
  const messages: LogMessage[] = new Array(ends.length)
  let start = 0
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i] as number
    messages[i] = {
      topic,
      partition,
      offset: crossing.offsets[i] as number,
      key: crossing.keys[i] as string | null,
      value: Buffer.from(crossing.values, start, end - start),
      headers: crossing.headers[crossing.headerOf[i] as number] as Headers,
      timestamp: crossing.timestamps[i] as number,
    }
    start = end
  }
  return { topic, partition, messages }
}

/**
 * `error` as it crosses to the event loop; anything but a Herald error as one not retried. Only
 * the plain values of its context cross: one that cannot be cloned would fail the message.
 */
export const sendError = (error: unknown): SentError =>
  error instanceof HeraldError
    ? {
        code: error.code,
        message: error.message,
        retriable: error.retriable,
        context: Object.fromEntries(
          Object.entries(error.context).filter(([, value]) =>
            ['string', 'number', 'boolean'].includes(typeof value),
          ),
        ),
        ...(error.shown === undefined ? {} : { shown: error.shown }),
      }
    : {
        code: 'projector_failed',
        message: errorText(error),
        retriable: false,
        context: {},
      }

/** The error `sendError` described: an UnavailableError when retriable, as the thread threw it. */
export const receiveError = (sent: SentError): HeraldError => {
  const options = { context: sent.context, ...(sent.shown === undefined ? {} : { shown: sent.shown }) }
  return sent.retriable
    ? new UnavailableError(sent.message, options)
    : new HeraldError(sent.code, sent.message, options)
}

export interface ProjectorThreadOptions {
  /** Herald's configuration: the thread opens the warehouse, schema registry and window it names. */
  readonly config: Config
  /** Where the thread's log lines go. */
  readonly logger: Logger
  readonly onProjected?: (count: number) => void
  readonly onInvalid?: (count: number) => void
  /** The partitions the thread refuses for a reset log, each time that changes. */
  readonly onHalted?: (resets: readonly LogReset[]) => void
  /** Each batch's accounts and their earliest event instants, once stored (`ProjectorOptions.onEventTimes`). */
  readonly onEventTimes?: (earliest: ReadonlyMap<string, number>) => void
  /**
   * The thread stopped without being closed (`error` says why). It is not started again: a
   * warehouse connection of a thread that ended may still hold the embedded engine, which a
   * new connection would wait on. Herald exits, so that whatever runs it starts it again.
   */
  readonly onStopped?: (error: Error) => void
}

export interface ProjectorThread {
  /**
   * A batch handler for one run of the projector's consumer. The thread projects its batches
   * with state of their own, as a new `createProjectorHandler` would: after a rebuild
   * exchanged the tables, the next run reads what they hold rather than what was cached.
   */
  handler(): BatchHandler
  /**
   * The `ping` of the thread's processed-id window (`data_dir/projected-ids.sqlite`), for
   * `/ready`: resolves while it can take records, otherwise rejects with its error, or at once
   * once the thread stopped or was closed. Waits for the thread to have opened what it uses.
   */
  ping(): Promise<void>
  /** Waits for the batches in flight, then closes the thread's connections and ends it. */
  close(): Promise<void>
}

/** Why a batch failed without the thread's answer; the log delivers it again, as after any failure. */
const projectorStopped = (message: string): Error =>
  Object.assign(new Error(message), { code: 'EPROJECTORSTOPPED' })

/**
 * Starts the `projector` thread. A batch the thread fails rejects with its error's name and
 * message, so the log delivers it again. Should the thread stop without being closed, the
 * batches it had not answered and every later one reject (code `EPROJECTORSTOPPED`), and
 * `onStopped` says so once. A thread must not be ended while the warehouse runs its
 * statements (that aborts the engine the process shares): `close` lets them finish first.
 *
 * @example
 * const thread = startProjectorThread({ config, logger })
 * await log.consume({ groupId: 'herald-projector', topics: ['engine.events'] }, thread.handler())
 * await thread.close()
 */
export const startProjectorThread = (options: ProjectorThreadOptions): ProjectorThread => {
  let nextId = 1
  let runs = 0
  const waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>()
  let closed = false

  const failWaiting = (error: Error) => {
    for (const { reject } of waiting.values()) reject(error)
    waiting.clear()
  }

  let stopped: Error | undefined
  const worker = startWorkerThread(new URL('./thread-worker.ts', import.meta.url), 'projector', {
    config: options.config,
  } satisfies ProjectorThreadData)
  const { promise: ended, resolve: end } = Promise.withResolvers<void>()
  let crash: Error | undefined
  worker.on('error', (error) => {
    crash = error
  })
  worker.on('exit', (code) => {
    end()
    if (closed) return
    stopped = projectorStopped(
      `the projector thread stopped (${crash === undefined ? `exit code ${code}` : crash.message}); ` +
        'the batches it had not stored are delivered again once Herald runs again',
    )
    failWaiting(stopped)
    options.onStopped?.(stopped)
  })
  const { promise: closedByThread, resolve: threadClosed } = Promise.withResolvers<void>()
  worker.on('message', (message: FromProjector) => {
    switch (message.type) {
      case 'done':
      case 'failed': {
        const waiter = waiting.get(message.id)
        waiting.delete(message.id)
        if (message.type === 'done') waiter?.resolve()
        else {
          const error = new Error(message.message)
          if (message.name !== 'Error') Object.defineProperty(error, 'name', { value: message.name })
          waiter?.reject(error)
        }
        if (waiting.size === 0) worker.unref()
        return
      }
      case 'pong': {
        const waiter = waiting.get(message.id)
        waiting.delete(message.id)
        if (message.error === null) waiter?.resolve()
        else waiter?.reject(receiveError(message.error))
        if (waiting.size === 0) worker.unref()
        return
      }
      case 'projected':
        options.onProjected?.(message.count)
        return
      case 'invalid':
        options.onInvalid?.(message.count)
        return
      case 'halted':
        options.onHalted?.(message.resets)
        return
      case 'event_times':
        options.onEventTimes?.(message.earliest)
        return
      case 'log':
        options.logger(message.level, message.event, message.fields)
        return
      case 'closed':
        threadClosed()
        return
    }
  })

  return {
    handler: () => {
      const run = ++runs
      return (batch) => {
        if (closed) return Promise.reject(projectorStopped('the projector thread is closed'))
        if (stopped !== undefined) return Promise.reject(stopped)
        const id = nextId++
        const crossing = crossingBatch(batch)
        return new Promise<void>((resolve, reject) => {
          waiting.set(id, { resolve, reject })
          worker.ref()
          worker.postMessage({ type: 'batch', id, run, batch: crossing } satisfies ToProjector, [
            crossing.values,
          ])
        })
      }
    },
    ping: () => {
      if (closed) return Promise.reject(projectorStopped('the projector thread is closed'))
      if (stopped !== undefined) return Promise.reject(stopped)
      const id = nextId++
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, { resolve, reject })
        worker.ref()
        worker.postMessage({ type: 'ping', id } satisfies ToProjector)
      })
    },
    close: async () => {
      if (closed) return
      closed = true
      if (stopped === undefined) {
        worker.ref()
        worker.postMessage({ type: 'close' } satisfies ToProjector)
        // Its statements finished and its connections closed: ending it now is safe.
        await Promise.race([closedByThread, ended])
        await worker.terminate()
      }
      failWaiting(projectorStopped('the projector thread is closed'))
    },
  }
}
