import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startBackgroundCheckpoints } from './sqlite-checkpointer.ts'

describe('background checkpoints', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-checkpoints-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

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
    const threadNames = () =>
      readdirSync('/proc/self/task').map((tid) => {
        try {
          return readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
        } catch {
          return '' // ended between the listing and the read
        }
      })
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
})
