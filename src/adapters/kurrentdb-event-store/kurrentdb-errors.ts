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
    return new UnavailableError(`event store ${operation}: ${vendor.message}`, {
      cause: error,
      context: { operation, ...where },
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
    return new HeraldError('event_store_failed', `event store ${operation}: ${vendor.message}`, {
      cause: error,
      context: { operation, ...where },
    })
  }
  return error
}

/**
 * The server refused to read from a position: it does not start a log record (reading there would
 * land mid-record), which KurrentDB answers with INVALID_ARGUMENT, surfacing here as an
 * UnknownError (gRPC path) or InvalidArgumentError.
 */
export const refusesPosition = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false
  const vendor = classify(error)
  return vendor instanceof UnknownError || vendor instanceof InvalidArgumentError
}
