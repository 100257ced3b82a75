import {
  type ErrorContext,
  ExpectedRevisionConflictError,
  type FieldIssue,
  ValidationError,
} from '../../errors/index.ts'
import type { AppendResult, ExpectedRevision } from '../../ports/index.ts'
import { startWorkerThread } from '../worker-thread.ts'
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
  | { readonly kind: 'sqlite'; readonly message: string; readonly errcode: number; readonly errstr: string }
  | { readonly kind: 'other'; readonly name: string; readonly message: string }

export type ToWriter =
  | { readonly type: 'write'; readonly requests: FlatRequests }
  | { readonly type: 'close' }

export type FromWriter =
  | { readonly type: 'answers'; readonly written: boolean; readonly answers: FlatAnswers }
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
  const e = error as {
    code?: unknown
    errcode?: unknown
    errstr?: unknown
    message?: unknown
    name?: unknown
  }
  if (error instanceof Error && e.code === 'ERR_SQLITE_ERROR' && typeof e.errcode === 'number')
    return { kind: 'sqlite', message: error.message, errcode: e.errcode, errstr: String(e.errstr ?? '') }
  return {
    kind: 'other',
    name: error instanceof Error ? error.name : 'Error',
    message: error instanceof Error ? error.message : String(error),
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
      return Object.assign(new Error(sent.message), {
        code: 'ERR_SQLITE_ERROR',
        errcode: sent.errcode,
        errstr: sent.errstr,
      })
    case 'other':
      return Object.assign(new Error(sent.message), { name: sent.name })
  }
}

export interface WriterThread {
  /** Resolves once the writer committed the request's transaction (or rejects with why it failed). */
  write(request: WriteRequest): Promise<WriteAnswer>
  /** Waits for the writes sent, then ends the thread. */
  close(): Promise<void>
}

export interface WriterThreadOptions {
  readonly path: string
  readonly busyTimeoutMs: number
  /** After each committed group that wrote something, before its appends are answered. */
  readonly onCommitted: () => void
}

/**
 * Starts the writer thread for the store file at `path` (which must already hold the schema).
 * Requests made in one turn of the event loop go to it in one message, as one group commit
 * would have taken them; what arrives while it writes joins the next group. The thread keeps the process
 * alive only while writes are waiting for it.
 */
export const startWriterThread = (options: WriterThreadOptions): WriterThread => {
  const worker = startWorkerThread(new URL('./writer-worker.ts', import.meta.url), {
    path: options.path,
    busyTimeoutMs: options.busyTimeoutMs,
  })
  let nextId = 1
  const waiting = new Map<number, (answer: WriteAnswer) => void>()
  let outbox: { id: number; request: WriteRequest }[] = []
  let failed: Error | undefined
  let closing: Promise<void> | undefined
  let onClosed: (() => void) | undefined

  const failAll = (error: Error) => {
    failed ??= error
    for (const answer of waiting.values()) answer({ ok: false, error })
    waiting.clear()
    worker.unref()
  }

  worker.on('message', (message: FromWriter) => {
    if (message.type === 'closed') {
      onClosed?.()
      return
    }
    if (message.written) options.onCommitted()
    for (const { id, answer } of unflattenAnswers(message.answers)) {
      const resolve = waiting.get(id)
      waiting.delete(id)
      resolve?.(answer)
    }
    if (waiting.size === 0) worker.unref()
  })
  worker.on('error', (error) => failAll(error))
  worker.on('exit', (code) => {
    failAll(new Error(`the event store's writer thread exited (code ${code})`))
    onClosed?.()
  })

  const send = () => {
    const requests = outbox
    outbox = []
    if (requests.length > 0)
      worker.postMessage({ type: 'write', requests: flattenRequests(requests) } satisfies ToWriter)
  }

  return {
    write: (request) =>
      new Promise<WriteAnswer>((resolve) => {
        if (failed !== undefined) {
          resolve({ ok: false, error: failed })
          return
        }
        const id = nextId++
        waiting.set(id, resolve)
        if (outbox.length === 0) setImmediate(send)
        outbox.push({ id, request })
        worker.ref()
      }),
    close: () => {
      closing ??= (async () => {
        send()
        if (failed !== undefined) {
          await worker.terminate()
          return
        }
        worker.ref()
        const closed = new Promise<void>((resolve) => {
          onClosed = resolve
        })
        worker.postMessage({ type: 'close' } satisfies ToWriter)
        await closed
        await worker.terminate()
      })()
      return closing
    },
  }
}
