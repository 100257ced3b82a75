import { errorText } from '../errors/index.ts'
import {
  type ExchangeAnswer,
  ExchangeRefusedError,
  type ExchangeRequest,
  ExchangeTimeoutError,
} from './exchange.ts'

/**
 * What crosses between the event loop and the `http-sender` thread (`sender-thread.ts`,
 * `sender-worker.ts`), and how. Requests, and answers, cross in batches written as one flat list
 * of strings, numbers, booleans and byte bodies: V8 clones such a list and builds it again for
 * about half what the same data costs as objects, whose every key it writes and reads again.
 * The functions below are the one place that knows the layout.
 */
export type Batch = (string | number | boolean | Uint8Array | null)[]

export type ToSender =
  | { readonly type: 'exchange'; readonly requests: Batch }
  | { readonly type: 'abort'; readonly id: number }
  | { readonly type: 'close' }

export type FromSender = { readonly type: 'answers'; readonly answers: Batch } | { readonly type: 'closed' }

/** Why an exchange failed, as it crosses from the thread: what it takes to make the same error again. */
export type SentFailure =
  | { readonly kind: 'timeout'; readonly message: string }
  | {
      readonly kind: 'refused' | 'failed'
      readonly name: string
      readonly message: string
      readonly code?: string
    }

/** `error` (what an exchange rejected with on the thread) as it crosses over. */
export const sendFailure = (error: unknown): SentFailure => {
  if (error instanceof ExchangeTimeoutError) return { kind: 'timeout', message: error.message }
  const refused = error instanceof ExchangeRefusedError
  const cause = refused ? error.cause : error
  const code = (cause as { code?: unknown } | undefined)?.code
  return {
    kind: refused ? 'refused' : 'failed',
    name: cause instanceof Error ? cause.name : 'Error',
    message: errorText(cause),
    ...(typeof code === 'string' ? { code } : {}),
  }
}

/** The error `sendFailure` described, as the exchange on the thread rejected with it. */
export const receiveFailure = (sent: SentFailure): Error => {
  if (sent.kind === 'timeout') return new ExchangeTimeoutError(sent.message)
  const error = sent.name === 'TypeError' ? new TypeError(sent.message) : new Error(sent.message)
  if (sent.code !== undefined) Object.assign(error, { code: sent.code })
  if (sent.name !== 'TypeError' && sent.name !== 'Error')
    Object.defineProperty(error, 'name', { value: sent.name })
  return sent.kind === 'refused' ? new ExchangeRefusedError(error) : error
}

/**
 * Adds `request` to `batch`: id, secure, address, family, port, path, method, the number of
 * headers, each header's name and value, then auth, servername, rejectUnauthorized, body,
 * timeoutMs and maxBodyBytes (null for an absent one).
 */
export const encodeRequest = (batch: Batch, id: number, request: ExchangeRequest): void => {
  const { headers } = request
  const names = batch.length + 7
  batch.push(
    id,
    request.secure,
    request.address,
    request.family,
    request.port,
    request.path,
    request.method,
    0,
  )
  let count = 0
  for (const name in headers) {
    batch.push(name, headers[name] as string)
    count++
  }
  batch[names] = count
  batch.push(
    request.auth ?? null,
    request.servername ?? null,
    request.rejectUnauthorized,
    request.body ?? null,
    request.timeoutMs,
    request.maxBodyBytes,
  )
}

/** Each request `encodeRequest` added to `batch`, in order. */
export const decodeRequests = (batch: Batch, each: (id: number, request: ExchangeRequest) => void): void => {
  let at = 0
  while (at < batch.length) {
    const headers: Record<string, string> = {}
    let field = at + 8
    for (const end = field + 2 * (batch[at + 7] as number); field < end; field += 2)
      headers[batch[field] as string] = batch[field + 1] as string
    const auth = batch[field]
    const servername = batch[field + 1]
    const body = batch[field + 3]
    each(batch[at] as number, {
      secure: batch[at + 1] as boolean,
      address: batch[at + 2] as string,
      family: batch[at + 3] as 4 | 6,
      port: batch[at + 4] as number,
      path: batch[at + 5] as string,
      method: batch[at + 6] as string,
      headers,
      ...(auth === null ? {} : { auth: auth as string }),
      ...(servername === null ? {} : { servername: servername as string }),
      rejectUnauthorized: batch[field + 2] as boolean,
      ...(body === null ? {} : { body: body as string | Uint8Array }),
      timeoutMs: batch[field + 4] as number,
      maxBodyBytes: batch[field + 5] as number,
    })
    at = field + 6
  }
}

// A body from this size on is moved to the other thread rather than copied with the message:
// below it, copying costs less than moving.
const MOVE_FROM_BYTES = 1024

/**
 * Adds `answer` to `batch`: id, status, statusMessage, truncated, the number of header lines,
 * the lines, and the body (null when empty); a body to be moved goes into `transfer`.
 */
export const encodeAnswer = (
  batch: Batch,
  transfer: ArrayBuffer[],
  id: number,
  answer: ExchangeAnswer,
): void => {
  const { rawHeaders, body } = answer
  batch.push(id, answer.status, answer.statusMessage, answer.truncated, rawHeaders.length)
  for (const line of rawHeaders) batch.push(line)
  batch.push(body.length === 0 ? null : body)
  // Each body is a buffer of its own (`createInlineExchanger`): moved, nothing else goes with it.
  if (body.length >= MOVE_FROM_BYTES) transfer.push(body.buffer as ArrayBuffer)
}

/** Adds `failure` to `batch`: id, kind (a string where an answer has its status), name, message, code (null when absent). */
export const encodeFailure = (batch: Batch, id: number, failure: SentFailure): void => {
  if (failure.kind === 'timeout') batch.push(id, failure.kind, null, failure.message, null)
  else batch.push(id, failure.kind, failure.name, failure.message, failure.code ?? null)
}

/** Each answer and failure `encodeAnswer` and `encodeFailure` added to `batch`, in order. */
export const decodeAnswers = (
  batch: Batch,
  onAnswer: (id: number, answer: ExchangeAnswer) => void,
  onFailure: (id: number, failure: SentFailure) => void,
): void => {
  let at = 0
  while (at < batch.length) {
    const id = batch[at] as number
    const status = batch[at + 1]
    if (typeof status === 'number') {
      const end = at + 5 + (batch[at + 4] as number)
      onAnswer(id, {
        status,
        statusMessage: batch[at + 2] as string,
        truncated: batch[at + 3] as boolean,
        rawHeaders: batch.slice(at + 5, end) as string[],
        body: (batch[end] as Uint8Array | null) ?? new Uint8Array(0),
      })
      at = end + 1
      continue
    }
    const kind = status as SentFailure['kind']
    const message = batch[at + 3] as string
    const code = batch[at + 4]
    onFailure(
      id,
      kind === 'timeout'
        ? { kind, message }
        : {
            kind,
            name: batch[at + 2] as string,
            message,
            ...(code === null ? {} : { code: code as string }),
          },
    )
    at += 5
  }
}
