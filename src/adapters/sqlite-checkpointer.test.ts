import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
})
