import assert from 'node:assert/strict'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { StoredDelivery } from '../../src/deliveries/index.ts'
import { type AttemptRunnerOptions, createAttemptRunner } from './attempt.ts'
import type { ChannelResult } from './channels/channel.ts'
import { createRateLimiter, DEFAULT_RATE_LIMITS } from './rate-limit.ts'
import { DEFAULT_RETRY_POLICY } from './retry-policy.ts'

const START = Date.parse('2026-11-22T10:00:00Z')

/** Two Jira configurations of one site and user (one rate-limit target), and what each send answers. */
const runner = (answers: Record<string, ChannelResult>, options: Partial<AttemptRunnerOptions> = {}) => {
  let now = START
  const sent: string[] = []
  const recorded: unknown[] = []
  const jira = (id: string, projectKey: string) => ({
    enabled: true,
    channel: {
      endpoint: 'jira' as const,
      id,
      account: 'acme',
      url: 'https://acme.atlassian.net',
      username: 'bot@acme.example',
      apiToken: 'secret-token',
      projectKey,
      issueType: 'Bug',
    },
  })
  const configurations = { 'cfg-sec': jira('cfg-sec', 'SEC'), 'cfg-ops': jira('cfg-ops', 'OPS') }
  const attempt = createAttemptRunner({
    view: { waitFor: async () => {}, failingSince: () => null },
    log: {
      record: async (_delivery: unknown, details: unknown, resolution: unknown) => {
        recorded.push({ details, resolution })
        return { position: 1, superseded: false }
      },
    },
    getConfiguration: (id: string) => configurations[id as keyof typeof configurations],
    send: async (delivery: { configurationId: string }) => {
      sent.push(delivery.configurationId)
      return answers[delivery.configurationId] as ChannelResult
    },
    uiUrl: null,
    timeoutMs: 15_000,
    policy: DEFAULT_RETRY_POLICY,
    // Jira's own pacing off: only a hold can make the second configuration wait.
    rateLimits: { ...DEFAULT_RATE_LIMITS, jira: 0 },
    limiter: createRateLimiter(),
    clock: () => now,
    monotonic: () => now,
    random: () => 0.5,
    logger: () => {},
    sustainedFailureMs: 0,
    ...options,
  } as unknown as AttemptRunnerOptions)
  const delivery = (configurationId: string) =>
    ({
      deliveryId: `${configurationId}-d`,
      configurationId,
      account: 'acme',
      endpoint: 'jira',
      status: 'pending',
      attempts: 0,
      roundFailures: 0,
      replays: 0,
      revision: 0,
    }) as unknown as StoredDelivery
  return {
    sent,
    recorded,
    run: (configurationId: string, signal = new AbortController().signal) =>
      attempt(delivery(configurationId), signal),
    later: (ms: number) => {
      now += ms
    },
  }
}

const created: ChannelResult = { ok: true, status: 201, response: 'created OPS-1', latencyMs: 1 }

it("holds the endpoint's other configurations for a wait the endpoint asked for, not for one of Herald's own", async () => {
  // A filing not confirmed yet: Herald waits out the search lag for that delivery alone.
  const unconfirmed = runner({
    'cfg-sec': {
      ok: false,
      kind: 'retriable',
      code: 'ticket_unconfirmed',
      status: null,
      error: 'the filing is not confirmed yet',
      retryAfterMs: 55_000,
      latencyMs: 1,
    },
    'cfg-ops': created,
  })
  await unconfirmed.run('cfg-sec')
  unconfirmed.later(1_000)
  assert.equal(await unconfirmed.run('cfg-ops'), undefined)
  assert.deepEqual(unconfirmed.sent, ['cfg-sec', 'cfg-ops'])

  // A 429 with Retry-After: the site and user are held for everyone sending there.
  const limited = runner({
    'cfg-sec': {
      ok: false,
      kind: 'retriable',
      code: 'rate_limited',
      status: 429,
      error: 'HTTP 429',
      retryAfterMs: 55_000,
      latencyMs: 1,
    },
    'cfg-ops': created,
  })
  await limited.run('cfg-sec')
  limited.later(1_000)
  assert.deepEqual(await limited.run('cfg-ops'), { deferMs: 54_000 })
  assert.deepEqual(limited.sent, ['cfg-sec'])
})

it('abandons an attempt past its time limit as a retriable timeout, its requests together, and stops sending', async () => {
  // A filing of several requests, each within the request limit (15 s here), that together
  // outlast the attempt's 150 ms: the third never starts.
  const requests: string[] = []
  const slowFiling = async (_delivery: unknown, _channel: unknown, context: { signal?: AbortSignal }) => {
    for (const request of ['search', 'create', 'label']) {
      if (context.signal?.aborted) throw context.signal.reason
      requests.push(request)
      await sleep(100, undefined, { signal: context.signal })
    }
    return created
  }
  const limited = runner({}, { send: slowFiling as AttemptRunnerOptions['send'], attemptTimeoutMs: 150 })
  const answer = await limited.run('cfg-sec')
  assert.equal(answer, undefined)
  assert.deepEqual(requests, ['search', 'create'])
  assert.equal(limited.recorded.length, 1)
  const { details, resolution } = limited.recorded[0] as {
    details: { code: string; error: string }
    resolution: { outcome: string; reason: string }
  }
  assert.deepEqual(
    { outcome: resolution.outcome, reason: resolution.reason, code: details.code },
    { outcome: 'failed', reason: 'timeout', code: 'timeout' },
  )
  assert.match(details.error, /took longer than 150 ms \(notifications\.delivery\.attempt_timeout_ms\)/)

  // Within the limit, the same filing is sent; stopped, it is not recorded (the next start sends it).
  requests.length = 0
  const roomy = runner({}, { send: slowFiling as AttemptRunnerOptions['send'], attemptTimeoutMs: 1_000 })
  await roomy.run('cfg-sec')
  assert.deepEqual(requests, ['search', 'create', 'label'])
  assert.equal((roomy.recorded[0] as { resolution: { outcome: string } }).resolution.outcome, 'sent')
  const stopping = new AbortController()
  const stopped = runner({}, { send: slowFiling as AttemptRunnerOptions['send'], attemptTimeoutMs: 150 })
  setTimeout(() => stopping.abort(new Error('stopping')), 50)
  assert.equal(await stopped.run('cfg-sec', stopping.signal), undefined)
  assert.deepEqual(stopped.recorded, [])
})

it('paces the later writes of one attempt by the rate limit, and the target’s other deliveries wait for them', async () => {
  const paced: number[] = []
  let other: unknown
  const { run } = runner({}, {
    // Ten a second: 100 ms between slots of the one site-and-user target.
    rateLimits: { ...DEFAULT_RATE_LIMITS, jira: 600 },
    clock: Date.now,
    monotonic: () => performance.now(),
    send: async (_delivery: unknown, _configuration: unknown, context: { pace?: () => Promise<void> }) => {
      const started = Date.now()
      for (let write = 1; write < 3; write++) {
        await context.pace?.()
        paced.push(Date.now() - started)
        // Meanwhile the other configuration on the same target finds no free slot.
        if (write === 1) other = await run('cfg-ops')
      }
      return created
    },
  } as unknown as Partial<AttemptRunnerOptions>)
  await run('cfg-sec')
  assert.equal(paced.length, 2)
  assert.ok((paced[0] as number) >= 90, `first later write after ${paced[0]} ms`)
  assert.ok((paced[1] as number) - (paced[0] as number) >= 90, `then ${paced[1]} ms`)
  assert.ok(typeof (other as { deferMs?: number }).deferMs === 'number', 'the other delivery is deferred')
})
