import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { threadNames } from '../../test/support/threads.ts'
import {
  checkpointsHere,
  checkpointWorker,
  onCheckpointThreadStopped,
  startBackgroundCheckpoints,
} from './sqlite-checkpointer.ts'

describe('background checkpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoints-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const walFile = (name: string) => {
    const path = join(dir, name)
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB)')
    return { path, db }
  }

  it('never creates the file it checkpoints, so a thread starting late leaves nothing behind', async () => {
    const checkpoints = startBackgroundCheckpoints(join(dir, 'gone.sqlite'), 10)
    // It ends by itself, unable to open the file; were it to create it, it would run until stopped.
    await Promise.race([checkpoints.ended, sleep(5_000)])
    checkpoints.stop()
    await checkpoints.ended
    assert.deepEqual(readdirSync(dir), [])
  })

  it('runs on a thread named for it, as `top -H` and /proc list it', async () => {
    const path = join(dir, 'named.sqlite')
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL')
    const checkpoints = startBackgroundCheckpoints(path, 10)
    try {
      let names = threadNames()
      for (let i = 0; i < 100 && !names.includes('wal-checkpoint'); i++) {
        await sleep(20)
        names = threadNames()
      }
      assert.ok(names.includes('wal-checkpoint'), `threads: ${names.join(', ')}`)
    } finally {
      checkpoints.stop()
      await checkpoints.ended
      db.close()
    }
  })

  it('checkpoints every file of the process from one thread, which ends with the last file', async () => {
    const a = walFile('a.sqlite')
    const b = walFile('b.sqlite')
    const fileBytes = (path: string) => statSync(path).size
    const waitFor = async (what: string, done: () => boolean) => {
      for (let i = 0; i < 500 && !done(); i++) await sleep(20)
      assert.ok(done(), what)
    }
    const write = (db: DatabaseSync) => db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(64 * 1024))
    /** A write lands in the WAL; the database file grows only once a checkpoint copies it there. */
    const checkpointed = async (file: { db: DatabaseSync; path: string }) => {
      const before = fileBytes(file.path)
      write(file.db)
      await waitFor(`${file.path} checkpointed into the file`, () => fileBytes(file.path) > before)
    }
    // The thread of the tests before ends with their files; this test starts the next one.
    await waitFor('no checkpoint thread left over', () => !threadNames().includes('wal-checkpoint'))
    const first = startBackgroundCheckpoints(a.path, 10)
    const second = startBackgroundCheckpoints(b.path, 10)
    try {
      await checkpointed(a)
      await checkpointed(b)
      assert.equal(threadNames().filter((n) => n === 'wal-checkpoint').length, 1)
      first.stop()
      await first.ended
      assert.ok(threadNames().includes('wal-checkpoint'), 'the thread goes on for the other file')
      await checkpointed(b)
      const aBefore = fileBytes(a.path)
      write(a.db)
      await sleep(200)
      assert.equal(fileBytes(a.path), aBefore, 'a stopped file is left alone')
      second.stop()
      await second.ended
      await waitFor('the thread ends with the last file', () => !threadNames().includes('wal-checkpoint'))
    } finally {
      first.stop()
      second.stop()
      a.db.close()
      b.db.close()
    }
  })
})

describe('a checkpoint thread that stops unexpectedly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoints-restart-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('is said to have stopped and started again, and checkpoints its files again', async () => {
    const path = join(dir, 'kept.sqlite')
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB)')
    const stops: Error[] = []
    onCheckpointThreadStopped((error) => stops.push(error))
    const checkpoints = startBackgroundCheckpoints(path, 10)
    const checkpointed = async () => {
      const before = statSync(path).size
      db.prepare('INSERT INTO t VALUES (randomblob(65536))').run()
      for (let i = 0; i < 500 && statSync(path).size === before; i++) await sleep(20)
      assert.ok(statSync(path).size > before, 'the write is checkpointed into the file')
    }
    try {
      await checkpointed()
      const first = checkpointWorker()
      assert.ok(first !== undefined)
      await first.terminate()
      assert.equal(stops.length, 1)
      assert.match(
        stops[0]?.message ?? '',
        /^the WAL checkpoint thread stopped \(exit code 1\); starting it again$/,
      )
      await checkpointed()
      assert.ok(checkpointWorker() !== undefined && checkpointWorker() !== first, 'a thread of its own again')
    } finally {
      onCheckpointThreadStopped(undefined)
      checkpoints.stop()
      await checkpoints.ended
      db.close()
    }
  })
})

describe('checkpoints on the writer’s own connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoints-here-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('holds a checkpoint that falls due inside a transaction until the writer commits', async () => {
    const path = join(dir, 'here.sqlite')
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v BLOB)')
    const checkpoints = checkpointsHere(db, 5)
    try {
      const fileBefore = statSync(path).size
      db.exec('BEGIN')
      db.prepare('INSERT INTO t VALUES (randomblob(100000))').run()
      // Ticks pass while the transaction is open: nothing can be checkpointed yet.
      await sleep(50)
      db.exec('COMMIT')
      assert.equal(statSync(path).size, fileBefore, 'nothing checkpointed before the commit')
      checkpoints.committed()
      assert.ok(statSync(path).size > fileBefore, 'checkpointed as soon as the writer committed')
    } finally {
      checkpoints.stop()
      db.close()
    }
  })
})
