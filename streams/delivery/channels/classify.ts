import { HeraldError, isHeraldError, isValidationError } from '../../../src/errors/index.ts'
import {
  OutboundBlockedError,
  OutboundRequestError,
  OutboundTimeoutError,
  OutboundUnresolvableError,
} from '../../../src/outbound/index.ts'
import type { ChannelFailure, FailureCode, FailureKind } from './channel.ts'

/** A failure before its latency is known. */
export type Failure = Omit<ChannelFailure, 'ok' | 'latencyMs' | 'tickets'>

/**
 * The endpoint answered with a redirect. Herald never follows one (the target was checked, its
 * redirect target was not), and the same request gets the same redirect next time.
 */
export class RedirectNotFollowedError extends HeraldError {
  constructor(status: number) {
    super(
      'outbound_redirect',
      `the endpoint answered HTTP ${status} (a redirect), which Herald does not follow`,
      {
        context: { status },
        retriable: false,
      },
    )
  }
}

/**
 * The endpoint answered 2xx with something its API never returns (a web page, a proxy's text):
 * the URL is likely not the API's, and retrying will not fix it.
 *
 * @example
 * new UnexpectedResponseError('JSON', 200, 'the GitHub API') // unexpected response from the GitHub API: HTTP 200 without JSON
 */
export class UnexpectedResponseError extends HeraldError {
  constructor(what: string, status: number, from = 'the endpoint') {
    super('unexpected_response', `unexpected response from ${from}: HTTP ${status} without ${what}`, {
      context: { status },
      retriable: false,
    })
  }
}

/**
 * The endpoint answered 2xx with more than Herald keeps of an answer (the guard's
 * `maxBodyBytes`), to a request whose answer it must read whole. Named by method and path (a
 * query may hold a credential); the same request gets the same answer next time.
 *
 * @example
 * new ResponseTooLargeError('GET', 'https://api.github.com/repos/a/b/issues', 200) // …GET /repos/a/b/issues answered HTTP 200 with more than Herald reads of an answer
 */
export class ResponseTooLargeError extends HeraldError {
  constructor(method: string, url: string, status: number) {
    const path = URL.canParse(url) ? new URL(url).pathname : '(unreadable URL)'
    super(
      'response_too_large',
      `${method} ${path} answered HTTP ${status} with more than Herald reads of an answer; it was not parsed`,
      { context: { status }, retriable: false },
    )
  }
}

/**
 * Herald's own template for a field failed on an event, so there is no message to send. The
 * scope bounds every text of the event (`MAX_SCOPE_TEXT`), so a default stays far inside its
 * render limits, and what is left is the render limit in time: it is wall-clock, and a busy
 * process (other renders, the event loop's other work, a long pause for garbage collection)
 * can pass it on any template. That is retriable: a retry on a quieter process passes, and a
 * failure that is not the load runs out the retry schedule and is dead-lettered, replayable.
 * Anything else is a bug in the default, which fails the same way again: permanent.
 *
 * @example
 * new DefaultTemplateError('email', 'html', renderError) // Herald's default email.html template failed on this event: template render limit exceeded…
 */
export class DefaultTemplateError extends HeraldError {
  constructor(endpoint: string, field: string, reason: string, slow: boolean, cause?: unknown) {
    super(
      'default_template_failed',
      `Herald's default ${endpoint}.${field} template failed on this event: ${reason}${slow ? ' (the render limit is wall-clock: retried, as a busy process can pass it)' : ''}`,
      { retriable: slow, ...(cause === undefined ? {} : { cause }) },
    )
  }
}

/**
 * `Retry-After` as milliseconds from `nowMs`: delay-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`). Undefined when absent or unreadable; a date in the past is 0.
 * A header sent twice (a proxy adding its own) reaches here joined, `3600, 3600`: delay-seconds
 * all, the longest is kept. An HTTP date has a comma of its own, so only digits are split.
 *
 * @example
 * parseRetryAfter('30', Date.now()) // 30000
 * parseRetryAfter('30, 120', Date.now()) // 120000
 */
export const parseRetryAfter = (value: string | null | undefined, nowMs: number): number | undefined => {
  if (value === null || value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+(\s*,\s*\d+)*$/.test(trimmed)) return Math.max(...trimmed.split(',').map(Number)) * 1000
  // An HTTP date names its zone (GMT); Date.parse would read a bare "2026-11-22" as well.
  if (!/\b(GMT|UTC)\b/.test(trimmed) && !/^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/.test(trimmed))
    return undefined
  const at = Date.parse(/GMT|UTC/.test(trimmed) ? trimmed : `${trimmed} GMT`)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - nowMs)
}

/**
 * How an HTTP status fails: 410 is `gone`; 429 and every 5xx may pass; any other status (every
 * other 4xx, 408 and 425 included, and a 3xx Herald does not follow) fails without a retry.
 */
export const kindOfStatus = (status: number): FailureKind =>
  status === 410 ? 'gone' : status === 429 || status >= 500 ? 'retriable' : 'permanent'

const codeOfStatus = (status: number): FailureCode =>
  status === 410
    ? 'gone'
    : status === 429
      ? 'rate_limited'
      : status >= 300 && status < 400
        ? 'redirect'
        : 'http_status'

/**
 * A non-2xx answer as a failure. `detail` is what the service said (Slack's `invalid_payload`,
 * Jira's `errorMessages`), already scrubbed by the caller.
 */
export const failureFromStatus = (
  status: number,
  headers: Headers,
  nowMs: number,
  detail?: string,
): Failure => {
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'), nowMs)
  const kind = kindOfStatus(status)
  return {
    kind,
    code: codeOfStatus(status),
    status,
    error: detail === undefined || detail === '' ? `HTTP ${status}` : `HTTP ${status}: ${detail}`,
    ...(kind === 'retriable' && retryAfterMs !== undefined ? { retryAfterMs } : {}),
  }
}

/**
 * The caller stopped the send (its signal aborted): an `AbortError` whatever reason it gave,
 * so the failure is classified as aborted, which a later retry may pass.
 */
export const abortError = (reason: unknown): Error => {
  const error = new Error('the send was aborted', { cause: reason })
  error.name = 'AbortError'
  return error
}

const causes = function* (error: unknown): Generator<unknown> {
  let current = error
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    yield current
    current = (current as { cause?: unknown }).cause
  }
}

/** Herald's own refusals of an answer, each permanent with its code and the answer's status. */
const REFUSALS: readonly [new (...args: never[]) => HeraldError, FailureCode][] = [
  [RedirectNotFollowedError, 'redirect'],
  [UnexpectedResponseError, 'unexpected_response'],
  [ResponseTooLargeError, 'response_too_large'],
]

/** The first Herald error in `error`'s cause chain: what vendor clients wrap is ours. */
export const heraldCause = (error: unknown): HeraldError | undefined => {
  for (const candidate of causes(error)) if (isHeraldError(candidate)) return candidate
  return undefined
}

const isAbort = (error: unknown): boolean =>
  error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')

/**
 * A thrown error as a failure, by type and code, never by message text. Herald's errors (the
 * SSRF guard's, wrapped by Slack's or Octokit's client) say whether a retry can help; an
 * abort is the caller stopping (a retry later may pass); anything else is a bug here, and a
 * bug fails the same way next time.
 */
export const failureFromError = (error: unknown): Failure => {
  const ours = heraldCause(error)
  if (ours instanceof OutboundTimeoutError)
    return { kind: 'retriable', code: 'timeout', status: null, error: ours.message }
  if (ours instanceof OutboundBlockedError)
    return { kind: 'permanent', code: 'blocked', status: null, error: ours.message }
  if (ours instanceof OutboundUnresolvableError)
    return { kind: 'retriable', code: 'network', status: null, error: ours.message }
  if (ours instanceof OutboundRequestError) {
    const tls = ours.code === 'outbound_tls_failed'
    const errorCode = typeof ours.context.errorCode === 'string' ? ours.context.errorCode : 'unknown'
    return {
      kind: tls ? 'permanent' : 'retriable',
      code: tls ? 'tls' : 'network',
      status: null,
      error: tls ? ours.message : `${ours.message} (${errorCode})`,
    }
  }
  for (const [type, code] of REFUSALS)
    if (ours instanceof type)
      return {
        kind: 'permanent',
        code,
        status: typeof ours.context.status === 'number' ? ours.context.status : null,
        error: ours.message,
      }
  if (ours instanceof DefaultTemplateError)
    return {
      kind: ours.retriable ? 'retriable' : 'permanent',
      code: 'template',
      status: null,
      error: ours.message,
    }
  if (ours !== undefined && isValidationError(ours))
    return {
      kind: 'permanent',
      code: 'configuration',
      status: null,
      error: `${ours.message}${ours.issues.length > 0 ? `: ${ours.issues.map((i) => `${i.path} ${i.message}`).join('; ')}` : ''}`,
    }
  if (ours !== undefined)
    return {
      kind: ours.retriable ? 'retriable' : 'permanent',
      code: ours.retriable ? 'network' : 'internal',
      status: null,
      error: ours.message,
    }
  if ([...causes(error)].some(isAbort))
    return { kind: 'retriable', code: 'aborted', status: null, error: 'the send was aborted' }
  return {
    kind: 'permanent',
    code: 'internal',
    status: null,
    error: `internal error: ${error instanceof Error ? error.name : typeof error}`,
  }
}
