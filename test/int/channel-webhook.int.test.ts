import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { aDelivery, anEvent, aPostureEvent, ticking } from '../../streams/delivery/channels/test-fixtures.ts'
import { createWebhookChannel, type WebhookChannelConfiguration } from '../../streams/delivery/index.ts'
import { type HttpStandIn, type StandInRequest, startHttpStandIn } from '../support/http-stand-in.ts'

const NEW_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const OLD_SECRET = 'whsec_b2xkU2VjcmV0T2xkU2VjcmV0T2xkU2VjcmV0'

/** The three Standard Webhooks headers a receiver hands to its verifier. */
const signedHeaders = (request: StandInRequest): Record<string, string> => ({
  'webhook-id': String(request.headers['webhook-id']),
  'webhook-timestamp': String(request.headers['webhook-timestamp']),
  'webhook-signature': String(request.headers['webhook-signature']),
})

/**
 * A receiver's check with the `standardwebhooks` reference library, independent of Herald's
 * signing code: it throws unless a `v1` signature matches and the timestamp is recent.
 */
const verifiedBy = (secret: string, request: StandInRequest): unknown =>
  new Webhook(secret).verify(request.body, signedHeaders(request))

/** The library checks the timestamp against its own clock, so the channel signs near now. */
const START = Math.floor(Date.now() / 1_000) * 1_000

describe('webhook channel against a receiver', () => {
  let receiver: HttpStandIn
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const channel = createWebhookChannel({ guard, clock: ticking(START, 5) })
  let configuration: WebhookChannelConfiguration
  const context = { uiUrl: null, timeoutMs: 2_000 }

  before(async () => {
    receiver = await startHttpStandIn(() => ({ status: 204 }))
    configuration = {
      endpoint: 'webhook',
      id: 'cfg-hook',
      account: 'acme',
      url: receiver.url('/herald'),
      signingSecrets: [NEW_SECRET],
    }
  })
  after(async () => {
    guard.close()
    await receiver.close()
  })

  it('POSTs the event as a Standard Webhooks payload, signed, with the delivery id', async () => {
    const delivery = aDelivery(aPostureEvent())
    const result = await channel.send(delivery, configuration, context)
    assert.deepEqual(result, { ok: true, status: 204, response: 'HTTP 204', latencyMs: 5 })
    const request = receiver.requests.at(-1)
    if (request === undefined) assert.fail('nothing received')
    assert.equal(request.method, 'POST')
    assert.equal(request.headers['content-type'], 'application/json')
    assert.equal(request.headers['webhook-id'], delivery.deliveryId)
    assert.equal(request.headers['webhook-timestamp'], String(START / 1_000))
    assert.deepEqual(JSON.parse(request.body), {
      type: delivery.event.type,
      timestamp: delivery.event.time,
      data: delivery.event,
    })
    assert.deepEqual(verifiedBy(NEW_SECRET, request), JSON.parse(request.body))
    const tampered = { ...request, body: request.body.replace('acme', 'acmf') }
    assert.notEqual(tampered.body, request.body)
    assert.throws(() => verifiedBy(NEW_SECRET, tampered), WebhookVerificationError)
    const otherDelivery = { ...request, headers: { ...request.headers, 'webhook-id': 'msg_other' } }
    assert.throws(() => verifiedBy(NEW_SECRET, otherDelivery), WebhookVerificationError)
    assert.equal(request.headers.authorization, undefined)
  })

  it('links into the UI when ui_url is set, as the other channels do', async () => {
    const delivery = aDelivery(aPostureEvent())
    await channel.send(delivery, configuration, { ...context, uiUrl: 'https://herald.example.com/ui' })
    const body = JSON.parse(receiver.requests.at(-1)?.body ?? '{}')
    assert.deepEqual(body.links, {
      ui: `https://herald.example.com/ui/events/${encodeURIComponent(delivery.event.id)}`,
    })
    assert.deepEqual(body.data, delivery.event)
  })

  it('signs with both secrets during a rotation: receivers holding either verify', async () => {
    await channel.send(
      aDelivery(anEvent()),
      { ...configuration, signingSecrets: [NEW_SECRET, OLD_SECRET] },
      context,
    )
    const request = receiver.requests.at(-1)
    if (request === undefined) assert.fail('nothing received')
    assert.equal(String(request.headers['webhook-signature']).split(' ').length, 2)
    assert.deepEqual(verifiedBy(NEW_SECRET, request), JSON.parse(request.body))
    assert.deepEqual(verifiedBy(OLD_SECRET, request), JSON.parse(request.body))
    assert.throws(
      () => verifiedBy('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', request),
      WebhookVerificationError,
    )
    // Each receiver, whichever secret it holds, still refuses a tampered body.
    const tampered = { ...request, body: request.body.replace('"specversion"', '"specVersion"') }
    assert.notEqual(tampered.body, request.body)
    assert.throws(() => verifiedBy(NEW_SECRET, tampered), WebhookVerificationError)
    assert.throws(() => verifiedBy(OLD_SECRET, tampered), WebhookVerificationError)
  })

  it('sends basic auth when the configuration has credentials', async () => {
    await channel.send(
      aDelivery(anEvent()),
      { ...configuration, username: 'herald', password: 's3cr3t:pw' },
      context,
    )
    assert.equal(
      receiver.requests.at(-1)?.headers.authorization,
      `Basic ${Buffer.from('herald:s3cr3t:pw').toString('base64')}`,
    )
  })

  it('sends a digest as its summary', async () => {
    const events = [aPostureEvent(), anEvent()]
    const digest = {
      windowStart: '2026-11-22T09:00:00Z',
      windowEnd: '2026-11-22T10:00:00Z',
      total: 2,
      counts: [
        { type: 'com.ibm.cloud.compliance.posture', level: 'info', count: 1 },
        { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 1 },
      ],
      events,
    }
    await channel.send(aDelivery(anEvent(), { digest }), configuration, context)
    const body = JSON.parse(receiver.requests.at(-1)?.body ?? '{}')
    assert.equal(body.type, 'herald.notification.digest')
    assert.equal(body.timestamp, '2026-11-22T10:00:00Z')
    assert.deepEqual(body.data.events, events)
    assert.equal(body.data.total, 2)
  })

  it('refuses a stored secret that is not a Standard Webhooks secret: permanent, nothing sent', async () => {
    const before = receiver.requests.length
    const result = await channel.send(
      aDelivery(anEvent()),
      { ...configuration, signingSecrets: ['not-a-whsec'] },
      context,
    )
    assert.deepEqual(result.ok ? result : [result.kind, result.code], ['permanent', 'configuration'])
    assert.equal(receiver.requests.length, before)
  })
})
