import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads'
import {
  type ExchangeAnswer,
  ExchangeRefusedError,
  type ExchangeRequest,
  ExchangeTimeoutError,
} from './exchange.ts'
import {
  type Batch,
  decodeAnswers,
  decodeRequests,
  encodeAnswer,
  encodeFailure,
  encodeRequest,
  receiveFailure,
  type SentFailure,
  sendFailure,
} from './sender-wire.ts'

/** `batch` as the other thread receives it: cloned by a real port, `transfer` moved. */
const across = (batch: Batch, transfer: ArrayBuffer[] = []): Batch => {
  const { port1, port2 } = new MessageChannel()
  try {
    port1.postMessage(batch, transfer)
    return receiveMessageOnPort(port2)?.message as Batch
  } finally {
    port1.close()
  }
}

const plain: ExchangeRequest = {
  secure: false,
  address: '203.0.113.7',
  family: 4,
  port: 80,
  path: '/hook?x=1',
  method: 'GET',
  headers: { host: 'hooks.example.com' },
  rejectUnauthorized: true,
  timeoutMs: 15_000,
  maxBodyBytes: 4096,
}
const full: ExchangeRequest = {
  secure: true,
  address: 'fd12::7',
  family: 6,
  port: 8443,
  path: '/',
  method: 'POST',
  headers: { host: 'hooks.example.com:8443', 'content-type': 'application/json', 'x-empty': '' },
  auth: 'user:pa:ss',
  servername: 'hooks.example.com',
  rejectUnauthorized: false,
  body: new Uint8Array([1, 2, 3]),
  timeoutMs: 100,
  maxBodyBytes: 1,
}

describe('the sender wire', () => {
  it('carries requests, with and without their optional fields, in order', () => {
    const batch: Batch = []
    encodeRequest(batch, 7, full)
    encodeRequest(batch, 8, plain)
    encodeRequest(batch, 9, { ...plain, headers: {}, body: '{"a":"é"}' })
    const got: [number, ExchangeRequest][] = []
    decodeRequests(across(batch), (id, request) => got.push([id, request]))
    assert.deepEqual(got, [
      [7, full],
      [8, plain],
      [9, { ...plain, headers: {}, body: '{"a":"é"}' }],
    ])
  })

  it('carries answers and failures in order, moving only bodies of a kilobyte or more', () => {
    const answer = (body: Uint8Array, truncated = false): ExchangeAnswer => ({
      status: 200,
      statusMessage: 'OK',
      rawHeaders: ['Set-Cookie', 'a=1', 'X-Case', 'Yes', 'set-cookie', 'b=2'],
      body,
      truncated,
    })
    const small = new Uint8Array([104, 105])
    const large = new Uint8Array(1024).fill(7)
    const failures: SentFailure[] = [
      { kind: 'timeout', message: 'no answer within 100 ms' },
      { kind: 'refused', name: 'TypeError', message: 'Invalid character', code: 'ERR_INVALID_CHAR' },
      { kind: 'failed', name: 'Error', message: 'socket hang up' },
    ]
    const batch: Batch = []
    const transfer: ArrayBuffer[] = []
    encodeAnswer(batch, transfer, 1, { ...answer(new Uint8Array(0)), status: 204, statusMessage: '' })
    encodeFailure(batch, 2, failures[0] as SentFailure)
    encodeAnswer(batch, transfer, 3, answer(small))
    encodeAnswer(batch, transfer, 4, answer(large, true))
    encodeFailure(batch, 5, failures[1] as SentFailure)
    encodeFailure(batch, 6, failures[2] as SentFailure)
    assert.deepEqual(transfer, [large.buffer])

    const got: [number, ExchangeAnswer | SentFailure][] = []
    decodeAnswers(
      across(batch, transfer),
      (id, received) => got.push([id, received]),
      (id, failure) => got.push([id, failure]),
    )
    assert.equal(large.byteLength, 0, 'the large body was moved, not copied')
    assert.equal(small.byteLength, 2)
    assert.deepEqual(got, [
      [1, { ...answer(new Uint8Array(0)), status: 204, statusMessage: '' }],
      [2, failures[0]],
      [3, answer(new Uint8Array([104, 105]))],
      [4, answer(new Uint8Array(1024).fill(7), true)],
      [5, failures[1]],
      [6, failures[2]],
    ])
  })

  it('makes the error again that the exchange rejected with on the thread', () => {
    const again = (error: unknown) => {
      const batch: Batch = []
      encodeFailure(batch, 1, sendFailure(error))
      let made: Error | undefined
      decodeAnswers(
        across(batch),
        () => assert.fail('an answer'),
        (_id, failure) => {
          made = receiveFailure(failure)
        },
      )
      return made
    }
    const timeout = again(new ExchangeTimeoutError('no answer within 5 ms'))
    assert.ok(timeout instanceof ExchangeTimeoutError)
    assert.equal(timeout.message, 'no answer within 5 ms')

    const refused = again(new ExchangeRefusedError(Object.assign(new TypeError('bad'), { code: 'ERR_X' })))
    assert.ok(refused instanceof ExchangeRefusedError)
    assert.ok(refused.cause instanceof TypeError)
    assert.equal((refused.cause as Error & { code?: string }).code, 'ERR_X')

    const tls = again(
      Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    )
    assert.deepEqual(
      [tls?.name, tls?.message, (tls as Error & { code?: string }).code],
      ['Error', 'self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    )
    const named = again(Object.assign(new Error('closed'), { name: 'SocketError' }))
    assert.equal(named?.name, 'SocketError')
    assert.equal((named as Error & { code?: string }).code, undefined)
  })
})
