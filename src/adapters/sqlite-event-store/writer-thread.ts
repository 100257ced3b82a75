import { Worker } from 'node:worker_threads'
import {
  type ErrorContext,
  ExpectedRevisionConflictError,
  type FieldIssue,
  ValidationError,
} from '../../errors/index.ts'
import type { AppendResult } from '../../ports/index.ts'
import type { WriteAnswer, WriteRequest } from './writing.ts'

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

export type SentAnswer =
  | { readonly ok: true; readonly results: readonly AppendResult[] }
  | { readonly ok: false; readonly error: SentError }

export type ToWriter =
  | {
      readonly type: 'write'
      readonly requests: readonly { readonly id: number; readonly request: WriteRequest }[]
    }
  | { readonly type: 'close' }

export type FromWriter =
  | {
      readonly type: 'answers'
      readonly written: boolean
      readonly ids: readonly number[]
      readonly answers: readonly SentAnswer[]
    }
  | { readonly type: 'closed' }

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

const workerFlags = (flags: readonly string[]): string[] => {
  const out: string[] = []
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i] ?? ''
    if (flag === '--input-type') i++
    else if (!flag.startsWith('--input-type=')) out.push(flag)
  }
  return out
}

/**
 * Starts the writer thread for the store file at `path` (which must already hold the schema).
 * Requests made in one turn of the event loop go to it in one message, as one group commit
 * would have taken them; what arrives while it writes joins the next group. The thread keeps the process
 * alive only while writes are waiting for it.
 */
export const startWriterThread = (options: WriterThreadOptions): WriterThread => {
  const worker = new Worker(new URL('./writer-worker.ts', import.meta.url), {
    workerData: { path: options.path, busyTimeoutMs: options.busyTimeoutMs },
    // The process's flags (the default), but not one only a main script takes (`node -e`'s `--input-type`).
    ...(process.execArgv.some((flag) => flag.startsWith('--input-type'))
      ? { execArgv: workerFlags(process.execArgv) }
      : {}),
  })
  worker.unref()
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
    message.ids.forEach((id, i) => {
      const answer = message.answers[i]
      const resolve = waiting.get(id)
      waiting.delete(id)
      if (resolve === undefined || answer === undefined) return
      resolve(answer.ok ? answer : { ok: false, error: receiveError(answer.error) })
    })
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
    if (requests.length > 0) worker.postMessage({ type: 'write', requests } satisfies ToWriter)
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
