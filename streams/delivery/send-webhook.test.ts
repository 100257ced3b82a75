import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type DeliveryCommand, deliveryIdFor } from '../routing/index.ts'
import { anEvent, aWebhookConfiguration } from '../routing/test-fixtures.ts'
import { type Fetch, sendWebhook } from './send-webhook.ts'
import { verifyWebhook } from './signing.ts'

const event = anEvent()
const configuration = aWebhookConfiguration()
const command: DeliveryCommand = {
  deliveryId: deliveryIdFor(event.id, configuration.id),
  account: 'acme',
  endpoint: 'webhook',
  configurationId: configuration.id,
  event,
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:01.000Z',
}

interface Call {
  readonly url: string
  readonly init: RequestInit
}

/** A fetch that records its calls and answers `respond`; Herald injects fetch, so no SDK is mocked. */
const recordingFetch = (respond: (call: Call) => Promise<Response> | Response) => {
  const calls: Call[] = []
  const fetch: Fetch = async (input, init = {}) => {
    const call = { url: String(input), init }
    calls.push(call)
    return respond(call)
  }
  return { calls, fetch }
}

const ticking = (start: number, step: number) => {
  let now = start - step
  return () => {
    now += step
    return now
  }
}

describe('sendWebhook', () => {
  it('POSTs the Standard Webhooks payload, signed, with the delivery id as webhook-id', async () => {
    const { calls, fetch } = recordingFetch(() => new Response(null, { status: 204 }))
    const result = await sendWebhook(command, configuration, {
      fetch,
      clock: ticking(1_764_000_000_500, 42),
      timeoutMs: 1000,
    })
    assert.deepEqual(result, { ok: true, status: 204, latencyMs: 42, retriable: false })
    assert.equal(calls.length, 1)
    const [call] = calls
    assert.equal(call?.url, configuration.url)
    assert.equal(call?.init.method, 'POST')
    assert.equal(call?.init.redirect, 'manual')
    const headers = new Headers(call?.init.headers)
    assert.equal(headers.get('content-type'), 'application/json')
    assert.equal(headers.get('webhook-id'), command.deliveryId)
    assert.equal(headers.get('webhook-timestamp'), '1764000000')
    const body = String(call?.init.body)
    assert.deepEqual(JSON.parse(body), { type: event.type, timestamp: event.time, data: event })
    assert.ok(
      verifyWebhook({
        secret: configuration.signingSecret,
        id: command.deliveryId,
        timestamp: headers.get('webhook-timestamp') ?? '',
        body,
        signature: headers.get('webhook-signature') ?? '',
      }),
    )
  })

  it('uses the routing time as payload timestamp when the event has none', async () => {
    const { calls, fetch } = recordingFetch(() => new Response('ok'))
    await sendWebhook({ ...command, event: { ...event, time: undefined } }, configuration, {
      fetch,
      clock: () => 0,
      timeoutMs: 1000,
    })
    assert.equal(JSON.parse(String(calls[0]?.init.body)).timestamp, command.createdAt)
  })

  const statuses: [status: number, retriable: boolean][] = [
    [400, false],
    [401, false],
    [404, false],
    [410, false],
    [408, true],
    [429, true],
    [500, true],
    [503, true],
    [301, false],
  ]
  for (const [status, retriable] of statuses) {
    it(`reports HTTP ${status} as ${retriable ? 'retriable' : 'final'}`, async () => {
      const { fetch } = recordingFetch(() => new Response(null, { status }))
      const result = await sendWebhook(command, configuration, { fetch, clock: () => 0, timeoutMs: 1000 })
      assert.deepEqual(result, { ok: false, status, latencyMs: 0, retriable, error: `HTTP ${status}` })
    })
  }

  it('reports a network failure as retriable, with its cause', async () => {
    const { fetch } = recordingFetch(() => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
      })
    })
    const result = await sendWebhook(command, configuration, { fetch, clock: () => 0, timeoutMs: 1000 })
    assert.deepEqual(result, {
      ok: false,
      status: null,
      latencyMs: 0,
      retriable: true,
      error: 'fetch failed: ECONNREFUSED',
    })
  })

  it('gives up after the timeout and reports it as retriable', async () => {
    const { fetch } = recordingFetch(
      ({ init }) =>
        new Promise<Response>((_, reject) => {
          init.signal?.addEventListener('abort', () => reject(init.signal?.reason))
        }),
    )
    const result = await sendWebhook(command, configuration, { fetch, clock: () => 0, timeoutMs: 20 })
    assert.equal(result.ok, false)
    assert.equal(result.retriable, true)
    assert.equal(result.error, 'no response within 20 ms')
  })
})
