import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { eventually } from '../../test/support/eventually.ts'
import { yieldToLoop } from '../cooperative.ts'
import { openSqliteFile } from './sqlite-file.ts'
import { createWalSync, type SyncFile } from './sqlite-wal-sync.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-wal-sync-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/**
 * A sync that finishes only when the test says so, counting how many started; `startedTimes`
 * waits until `n` have (the first waits for the log's descriptor to open).
 */
const heldSync = () => {
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = []
  let started = 0
  const syncFile: SyncFile = () =>
    new Promise<void>((resolve, reject) => {
      started++
      pending.push({ resolve, reject })
    })
  return {
    syncFile,
    started: () => started,
    startedTimes: (n: number) => eventually(() => assert.equal(started, n)),
    finish: () => pending.shift()?.resolve(),
    fail: (error: Error) => pending.shift()?.reject(error),
  }
}

const settled = async (promise: Promise<unknown>) => {
  let done = false
  void promise.then(
    () => {
      done = true
    },
    () => {
      done = true
    },
  )
  await yieldToLoop()
  return done
}

const fileDb = (name: string) => {
  const db = openSqliteFile(join(dir, name), { synchronous: 'NORMAL' })
  db.exec('CREATE TABLE IF NOT EXISTS t (v INTEGER)')
  return db
}

describe('createWalSync', () => {
  it('resolves once a sync that started after the call has finished', async () => {
    const db = fileDb('after-call.sqlite')
    const sync = heldSync()
    const wal = createWalSync(db, sync.syncFile)
    db.prepare('INSERT INTO t VALUES (1)').run()
    const durable = wal.durable()
    assert.equal(await settled(durable), false)
    await sync.startedTimes(1)
    sync.finish()
    await durable
    await wal.close()
    db.close()
  })

  it('makes the callers that came during a sync share the next one', async () => {
    const db = fileDb('shared.sqlite')
    const sync = heldSync()
    const wal = createWalSync(db, sync.syncFile)
    const first = wal.durable()
    await sync.startedTimes(1)
    // These commits may have come after the running sync began: they wait for the next.
    const later = [wal.durable(), wal.durable(), wal.durable()]
    assert.equal(sync.started(), 1)
    sync.finish()
    await first
    assert.equal(await settled(Promise.race(later)), false)
    await sync.startedTimes(2)
    sync.finish()
    await Promise.all(later)
    assert.equal(sync.started(), 2)
    await wal.close()
    db.close()
  })

  it('rejects the callers of a sync that failed, and syncs again for the next caller', async () => {
    const db = fileDb('failed.sqlite')
    const sync = heldSync()
    const wal = createWalSync(db, sync.syncFile)
    const failing = wal.durable()
    await sync.startedTimes(1)
    sync.fail(new Error('EIO: i/o error, fdatasync'))
    await assert.rejects(failing, /EIO/)
    const next = wal.durable()
    await sync.startedTimes(2)
    sync.finish()
    await next
    await wal.close()
    db.close()
  })

  it('syncs the real write-ahead log with fdatasync by default', async () => {
    const db = fileDb('real.sqlite')
    const wal = createWalSync(db)
    db.prepare('INSERT INTO t VALUES (2)').run()
    await wal.durable()
    await wal.close()
    await assert.rejects(wal.durable(), /closed/)
    db.close()
  })

  it('makes a file not in WAL mode sync each commit itself, and has nothing to sync for it', async () => {
    const db = new DatabaseSync(join(dir, 'rollback.sqlite'))
    db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = NORMAL')
    const sync = heldSync()
    const wal = createWalSync(db, sync.syncFile)
    assert.deepEqual({ ...db.prepare('PRAGMA synchronous').get() }, { synchronous: 2 })
    await wal.durable()
    assert.equal(sync.started(), 0)
    await wal.close()
    db.close()
  })

  it('has nothing to sync for a database in memory', async () => {
    const db = openSqliteFile(':memory:', { synchronous: 'NORMAL' })
    const sync = heldSync()
    const wal = createWalSync(db, sync.syncFile)
    await wal.durable()
    assert.equal(sync.started(), 0)
    await wal.close()
    db.close()
  })
})
