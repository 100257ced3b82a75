import { backoffDelay } from '../backoff.ts'
import type { EngineEvent } from '../events/index.ts'
import { withoutToken } from './io.ts'

export interface HttpSenderOptions {
  /** Herald's base URL (`http://localhost:8228`, `https://gateway/herald`) or its ingest URL (`…/v1/events`). */
  readonly url: string
  readonly token?: string
  readonly fetch: typeof fetch
  readonly sleep: (ms: number) => Promise<void>
  /** Attempts per batch on 429, 502, 503, 504 and network errors. Default 5. */
  readonly attempts?: number
  /** Told about each retry. */
  readonly onRetry?: (reason: string, delayMs: number) => void
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

const RETRIABLE = new Set([429, 502, 503, 504])
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

const retryAfterMs = (header: string | null): number | undefined => {
  if (header === null) return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now())
}

/**
 * Posts batches to `POST /v1/events` in CloudEvents' batch mode and returns how many Herald
 * accepted. A batch is accepted or refused whole; overload and network failures are retried
 * with exponential back-off (honouring `Retry-After`), anything else is a `SendError`.
 *
 * @example
 * const send = createHttpSender({ url: 'http://localhost:8228', token, fetch, sleep })
 * const accepted = await send(events)
 */
export const createHttpSender = (options: HttpSenderOptions) => {
  const target = ingestUrl(options.url)
  const attempts = options.attempts ?? 5
  const headers: Record<string, string> = { 'content-type': BATCH }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`

  return async (events: readonly EngineEvent[]): Promise<number> => {
    const body = JSON.stringify(events)
    for (let attempt = 1; ; attempt++) {
      let reason: string
      let delayMs = backoffDelay({ min: 250, max: 5_000 }, attempt)
      try {
        const response = await options.fetch(target, { method: 'POST', headers, body })
        const text = await response.text()
        const parsed = parseJson(text)
        if (response.status === 202) {
          const accepted = (parsed as { accepted?: unknown } | undefined)?.accepted
          return typeof accepted === 'number' ? accepted : events.length
        }
        if (!RETRIABLE.has(response.status)) {
          throw new SendError(
            `Herald answered ${response.status}: ${describeProblem(parsed, text)}`,
            response.status,
            parsed,
          )
        }
        reason = `Herald answered ${response.status}`
        delayMs = retryAfterMs(response.headers.get('retry-after')) ?? delayMs
      } catch (error) {
        if (error instanceof SendError) throw error
        reason = `cannot reach ${target}: ${withoutToken((error as Error).message, options.token)}`
      }
      if (attempt >= attempts) throw new SendError(`${reason}; gave up after ${attempts} attempts`)
      options.onRetry?.(reason, delayMs)
      await options.sleep(delayMs)
    }
  }
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
