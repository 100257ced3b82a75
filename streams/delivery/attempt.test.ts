import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { StoredDelivery } from '../../src/deliveries/index.ts'
import { type AttemptRunnerOptions, createAttemptRunner } from './attempt.ts'
import type { ChannelResult } from './channels/channel.ts'
import { createRateLimiter, DEFAULT_RATE_LIMITS } from './rate-limit.ts'
import { DEFAULT_RETRY_POLICY } from './retry-policy.ts'

const START = Date.parse('2026-11-22T10:00:00Z')

/** Two Jira configurations of one site and user (one rate-limit target), and what each send answers. */
const runner = (answers: Record<string, ChannelResult>) => {
  let now = START
  const sent: string[] = []
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
    log: { record: async () => ({ position: 1, superseded: false }) },
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
    random: () => 0.5,
    logger: () => {},
    sustainedFailureMs: 0,
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
    run: (configurationId: string) => attempt(delivery(configurationId), new AbortController().signal),
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
  assert.deepEqual(await limited.run('cfg-ops'), { deferUntil: START + 55_000 })
  assert.deepEqual(limited.sent, ['cfg-sec'])
})
