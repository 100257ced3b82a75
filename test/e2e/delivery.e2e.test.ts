import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'
import { type HttpStandIn, startHttpStandIn } from '../support/http-stand-in.ts'
import { type JiraStandIn, startJiraStandIn } from '../support/jira-stand-in.ts'

const ADMIN_TOKEN = `e2e-admin-${randomUUID()}`

const engineEvent = () => ({
  specversion: '1.0',
  id: `evt-${randomUUID()}`,
  source: '/engine/analyzer',
  type: 'user.image.analysis.completed',
  account: 'admin',
  time: new Date().toISOString(),
  level: 'info',
  resourcetype: 'image',
  data: { digest: `sha256:${'ab'.repeat(32)}`, registry: 'docker.io', repository: 'library/nginx' },
})

type Json = Record<string, unknown>

/** The admin's calls to a running Herald (whichever process `current` returns). */
/** A test process's settings: its data, the admin token, stand-ins on loopback, retries on `schedule` without jitter. */
const heraldEnv = (dataDir: string, schedule: string) => ({
  HERALD_DATA_DIR: dataDir,
  HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
  HERALD_LOG_LEVEL: 'info',
  HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
  HERALD_NOTIFICATIONS__DELIVERY__RETRY_SCHEDULE_MS: schedule,
  HERALD_NOTIFICATIONS__DELIVERY__RETRY_JITTER_PERCENT: '0',
})

const heraldClient = (current: () => HeraldProcess) => {
  const api = async (path: string, init: { method?: string; json?: unknown; type?: string } = {}) => {
    const response = await fetch(`${current().url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(init.json === undefined ? {} : { 'content-type': init.type ?? 'application/json' }),
      },
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    })
    const text = await response.text()
    return { status: response.status, text, json: (text === '' ? {} : JSON.parse(text)) as Json }
  }

  const deliveryOf = async (eventId: string) => {
    const page = await api(`/v1/notifications/deliveries?event_id=${eventId}`)
    assert.equal(page.status, 200, page.text)
    const [item] = page.json.items as Json[]
    assert.ok(item, `no delivery for ${eventId}`)
    return item
  }

  /** The delivery of `eventId` once it is sent, waiting up to `timeoutMs`. */
  const deliveryOnceSent = (eventId: string, timeoutMs: number) =>
    eventually(
      async () => {
        const item = await deliveryOf(eventId)
        assert.equal(item.status, 'sent')
        return item
      },
      { timeoutMs },
    )

  const post = async () => {
    const event = engineEvent()
    const accepted = await api('/v1/events', {
      method: 'POST',
      json: event,
      type: 'application/cloudevents+json',
    })
    assert.equal(accepted.status, 202, accepted.text)
    return event
  }

  /** A webhook configuration for `url` with a selector matching the test's events; resolves with its id. */
  const configureWebhook = async (url: string) => {
    const created = await api('/v1/notifications/endpoints/webhook/configurations', {
      method: 'POST',
      json: { url, description: 'e2e delivery' },
    })
    assert.equal(created.status, 201, created.text)
    const id = String(created.json.uuid)
    const selector = await api(`/v1/notifications/endpoints/webhook/configurations/${id}/selectors`, {
      method: 'POST',
      json: { scope: 'account', event: { level: '*', type: 'user.image.*', resource_type: '*' } },
    })
    assert.equal(selector.status, 201, selector.text)
    // The router picks the new selector up from the configuration feed.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    return id
  }

  return { api, deliveryOf, deliveryOnceSent, post, configureWebhook }
}

describe('delivery through the running process: retries, the delivery log, replay, restart', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-delivery-'))
  const env = heraldEnv(dataDir, '0,200')
  let endpoint: HttpStandIn
  let herald: HeraldProcess
  let configurationId = ''

  const { api, deliveryOf, post, configureWebhook } = heraldClient(() => herald)

  before(async () => {
    endpoint = await startHttpStandIn(() => ({ status: 204 }))
    herald = await startHeraldProcess(env)
    configurationId = await configureWebhook(endpoint.url('/hook'))
  })
  after(async () => {
    await herald?.stop('SIGKILL')
    await endpoint?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('retries a failing endpoint and records every attempt in the delivery log', async () => {
    endpoint.failNext({ status: 503 }, 2)
    const event = await post()
    const delivery = await eventually(async () => {
      const item = await deliveryOf(event.id)
      assert.equal(item.status, 'sent')
      return item
    })
    assert.equal(delivery.attempts, 3)
    assert.equal(delivery.configuration_id, configurationId)
    const detail = await api(`/v1/notifications/deliveries/${String(delivery.id)}`)
    assert.deepEqual(
      (detail.json.attempt_history as Json[]).map((a) => [a.outcome, a.status]),
      [
        ['failed', 503],
        ['failed', 503],
        ['sent', 204],
      ],
    )
    assert.equal(endpoint.requests.filter((r) => r.headers['webhook-id'] === delivery.id).length, 3)
    const status = await api(`/v1/notifications/endpoints/webhook/configurations/${configurationId}/status`)
    assert.equal(status.json.status, 'healthy')
    assert.deepEqual(status.json.recent, { succeeded: 1, failed: 2 })
  })

  it('dead-letters when the schedule is used up, and replays on request', async () => {
    endpoint.failNext({ status: 502 }, 3)
    const event = await post()
    const dead = await eventually(async () => {
      const item = await deliveryOf(event.id)
      assert.equal(item.status, 'dead_lettered')
      return item
    })
    const replayed = await api(`/v1/notifications/deliveries/${String(dead.id)}/replay`, { method: 'POST' })
    assert.equal(replayed.status, 202, replayed.text)
    await eventually(async () => assert.equal((await deliveryOf(event.id)).status, 'sent'))
  })

  it('keeps the log and the status across a restart', async () => {
    const before = await api('/v1/notifications/deliveries')
    assert.equal(
      herald.lines.some((l) => l.event === 'delivery.webhook.dead_lettered'),
      true,
    )
    assert.equal(await herald.stop('SIGTERM'), 0)
    herald = await startHeraldProcess(env)
    const afterRestart = await api('/v1/notifications/deliveries')
    assert.deepEqual(afterRestart.json.items, before.json.items)
    const status = await api(`/v1/notifications/endpoints/webhook/configurations/${configurationId}/status`)
    assert.equal(status.json.status, 'healthy')
  })
})

describe('delivery through the running process: killed with SIGKILL during a backoff', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-delivery-kill-'))
  // One retry, three seconds after the first attempt: long enough to kill the process inside it.
  const RETRY_MS = 3_000
  const env = heraldEnv(dataDir, String(RETRY_MS))
  let endpoint: HttpStandIn
  let herald: HeraldProcess
  const { api, deliveryOf, deliveryOnceSent, post, configureWebhook } = heraldClient(() => herald)

  before(async () => {
    endpoint = await startHttpStandIn(() => ({ status: 204 }))
    herald = await startHeraldProcess(env)
    await configureWebhook(endpoint.url('/hook'))
  })
  after(async () => {
    await herald?.stop('SIGKILL')
    await endpoint?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('sends the waiting retry exactly once from the next process on the same data, and ends sent', async () => {
    endpoint.failNext({ status: 503 }, 1)
    const event = await post()
    const requestsFor = (id: string) => endpoint.requests.filter((r) => r.headers['webhook-id'] === id)

    // The first attempt reached the endpoint and failed, and the delivery log holds the wait.
    const waiting = await eventually(async () => {
      const item = await deliveryOf(event.id)
      assert.equal(item.status, 'retrying')
      assert.equal(item.attempts, 1)
      return item
    })
    const id = String(waiting.id)
    assert.equal(requestsFor(id).length, 1)
    const due = Date.parse(String(waiting.next_attempt_at))
    assert.ok(Number.isFinite(due), String(waiting.next_attempt_at))

    assert.equal(await herald.stop('SIGKILL'), null)
    assert.equal(herald.child.signalCode, 'SIGKILL')
    assert.ok(Date.now() < due, 'killed before the retry was due')
    assert.equal(requestsFor(id).length, 1, 'the killed process did not send the retry')

    herald = await startHeraldProcess(env)
    const sent = await deliveryOnceSent(event.id, 30_000)
    assert.equal(sent.id, id)
    assert.equal(sent.attempts, 2)
    const detail = await api(`/v1/notifications/deliveries/${id}`)
    assert.equal(detail.status, 200, detail.text)
    assert.deepEqual(
      (detail.json.attempt_history as Json[]).map((a) => [a.attempt, a.outcome, a.status]),
      [
        [1, 'failed', 503],
        [2, 'sent', 204],
      ],
    )
    const retriedAt = Date.parse(String((detail.json.attempt_history as Json[])[1]?.at))
    assert.ok(retriedAt >= due, 'not before it was due')

    // Nothing more arrives: the failed first request and the one retry, under the same webhook-id.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    assert.equal(requestsFor(id).length, 2)
    assert.equal(endpoint.requests.length, 2, 'no other request reached the endpoint')
    assert.equal((await deliveryOf(event.id)).status, 'sent')
  })
})

describe('a Jira delivery killed with SIGKILL while Jira was answering the filing', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-e2e-delivery-jira-kill-'))
  // Jira's search shows a new issue only after SEARCH_LAG_MS, longer than a restart takes, so
  // the restarted process cannot find the issue at first; Herald waits JIRA_WAIT_MS for it.
  const SEARCH_LAG_MS = 8_000
  const JIRA_WAIT_MS = 10_000
  const env = {
    ...heraldEnv(dataDir, '0,1000,1000,1000,1000'),
    HERALD_NOTIFICATIONS__DELIVERY__JIRA_SEARCH_LAG_MS: String(JIRA_WAIT_MS),
  }
  let jira: JiraStandIn
  let herald: HeraldProcess
  const { api, deliveryOnceSent, post } = heraldClient(() => herald)

  before(async () => {
    jira = await startJiraStandIn({
      projectKey: 'SEC',
      email: 'bot@acme.example',
      apiToken: 'jira-e2e-token',
      searchLagMs: SEARCH_LAG_MS,
    })
    herald = await startHeraldProcess(env)
    const created = await api('/v1/notifications/endpoints/jira/configurations', {
      method: 'POST',
      json: {
        url: jira.siteUrl,
        username: 'bot@acme.example',
        api_token: 'jira-e2e-token',
        project_key: 'SEC',
        description: 'e2e jira',
      },
    })
    assert.equal(created.status, 201, created.text)
    const selector = await api(
      `/v1/notifications/endpoints/jira/configurations/${String(created.json.uuid)}/selectors`,
      {
        method: 'POST',
        json: { scope: 'account', event: { level: '*', type: 'user.image.*', resource_type: '*' } },
      },
    )
    assert.equal(selector.status, 201, selector.text)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  })
  after(async () => {
    await herald?.stop('SIGKILL')
    await jira?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('files no second issue after the restart: it waits for search to show the first, and ends sent', async () => {
    jira.loseFilingAnswers()
    const event = await post()
    await eventually(async () => assert.equal(jira.issues.length, 1), { timeoutMs: 15_000 })
    assert.equal(await herald.stop('SIGKILL'), null, 'killed while Jira was answering')
    const filedAt = jira.issues[0]?.createdAt ?? 0

    herald = await startHeraldProcess(env)
    const sent = await deliveryOnceSent(event.id, 40_000)
    assert.equal(jira.issues.length, 1, 'one issue for the key')
    assert.deepEqual(jira.problems, [])
    const detail = await api(`/v1/notifications/deliveries/${String(sent.id)}`)
    const history = detail.json.attempt_history as Json[]
    // The restarted process found nothing at first and waited rather than filing again.
    assert.ok(
      history.some((a) => a.outcome === 'failed' && a.code === 'ticket_unconfirmed'),
      JSON.stringify(history),
    )
    assert.ok(Date.now() - filedAt >= SEARCH_LAG_MS)
  })
})
