import type { EngineEvent } from '../events/index.ts'
import { type AdminAnswer, callAdmin, UnreachableError, withoutToken } from './io.ts'
import {
  DEFAULT_RETRY_FOR_MS,
  DEFAULT_TIMEOUT_MS,
  GaveUpError,
  isTimeout,
  RETRIABLE,
  Retriable,
  type RetryPolicy,
  retryAfterMs,
  timeoutOf,
  withRetries,
} from './retry.ts'

export interface HttpSenderOptions {
  /** Herald's base URL (`http://localhost:8228`, `https://gateway/herald`) or its ingest URL (`…/v1/events`). */
  readonly url: string
  readonly token?: string
  readonly fetch: typeof fetch
  readonly sleep: (ms: number) => Promise<void>
  /** Default `Date.now`. */
  readonly clock?: () => number
  /** How long a request may go unanswered before it is abandoned (and retried). Default 30 s. */
  readonly timeoutMs?: number
  /**
   * How long after a batch's first attempt it is still retried on 429, 502, 503, 504, network
   * errors and timeouts. Default 60 s: longer than Herald takes to start again.
   */
  readonly retryForMs?: number
  /** Told about each retry: why, the wait, and how much of the budget is left after it. */
  readonly onRetry?: (reason: string, delayMs: number, leftMs: number) => void
}

/** Herald refused a batch, or could not be reached within the attempts. */
export class SendError extends Error {
  readonly status: number | undefined
  readonly problem: unknown

  constructor(message: string, status?: number, problem?: unknown) {
    super(message)
    this.name = 'SendError'
    this.status = status
    this.problem = problem
  }
}

const BATCH = 'application/cloudevents-batch+json'

const INGEST_PATH = '/v1/events'

/**
 * The ingest URL of Herald at `url`: its base URL with `/v1/events` appended, also behind a
 * path prefix (`https://gateway/herald` → `https://gateway/herald/v1/events`), or the ingest
 * URL itself. Trailing slashes are dropped, as Herald's routes have none.
 *
 * @example
 * ingestUrl('http://localhost:8228') // 'http://localhost:8228/v1/events'
 */
export const ingestUrl = (url: string): string => {
  const parsed = new URL(url)
  const path = parsed.pathname.replace(/\/+$/, '')
  parsed.pathname = path.endsWith(INGEST_PATH) ? path : `${path}${INGEST_PATH}`
  return parsed.toString()
}

/**
 * Posts batches to `POST /v1/events` in CloudEvents' batch mode and returns how many Herald
 * accepted. A batch is accepted or refused whole; overload, network failures and requests
 * unanswered within the timeout are retried with exponential back-off (honouring
 * `Retry-After`) for as long as `retryForMs` allows, anything else is a `SendError`. Sending a
 * batch again is safe: Herald drops an event it already has (same account, source and id).
 *
 * @example
 * const send = createHttpSender({ url: 'http://localhost:8228', token, fetch, sleep })
 * const accepted = await send(events)
 */
export const createHttpSender = (options: HttpSenderOptions) => {
  const target = ingestUrl(options.url)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const policy: RetryPolicy = {
    retryForMs: options.retryForMs ?? DEFAULT_RETRY_FOR_MS,
    sleep: options.sleep,
    clock: options.clock ?? Date.now,
    ...(options.onRetry === undefined ? {} : { onRetry: options.onRetry }),
  }
  const headers: Record<string, string> = { 'content-type': BATCH }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`

  return async (events: readonly EngineEvent[]): Promise<number> => {
    const body = JSON.stringify(events)
    const attempt = async (): Promise<number> => {
      const timeout = timeoutOf(timeoutMs)
      let response: Response
      let text: string
      try {
        response = await options.fetch(target, { method: 'POST', headers, body, signal: timeout.signal })
        text = await response.text()
      } catch (error) {
        const why = isTimeout(error) ? timeout.reason : withoutToken((error as Error).message, options.token)
        throw new Retriable(`cannot reach ${target}: ${why}`)
      }
      const parsed = parseJson(text)
      if (response.status === 202) {
        const accepted = (parsed as { accepted?: unknown } | undefined)?.accepted
        return typeof accepted === 'number' ? accepted : events.length
      }
      if (RETRIABLE.has(response.status))
        throw new Retriable(
          `Herald answered ${response.status}`,
          retryAfterMs(response.headers.get('retry-after')),
        )
      throw new SendError(
        `Herald answered ${response.status}: ${describeProblem(parsed, text)}`,
        response.status,
        parsed,
      )
    }
    try {
      return await withRetries(policy, attempt)
    } catch (error) {
      if (error instanceof GaveUpError) throw new SendError(error.message)
      throw error
    }
  }
}

/** Whom a token stands for, as `GET /v1/auth/whoami` answers. */
export interface Caller {
  readonly account: string
  readonly role: string
}

/**
 * Asks Herald at `url` (its base or ingest URL) whom `token` stands for. Resolves with the
 * caller, or with `undefined` when that cannot be told (a Herald without the route, one not
 * reached within `timeoutMs`, an answer not understood): the sending finds out all the same.
 * A token Herald refuses (401) is a `SendError`.
 */
export const whoami = async (options: {
  readonly url: string
  readonly token?: string
  readonly fetch: typeof fetch
  readonly timeoutMs?: number
}): Promise<Caller | undefined> => {
  const ingest = new URL(ingestUrl(options.url))
  ingest.pathname = ingest.pathname.replace(/\/v1\/events$/, '/v1/auth/whoami')
  let answer: AdminAnswer
  try {
    answer = await callAdmin(options, 'GET', ingest.toString(), {
      token: options.token,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    })
  } catch (error) {
    if (error instanceof UnreachableError) return undefined
    throw error
  }
  const { account, role } = answer.body
  if (answer.status === 401)
    throw new SendError(`Herald answered 401: ${describeProblem(answer.body, '')}`, 401, answer.body)
  if (answer.status !== 200 || typeof account !== 'string' || typeof role !== 'string') return undefined
  return { account, role }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const describeProblem = (problem: unknown, text: string): string => {
  if (typeof problem !== 'object' || problem === null) return text.slice(0, 500) || '(no body)'
  const { detail, errors } = problem as { detail?: unknown; errors?: unknown }
  const lines = [String(detail ?? text.slice(0, 500))]
  if (Array.isArray(errors)) {
    for (const e of errors.slice(0, 20) as { path?: unknown; message?: unknown }[]) {
      lines.push(`  ${String(e.path)}: ${String(e.message)}`)
    }
    if (errors.length > 20) lines.push(`  … and ${errors.length - 20} more`)
  }
  return lines.join('\n')
}
