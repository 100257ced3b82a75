import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { translateKurrentError } from '../adapters/kurrentdb-event-store/kurrentdb-errors.ts'
import {
  ExpectedRevisionConflictError,
  UnavailableError,
  ValidationError,
  WarehouseError,
  WarehouseUnavailableError,
} from '../errors/index.ts'
import { decodeCloudEventBatch } from '../events/index.ts'
import { MAX_LISTED_ISSUES, readinessDetail, toProblem } from './problem.ts'

describe('toProblem', () => {
  it('answers a recursion too deep for the stack as an internal error: only a body’s reader may blame the request', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : [nest(n - 1)])
    let overflow: unknown
    try {
      nest(1_000_000)
    } catch (error) {
      overflow = error
    }
    assert.ok(overflow instanceof RangeError)
    assert.deepEqual(toProblem(overflow, '/v1/x'), {
      type: 'urn:herald:problem:internal',
      title: 'Internal Server Error',
      status: 500,
      code: 'internal',
      detail: 'an internal error occurred; see the server log',
      instance: '/v1/x',
    })
    assert.equal(toProblem(new RangeError('Invalid time value')).status, 500)
    // What a body's reader makes of one keeps its status and names the part nested too deeply.
    const refused = toProblem(
      new ValidationError('too deep', [{ path: 'sample[0].data', message: 'is nested too deeply' }]),
    )
    assert.deepEqual(
      [refused.status, refused.errors],
      [400, [{ path: 'sample[0].data', message: 'is nested too deeply' }]],
    )
  })
  it('keeps the warehouse’s own words out of the detail, its code and status kept', () => {
    const unavailable = toProblem(
      new WarehouseUnavailableError(
        'ClickHouse http://ch-prod-7.internal:8123 is unreachable (ECONNREFUSED) during query',
      ),
    )
    assert.deepEqual(
      [unavailable.status, unavailable.code, unavailable.detail],
      [503, 'unavailable', 'the warehouse is unavailable; try again later (the server log has the details)'],
    )
    const rejected = toProblem(new WarehouseError('query failed on chDB (/var/lib/herald/warehouse): …'))
    assert.deepEqual(
      [rejected.status, rejected.code, rejected.detail],
      [500, 'warehouse_error', 'the warehouse could not answer; the server log has the details'],
    )
    // Another port's 503 says what to wait for (a full disk), written to be shown.
    assert.equal(
      toProblem(new UnavailableError('event log publish: SQLITE_FULL')).detail,
      'event log publish: SQLITE_FULL',
    )
  })

  it('answers a store conflict no client precondition asked about as 503 to send again, naming no stream', () => {
    const conflict = toProblem(
      new ExpectedRevisionConflictError({ stream: 'auth-token-t1', expected: 3, actual: 4 }),
    )
    assert.deepEqual([conflict.status, conflict.code], [503, 'expected_revision_conflict'])
    assert.match(conflict.detail, /at the same time.*nothing was written.*send the request again/)
    assert.ok(!conflict.detail.includes('auth-token'), conflict.detail)
  })

  it('keeps the event store client’s words, naming its server, out of the detail of a 503', () => {
    // What @grpc/grpc-js rejects with when KurrentDB cannot be reached.
    const refused = Object.assign(
      new Error(
        '14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.20.30.40:2113',
      ),
      {
        code: 14,
        details: 'No connection established. Last error: connect ECONNREFUSED 10.20.30.40:2113',
        metadata: { get: (): unknown[] => [], getMap: (): Record<string, unknown> => ({}) },
      },
    )
    const error = translateKurrentError(refused, {
      operation: 'append',
      stream: 'notification-configuration-1',
    })
    // The log keeps them.
    assert.match(error.message, /10\.20\.30\.40:2113/)
    const problem = toProblem(error, '/v1/x')
    assert.deepEqual(
      [problem.status, problem.code, problem.detail],
      [
        503,
        'unavailable',
        'event store append: the event store is unavailable; try again later (the server log has the details)',
      ],
    )
    assert.equal(readinessDetail(error), problem.detail)
  })

  it('shows on /ready what a probe says, but not what a store’s message keeps to the log', () => {
    assert.equal(readinessDetail(new Error('no answer within 2000 ms')), 'no answer within 2000 ms')
    assert.equal(readinessDetail(new UnavailableError('event log: SQLITE_FULL')), 'event log: SQLITE_FULL')
    assert.equal(
      readinessDetail(
        new UnavailableError('event store: /srv/acme/data/x.sqlite was deleted', {
          shown: 'event store: its file was deleted',
        }),
      ),
      'event store: its file was deleted',
    )
    assert.equal(
      readinessDetail(
        new WarehouseUnavailableError('ClickHouse http://ch-prod-7.internal:8123 is unreachable'),
      ),
      'the warehouse is unavailable; try again later (the server log has the details)',
    )
  })

  it('lists at most MAX_LISTED_ISSUES issues, counting the rest in the last', () => {
    const issues = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ path: `f${i}`, message: 'is wrong' }))
    const all = toProblem(new ValidationError('bad', issues(MAX_LISTED_ISSUES))).errors
    assert.deepEqual(all, issues(MAX_LISTED_ISSUES))
    const capped = toProblem(new ValidationError('bad', issues(250))).errors
    assert.equal(capped?.length, MAX_LISTED_ISSUES)
    assert.deepEqual(capped?.slice(0, MAX_LISTED_ISSUES - 1), issues(MAX_LISTED_ISSUES - 1))
    assert.deepEqual(capped?.at(-1), { path: '(request)', message: 'and 151 more issues, not listed' })
  })

  it('lists a batch cut short whole, down to the issue naming the first event not judged', () => {
    const batch = decodeCloudEventBatch(Array.from({ length: 1_000 }, () => ({})))
    assert.ok(!batch.ok)
    const errors = toProblem(new ValidationError('the request holds invalid events', batch.issues)).errors
    assert.deepEqual(errors, batch.issues)
    assert.equal(errors?.at(-1)?.path, '[20]')
  })
})
