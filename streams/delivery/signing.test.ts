import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { signatureHeader, signWebhook, verifyWebhook } from './signing.ts'

// The example from the Standard Webhooks specification and its reference libraries.
const vector = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}

describe('signWebhook', () => {
  it('reproduces the Standard Webhooks known vector', () => {
    assert.equal(signWebhook(vector), vector.signature)
  })

  it('refuses a secret without the whsec_ prefix', () => {
    assert.throws(() => signWebhook({ ...vector, secret: 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }), {
      code: 'validation_failed',
    })
  })
})

describe('verifyWebhook', () => {
  it('accepts the known vector', () => {
    assert.ok(verifyWebhook(vector))
  })

  it('accepts when any of several signatures matches (secret rotation)', () => {
    assert.ok(verifyWebhook({ ...vector, signature: `v1,Zm9v ${vector.signature}` }))
  })

  it('rejects a changed body, id, timestamp or secret', () => {
    assert.ok(!verifyWebhook({ ...vector, body: '{"test": 2432232315}' }))
    assert.ok(!verifyWebhook({ ...vector, id: 'msg_other' }))
    assert.ok(!verifyWebhook({ ...vector, timestamp: vector.timestamp + 1 }))
    assert.ok(!verifyWebhook({ ...vector, secret: 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }))
  })

  it('rejects other versions and malformed headers', () => {
    assert.ok(!verifyWebhook({ ...vector, signature: vector.signature.replace('v1,', 'v2,') }))
    assert.ok(!verifyWebhook({ ...vector, signature: 'garbage' }))
    assert.ok(!verifyWebhook({ ...vector, timestamp: 'soon' }))
  })

  it('rejects timestamps outside the tolerance when given the time', () => {
    assert.ok(verifyWebhook({ ...vector, nowSeconds: vector.timestamp + 299 }))
    assert.ok(!verifyWebhook({ ...vector, nowSeconds: vector.timestamp + 301 }))
    assert.ok(!verifyWebhook({ ...vector, nowSeconds: vector.timestamp - 301 }))
  })
})

describe('signatureHeader', () => {
  const other = 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

  it('signs with every secret during a rotation, so a receiver holding either verifies', () => {
    const header = signatureHeader({
      secrets: [other, vector.secret],
      id: vector.id,
      timestamp: vector.timestamp,
      body: vector.body,
    })
    assert.equal(header.split(' ').length, 2)
    assert.ok(header.endsWith(` ${vector.signature}`))
    assert.ok(verifyWebhook({ ...vector, signature: header }))
    assert.ok(verifyWebhook({ ...vector, secret: other, signature: header }))
  })

  it('signs once per distinct secret, and refuses none', () => {
    assert.equal(signatureHeader({ secrets: [vector.secret, vector.secret], ...vector }), vector.signature)
    assert.throws(() => signatureHeader({ secrets: [], ...vector }), { code: 'validation_failed' })
  })
})
