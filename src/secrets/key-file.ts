import { randomBytes } from 'node:crypto'
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { dirname } from 'node:path'
import { ConfigError } from '../errors/index.ts'
import { decodeKey, KEY_BYTES } from './key.ts'

const errorCode = (error: unknown): unknown => (error as { code?: unknown } | null)?.code

const refuse = (path: string, why: string): never => {
  // Never the file's content: it may be a real key, damaged.
  throw new ConfigError([
    {
      path: 'secrets.encryption_key',
      message:
        `is unset, and the key file ${path} ${why}. Restore the file that was there or set the key: ` +
        'a new key cannot decrypt the secrets already stored',
    },
  ])
}

/**
 * The key in `path`, or undefined when there is no file; refuses, as `loadOrCreateKeyFile`
 * does, a file that is there but cannot be read or does not hold a key.
 */
export const readKeyFile = (path: string): string | undefined => {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    return refuse(path, `cannot be read (${String(errorCode(error) ?? 'unknown error')})`)
  }
  const key = decodeKey(text)
  return key === undefined
    ? refuse(path, `does not hold the base64 encoding of ${KEY_BYTES} bytes`)
    : key.toString('base64')
}

/** Writes and flushes a new file that only the owner can read; fails if `path` exists. */
const writeExclusive = (path: string, text: string): void => {
  const fd = openSync(path, 'wx', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

const syncDirectory = (path: string): void => {
  try {
    const fd = openSync(path, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    // Not every platform can fsync a directory; the file itself is already flushed.
  }
}

/**
 * The encryption key kept in `path` (normally `<data_dir>/secret.key`), generated on first use when
 * the configuration sets none: base64 of 32 random bytes, mode 0600. Refuses a file that is there
 * but does not hold such a key, rather than replace it and lose every stored secret.
 *
 * A new key appears under its final name complete or not at all (written aside, then hard-linked),
 * and when two processes race, both end up with the one that landed first.
 *
 * @example
 * const key = config.secrets.encryption_key ?? loadOrCreateKeyFile(join(config.data_dir, 'secret.key'))
 * const box = createSecretBox({ current: key })
 */
export const loadOrCreateKeyFile = (path: string): string => {
  const existing = readKeyFile(path)
  if (existing !== undefined) return existing

  const directory = dirname(path)
  mkdirSync(directory, { recursive: true, mode: 0o700 })
  const text = `${randomBytes(KEY_BYTES).toString('base64')}\n`
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  writeExclusive(aside, text)
  try {
    linkSync(aside, path)
  } catch (error) {
    // EEXIST: another process got there first, and its key is the one to use.
    if (errorCode(error) !== 'EEXIST') {
      // A file system without hard links: exclusive creation still never overwrites a key.
      try {
        writeExclusive(path, text)
      } catch (fallback) {
        if (errorCode(fallback) !== 'EEXIST') throw fallback
      }
    }
  } finally {
    unlinkSync(aside)
  }
  syncDirectory(directory)
  return readKeyFile(path) ?? refuse(path, 'disappeared while it was being created')
}
