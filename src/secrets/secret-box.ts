import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto'
import { type FieldIssue, HeraldError, ValidationError } from '../errors/index.ts'
import { decodeKey, keyIdOf } from './key.ts'

/**
 * Encrypts credential fields before they are stored and decrypts them where they are used.
 *
 * Sealed values are self-describing text, `enc:v1:<kid>:<base64url(nonce | ciphertext | tag)>`:
 * AES-256-GCM with a random 96-bit nonce per seal and a 128-bit tag; `kid` names the key (first 8
 * hex digits of its SHA-256) so that a rotated-out key can still open what it sealed. The header
 * is authenticated together with the optional associated data, so neither can be swapped.
 *
 * @example
 * const key = config.secrets.encryption_key ?? loadOrCreateKeyFile(join(config.data_dir, 'secret.key'))
 * const box = createSecretBox({ current: key })
 * const stored = box.seal(token, `config-42/token`)  // bind it to where it is kept
 * box.open(stored, `config-42/token`) === token
 */
export interface SecretBox {
  /** Encrypts with the current key; `aad` (associated data) must be given again to open. */
  seal(plaintext: string, aad?: string): string
  /** Decrypts with whichever known key sealed it; throws SecretUndecryptableError otherwise. */
  open(sealed: string, aad?: string): string
  /** Whether a value has the sealed format (says nothing about which key sealed it). */
  isSealed(value: unknown): value is string
  /** The id of the key `seal` uses; a stored value with another id is due for re-sealing. */
  readonly currentKeyId: string
  /** The ids of every key it opens with, the current one first. */
  readonly keyIds: readonly string[]
}

export interface SecretBoxOptions {
  /** Base64 of 32 random bytes: seals and opens. */
  readonly current: string
  /** Keys rotated out, each base64 of 32 bytes: still open what they sealed, never seal. */
  readonly previous?: readonly string[]
}

export type UndecryptableReason = 'malformed' | 'unknown_key' | 'rejected'

/** A sealed value that no known key opens: wrong key, altered bytes or associated data, or not sealed at all. */
export class SecretUndecryptableError extends HeraldError {
  constructor(reason: UndecryptableReason, keyId?: string) {
    // Never the value itself: it may be a secret that was not sealed after all.
    super('secret_undecryptable', `a stored secret cannot be decrypted (${reason.replace('_', ' ')})`, {
      context: keyId === undefined ? { reason } : { reason, keyId },
    })
  }
}

export const isSecretUndecryptable = (error: unknown): error is SecretUndecryptableError =>
  error instanceof SecretUndecryptableError

const VERSION = 'v1'
const ALGORITHM = 'aes-256-gcm'
const NONCE_BYTES = 12
const TAG_BYTES = 16
const SEALED = /^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]+)$/

// Opened values kept per box (see `open`).
const MAX_OPENED = 1024

const header = (keyId: string): string => `enc:${VERSION}:${keyId}:`

interface Key {
  readonly id: string
  readonly bytes: Buffer
  /** Imported once: from raw bytes, every cipher would import the key again (most of an open's cost). */
  readonly object: KeyObject
}

const readKeys = (options: SecretBoxOptions): { current: Key; all: readonly Key[] } => {
  const texts = [options.current, ...(options.previous ?? [])]
  const issues: FieldIssue[] = []
  const keys: Key[] = []
  texts.forEach((text, i) => {
    const bytes = typeof text === 'string' ? decodeKey(text) : undefined
    if (bytes === undefined) {
      // The path only: the text may be a real key with a typo, and it must not reach a log.
      issues.push({ path: i === 0 ? 'current' : `previous[${i - 1}]`, message: 'must be base64 of 32 bytes' })
    } else if (!keys.some((k) => k.bytes.equals(bytes))) {
      keys.push({ id: keyIdOf(bytes), bytes, object: createSecretKey(bytes) })
    }
  })
  const [current] = keys
  if (issues.length > 0 || current === undefined) {
    throw ValidationError.of('secret keys', issues)
  }
  return { current, all: keys }
}

/** The key id and payload of a well-formed sealed value; base64url must be canonical, as `seal` writes it. */
const parse = (value: unknown): { readonly keyId: string; readonly payload: Buffer } | undefined => {
  const match = typeof value === 'string' ? SEALED.exec(value) : null
  const keyId = match?.[1]
  const encoded = match?.[2]
  if (keyId === undefined || encoded === undefined) return undefined
  const payload = Buffer.from(encoded, 'base64url')
  if (payload.length < NONCE_BYTES + TAG_BYTES || payload.toString('base64url') !== encoded) return undefined
  return { keyId, payload }
}

/** Whether a value has the sealed format; what the configuration aggregate requires of every secret it stores. */
export const isSealedSecret = (value: unknown): value is string => parse(value) !== undefined

/** The id of the key that sealed a value (from its header; nothing is opened), or undefined when it is not sealed. */
export const keyIdOfSealed = (value: unknown): string | undefined => parse(value)?.keyId

const associatedData = (keyId: string, aad: string | undefined): Buffer =>
  Buffer.from(`${header(keyId)}${aad ?? ''}`, 'utf8')

export const createSecretBox = (options: SecretBoxOptions): SecretBox => {
  const { current, all } = readKeys(options)

  const seal = (plaintext: string, aad?: string): string => {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv(ALGORITHM, current.object, nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(associatedData(current.id, aad))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const payload = Buffer.concat([nonce, ciphertext, cipher.getAuthTag()])
    return `${header(current.id)}${payload.toString('base64url')}`
  }

  const tryOpen = (key: Key, payload: Buffer, aad: string | undefined): string | undefined => {
    const nonce = payload.subarray(0, NONCE_BYTES)
    const ciphertext = payload.subarray(NONCE_BYTES, payload.length - TAG_BYTES)
    const tag = payload.subarray(payload.length - TAG_BYTES)
    try {
      const decipher = createDecipheriv(ALGORITHM, key.object, nonce, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(key.id, aad))
      decipher.setAuthTag(tag)
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8')
    } catch {
      // GCM says only "unable to authenticate": wrong key, altered bytes and altered AAD look alike.
      return undefined
    }
  }

  // A deliverer opens the same few secrets for every attempt (a webhook's signing secret, a
  // token): what a value opened to is kept, by the value and its associated data, so a busy
  // deliverer decrypts each once rather than thousands of times a second. Only what
  // authenticated is kept; bounded, oldest dropped first, so a replaced secret ages out.
  const opened = new Map<string, string>()
  const open = (sealed: string, aad?: string): string => {
    const cacheKey = `${aad ?? ''}\u0000${sealed}`
    const known = opened.get(cacheKey)
    if (known !== undefined) return known
    const plaintext = openUncached(sealed, aad)
    if (opened.size >= MAX_OPENED) opened.delete(opened.keys().next().value as string)
    opened.set(cacheKey, plaintext)
    return plaintext
  }

  const openUncached = (sealed: string, aad?: string): string => {
    const parsed = parse(sealed)
    if (parsed === undefined) throw new SecretUndecryptableError('malformed')
    const { keyId, payload } = parsed
    // Ids are short, so two keys may share one: try each that matches.
    const candidates = all.filter((k) => k.id === keyId)
    if (candidates.length === 0) throw new SecretUndecryptableError('unknown_key', keyId)
    for (const key of candidates) {
      const plaintext = tryOpen(key, payload, aad)
      if (plaintext !== undefined) return plaintext
    }
    throw new SecretUndecryptableError('rejected', keyId)
  }

  return {
    seal,
    open,
    isSealed: isSealedSecret,
    currentKeyId: current.id,
    keyIds: [...new Set(all.map((k) => k.id))],
  }
}
