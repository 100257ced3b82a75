import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { lockDataDir } from './data-dir-lock.ts'

describe('lockDataDir', () => {
  const dirs: string[] = []
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-lock-'))
    dirs.push(dir)
    return dir
  }
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('refuses a second holder while the first holds it, and frees on release', () => {
    const dir = dataDir()
    const lock = lockDataDir(dir)
    assert.equal(readFileSync(join(dir, 'herald.pid'), 'utf8').trim(), String(process.pid))
    assert.throws(() => lockDataDir(dir), {
      code: 'data_dir_locked',
      message: new RegExp(`in use by Herald process ${process.pid}`),
    })
    lock.release()
    assert.equal(existsSync(join(dir, 'herald.pid')), false)
    lock.release() // twice is harmless
    lockDataDir(dir).release()
  })

  it('takes over a pid file whose process id now belongs to another live process', () => {
    const dir = dataDir()
    // The parent (the test runner) is alive and is not Herald: a pid reused after a crash.
    writeFileSync(join(dir, 'herald.pid'), `${process.ppid}\n`)
    const lock = lockDataDir(dir)
    assert.equal(readFileSync(join(dir, 'herald.pid'), 'utf8').trim(), String(process.pid))
    lock.release()
  })

  it('is held by another process, which dropped the handle, until it is killed with SIGKILL, then taken over', async () => {
    const dir = dataDir()
    const module = new URL('./data-dir-lock.ts', import.meta.url).href
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        '--input-type=module',
        '-e',
        // The holder keeps no reference to the lock, and collects garbage before it says so.
        `import { lockDataDir } from ${JSON.stringify(module)}
         lockDataDir(${JSON.stringify(dir)}); globalThis.gc(); console.log('locked'); setInterval(() => {}, 1000)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('locked')) resolve()
        })
        child.once('exit', (code) => reject(new Error(`the holder exited early (${code})`)))
      })
      assert.throws(() => lockDataDir(dir), new RegExp(`in use by Herald process ${child.pid}`))
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
      // Its pid file is left behind; the operating system dropped its lock.
      assert.equal(readFileSync(join(dir, 'herald.pid'), 'utf8').trim(), String(child.pid))
      lockDataDir(dir).release()
    } finally {
      child.kill('SIGKILL')
    }
  })
})
