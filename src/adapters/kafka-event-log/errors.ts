import kafkajs from 'kafkajs'
import {
  type ErrorContext,
  HeraldError,
  isHeraldError,
  NotFoundError,
  UnavailableError,
} from '../../errors/index.ts'

const {
  KafkaJSError,
  KafkaJSConnectionError,
  KafkaJSRequestTimeoutError,
  KafkaJSBrokerNotFound,
  KafkaJSMetadataNotLoaded,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSTimeout,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
} = kafkajs
// Exported at runtime by kafkajs 2.2 but missing from its type declarations.
const { KafkaJSNoBrokerAvailableError } = kafkajs as unknown as {
  KafkaJSNoBrokerAvailableError: new () => Error
}

/**
 * kafkajs marks these non-retriable at the point they are thrown (its own retrier gave up
 * or never applied), yet to a caller they mean "the cluster could not be reached now".
 */
const TRANSIENT = [
  KafkaJSConnectionError,
  KafkaJSRequestTimeoutError,
  KafkaJSNoBrokerAvailableError,
  KafkaJSBrokerNotFound,
  KafkaJSMetadataNotLoaded,
  KafkaJSGroupCoordinatorNotFound,
  KafkaJSTimeout,
] as const

/** kafkajs wraps the error that made it give up; the innermost one says what went wrong. */
const rootCause = (error: unknown): unknown => {
  let current = error
  for (let depth = 0; depth < 10; depth++) {
    if (!(current instanceof KafkaJSError)) return current
    const inner: unknown = current.cause
    if (inner === undefined || inner === current) return current
    current = inner
  }
  return current
}

const protocolType = (error: unknown): string | undefined =>
  error instanceof KafkaJSProtocolError ? error.type : undefined

/**
 * Translates a kafkajs error into Herald's hierarchy, keeping the original as `cause`.
 * Errors that are not kafkajs's (a handler's own, a TypeError) pass through untouched, so
 * programming errors are never dressed up as retriable outages.
 *
 * @example
 * try { await producer.send(record) } catch (e) { throw fromKafkaError(e, 'publish', { topic }) }
 */
export const fromKafkaError = (error: unknown, operation: string, context: ErrorContext = {}): unknown => {
  if (isHeraldError(error) || !(error instanceof KafkaJSError)) return error
  const root = rootCause(error)
  const detail =
    root instanceof Error && root.message !== error.message
      ? `${error.message}: ${root.message}`
      : error.message
  const message = `kafka ${operation} failed: ${detail}`
  const type = protocolType(root)
  const fullContext = type === undefined ? context : { ...context, kafkaError: type }

  if (type === 'UNKNOWN_TOPIC_OR_PARTITION') {
    // NotFoundError takes no cause; the kafkajs error is still reachable for debugging.
    const notFound = new NotFoundError(message, fullContext)
    Object.defineProperty(notFound, 'cause', { value: error, enumerable: false, configurable: true })
    return notFound
  }
  if (root instanceof KafkaJSSASLAuthenticationError) {
    // Wrong credentials do not fix themselves; retrying only hammers the cluster.
    return new UnavailableError(message, { cause: error, context: fullContext, retriable: false })
  }
  const transient =
    TRANSIENT.some((kind) => root instanceof kind || error instanceof kind) ||
    (root instanceof KafkaJSError && root.retriable) ||
    (error.retriable && !(error instanceof KafkaJSNumberOfRetriesExceeded))
  if (transient) return new UnavailableError(message, { cause: error, context: fullContext })
  return new HeraldError('event_log_failed', message, { cause: error, context: fullContext })
}
