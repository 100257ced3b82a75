import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  AccessDeniedError,
  DeadlineExceededError,
  InvalidArgumentError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  StreamDeletedError,
  UnknownError,
  UnavailableError as VendorUnavailableError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import {
  HeraldError,
  isExpectedRevisionConflict,
  isHeraldError,
  isRetriable,
  isValidationError,
  UnavailableError,
} from '../../errors/index.ts'
import { refusesPosition, translateKurrentError } from './kurrentdb-errors.ts'

// What @grpc/grpc-js rejects with when a call fails before the client gives it a class: a status
// code, its details and (empty here) response metadata.
const grpcError = (code: number, details: string): Error =>
  Object.assign(new Error(`${code} ${details}`), {
    code,
    details,
    metadata: { get: (): unknown[] => [], getMap: (): Record<string, unknown> => ({}) },
  })

const wrongExpectedVersion = (
  expected: bigint | 'no_stream' | 'stream_exists' | 'any',
  current: bigint | 'no_stream',
) => new WrongExpectedVersionError(undefined, { streamName: 'config-1', expected, current })

describe('translateKurrentError', () => {
  it('turns a wrong expected version into a conflict naming stream, expected and actual', () => {
    const vendor = wrongExpectedVersion(0n, 2n)
    const error = translateKurrentError(vendor, { operation: 'append', stream: 'config-1', expected: 0 })
    assert.ok(isExpectedRevisionConflict(error))
    assert.deepEqual(error.context, { stream: 'config-1', expected: 0, actual: 2 })
    assert.equal(error.retriable, false)
    assert.equal(error.cause, vendor)
  })

  it('reports a missing stream as no_stream and keeps the expectation the caller gave', () => {
    const error = translateKurrentError(wrongExpectedVersion('any', 'no_stream'), {
      operation: 'append',
      stream: 'config-1',
      expected: 'stream_exists',
    })
    assert.ok(isExpectedRevisionConflict(error))
    assert.deepEqual(error.context, { stream: 'config-1', expected: 'stream_exists', actual: 'no_stream' })
  })

  it("falls back to the vendor's stream and expectation when the caller gave none", () => {
    const error = translateKurrentError(wrongExpectedVersion(5n, -1n), { operation: 'append' })
    assert.ok(isExpectedRevisionConflict(error))
    assert.deepEqual(error.context, { stream: 'config-1', expected: 5, actual: 'no_stream' })
  })

  it('makes unavailable, timed-out and not-leader failures retriable, keeping the cause', () => {
    const notLeader = new NotLeaderError(
      Object.assign(grpcError(5, 'Leader info available'), {
        metadata: { 'leader-endpoint-host': '10.0.0.2', 'leader-endpoint-port': '2113' },
      }) as never,
    )
    for (const vendor of [
      new VendorUnavailableError(undefined, 'connection refused'),
      new DeadlineExceededError(undefined, 'deadline'),
      notLeader,
      grpcError(14, 'UNAVAILABLE: No connection established'),
      grpcError(4, 'DEADLINE_EXCEEDED'),
    ]) {
      const error = translateKurrentError(vendor, { operation: 'readAll' })
      assert.ok(error instanceof UnavailableError, `${vendor.constructor.name}: ${String(error)}`)
      assert.ok(isRetriable(error))
      assert.equal(error.cause, vendor)
      assert.deepEqual(error.context, { operation: 'readAll' })
    }
  })

  it('retries a failure the client could not classify, which the Rust bridge makes of a timeout or a closed connection', () => {
    for (const message of ['Deadline exceeded', 'Connection is closed.', 'boom']) {
      const vendor = new UnknownError(undefined, message)
      const error = translateKurrentError(vendor, { operation: 'readAll' })
      assert.ok(isHeraldError(error))
      assert.equal(error.code, 'event_store_failed')
      assert.ok(isRetriable(error), message)
      assert.equal(error.cause, vendor)
    }
  })

  it('never retries access denied, deleted streams, oversized appends or a refused argument', () => {
    const cases: [Error, string][] = [
      [new AccessDeniedError(undefined, 'denied'), 'event_store_access_denied'],
      [StreamDeletedError.fromStreamName('config-1'), 'stream_deleted'],
      [MaxAppendSizeExceededError.fromMaxAppendSize(1_048_576), 'validation_failed'],
      [new InvalidArgumentError('bad'), 'event_store_failed'],
      [grpcError(16, 'UNAUTHENTICATED'), 'event_store_access_denied'],
    ]
    for (const [vendor, code] of cases) {
      const error = translateKurrentError(vendor, { operation: 'append', stream: 'config-1' })
      assert.ok(isHeraldError(error), String(error))
      assert.equal(error.code, code, vendor.constructor.name)
      assert.equal(error.retriable, false)
      assert.equal(error.cause, vendor)
    }
    const tooLarge = translateKurrentError(MaxAppendSizeExceededError.fromMaxAppendSize(1024), {
      operation: 'append',
      stream: 'config-1',
    })
    assert.ok(isValidationError(tooLarge))
    assert.deepEqual(
      tooLarge.issues.map((i) => i.path),
      ['events'],
    )
  })

  it("passes Herald's own errors and programming errors through untouched", () => {
    const herald = new HeraldError('closed', 'store is closed')
    const bug = new TypeError('x is not a function')
    assert.equal(translateKurrentError(herald, { operation: 'append' }), herald)
    assert.equal(translateKurrentError(bug, { operation: 'append' }), bug)
    assert.equal(translateKurrentError('odd', { operation: 'append' }).message, 'odd')
    // A gRPC-looking error without response metadata makes the client's converter throw; the
    // original must survive that rather than become a TypeError from inside the mapping.
    const halfFormed = Object.assign(new Error('3 INVALID_ARGUMENT'), { code: 3, details: 'x' })
    assert.equal(translateKurrentError(halfFormed, { operation: 'readAll' }), halfFormed)
  })
})

describe('refusesPosition', () => {
  it("recognises the server's refusal to read from inside a record, however it comes", () => {
    assert.ok(refusesPosition(grpcError(3, 'Trying to read from an invalid position.')))
    assert.ok(refusesPosition(grpcError(2, 'Unexpected ReadAllResult: InvalidPosition')))
    assert.ok(refusesPosition(new UnknownError(undefined, 'Trying to read from an invalid position.')))
    // Through the Rust bridge: its error's text, the status folded in.
    assert.ok(
      refusesPosition(
        new UnknownError(
          undefined,
          'Unmapped gRPC error: code: Client specified an invalid argument, message: Trying to read from an invalid position..',
        ),
      ),
    )
    assert.ok(
      refusesPosition(
        new UnknownError(
          undefined,
          'Server-side error: status: Unknown, message: "Unexpected ReadAllResult: InvalidPosition", details: [], metadata: MetadataMap { headers: {} }',
        ),
      ),
    )
    assert.ok(refusesPosition(new InvalidArgumentError('invalid position')))
  })

  it('does not mistake any other failure the client cannot classify, connectivity failures or bugs for it', () => {
    for (const message of [
      'Deadline exceeded',
      'Connection is closed.',
      'Server-side error: status: Unavailable, message: "Server Is Not Ready", details: [], metadata: MetadataMap { headers: {} }',
      'Server-side error: status: Internal, message: "h2 protocol error", details: [], metadata: MetadataMap { headers: {} }',
    ])
      assert.ok(!refusesPosition(new UnknownError(undefined, message)), message)
    assert.ok(!refusesPosition(grpcError(2, 'Stream removed')))
    assert.ok(!refusesPosition(grpcError(3, "'x' is not a valid Position")))
    assert.ok(!refusesPosition(new VendorUnavailableError(undefined, 'down')))
    assert.ok(!refusesPosition(grpcError(14, 'UNAVAILABLE')))
    assert.ok(!refusesPosition(new TypeError('invalid position')))
    assert.ok(!refusesPosition('not an error'))
  })
})
