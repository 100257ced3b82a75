/**
 * Herald's one error hierarchy. Every error carries a machine-readable `code`,
 * a `retriable` flag that retry loops read (never the message text), optional
 * structured `context`, and the underlying vendor error as `cause`.
 *
 * @example
 * throw new ExpectedRevisionConflictError({ stream: 'selector-1', expected: 3, actual: 4 })
 */
export type ErrorContext = Readonly<Record<string, unknown>>

export interface HeraldErrorOptions {
  readonly context?: ErrorContext
  readonly cause?: unknown
  readonly retriable?: boolean
  /**
   * What a client is told in place of the message, when the message is for the server log
   * only: it names where a store is (a file's path, a server's address) or carries its
   * client's own words (`shownDetail` in the HTTP layer, `/ready`).
   */
  readonly shown?: string
}

export class HeraldError extends Error {
  readonly code: string
  readonly retriable: boolean
  readonly context: ErrorContext
  /** See `HeraldErrorOptions.shown`; absent when the message itself may be shown. */
  declare readonly shown?: string

  constructor(code: string, message: string, options: HeraldErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retriable = options.retriable ?? false
    this.context = options.context ?? {}
    if (options.shown !== undefined) Object.defineProperty(this, 'shown', { value: options.shown })
  }
}

/** One problem with one field of some input, named by its path (`data.severity`, `port`). */
export interface FieldIssue {
  readonly path: string
  readonly message: string
}

/** Input that does not satisfy its contract. Never retriable: the same input fails again. */
export class ValidationError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(message: string, issues: readonly FieldIssue[], options: HeraldErrorOptions = {}) {
    super('validation_failed', message, { ...options, retriable: false })
    this.issues = issues
  }

  /**
   * The error for `what` with every issue named in its message as well.
   *
   * @example
   * throw ValidationError.of('selector', issues) // "invalid selector: event.x is not a known field; …"
   */
  static of(what: string, issues: readonly FieldIssue[]): ValidationError {
    return new ValidationError(
      `invalid ${what}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      issues,
    )
  }
}

/** What a thrown value says of itself: an Error's message, anything else as a string. */
export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/** One link of a cause chain: `Name: message`, with the errors of an AggregateError (whose own message is often empty). */
const linkText = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const own = String(error)
  if (!(error instanceof AggregateError) || error.errors.length === 0) return own
  return `${error.message === '' ? error.name : own} (${error.errors.map(errorText).join('; ')})`
}

/**
 * The causes under `error`, outermost first (`fetch failed`, then the socket's `connect
 * ECONNREFUSED 127.0.0.1:9`): what a wrapping error's message leaves out. At most `depth` of
 * them, and a cause met again (a cycle) ends the chain.
 *
 * @example
 * logger('error', 'http.request_failed', { error: String(error), causes: causeChain(error) })
 */
export const causeChain = (error: unknown, depth = 5): string[] => {
  const out: string[] = []
  const seen = new Set<unknown>([error])
  let cause = error instanceof Error ? error.cause : undefined
  while (cause !== undefined && cause !== null && !seen.has(cause) && out.length < depth) {
    seen.add(cause)
    out.push(linkText(cause))
    cause = cause instanceof Error ? cause.cause : undefined
  }
  return out
}

/**
 * Adds the issues of `error`, a ValidationError, to `issues`, leaving out those whose path is
 * named there already; any other error is thrown again. For checks run one after another that
 * answer every bad field in one 400.
 *
 * @example
 * await checkTemplates(templates).catch((error) => collectIssues(issues, error))
 */
export const collectIssues = (issues: FieldIssue[], error: unknown): void => {
  if (!(error instanceof ValidationError)) throw error
  issues.push(...error.issues.filter((i) => !issues.some((known) => known.path === i.path)))
}

/** The configuration file or environment holds bad keys; the process must not start. */
export class ConfigError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(issues: readonly FieldIssue[]) {
    super(
      'config_invalid',
      `invalid configuration:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
    )
    this.issues = issues
  }
}

/**
 * An append whose expected revision did not match the stream's actual revision. Where a client
 * asked for a revision (`If-Match`) the service answers `PreconditionFailedError`; one that
 * reaches a client otherwise lost a race to another writer: it is told to send the request
 * again, never which stream (the message, for the log, names it).
 */
export class ExpectedRevisionConflictError extends HeraldError {
  constructor(context: { stream: string; expected: string | number; actual: string | number }) {
    super(
      'expected_revision_conflict',
      `stream ${context.stream}: expected revision ${context.expected}, actual ${context.actual}`,
      {
        context,
        shown:
          'another change to the same resource was written at the same time; nothing was written: send the request again',
      },
    )
  }
}

/**
 * A client's `If-Match` named a revision that is no longer current: someone else changed the
 * resource since the client read it.
 */
export class PreconditionFailedError extends HeraldError {
  constructor(what: string, context: { expected: number; actual: number | 'none' }) {
    super(
      'precondition_failed',
      `${what} changed since revision ${context.expected} (it is now at ${context.actual}); read it again and retry`,
      { context },
    )
  }
}

export const isPreconditionFailed = (error: unknown): error is PreconditionFailedError =>
  error instanceof PreconditionFailedError

/** A store, log or warehouse could not be reached or failed transiently. */
export class UnavailableError extends HeraldError {
  constructor(message: string, options: HeraldErrorOptions = {}) {
    super('unavailable', message, { retriable: true, ...options })
  }
}

/** A port was used after it was closed: a programming error, never retried. */
export class ClosedError extends HeraldError {
  constructor(what: string) {
    super('closed', `${what} is closed`)
  }
}

/** A query or command the warehouse rejected (bad SQL, unknown table). */
export class WarehouseError extends HeraldError {
  constructor(message: string, options: HeraldErrorOptions = {}) {
    super('warehouse_error', message, options)
  }
}

/** Which message of a publish was too large, and what of the publish was written (a type: contexts are records). */
export type MessageTooLargeContext = {
  readonly topic: string
  /** The message's index in the publish. */
  readonly index: number
  readonly bytes: number
  /** The log's limit, where it knows it (absent when a broker refused the message). */
  readonly limit?: number
  /** How many messages of the publish, from the first, were written: 0, or all before `index`. */
  readonly published: number
}

/**
 * The warehouse could not be reached or was overloaded: an `UnavailableError` (code
 * `unavailable`, retriable) whose message, like a `WarehouseError`'s, names where the warehouse
 * is (a ClickHouse server's URL, chDB's data folder) and carries ClickHouse's own text.
 */
export class WarehouseUnavailableError extends UnavailableError {}

/**
 * Whether the warehouse failed, in its own words: for the server log, never an answer
 * (`shownDetail` in the HTTP layer).
 */
export const isWarehouseFailure = (error: unknown): error is WarehouseError | WarehouseUnavailableError =>
  error instanceof WarehouseError || error instanceof WarehouseUnavailableError

/**
 * A message larger than an event log takes. The same message fails again however often it is
 * sent, so it is never retriable: the caller sets it aside, or makes it smaller.
 */
export class MessageTooLargeError extends HeraldError {
  declare readonly context: MessageTooLargeContext

  constructor(message: string, context: MessageTooLargeContext) {
    super('message_too_large', message, { context })
  }
}

export const isMessageTooLarge = (error: unknown): error is MessageTooLargeError =>
  error instanceof MessageTooLargeError

const ECHO_LENGTH = 64

/**
 * A value a client sent, as a message shows it back: whole up to 64 characters, otherwise its
 * first 64 and `…`, so that an answer never grows with what was asked (a 10,000-character id
 * in a 404). Characters are counted as code points, so none is cut in half.
 *
 * @example
 * new NotFoundError(`delivery ${clipped(id)} not found`)
 */
export const clipped = (value: string): string => {
  if (value.length <= ECHO_LENGTH) return value
  // A code point is at most two UTF-16 units: this many units hold more than the limit.
  const points = [...value.slice(0, 2 * ECHO_LENGTH + 1)]
  return points.length <= ECHO_LENGTH ? value : `${points.slice(0, ECHO_LENGTH).join('')}…`
}

export class NotFoundError extends HeraldError {
  constructor(message: string, context: ErrorContext = {}) {
    super('not_found', message, { context })
  }
}

/** `a`, `a or b`, `a, b, or c`. */
const alternatives = (names: readonly string[]): string =>
  names.length <= 2 ? names.join(' or ') : `${names.slice(0, -1).join(', ')}, or ${names.at(-1)}`

/**
 * A request body of a media type the route does not read, naming the type received (without
 * its parameters; `''` when the request has no Content-Type) and the ones the route accepts.
 *
 * @example
 * throw new UnsupportedMediaTypeError('text/plain', ['application/json']) // send application/json; got "text/plain"
 */
/**
 * A write that would take something past a limit the operator set (a configuration's
 * selectors, an account's configurations). The request itself is fine and succeeds once
 * something is removed, so it is a conflict with what is there; `issues` name what is full.
 *
 * @example
 * throw new LimitReachedError('configuration c1 has 500 selectors, …', [{ path: 'selectors', message: '…' }])
 */
export class LimitReachedError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(message: string, issues: readonly FieldIssue[], context: ErrorContext = {}) {
    super('limit_reached', message, { context })
    this.issues = issues
  }
}

/**
 * A write that would keep a stored secret it must not keep: an update that changes where the
 * secret is sent (another URL or host, TLS weakened) unless the request gives the secret again.
 * The request was understood; `issues` name each secret to give again, and why.
 *
 * @example
 * throw new SecretRequiredError('changing url requires password to be given again', [{ path: 'password', message: '…' }])
 */
export class SecretRequiredError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(message: string, issues: readonly FieldIssue[]) {
    super('secret_required', message)
    this.issues = issues
  }
}

export const isSecretRequired = (error: unknown): error is SecretRequiredError =>
  error instanceof SecretRequiredError

/**
 * A request that names more than one thing where it must name one (an event id that two
 * sources used): `issues` name the parameters that would tell them apart, and the candidates.
 *
 * @example
 * throw new AmbiguousError('event e1 is ambiguous: …', [{ path: 'source', message: 'names which: "/a" or "/b"' }])
 */
export class AmbiguousError extends HeraldError {
  readonly issues: readonly FieldIssue[]

  constructor(message: string, issues: readonly FieldIssue[]) {
    super('ambiguous', message)
    this.issues = issues
  }
}

export class UnsupportedMediaTypeError extends HeraldError {
  constructor(received: string, accepted: readonly string[]) {
    super(
      'unsupported_media_type',
      `send ${alternatives(accepted)}; got ${received === '' ? 'no content type' : `"${clipped(received)}"`}`,
      { context: { received, accepted } },
    )
  }
}

export class UnauthorizedError extends HeraldError {
  constructor(message = 'a valid bearer token is required') {
    super('unauthorized', message)
  }
}

export class ForbiddenError extends HeraldError {
  /** The input the token may not act on, when the refusal is about part of it (an event's account). */
  readonly issues: readonly FieldIssue[]

  constructor(message = 'this token may not perform this action', issues: readonly FieldIssue[] = []) {
    super('forbidden', message)
    this.issues = issues
  }
}

export const isHeraldError = (error: unknown): error is HeraldError => error instanceof HeraldError

/**
 * The error a recursion too deep for the stack throws (input nested thousands of levels deep).
 * Whose fault it is depends on where it was thrown: only the code reading a request's body can
 * tell the client so; anywhere else it is an internal error.
 */
export const isStackOverflow = (error: unknown): boolean =>
  error instanceof RangeError && error.message === 'Maximum call stack size exceeded'

export const isRetriable = (error: unknown): boolean => isHeraldError(error) && error.retriable

export const isValidationError = (error: unknown): error is ValidationError =>
  error instanceof ValidationError

export const isExpectedRevisionConflict = (error: unknown): error is ExpectedRevisionConflictError =>
  error instanceof ExpectedRevisionConflictError
