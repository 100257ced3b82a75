import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isValidationError } from '../errors/index.ts'
import { createSecretBox, isSecretUndecryptable, keyIdOfSealed, type UndecryptableReason } from './index.ts'

const newKey = (): string => randomBytes(32).toString('base64')
const idOf = (key: string): string =>
  createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex').slice(0, 8)

const undecryptable =
  (reason: UndecryptableReason, ...mustNotMention: string[]) =>
  (error: unknown): boolean => {
    assert.ok(isSecretUndecryptable(error), String(error))
    assert.equal(error.code, 'secret_undecryptable')
    assert.equal(error.retriable, false)
    assert.equal(error.context.reason, reason)
    for (const secret of mustNotMention) {
      assert.ok(!error.message.includes(secret) && !JSON.stringify(error.context).includes(secret))
    }
    return true
  }

/** Flips one bit of the payload's byte `index`, keeping the text well-formed. */
const tamper = (sealed: string, index: number): string => {
  const cut = sealed.lastIndexOf(':') + 1
  const payload = Buffer.from(sealed.slice(cut), 'base64url')
  payload.writeUInt8(payload.readUInt8(index % payload.length) ^ 0x01, index % payload.length)
  return `${sealed.slice(0, cut)}${payload.toString('base64url')}`
}

describe('createSecretBox', () => {
  const key = newKey()
  const box = createSecretBox({ current: key })

  it('opens what it sealed, for any text and associated data', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.option(fc.string(), { nil: undefined }), (text, aad) => {
        const sealed = box.seal(text, aad)
        assert.ok(box.isSealed(sealed))
        assert.equal(box.open(sealed, aad), text)
      }),
    )
  })

  it('writes enc:v1:<key id>:<base64url> with a fresh nonce every time', () => {
    const sealed = box.seal('hunter2')
    assert.match(sealed, /^enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+$/)
    assert.equal(sealed.split(':')[2], idOf(key))
    assert.equal(box.currentKeyId, idOf(key))
    assert.equal(keyIdOfSealed(sealed), idOf(key))
    assert.equal(keyIdOfSealed('plain-password'), undefined)
    // 12-byte nonce + 7 bytes of ciphertext + 16-byte tag.
    assert.equal(Buffer.from(sealed.split(':')[3] ?? '', 'base64url').length, 12 + 7 + 16)
    assert.notEqual(box.seal('hunter2'), sealed)
    assert.ok(!sealed.includes('hunter2'))
  })

  it('detects any altered byte', () => {
    const sealed = box.seal('token-value', 'config-1/token')
    fc.assert(
      fc.property(fc.nat(), (index) => {
        assert.throws(
          () => box.open(tamper(sealed, index), 'config-1/token'),
          undecryptable('rejected', 'token-value'),
        )
      }),
    )
  })

  it('binds the associated data: another value, or none, does not open it', () => {
    const sealed = box.seal('s3cret', 'config-1/password')
    assert.throws(() => box.open(sealed, 'config-2/password'), undecryptable('rejected', 's3cret'))
    assert.throws(() => box.open(sealed), undecryptable('rejected'))
    assert.throws(() => box.open(box.seal('s3cret'), 'config-1/password'), undecryptable('rejected'))
  })

  it('keeps a value it opened bound to its associated data: opened once, another still fails', () => {
    const sealed = box.seal('s3cret', 'config-1/password')
    assert.equal(box.open(sealed, 'config-1/password'), 's3cret')
    assert.equal(box.open(sealed, 'config-1/password'), 's3cret')
    assert.throws(() => box.open(sealed, 'config-2/password'), undecryptable('rejected', 's3cret'))
    assert.throws(() => box.open(sealed), undecryptable('rejected'))
    // Another box (another key) never answers from what this one opened.
    assert.throws(
      () => createSecretBox({ current: newKey() }).open(sealed, 'config-1/password'),
      undecryptable('unknown_key', 's3cret'),
    )
  })

  it('opens any number of values, however many it has opened before', () => {
    const sealed = Array.from({ length: 1500 }, (_, i) => [box.seal(`value-${i}`, `c-${i}`), `value-${i}`])
    for (const [value, text] of sealed) assert.equal(box.open(value ?? '', `c-${text?.slice(6)}`), text)
    for (const [value, text] of sealed) assert.equal(box.open(value ?? '', `c-${text?.slice(6)}`), text)
  })

  it('tells a wrong key from an unknown one, and reveals neither key nor value', () => {
    const other = createSecretBox({ current: newKey() })
    const sealed = other.seal('webhook-url-secret')
    assert.throws(() => box.open(sealed), undecryptable('unknown_key', 'webhook-url-secret', key))
    // Same key id, different key: the tag check is what refuses it.
    const forged = `enc:v1:${box.currentKeyId}:${sealed.split(':')[3]}`
    assert.throws(() => box.open(forged), undecryptable('rejected', 'webhook-url-secret', key))
  })

  it('refuses malformed input without quoting it', () => {
    for (const value of [
      'plain-password',
      '',
      'enc:v2:00000000:AAAA',
      `enc:v1:${box.currentKeyId}:`,
      `enc:v1:${box.currentKeyId}:${'A'.repeat(30)}`, // too short for nonce and tag
      `enc:v1:${box.currentKeyId}:${box.seal('x').split(':')[3]}=`, // not canonical base64url
      `ENC:v1:${box.currentKeyId}:${box.seal('x').split(':')[3]}`,
    ]) {
      assert.ok(!box.isSealed(value), value)
      assert.throws(() => box.open(value), undecryptable('malformed', 'plain-password'))
    }
    assert.ok(!box.isSealed(undefined) && !box.isSealed(42) && !box.isSealed({}))
  })

  it('rotates: opens with any known key, seals with the current one', () => {
    const [k1, k2, k3] = [newKey(), newKey(), newKey()]
    const byK1 = createSecretBox({ current: k1 }).seal('old', 'a')
    const byK2 = createSecretBox({ current: k2 }).seal('older', 'b')
    const rotated = createSecretBox({ current: k3, previous: [k1, k2, k3] })
    assert.equal(rotated.open(byK1, 'a'), 'old')
    assert.equal(rotated.open(byK2, 'b'), 'older')
    const resealed = rotated.seal(rotated.open(byK1, 'a'), 'a')
    assert.equal(resealed.split(':')[2], idOf(k3))
    assert.equal(rotated.currentKeyId, idOf(k3))
    assert.deepEqual(rotated.keyIds, [idOf(k3), idOf(k1), idOf(k2)])
    // A box that dropped k1 can no longer open what k1 sealed.
    assert.throws(
      () => createSecretBox({ current: k3, previous: [k2] }).open(byK1, 'a'),
      undecryptable('unknown_key'),
    )
  })

  it('refuses keys that are not base64 of 32 bytes, naming the option but not the key', () => {
    const short = randomBytes(31).toString('base64')
    const long = randomBytes(33).toString('base64')
    const url = randomBytes(32).toString('base64url')
    for (const [options, paths] of [
      [{ current: short }, ['current']],
      [{ current: key, previous: [long, key, `${key.slice(0, -2)}!=`] }, ['previous[0]', 'previous[2]']],
      [{ current: `${url}` }, url.includes('-') || url.includes('_') ? ['current'] : []],
      [{ current: `  ${key}\n` }, []],
    ] as const) {
      try {
        createSecretBox(options)
        assert.deepEqual(paths, [], JSON.stringify(paths))
      } catch (error) {
        assert.ok(isValidationError(error))
        assert.deepEqual(
          error.issues.map((i) => i.path),
          paths,
        )
        for (const text of [short, long, key]) assert.ok(!error.message.includes(text))
      }
    }
  })
})
