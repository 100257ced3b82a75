import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import kafkajs from 'kafkajs'
import { HeraldError, isRetriable, NotFoundError, UnavailableError } from '../../errors/index.ts'
import { fromKafkaError } from './errors.ts'

const {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
  KafkaJSNonRetriableError,
} = kafkajs

// The errors kafkajs itself throws, built the way its network layer builds them.
const refused = () =>
  new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { broker: 'b:9092' })
const exhausted = (cause: Error) =>
  new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 800 })
const protocol = (type: string, retriable: boolean) =>
  new KafkaJSProtocolError({ message: `broker said ${type}`, type, code: 1, retriable } as never)

describe('fromKafkaError', () => {
  it('turns exhausted retries over a connection failure into a retriable UnavailableError', () => {
    const original = exhausted(refused())
    const mapped = fromKafkaError(original, 'publish', { topic: 't' })
    assert.ok(mapped instanceof UnavailableError)
    assert.equal(mapped.retriable, true)
    assert.equal(mapped.cause, original)
    assert.deepEqual(mapped.context, { topic: 't' })
    assert.match(mapped.message, /^kafka publish failed: .*ECONNREFUSED/)
  })

  it('treats a retriable protocol error as unavailability and names its type', () => {
    const mapped = fromKafkaError(exhausted(protocol('LEADER_NOT_AVAILABLE', true)), 'publish')
    assert.ok(mapped instanceof UnavailableError)
    assert.equal((mapped as UnavailableError).context.kafkaError, 'LEADER_NOT_AVAILABLE')
  })

  it('reports an unknown topic as NotFoundError, keeping the cause', () => {
    const original = exhausted(protocol('UNKNOWN_TOPIC_OR_PARTITION', true))
    const mapped = fromKafkaError(original, 'publish', { topic: 'nope' })
    assert.ok(mapped instanceof NotFoundError)
    assert.equal(mapped.retriable, false)
    assert.equal(mapped.cause, original)
    assert.equal(mapped.context.topic, 'nope')
  })

  it('never retries failed authentication', () => {
    // Declared without parameters, but kafkajs passes a message as it does for its other errors.
    const Sasl = KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error
    const mapped = fromKafkaError(new Sasl('SASL PLAIN authentication failed'), 'ping')
    assert.ok(mapped instanceof UnavailableError)
    assert.equal(isRetriable(mapped), false)
  })

  it('maps a permanent broker refusal to a non-retriable HeraldError', () => {
    const mapped = fromKafkaError(protocol('MESSAGE_TOO_LARGE', false), 'publish')
    assert.ok(mapped instanceof HeraldError)
    assert.equal(mapped.code, 'event_log_failed')
    assert.equal(mapped.retriable, false)
    const generic = fromKafkaError(new KafkaJSNonRetriableError('Invalid topic'), 'publish')
    assert.ok(generic instanceof HeraldError && !generic.retriable)
  })

  it('lets errors that are not kafkajs errors through untouched', () => {
    const typeError = new TypeError('handler bug')
    assert.equal(fromKafkaError(typeError, 'consume'), typeError)
    const herald = new UnavailableError('already mapped')
    assert.equal(fromKafkaError(herald, 'consume'), herald)
  })
})
