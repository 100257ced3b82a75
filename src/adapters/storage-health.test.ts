import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { UnavailableError, WarehouseError } from '../errors/index.ts'
import { FAILURE_HOLD_MS, storageFailureOf, watchStorage } from './storage-health.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-storage-health-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** node:sqlite's error for a result code, as it throws it. */
const sqliteError = (errcode: number, message: string) =>
  Object.assign(new Error(message), { code: 'ERR_SQLITE_ERROR', errcode, errstr: message })

describe('storageFailureOf', () => {
  it('names a storage failure, also behind the errors it was translated to, by its primary code', () => {
    assert.deepEqual(storageFailureOf(sqliteError(13, 'database or disk is full')), {
      code: 'SQLITE_FULL',
      message: 'database or disk is full',
    })
    // SQLITE_IOERR_WRITE, an extended code.
    assert.equal(storageFailureOf(sqliteError(778, 'disk I/O error'))?.code, 'SQLITE_IOERR')
    assert.equal(
      storageFailureOf(new UnavailableError('event log publish', { cause: sqliteError(8, 'readonly') }))
        ?.code,
      'SQLITE_READONLY',
    )
  })

  it('leaves out what says nothing of the storage: a lock held too long, a constraint, any other error', () => {
    assert.equal(storageFailureOf(sqliteError(5, 'database is locked')), undefined)
    assert.equal(storageFailureOf(sqliteError(19, 'UNIQUE constraint failed')), undefined)
    assert.equal(storageFailureOf(new TypeError('x is undefined')), undefined)
  })

  it('names the file system’s failure to open or sync a store’s file by its code, also behind a translation', async () => {
    const missing = await open(join(dir, 'missing', 'eventlog.sqlite-wal'), 'r').catch(
      (error: unknown) => error,
    )
    assert.equal(storageFailureOf(missing)?.code, 'ENOENT')
    assert.equal(
      storageFailureOf(new UnavailableError('event log publish', { cause: missing }))?.code,
      'ENOENT',
    )
    // Too many files open says nothing of the storage.
    assert.equal(
      storageFailureOf(
        Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE', syscall: 'open' }),
      ),
      undefined,
    )
  })

  it('names the warehouse’s storage failure by its error type, behind the warehouse’s translation', () => {
    const clickhouse = (code: string, type: string, message: string) =>
      Object.assign(new Error(message), { code, type })
    assert.deepEqual(
      storageFailureOf(
        new WarehouseError('insert failed on chDB', {
          cause: clickhouse('243', 'NOT_ENOUGH_SPACE', 'Cannot reserve 1.00 MiB, not enough space'),
        }),
      ),
      { code: 'NOT_ENOUGH_SPACE', message: 'Cannot reserve 1.00 MiB, not enough space' },
    )
    // A statement the warehouse rejected says nothing of the storage.
    assert.equal(
      storageFailureOf(
        new WarehouseError('query failed', { cause: clickhouse('60', 'UNKNOWN_TABLE', 'no t') }),
      ),
      undefined,
    )
  })
})

describe('watchStorage', () => {
  it('is down from a failed write until one succeeds; other errors change nothing', () => {
    const path = join(dir, 'watched.sqlite')
    writeFileSync(path, '')
    const health = watchStorage(path, 'test store')
    health.check()
    health.wrote(sqliteError(13, 'database or disk is full'))
    assert.throws(
      () => health.check(),
      (error: unknown) =>
        error instanceof UnavailableError &&
        error.message ===
          'test store: the last write failed with SQLITE_FULL (database or disk is full) and none has succeeded since',
    )
    health.wrote(sqliteError(5, 'database is locked'))
    assert.throws(() => health.check(), /SQLITE_FULL/)
    health.wrote()
    health.check()
  })

  it('holds a failure for a while when nothing writes after it, then lets the next write decide', () => {
    let now = 0
    const health = watchStorage(':memory:', 'test store', { clock: () => now })
    health.wrote(sqliteError(13, 'database or disk is full'))
    now = FAILURE_HOLD_MS - 1
    assert.throws(() => health.check(), /SQLITE_FULL/)
    // Each failed write renews it.
    health.wrote(sqliteError(13, 'database or disk is full'))
    now += FAILURE_HOLD_MS - 1
    assert.throws(() => health.check(), /SQLITE_FULL/)
    // Nothing wrote since: ready on trial, so traffic can come back and tell.
    now += 1
    health.check()
    health.wrote(sqliteError(10, 'disk I/O error'))
    assert.throws(() => health.check(), /SQLITE_IOERR/)
  })

  it('takes a storage failure another thread saw, as one of its own writes', () => {
    const health = watchStorage(':memory:', 'test store')
    health.failed({ code: 'NOT_ENOUGH_SPACE', message: 'Cannot reserve 1.00 MiB, not enough space' })
    assert.throws(
      () => health.check(),
      /test store: the last write failed with NOT_ENOUGH_SPACE \(Cannot reserve 1.00 MiB, not enough space\)/,
    )
    health.wrote()
    health.check()
  })

  it('watches the write-ahead log beside the file when asked to, as it was at the call', () => {
    for (const [what, change] of [
      ['deleted', (path: string) => unlinkSync(path)],
      [
        'replaced',
        (path: string) => {
          writeFileSync(`${path}.new`, '')
          renameSync(`${path}.new`, path)
        },
      ],
    ] as const) {
      const path = join(dir, `wal-${what}.sqlite`)
      writeFileSync(path, '')
      writeFileSync(`${path}-wal`, '')
      const watched = watchStorage(path, 'test store', { wal: true })
      const unwatched = watchStorage(path, 'test store')
      watched.check()
      change(`${path}-wal`)
      assert.throws(
        () => watched.check(),
        (error: unknown) => {
          assert.ok(error instanceof UnavailableError, String(error))
          assert.equal(
            error.message,
            `test store: its write-ahead log ${path}-wal was ${what} while open: commits since the last checkpoint would be lost with the process`,
          )
          assert.deepEqual(error.context, { path: `${path}-wal` })
          return true
        },
      )
      unwatched.check()
    }
  })

  it('takes a write-ahead log made after the call as it is at the first check that finds it', () => {
    const path = join(dir, 'wal-later.sqlite')
    writeFileSync(path, '')
    const health = watchStorage(path, 'test store', { wal: true })
    // No log yet (a new file before its first write): nothing to compare.
    health.check()
    writeFileSync(`${path}-wal`, '')
    health.check()
    unlinkSync(`${path}-wal`)
    assert.throws(
      () => health.check(),
      /^UnavailableError: test store: its write-ahead log \S+ was deleted while open/,
    )
  })

  it('says why without naming the path, or the file system words that do, in what a client is told', () => {
    const path = join(dir, 'secret-tenant', 'shown.sqlite')
    mkdirSync(join(dir, 'secret-tenant'))
    writeFileSync(path, '')
    writeFileSync(`${path}-wal`, '')
    const shown = (health: ReturnType<typeof watchStorage>): string => {
      try {
        health.check()
      } catch (error) {
        assert.ok(error instanceof UnavailableError)
        // The message, for the log, still names it.
        assert.ok(error.message.includes(dir), error.message)
        assert.ok(error.shown !== undefined && !error.shown.includes('secret-tenant'), error.shown)
        return error.shown
      }
      assert.fail('ready')
    }
    const failing = watchStorage(path, 'test store')
    failing.failed({ code: 'ENOENT', message: `ENOENT: no such file or directory, open '${path}-wal'` })
    assert.equal(shown(failing), 'test store: the last write failed with ENOENT and none has succeeded since')
    const log = watchStorage(path, 'test store', { wal: true })
    unlinkSync(`${path}-wal`)
    assert.equal(
      shown(log),
      'test store: its write-ahead log was deleted while open: commits since the last checkpoint would be lost with the process',
    )
    const file = watchStorage(path, 'test store')
    unlinkSync(path)
    assert.equal(
      shown(file),
      'test store: its file was deleted while open: writes would go to a file no one reads again',
    )
  })

  it('watches only failed writes of a database in memory', () => {
    const health = watchStorage(':memory:', 'test store')
    health.check()
    health.wrote(sqliteError(10, 'disk I/O error'))
    assert.throws(() => health.check(), /SQLITE_IOERR/)
  })
})
