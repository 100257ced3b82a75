import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { lockDataDir } from './data-dir-lock.ts'

describe('lockDataDir', () => {
  it('refuses a second holder while the first is alive, and frees on release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-lock-'))
    try {
      const lock = lockDataDir(dir)
      // The parent process is alive and is not us.
      writeFileSync(join(dir, 'herald.pid'), `${process.ppid}\n`)
      assert.throws(() => lockDataDir(dir), /in use by Herald process/)
      writeFileSync(join(dir, 'herald.pid'), `${process.pid}\n`)
      lock.release()
      lockDataDir(dir).release()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('takes over a lock left by a process that died', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-lock-'))
    try {
      writeFileSync(join(dir, 'herald.pid'), '2147483646\n')
      const lock = lockDataDir(dir)
      assert.equal(readFileSync(join(dir, 'herald.pid'), 'utf8').trim(), String(process.pid))
      lock.release()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
