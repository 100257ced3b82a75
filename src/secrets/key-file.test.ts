import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { ConfigError } from '../errors/index.ts'
import { createSecretBox, loadOrCreateKeyFile } from './index.ts'

const root = mkdtempSync(join(tmpdir(), 'herald-secret-key-'))
after(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const newDir = (): string => join(root, `d${++n}`)

describe('loadOrCreateKeyFile', () => {
  it('creates a 32-byte key only the owner can read, in a folder it creates, and keeps it', () => {
    const path = join(newDir(), 'nested', 'secret.key')
    const key = loadOrCreateKeyFile(path)
    assert.equal(Buffer.from(key, 'base64').length, 32)
    assert.equal(readFileSync(path, 'utf8'), `${key}\n`)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    assert.equal(loadOrCreateKeyFile(path), key)
    // Nothing left beside it from the write-aside-then-link dance.
    assert.deepEqual(readdirSync(join(path, '..')), ['secret.key'])
    // It is a key a secret box takes.
    const box = createSecretBox({ current: key })
    assert.equal(box.open(box.seal('x')), 'x')
  })

  it('gives racing processes the same key', async () => {
    const path = join(newDir(), 'secret.key')
    const module = pathToFileURL(join(import.meta.dirname, 'key-file.ts')).href
    const script = `import { loadOrCreateKeyFile } from ${JSON.stringify(module)}
      process.stdout.write(loadOrCreateKeyFile(${JSON.stringify(path)}))`
    const run = promisify(execFile)
    const keys = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--input-type=module', '-e', script])),
    )
    assert.equal(new Set(keys.map((k) => k.stdout)).size, 1)
    assert.equal(loadOrCreateKeyFile(path), keys[0]?.stdout)
  })

  it('reads a key someone put there, with or without a trailing newline', () => {
    const dir = newDir()
    mkdirSync(dir)
    const key = randomBytes(32).toString('base64')
    for (const text of [key, `${key}\n`, `  ${key}\r\n`]) {
      writeFileSync(join(dir, 'secret.key'), text)
      assert.equal(loadOrCreateKeyFile(join(dir, 'secret.key')), key)
    }
  })

  it('refuses a file that does not hold a key, without quoting it or replacing it', () => {
    const dir = newDir()
    mkdirSync(dir)
    const path = join(dir, 'secret.key')
    const almost = randomBytes(32).toString('base64').slice(0, -3)
    for (const text of [
      '',
      'not a key',
      almost,
      randomBytes(48).toString('base64'),
      randomBytes(32).toString('hex'),
    ]) {
      writeFileSync(path, text)
      assert.throws(
        () => loadOrCreateKeyFile(path),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError)
          assert.deepEqual(
            error.issues.map((i) => i.path),
            ['secrets.encryption_key'],
          )
          assert.match(error.message, /does not hold the base64 encoding of 32 bytes/)
          if (text !== '') assert.ok(!error.message.includes(text))
          return true
        },
      )
      assert.equal(readFileSync(path, 'utf8'), text)
    }
  })

  it('refuses a path it cannot read as a file', () => {
    const dir = newDir()
    mkdirSync(join(dir, 'secret.key'), { recursive: true })
    assert.throws(
      () => loadOrCreateKeyFile(join(dir, 'secret.key')),
      (error: unknown) => error instanceof ConfigError && /cannot be read \(EISDIR\)/.test(error.message),
    )
  })
})
