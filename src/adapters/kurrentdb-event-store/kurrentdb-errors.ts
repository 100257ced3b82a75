import {
  AccessDeniedError,
  AppendRecordSizeExceededError,
  CancelledError,
  convertToCommandError,
  DeadlineExceededError,
  InvalidArgumentError,
  isCommandError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  StreamDeletedError,
  StreamTombstonedError,
  TimeoutError,
  TransactionMaxSizeExceededError,
  UnknownError,
  UnavailableError as VendorUnavailableError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import {
  ExpectedRevisionConflictError,
  HeraldError,
  isHeraldError,
  UnavailableError,
  ValidationError,
} from '../../errors/index.ts'
import type { ExpectedRevision } from '../../ports/index.ts'

export interface KurrentErrorContext {
  readonly operation: string
  readonly stream?: string
  /** What the append asked for; the vendor's echo of it loses `stream_exists` on some paths. */
  readonly expected?: ExpectedRevision
  /** The servers the connection string names (`db-1:2113`), never its credentials. */
  readonly target?: string
  /** Why the server is unavailable, found otherwise when the client gives no reason (`givesNoReason`). */
  readonly reason?: string
}

const actualRevision = (state: bigint | string): number | 'no_stream' =>
  typeof state === 'bigint' && state >= 0n ? Number(state) : 'no_stream'

const expectedRevision = (state: bigint | string): ExpectedRevision =>
  typeof state === 'bigint' ? Number(state) : (state as ExpectedRevision)

/**
 * ExpectedRevisionConflictError takes no options, and a retry loop or a log line still wants the
 * vendor's error: attach it the way the Error constructor would (own, non-enumerable).
 */
/** The client's class for an error, or the error itself when the client cannot classify it. */
const classify = (error: Error): Error => {
  try {
    return convertToCommandError(error)
  } catch {
    // A half-formed gRPC error can trip the client's converter; the original is still the truth.
    return error
  }
}

const withCause = <E extends Error>(error: E, cause: unknown): E => {
  Object.defineProperty(error, 'cause', {
    value: cause,
    writable: true,
    configurable: true,
    enumerable: false,
  })
  return error
}

// Transient by nature: the node is down, busy, not the leader (the client re-discovers it), or
// the call ran out of time. The same call can succeed later.
const TRANSIENT = [
  VendorUnavailableError,
  DeadlineExceededError,
  TimeoutError,
  NotLeaderError,
  CancelledError,
]
const TOO_LARGE = [MaxAppendSizeExceededError, TransactionMaxSizeExceededError, AppendRecordSizeExceededError]

/**
 * Maps KurrentDB client errors to Herald's at the adapter's edge, by class (never by message):
 * raw gRPC errors are first given their client class by the client's own `convertToCommandError`.
 * Herald's own errors and programming errors (TypeError) pass through untouched.
 *
 * @example
 * try { await client.appendToStream(...) } catch (e) { throw translateKurrentError(e, { operation: 'append', stream, expected }) }
 */
export const translateKurrentError = (error: unknown, context: KurrentErrorContext): Error => {
  if (isHeraldError(error)) return error
  if (!(error instanceof Error)) return new Error(String(error))
  const vendor = classify(error)
  const { operation } = context
  const where = context.stream === undefined ? {} : { stream: context.stream }

  if (vendor instanceof WrongExpectedVersionError) {
    return withCause(
      new ExpectedRevisionConflictError({
        stream: context.stream ?? vendor.streamName,
        expected: context.expected ?? expectedRevision(vendor.expectedState),
        actual: actualRevision(vendor.actualState),
      }),
      error,
    )
  }
  if (TRANSIENT.some((type) => vendor instanceof type)) {
    // The client's words name the server (its address, a leader's) and the transport's state:
    // for the log. A client is told only that the store is unavailable.
    const reason = context.reason ?? vendor.message
    const message =
      context.target === undefined
        ? `event store ${operation}: ${reason}`
        : `event store ${operation}: KurrentDB at ${context.target} is unavailable: ${reason}`
    return new UnavailableError(message, {
      cause: error,
      context: { operation, ...where },
      shown: `event store ${operation}: the event store is unavailable; try again later (the server log has the details)`,
    })
  }
  if (vendor instanceof AccessDeniedError) {
    return new HeraldError(
      'event_store_access_denied',
      `event store ${operation}: KurrentDB denied access; check the credentials in the connection string`,
      { cause: error, context: { operation, ...where } },
    )
  }
  if (vendor instanceof StreamDeletedError || vendor instanceof StreamTombstonedError) {
    return new HeraldError(
      'stream_deleted',
      `event store ${operation}: stream ${context.stream} was deleted`,
      {
        cause: error,
        context: { operation, ...where },
      },
    )
  }
  if (TOO_LARGE.some((type) => vendor instanceof type)) {
    return new ValidationError(
      `append to ${context.stream}: too large for KurrentDB (${vendor.message})`,
      [{ path: 'events', message: "exceed the server's maximum append size" }],
      { cause: error, context: { operation, ...where } },
    )
  }
  if (isCommandError(vendor)) {
    // The client's catch-all may well pass: the Rust bridge its reads go through folds a
    // deadline, a closed connection and the server's UNAVAILABLE or INTERNAL statuses into it,
    // and gRPC reports some transport failures as UNKNOWN. The others are the server's own word.
    return new HeraldError('event_store_failed', `event store ${operation}: ${vendor.message}`, {
      cause: error,
      context: { operation, ...where },
      retriable: vendor instanceof UnknownError,
    })
  }
  return error
}

/**
 * Whether `error` is a transient failure the client says nothing more of than its class: its
 * reads go through a Rust bridge that reports an unreachable server as a bare `UnavailableError`,
 * with no address and no socket error.
 */
export const givesNoReason = (error: unknown): boolean => {
  if (!(error instanceof Error) || isHeraldError(error)) return false
  const vendor = classify(error)
  return (
    TRANSIENT.some((type) => vendor instanceof type) &&
    // The bridge's errors keep the name Error; their message is their class's name.
    [vendor.name, vendor.constructor.name, ''].includes(vendor.message.trim())
  )
}

// KurrentDB's two answers to a read from inside a record: INVALID_ARGUMENT "Trying to read from
// an invalid position." and UNKNOWN "Unexpected ReadAllResult: InvalidPosition". Neither has a
// class of its own (nor, through the Rust bridge, a status code), so only the words tell them
// from any other failure the client cannot classify.
const INVALID_POSITION = /\binvalid ?position\b/i

/**
 * The server refused to read from a position because it does not start a log record (reading
 * there would land mid-record). Any other failure, a transient one included, is not that: it
 * must not make a saved checkpoint look invalid and send the reader back to an earlier start.
 */
export const refusesPosition = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false
  const vendor = classify(error)
  if (!(vendor instanceof UnknownError || vendor instanceof InvalidArgumentError)) return false
  const { details } = error as { details?: unknown }
  return (
    INVALID_POSITION.test(vendor.message) || (typeof details === 'string' && INVALID_POSITION.test(details))
  )
}
