import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { openSqliteFile, runTransaction } from './sqlite-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-file-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const open = (name: string) => {
  const db = openSqliteFile(join(dir, name), { synchronous: 'NORMAL' })
  db.exec('CREATE TABLE t (v BLOB NOT NULL)')
  return db
}

describe('runTransaction', () => {
  it('rethrows the error of a write SQLite rolled back itself (a full disk), not one from its own ROLLBACK', () => {
    const db = open('full.sqlite')
    try {
      // Capped at the pages it has: a row that needs overflow pages cannot be written.
      db.exec('PRAGMA max_page_count = 1')
      assert.throws(
        () =>
          runTransaction(db, () => db.prepare('INSERT INTO t (v) VALUES (?)').run(new Uint8Array(20_000))),
        (error: Error & { errcode?: number }) => {
          assert.equal(error.errcode, 13, `${error.message} should be SQLITE_FULL`)
          assert.match(error.message, /full/)
          return true
        },
      )
      assert.equal(db.isTransaction, false)
      // The connection is usable again: what fits is written.
      runTransaction(db, () => db.prepare('INSERT INTO t (v) VALUES (?)').run(new Uint8Array(10)))
      assert.equal(db.prepare('SELECT count(*) AS n FROM t').get()?.n, 1)
    } finally {
      db.close()
    }
  })

  it('rolls back what the work wrote when it throws, and commits when it returns', () => {
    const db = open('rollback.sqlite')
    try {
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)')
      assert.throws(
        () =>
          runTransaction(db, () => {
            insert.run(new Uint8Array(1))
            throw new Error('changed its mind')
          }),
        /changed its mind/,
      )
      assert.equal(db.isTransaction, false)
      assert.equal(
        runTransaction(db, () => insert.run(new Uint8Array(2)).changes),
        1,
      )
      assert.equal(db.prepare('SELECT count(*) AS n FROM t').get()?.n, 1)
    } finally {
      db.close()
    }
  })
})
