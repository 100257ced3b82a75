import type { Worker } from 'node:worker_threads'
import {
  type ErrorContext,
  ExpectedRevisionConflictError,
  errorText,
  type FieldIssue,
  UnavailableError,
  ValidationError,
} from '../../errors/index.ts'
import type { AppendResult, ExpectedRevision } from '../../ports/index.ts'
import { isSqliteError, receiveSqliteError, type SentSqliteError, sendSqliteError } from '../sqlite-errors.ts'
import { superviseThread } from '../supervised-thread.ts'
import type { EncodedAppend, EncodedEvent, WriteAnswer, WriteRequest } from './writing.ts'

/**
 * The store's writer thread: a worker with its own connection to the file that writes the
 * appends it is sent, group-committing all that arrived while it was writing the previous
 * group. The syncs to disk, and the writing itself, leave the caller's event loop.
 */

/** An error as it crosses from the writer thread: what it takes to make the same one again. */
export type SentError =
  | { readonly kind: 'conflict'; readonly context: ErrorContext }
  | { readonly kind: 'validation'; readonly message: string; readonly issues: readonly FieldIssue[] }
  | ({ readonly kind: 'sqlite' } & SentSqliteError)
  | { readonly kind: 'other'; readonly name: string; readonly message: string }

export type ToWriter =
  | { readonly type: 'write'; readonly requests: FlatRequests }
  /** Answered with a `pong` once the thread's connection answered a query. */
  | { readonly type: 'ping'; readonly id: number }
  | { readonly type: 'close' }

export type FromWriter =
  | { readonly type: 'answers'; readonly written: boolean; readonly answers: FlatAnswers }
  | { readonly type: 'pong'; readonly id: number; readonly error: SentError | null }
  | { readonly type: 'closed' }

/**
 * Requests as one flat array of strings and numbers: what crosses to the thread is cloned, and
 * a flat list of strings clones in a fraction of the time of the same data as nested objects.
 * Per request: id, operation, recordedAt, number of appends; per append: stream, expected
 * revision, number of events; per event: id, type, data, metadata.
 */
export type FlatRequests = (string | number)[]

export const flattenRequests = (
  requests: readonly { readonly id: number; readonly request: WriteRequest }[],
): FlatRequests => {
  const out: FlatRequests = []
  for (const { id, request } of requests) {
    out.push(id, request.operation, request.recordedAt, request.appends.length)
    for (const append of request.appends) {
      out.push(append.stream, append.expected, append.events.length)
      for (const event of append.events) out.push(event.id, event.type, event.data, event.metadata)
    }
  }
  return out
}

export const unflattenRequests = (flat: FlatRequests): { id: number; request: WriteRequest }[] => {
  const out: { id: number; request: WriteRequest }[] = []
  let i = 0
  const next = () => flat[i++] as never
  while (i < flat.length) {
    const id: number = next()
    const operation: WriteRequest['operation'] = next()
    const recordedAt: number = next()
    const appendCount: number = next()
    const appends: EncodedAppend[] = []
    for (let a = 0; a < appendCount; a++) {
      const stream: string = next()
      const expected: ExpectedRevision = next()
      const eventCount: number = next()
      const events: EncodedEvent[] = []
      for (let e = 0; e < eventCount; e++)
        events.push({ id: next(), type: next(), data: next(), metadata: next() })
      appends.push({ stream, expected, events })
    }
    out.push({ id, request: { operation, recordedAt, appends } })
  }
  return out
}

/** Answers in request order: per answer its id, 1 and its results (revision, position each), or 0 and its error. */
export type FlatAnswers = (number | SentError)[]

export const flattenAnswers = (ids: readonly number[], answers: readonly WriteAnswer[]): FlatAnswers => {
  const out: FlatAnswers = []
  answers.forEach((answer, i) => {
    out.push(ids[i] ?? 0)
    if (answer.ok) {
      out.push(1, answer.results.length)
      for (const r of answer.results) out.push(r.nextExpectedRevision, r.position)
    } else out.push(0, sendError(answer.error))
  })
  return out
}

export const unflattenAnswers = (flat: FlatAnswers): { id: number; answer: WriteAnswer }[] => {
  const out: { id: number; answer: WriteAnswer }[] = []
  let i = 0
  const next = () => flat[i++] as never
  while (i < flat.length) {
    const id: number = next()
    const ok: number = next()
    if (ok === 1) {
      const count: number = next()
      const results: AppendResult[] = []
      for (let r = 0; r < count; r++) results.push({ nextExpectedRevision: next(), position: next() })
      out.push({ id, answer: { ok: true, results } })
    } else out.push({ id, answer: { ok: false, error: receiveError(next()) } })
  }
  return out
}

export const sendError = (error: unknown): SentError => {
  if (error instanceof ExpectedRevisionConflictError) return { kind: 'conflict', context: error.context }
  if (error instanceof ValidationError)
    return { kind: 'validation', message: error.message, issues: error.issues }
  if (isSqliteError(error)) return { kind: 'sqlite', ...sendSqliteError(error) }
  return {
    kind: 'other',
    name: error instanceof Error ? error.name : 'Error',
    message: errorText(error),
  }
}

/** The error `sendError` described, as the writing code threw it (a SQLite error still untranslated). */
export const receiveError = (sent: SentError): Error => {
  switch (sent.kind) {
    case 'conflict':
      return new ExpectedRevisionConflictError(
        sent.context as ConstructorParameters<typeof ExpectedRevisionConflictError>[0],
      )
    case 'validation':
      return new ValidationError(sent.message, sent.issues)
    case 'sqlite':
      return receiveSqliteError(sent)
    case 'other':
      return Object.assign(new Error(sent.message), { name: sent.name })
  }
}

export interface WriterThread {
  /**
   * Resolves once the writer committed the request's transaction (or with why it failed). When
   * the thread is gone, with a retriable `UnavailableError`: at once while it is being started
   * again, and for requests it had taken when it stopped, whose commit is then unknown (a
   * retry is recognised by its event ids, so it is safe).
   */
  write(request: WriteRequest): Promise<WriteAnswer>
  /** Resolves once the running writer answered on its connection; rejects (`UnavailableError`) while there is none. */
  ping(): Promise<void>
  /** Waits for the writes sent, then ends the thread. */
  close(): Promise<void>
}

export interface WriterThreadOptions {
  readonly path: string
  readonly busyTimeoutMs: number
  /** The store's `maxPageCount`, which its connection must apply too. */
  readonly maxPageCount?: number
  /** After each committed group that wrote something, before its appends are answered. */
  readonly onCommitted: () => void
  /** The thread stopped unexpectedly (and is started again); `error` says why. */
  readonly onStopped?: (error: Error) => void
  /** Each writer thread as it starts, first and restarted: for tests that stop one as a crash would. */
  readonly onStarted?: (worker: Worker) => void
  /** Wait before starting a thread again after one stopped (default 100 ms), doubled while starts keep failing, up to 5 s. */
  readonly restartDelayMs?: number
}

const MAX_RESTART_DELAY_MS = 5_000

/**
 * Starts the writer thread for the store file at `path` (which must already hold the schema).
 * Requests made in one turn of the event loop go to it in one message, as one group commit
 * would have taken them; what arrives while it writes joins the next group. The thread keeps the process
 * alive only while writes are waiting for it.
 *
 * A thread that stops without being closed (an uncaught error, a crash, `terminate()`) is
 * started again after `restartDelayMs`, and meanwhile writes and pings fail at once rather
 * than wait: nothing it had not answered is reported as committed.
 */
export const startWriterThread = (options: WriterThreadOptions): WriterThread => {
  let nextId = 1
  /** What the running thread was sent and has not answered: a write's or a ping's resolve. */
  const waiting = new Map<number, (answer: WriteAnswer) => void>()
  let outbox: { id: number; request: WriteRequest }[] = []
  /** Why there is no thread running, while it is being started again. */
  let down: Error | undefined

  const unavailable = (why: string, cause?: unknown): UnavailableError =>
    new UnavailableError(`the event store's writer thread ${why}`, cause === undefined ? {} : { cause })

  const failWaiting = (error: Error) => {
    for (const answer of waiting.values()) answer({ ok: false, error })
    waiting.clear()
  }

  const thread = superviseThread<FromWriter>({
    url: new URL('./writer-worker.ts', import.meta.url),
    name: 'store-writer',
    workerData: {
      path: options.path,
      busyTimeoutMs: options.busyTimeoutMs,
      maxPageCount: options.maxPageCount,
    },
    restartDelayMs: options.restartDelayMs ?? 100,
    maxRestartDelayMs: MAX_RESTART_DELAY_MS,
    onStarted: (worker) => {
      down = undefined
      options.onStarted?.(worker)
    },
    onMessage: (message, current) => {
      if (message.type === 'closed') return
      // The thread answers: it opened the file, so the next failure starts from the first delay.
      thread.healthy()
      if (message.type === 'pong') {
        const resolve = waiting.get(message.id)
        waiting.delete(message.id)
        resolve?.(
          message.error === null
            ? { ok: true, results: [] }
            : { ok: false, error: receiveError(message.error) },
        )
      } else {
        if (message.written) options.onCommitted()
        for (const { id, answer } of unflattenAnswers(message.answers)) {
          const resolve = waiting.get(id)
          waiting.delete(id)
          resolve?.(answer)
        }
      }
      if (waiting.size === 0 && outbox.length === 0) current.unref()
    },
    onExitWhileClosing: (crash, code) =>
      failWaiting(unavailable(`exited (code ${code}) while the store was closing`, crash)),
    onStopped: (crash, code) => {
      const stopped = unavailable(
        `stopped (${crash === undefined ? `exit code ${code}` : crash.message}); ` +
          'an append it had not answered may or may not be written, and is safe to retry',
        crash,
      )
      down = stopped
      // Those not yet sent to it too: every caller hears at once, and may retry.
      outbox = []
      failWaiting(stopped)
      options.onStopped?.(stopped)
    },
  })

  const send = () => {
    const requests = outbox
    outbox = []
    const worker = thread.worker()
    if (requests.length === 0 || worker === undefined) return
    worker.postMessage({ type: 'write', requests: flattenRequests(requests) } satisfies ToWriter)
  }

  return {
    write: (request) =>
      new Promise<WriteAnswer>((resolve) => {
        const worker = thread.worker()
        if (thread.closing()) {
          resolve({ ok: false, error: unavailable('is closed') })
          return
        }
        if (worker === undefined) {
          resolve({ ok: false, error: down ?? unavailable('is not running') })
          return
        }
        const id = nextId++
        waiting.set(id, resolve)
        if (outbox.length === 0) setImmediate(send)
        outbox.push({ id, request })
        worker.ref()
      }),
    ping: async () => {
      const current = thread.worker()
      if (current === undefined || thread.closing())
        throw down ?? unavailable(thread.closing() ? 'is closed' : 'is not running')
      const id = nextId++
      const answer = await new Promise<WriteAnswer>((resolve) => {
        waiting.set(id, resolve)
        current.ref()
        current.postMessage({ type: 'ping', id } satisfies ToWriter)
      })
      if (!answer.ok) throw answer.error
    },
    close: async () => {
      // What this turn asked for goes first; a thread being started again answers nothing more.
      if (!thread.closing()) {
        send()
        if (thread.worker() === undefined) failWaiting(unavailable('is closed'))
      }
      await thread.close()
    },
  }
}
