import { type HeraldError, isHeraldError, isWarehouseFailure } from '../errors/index.ts'

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  validation_failed: 400,
  invalid_pattern: 400,
  // A request whose answer would pass what one answer may carry (a report's raw event data):
  // asking for less succeeds.
  response_too_large: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  // The request names more than one of what it must name one of: it needs narrowing.
  ambiguous: 409,
  rebuild_running: 409,
  backfill_running: 409,
  // Nothing to accept: the projector found no log reset, or it was accepted already.
  no_log_reset: 409,
  // A metric backfill ending after what the report tables hold: later, or with ingress on.
  projection_behind: 409,
  // A metric backfill while reports are switched off: no projection vouches for its range.
  reports_disabled: 409,
  // An endpoint type an admin switched off: nothing, a test included, is sent to it.
  endpoint_disabled: 409,
  // A write past an operator's limit (selectors per configuration, configurations per account).
  limit_reached: 409,
  // A replay that would send nothing: the delivery is pending already, or would be skipped.
  replay_refused: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  // An event larger than the event log takes in one message (Kafka's request size).
  message_too_large: 413,
  unsupported_media_type: 415,
  // A notification target the SSRF guard refused (a host name that does not resolve among
  // them), or one that could not be reached: the request was understood, the URL it names
  // cannot be used.
  outbound_blocked: 422,
  outbound_tls_failed: 422,
  // An update that would send a stored secret somewhere else: the request must give it again.
  secret_required: 422,
  outbound_timeout: 502,
  outbound_request_failed: 502,
  unavailable: 503,
  // A store append that lost a race with another writer, retried until given up, on a request
  // without a precondition (those answer 412 precondition_failed): nothing was written, and
  // the same request may be sent again.
  expected_revision_conflict: 503,
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
}

/** An RFC 9457 problem details body. `errors` lists each bad field of the request. */
export interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly instance?: string
  readonly code: string
  readonly errors?: readonly { readonly path: string; readonly message: string }[]
}

export const problemType = (code: string): string => `urn:herald:problem:${code}`

export const problem = (
  status: number,
  code: string,
  detail: string,
  extra: Partial<Problem> = {},
): Problem => ({
  type: problemType(code),
  title: TITLES[status] ?? 'Error',
  status,
  detail,
  code,
  ...extra,
})

/** The status a Herald error is answered with: 500, an internal error, for a code not listed. */
export const statusOf = (error: HeraldError): number => STATUS_BY_CODE[error.code] ?? 500

const INTERNAL_DETAIL = 'an internal error occurred; see the server log'

/**
 * What a client is told of a Herald error. Its message, written to be shown, except an internal
 * error's, the warehouse's (`isWarehouseFailure`), which names where the warehouse is (a
 * server's URL, chDB's data folder) and carries ClickHouse's own text, and one that says what
 * to show instead (`shown`: an event store's, naming its server or file, in its client's
 * words): none of that is the client's business, even when it only says to try again. All
 * stay whole in the server log.
 */
export const shownDetail = (error: HeraldError): string => {
  if (error.shown !== undefined) return error.shown
  if (isShown(error)) return error.message
  if (!isWarehouseFailure(error)) return INTERNAL_DETAIL
  return statusOf(error) === 503
    ? 'the warehouse is unavailable; try again later (the server log has the details)'
    : 'the warehouse could not answer; the server log has the details'
}

/** Whether `shownDetail` shows a Herald error's own message. */
export const isShown = (error: HeraldError): boolean =>
  error.shown === undefined && !isWarehouseFailure(error) && statusOf(error) !== 500

/**
 * What `/ready` says of a probe that failed: the probe's own words (a readiness check is
 * written to say why), except where `shownDetail` keeps a Herald error's message to the log
 * (`shown`, the warehouse's failures).
 */
export const readinessDetail = (error: unknown): string =>
  isHeraldError(error) && (error.shown !== undefined || isWarehouseFailure(error))
    ? shownDetail(error)
    : error instanceof Error
      ? error.message
      : String(error)

/**
 * Maps any thrown value to a problem. Herald errors keep their message as `shownDetail` shows it;
 * anything else is an internal error whose details stay in the log, never the body. A
 * recursion too deep for the stack is one of those: where a request's body can cause one, the
 * code reading it turns it into a `ValidationError` naming the part nested too deeply.
 */
export const toProblem = (error: unknown, instance?: string): Problem => {
  const at = instance === undefined ? {} : { instance }
  if (!isHeraldError(error)) return problem(500, 'internal', INTERNAL_DETAIL, at)
  const issues = (error as { issues?: Problem['errors'] }).issues
  return problem(statusOf(error), error.code, shownDetail(error), {
    ...at,
    ...(issues && issues.length > 0 ? { errors: listed(issues) } : {}),
  })
}

/** The most issues a problem lists; the rest are counted in one more. */
export const MAX_LISTED_ISSUES = 100

const listed = (issues: NonNullable<Problem['errors']>): NonNullable<Problem['errors']> => {
  if (issues.length <= MAX_LISTED_ISSUES) return issues
  const more = issues.length - MAX_LISTED_ISSUES + 1
  return [
    ...issues.slice(0, MAX_LISTED_ISSUES - 1),
    { path: '(request)', message: `and ${more} more issues, not listed` },
  ]
}
