import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'
import { type ReceivedRequest, startWebhookReceiver } from '../support/webhook-receiver.ts'

const ADMIN_TOKEN = `e2e-admin-${randomUUID()}`

const engineEvent = (i: number, account = 'acme') => ({
  specversion: '1.0',
  id: `evt-${i}-${randomUUID()}`,
  source: '/engine/analyzer',
  type: 'user.image.analysis.completed',
  account,
  time: new Date(Date.UTC(2026, 10, 22, 10, 0, i)).toISOString(),
  level: 'info',
  resourcetype: 'image',
  subject: `sha256:${i.toString(16).padStart(64, '0')}`,
  data: {
    digest: `sha256:${i.toString(16).padStart(64, '0')}`,
    registry: 'docker.io',
    repository: 'library/nginx',
  },
})

/**
 * A receiver's check with the `standardwebhooks` reference library, independent of Herald's
 * signer. The library also refuses a timestamp more than five minutes from its clock, far
 * longer than this suite keeps a request before checking it.
 */
const verifySignature = (request: ReceivedRequest, secret: string): boolean => {
  try {
    new Webhook(secret).verify(request.body, {
      'webhook-id': String(request.headers['webhook-id']),
      'webhook-timestamp': String(request.headers['webhook-timestamp']),
      'webhook-signature': String(request.headers['webhook-signature']),
    })
    return true
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false
    throw error
  }
}

describe('one engine event end to end, on the embedded default', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-'))
  // The receiver listens on loopback, which the SSRF guard refuses unless allowlisted.
  const env = {
    HERALD_DATA_DIR: dataDir,
    HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
    HERALD_LOG_LEVEL: 'info',
    HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
  }
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>
  let herald: HeraldProcess
  let signingSecret = ''

  const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${ADMIN_TOKEN}`)
    if (init.json !== undefined)
      headers.set('content-type', headers.get('content-type') ?? 'application/json')
    const response = await fetch(`${herald.url}${path}`, {
      ...init,
      headers,
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    })
    const text = await response.text()
    return {
      status: response.status,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    }
  }
  const postEvents = (events: unknown[]) =>
    api('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      json: events,
    })
  const graphqlEvents = async () => {
    const { status, body } = await api('/v1/reports/graphql', {
      method: 'POST',
      json: {
        query: `query ($account: String) {
          events(filter: { account: $account }, limit: 1000) { pageInfo { count nextToken } results { id type account data } }
        }`,
        variables: { account: 'acme' },
      },
    })
    assert.equal(status, 200, JSON.stringify(body))
    const data = body?.data as {
      events: { pageInfo: { count: number }; results: { id: string; data: string }[] }
    }
    return data.events
  }
  const deliveredIds = () =>
    receiver.received.map((r) => (JSON.parse(r.body) as { data: { id: string } }).data.id)

  before(async () => {
    receiver = await startWebhookReceiver()
    herald = await startHeraldProcess(env)
  })
  after(async () => {
    await herald?.stop('SIGKILL')
    await receiver?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('is healthy and reports every port ready', async () => {
    assert.equal((await fetch(`${herald.url}/health`)).status, 200)
    const ready = await fetch(`${herald.url}/ready`)
    const body = (await ready.json()) as { checks: Record<string, { status: string }> }
    assert.equal(ready.status, 200)
    assert.deepEqual(Object.keys(body.checks).sort(), [
      'delivery_read_model',
      'delivery_store',
      'digest_store',
      'event_log',
      'event_store',
      'processed_ids',
      'projected_ids',
      'projector',
      'warehouse',
    ])
    const metrics = await (await fetch(`${herald.url}/metrics`)).text()
    assert.match(metrics, /^herald_up 1$/m)
    // The process's own metrics, and each consumer group's lag.
    assert.match(metrics, /^process_resident_memory_bytes \d+/m)
    assert.match(metrics, /^nodejs_eventloop_lag_p99_seconds /m)
    for (const [group, topic] of [
      ['herald-router', 'engine.events'],
      ['herald-deliverer', 'notifications.deliveries'],
      ['herald-projector', 'engine.events'],
    ])
      assert.match(
        metrics,
        new RegExp(`^herald_consumer_lag_messages\\{group="${group}",topic="${topic}"\\} \\d+$`, 'm'),
      )
  })

  it('refuses a second process on the same data directory', async () => {
    await assert.rejects(startHeraldProcess(env), /data directory .* is in use by Herald process/)
    assert.equal((await fetch(`${herald.url}/health`)).status, 200)
  })

  it('refuses requests without a valid token', async () => {
    const response = await fetch(`${herald.url}/v1/events`, { method: 'POST' })
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('content-type'), 'application/problem+json')
  })

  it('rejects an invalid batch whole, naming every bad field', async () => {
    const good = engineEvent(900)
    const { status, body } = await postEvents([good, { ...engineEvent(901), level: 'loud', source: '' }])
    assert.equal(status, 400)
    const errors = ((body?.errors ?? []) as { path: string }[]).map((e) => e.path).sort()
    assert.deepEqual(errors, ['[1].level', '[1].source'])
    // Nothing of the batch was written: the good event never reaches the warehouse.
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.ok(!(await graphqlEvents()).results.some((e) => e.id === good.id))
  })

  it('serves the event catalog', async () => {
    const { status, body } = await api('/v1/notifications/event-types')
    assert.equal(status, 200)
    const items = body?.items as { type: string; level: string; schema: unknown }[]
    const analysed = items.find((i) => i.type === 'user.image.analysis.completed')
    assert.equal(analysed?.level, 'info')
    assert.equal(typeof analysed?.schema, 'object')
    assert.ok(items.some((i) => i.type === 'com.ibm.cloud.compliance.posture'))
  })

  it('refuses a webhook target in a forbidden range, revealing nothing internal', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data', 'http://[::1]:8080/', 'http://10.0.0.1/']) {
      const refused = await api('/v1/notifications/endpoints/webhook/configurations', {
        method: 'POST',
        json: { url },
      })
      assert.equal(refused.status, 422, url)
      assert.equal(refused.body?.code, 'outbound_blocked')
    }
  })

  it('routes a posted event to a signed webhook and answers it through GraphQL', async () => {
    const created = await api('/v1/notifications/endpoints/webhook/configurations', {
      method: 'POST',
      json: { url: receiver.url, description: 'e2e receiver' },
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const configuration = created.body as { uuid: string; signing_secret: string }
    signingSecret = configuration.signing_secret
    assert.match(signingSecret, /^whsec_/)
    const selector = await api(
      `/v1/notifications/endpoints/webhook/configurations/${configuration.uuid}/selectors`,
      {
        method: 'POST',
        json: { scope: 'global', event: { level: '*', type: 'user.image.*', resource_type: '*' } },
      },
    )
    assert.equal(selector.status, 201, JSON.stringify(selector.body))
    // The router's selector index follows the event store within a second.
    await new Promise((resolve) => setTimeout(resolve, 1_000))

    const event = engineEvent(1)
    const accepted = await api('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents+json' },
      json: event,
    })
    assert.equal(accepted.status, 202)
    assert.equal(accepted.body?.accepted, 1)

    await eventually(() => assert.equal(receiver.received.length, 1))
    const [request] = receiver.received
    assert.ok(request)
    assert.ok(verifySignature(request, signingSecret), 'the webhook signature does not verify')
    assert.equal((JSON.parse(request.body) as { data: { id: string } }).data.id, event.id)

    const page = await eventually(async () => {
      const events = await graphqlEvents()
      assert.equal(events.pageInfo.count, 1)
      return events
    })
    assert.equal(page.results[0]?.id, event.id)
    assert.deepEqual(JSON.parse(page.results[0]?.data ?? 'null'), event.data)

    // Each consumer timed the batches it handled on the way (a batch is timed once its handler
    // has returned, which may be just after what it wrote became visible).
    await eventually(async () => {
      const metrics = await (await fetch(`${herald.url}/metrics`)).text()
      for (const consumer of ['router', 'deliverer', 'projector']) {
        const count = new RegExp(
          `^herald_batch_duration_seconds_count\\{consumer="${consumer}"\\} (\\d+)$`,
          'm',
        ).exec(metrics)
        assert.ok(count !== null && Number(count[1]) >= 1, `${consumer} batches timed`)
      }
    })
  })

  it('stops gracefully on SIGTERM mid-stream and resumes without losing or repeating work', async () => {
    const burst = Array.from({ length: 200 }, (_, i) => engineEvent(100 + i))
    assert.equal((await postEvents(burst)).status, 202)
    // Stop while the router, deliverer and projector are still working through the burst.
    assert.equal(await herald.stop('SIGTERM'), 0)
    assert.ok(herald.lines.some((line) => line.event === 'herald.stopped'))

    herald = await startHeraldProcess(env)
    const later = Array.from({ length: 20 }, (_, i) => engineEvent(400 + i))
    assert.equal((await postEvents(later)).status, 202)

    const expected = 1 + burst.length + later.length
    await eventually(() => assert.equal(new Set(deliveredIds()).size, expected), { timeoutMs: 60_000 })
    await eventually(async () => assert.equal((await graphqlEvents()).pageInfo.count, expected), {
      timeoutMs: 60_000,
    })
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    assert.equal(receiver.received.length, expected, 'a webhook was sent twice')
    assert.ok(receiver.received.every((r) => verifySignature(r, signingSecret)))

    // The raw table holds every event exactly once: no batch was projected twice.
    assert.equal(await herald.stop('SIGTERM'), 0)
    const warehouse = await createChdbWarehouse({ path: join(dataDir, 'warehouse') })
    try {
      const [row] = await warehouse.query<{ rows: number; ids: number }>(
        'SELECT count() AS rows, uniqExact(id) AS ids FROM events',
      )
      assert.deepEqual(row, { rows: expected, ids: expected })
    } finally {
      await warehouse.close()
    }
  })

  it('loses nothing acknowledged when killed with SIGKILL mid-stream', async () => {
    herald = await startHeraldProcess(env)
    const before = new Set(deliveredIds()).size
    const burst = Array.from({ length: 150 }, (_, i) => engineEvent(1_000 + i))
    assert.equal((await postEvents(burst)).status, 202)
    await herald.stop('SIGKILL')

    herald = await startHeraldProcess(env)
    const expected = before + burst.length
    await eventually(() => assert.equal(new Set(deliveredIds()).size, expected), { timeoutMs: 60_000 })
    await eventually(async () => assert.equal((await graphqlEvents()).pageInfo.count, expected), {
      timeoutMs: 60_000,
    })
    // Redelivery after a crash is allowed (at-least-once), but always under the same
    // webhook-id, so a receiver can drop the repeat.
    const idsByEvent = new Map<string, Set<string>>()
    for (const request of receiver.received) {
      const eventId = (JSON.parse(request.body) as { data: { id: string } }).data.id
      const ids = idsByEvent.get(eventId) ?? new Set<string>()
      ids.add(String(request.headers['webhook-id']))
      idsByEvent.set(eventId, ids)
    }
    assert.ok([...idsByEvent.values()].every((ids) => ids.size === 1))
  })
})
