import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WarehouseError } from '../../errors/index.ts'
import { singleStatement } from './statements.ts'

describe('singleStatement', () => {
  it('accepts one statement, with semicolons in strings, identifiers and comments', () => {
    for (const sql of [
      'SELECT 1',
      "SELECT ';' AS `a;b`, \"c;d\" FROM t WHERE s = 'it''s; fine' OR s = 'back\\'slash;'",
      'SELECT /* a; b */ 1 # trailing; comment',
    ]) {
      assert.equal(singleStatement(sql), sql)
    }
  })

  it('cuts at the terminating semicolon', () => {
    assert.equal(singleStatement('SELECT 1;'), 'SELECT 1')
    assert.equal(singleStatement('SELECT 1 ;; \n -- done; really\n'), 'SELECT 1 ')
    assert.equal(
      singleStatement('CREATE TABLE t (id String) ENGINE = Memory; /* end */'),
      'CREATE TABLE t (id String) ENGINE = Memory',
    )
  })

  it('refuses a second statement', () => {
    for (const sql of ['SELECT 1; SELECT 2', "SELECT ';'; DROP TABLE t", 'SELECT 1; -- x\n SELECT 2']) {
      assert.throws(() => singleStatement(sql), WarehouseError, sql)
    }
  })
})
