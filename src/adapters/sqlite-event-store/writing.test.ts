import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import type { DatabaseSync } from 'node:sqlite'
import { describe, it } from 'node:test'
import { createGroupWriter, encodeEvents, openDatabase, type WriteRequest } from './writing.ts'

/** What node:sqlite throws for an I/O error (SQLITE_IOERR). */
const ioError = (): Error =>
  Object.assign(new Error('disk I/O error'), {
    code: 'ERR_SQLITE_ERROR',
    errcode: 10,
    errstr: 'disk I/O error',
  })

const request = (stream: string): WriteRequest => ({
  operation: 'append',
  appends: [
    {
      stream,
      events: encodeEvents([{ id: randomUUID(), type: 'Tested', data: {} }]),
      expected: 'any',
    },
  ],
  recordedAt: 0,
})

describe('createGroupWriter', () => {
  // A real database throughout; only its COMMIT and ROLLBACK fail, as on a failing disk, which
  // nothing here can make happen on its own.
  it('answers every request of a group whose COMMIT and ROLLBACK both fail, throwing nothing, and writes again once they work', () => {
    const { db, statements } = openDatabase(':memory:', 1000)
    try {
      const failing = new Set<string>(['COMMIT', 'ROLLBACK'])
      const flaky = new Proxy(db, {
        get: (target, key) => {
          if (key === 'exec')
            return (sql: string) => {
              if (failing.delete(sql)) throw ioError()
              return target.exec(sql)
            }
          const value = Reflect.get(target, key, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      }) as DatabaseSync
      const writer = createGroupWriter(flaky, statements)

      const failed = writer.write([request('a'), request('b'), request('c')])
      assert.equal(failed.written, false)
      assert.equal(failed.answers.length, 3)
      for (const answer of failed.answers) {
        assert.equal(answer.ok, false)
        assert.match(String(!answer.ok && answer.error), /disk I\/O error/)
      }

      // The transaction the failed ROLLBACK left open is ended before the next group begins:
      // none of the first group is kept, and the next group is written.
      const next = writer.write([request('d')])
      assert.equal(next.written, true)
      assert.equal(next.answers[0]?.ok, true)
      assert.equal(db.isTransaction, false)
      const streams = db.prepare('SELECT DISTINCT stream FROM events ORDER BY stream').all()
      assert.deepEqual(
        streams.map((row) => row.stream),
        ['d'],
      )
    } finally {
      db.close()
    }
  })
})
