import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseError } from '@clickhouse/client'
import { ClosedError, isWarehouseFailure, UnavailableError, WarehouseError } from '../../errors/index.ts'
import { type ErrorScope, redactor, toHeraldError } from './errors.ts'

const scope: ErrorScope = {
  operation: 'query',
  target: 'ClickHouse http://ch:8123',
  redact: (t) => t,
  sql: 'SELECT 1',
}
const serverError = (code: number, type: string, message: string) =>
  parseError(`Code: ${code}. DB::Exception: ${message}. (${type}) (version 26.7.2.1 (official build))`)

describe('toHeraldError', () => {
  it('maps a rejected statement to a WarehouseError naming the ClickHouse error', () => {
    const cause = serverError(60, 'UNKNOWN_TABLE', "Unknown table expression identifier 'nope'")
    const error = toHeraldError(cause, scope)
    assert.ok(error instanceof WarehouseError)
    assert.equal(error.retriable, false)
    assert.equal(
      error.message,
      "query failed on ClickHouse http://ch:8123: UNKNOWN_TABLE (60): Unknown table expression identifier 'nope'",
    )
    assert.deepEqual(error.context, {
      operation: 'query',
      sql: 'SELECT 1',
      code: '60',
      type: 'UNKNOWN_TABLE',
    })
    assert.equal(error.cause, cause)
  })

  it('maps an overloaded or timed-out server to a retriable UnavailableError', () => {
    for (const [code, type] of [
      [159, 'TIMEOUT_EXCEEDED'],
      [202, 'TOO_MANY_SIMULTANEOUS_QUERIES'],
      [252, 'TOO_MANY_PARTS'],
    ] as const) {
      const error = toHeraldError(serverError(code, type, 'try later'), scope)
      assert.ok(error instanceof UnavailableError, type)
      assert.equal(error.retriable, true)
      // Its message names the server: for the log, never an answer.
      assert.ok(isWarehouseFailure(error), type)
    }
  })

  it('maps socket failures and the client timeout to UnavailableError', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8123'), { code: 'ECONNREFUSED' })
    const error = toHeraldError(refused, scope)
    assert.ok(error instanceof UnavailableError && isWarehouseFailure(error))
    assert.equal(error.message, 'ClickHouse http://ch:8123 is unreachable (ECONNREFUSED) during query')
    assert.equal(error.cause, refused)
    assert.ok(toHeraldError(new Error('Timeout error.'), scope) instanceof UnavailableError)
  })

  it('treats anything else as not retriable and passes Herald errors through', () => {
    assert.ok(toHeraldError(new Error('something odd'), scope) instanceof WarehouseError)
    assert.ok(toHeraldError('a string', scope) instanceof WarehouseError)
    const closed = new ClosedError('warehouse')
    assert.equal(toHeraldError(closed, scope), closed)
  })

  it('redacts the message, not the cause', () => {
    const redact = redactor({ username: 'herald', password: 'hunter22' })
    const cause = new Error('bad gateway for http://herald:hunter22@ch:8123/?password=hunter22')
    const error = toHeraldError(cause, { ...scope, redact })
    assert.equal(
      error.message,
      'query failed on ClickHouse http://ch:8123: bad gateway for http://***@ch:8123/?password=***',
    )
    assert.equal(error.cause, cause)
  })
})

describe('redactor', () => {
  it('removes URL user-info, the credential pair in every form and the password', () => {
    const redact = redactor({ username: 'herald', password: 'p@ss word' })
    const basic = Buffer.from('herald:p@ss word').toString('base64')
    assert.equal(redact('http://herald:p%40ss%20word@ch:8123'), 'http://***@ch:8123')
    assert.equal(redact('http://herald:p@ss word@ch:8123'), 'http://***@ch:8123')
    assert.equal(redact(`Authorization: Basic ${basic}`), 'Authorization: Basic ***')
    assert.equal(redact('login herald:p@ss word failed'), 'login *** failed')
    assert.equal(redact('password p@ss word, encoded p%40ss%20word'), 'password ***, encoded ***')
  })

  it('leaves a very short bare password alone but still catches the pair', () => {
    const redact = redactor({ username: 'u', password: 'ab' })
    assert.equal(redact('about tab u:ab'), 'about tab ***')
  })
})
