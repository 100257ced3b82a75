import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto'
import { ValidationError } from '../../src/errors/index.ts'

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
 * `<id>.<timestamp>.<body>`, keyed with the base64-decoded part of a `whsec_` secret, sent as
 * `v1,<base64>`. Receivers verify with any Standard Webhooks library.
 */
const SECRET_PREFIX = 'whsec_'

const decodeSecret = (secret: string): KeyObject => {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new ValidationError('a signing secret starts with whsec_', [
      { path: 'secret', message: 'must start with whsec_' },
    ])
  }
  const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
  if (key.length === 0)
    throw new ValidationError('empty signing secret', [{ path: 'secret', message: 'must not be empty' }])
  return createSecretKey(key)
}

// HMAC keyed with raw bytes spends most of its time importing them (about 40 µs an attempt,
// against 5 µs with a key object), so a busy deliverer keeps the key objects of the secrets it
// signs with. Bounded, oldest dropped first; a rotated-out secret simply ages out.
const MAX_KEYS = 1024
const keys = new Map<string, KeyObject>()
const secretKey = (secret: string): KeyObject => {
  const known = keys.get(secret)
  if (known !== undefined) return known
  const key = decodeSecret(secret)
  if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value as string)
  keys.set(secret, key)
  return key
}

export interface SignWebhookInput {
  readonly secret: string
  /** The `webhook-id` header: the delivery id. */
  readonly id: string
  /** The `webhook-timestamp` header, in whole seconds since the epoch. */
  readonly timestamp: number
  /** The exact bytes sent, as a string. */
  readonly body: string
}

const digest = (key: KeyObject, id: string, timestamp: number | string, body: string): Buffer =>
  createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest()

/**
 * @example
 * signWebhook({ secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', id: 'msg_1', timestamp: 1614265330, body: '{}' })
 * // 'v1,…'
 */
export const signWebhook = ({ secret, id, timestamp, body }: SignWebhookInput): string =>
  `v1,${digest(secretKey(secret), id, timestamp, body).toString('base64')}`

export interface SignatureHeaderInput {
  /** Every current secret, newest first: during a rotation each signs, and receivers holding either verify. */
  readonly secrets: readonly string[]
  readonly id: string
  readonly timestamp: number
  readonly body: string
}

/**
 * The `webhook-signature` header: one `v1,<base64>` per secret, space-separated, as the
 * Standard Webhooks specification allows during key rotation.
 *
 * @example
 * signatureHeader({ secrets: [newSecret, oldSecret], id, timestamp, body }) // 'v1,… v1,…'
 */
export const signatureHeader = ({ secrets, id, timestamp, body }: SignatureHeaderInput): string => {
  if (secrets.length === 0)
    throw new ValidationError('a signed webhook needs a signing secret', [
      { path: 'signing_secret', message: 'must hold at least one secret' },
    ])
  return [...new Set(secrets)].map((secret) => signWebhook({ secret, id, timestamp, body })).join(' ')
}

export interface VerifyWebhookInput {
  readonly secret: string
  readonly id: string
  /** The `webhook-timestamp` header as received. */
  readonly timestamp: string | number
  readonly body: string
  /** The `webhook-signature` header: space-separated `v1,<base64>` entries. */
  readonly signature: string
  /** Now, in seconds; with it, timestamps further than `toleranceSeconds` away are refused (replay protection). */
  readonly nowSeconds?: number
  readonly toleranceSeconds?: number
}

/** What a receiver does: true when one of the `v1` signatures matches, compared in constant time. */
export const verifyWebhook = (input: VerifyWebhookInput): boolean => {
  const timestamp = Number(input.timestamp)
  if (!Number.isInteger(timestamp)) return false
  if (
    input.nowSeconds !== undefined &&
    Math.abs(input.nowSeconds - timestamp) > (input.toleranceSeconds ?? 300)
  ) {
    return false
  }
  const expected = digest(secretKey(input.secret), input.id, String(input.timestamp), input.body)
  return input.signature.split(' ').some((entry) => {
    const [version, encoded] = entry.split(',', 2)
    if (version !== 'v1' || encoded === undefined) return false
    const candidate = Buffer.from(encoded, 'base64')
    return candidate.length === expected.length && timingSafeEqual(candidate, expected)
  })
}
