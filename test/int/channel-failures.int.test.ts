import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { aDelivery, aPostureEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import {
  type ChannelConfiguration,
  type ChannelResult,
  createDeliveryChannels,
} from '../../streams/delivery/index.ts'
import { startGitHubStandIn } from '../support/github-stand-in.ts'
import { type HttpStandIn, startHttpStandIn } from '../support/http-stand-in.ts'
import { startJiraStandIn } from '../support/jira-stand-in.ts'
import { startSlackStandIn } from '../support/slack-stand-in.ts'
import { startTeamsStandIn } from '../support/teams-stand-in.ts'

/**
 * One table of endpoint failures, run against every HTTP channel through its stand-in: how
 * each is classified (retriable with Retry-After, permanent, gone) must not depend on which
 * client library the channel uses.
 */

interface Harness {
  readonly standIn: HttpStandIn
  readonly configuration: ChannelConfiguration
  /** The same configuration, its URL pointing at `origin` instead. */
  readonly at: (origin: string) => ChannelConfiguration
}

const moved = (url: string, origin: string) => {
  const parsed = new URL(url)
  const target = new URL(origin)
  parsed.protocol = target.protocol
  parsed.host = target.host
  return parsed.href
}

const harnesses: Record<string, () => Promise<Harness>> = {
  slack: async () => {
    const standIn = await startSlackStandIn()
    const configuration = {
      endpoint: 'slack' as const,
      id: 'c-slack',
      account: 'acme',
      webhookUrl: standIn.webhookUrl,
    }
    return {
      standIn,
      configuration,
      at: (origin) => ({ ...configuration, webhookUrl: moved(standIn.webhookUrl, origin) }),
    }
  },
  teams: async () => {
    const standIn = await startTeamsStandIn()
    const configuration = {
      endpoint: 'teams' as const,
      id: 'c-teams',
      account: 'acme',
      webhookUrl: standIn.workflowUrl,
    }
    return {
      standIn,
      configuration,
      at: (origin) => ({ ...configuration, webhookUrl: moved(standIn.workflowUrl, origin) }),
    }
  },
  webhook: async () => {
    const standIn = await startHttpStandIn(() => ({ status: 204 }))
    const configuration = {
      endpoint: 'webhook' as const,
      id: 'c-webhook',
      account: 'acme',
      url: standIn.url('/hook'),
      signingSecrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    }
    return {
      standIn,
      configuration,
      at: (origin) => ({ ...configuration, url: moved(configuration.url, origin) }),
    }
  },
  github: async () => {
    const standIn = await startGitHubStandIn({ owner: 'acme', repo: 'alerts', token: 'ghp_failuresToken' })
    const configuration = {
      endpoint: 'github' as const,
      id: 'c-github',
      account: 'acme',
      apiUrl: standIn.apiUrl,
      owner: 'acme',
      repository: 'alerts',
      token: 'ghp_failuresToken',
    }
    return { standIn, configuration, at: (origin) => ({ ...configuration, apiUrl: origin }) }
  },
  jira: async () => {
    const standIn = await startJiraStandIn({
      projectKey: 'SEC',
      email: 'bot@acme.example',
      apiToken: 'jira-failures-token',
    })
    const configuration = {
      endpoint: 'jira' as const,
      id: 'c-jira',
      account: 'acme',
      url: standIn.siteUrl,
      username: 'bot@acme.example',
      apiToken: 'jira-failures-token',
      projectKey: 'SEC',
      issueType: 'Bug',
    }
    return { standIn, configuration, at: (origin) => ({ ...configuration, url: origin }) }
  },
}

const failure = (result: ChannelResult) => {
  if (result.ok) assert.fail(`expected a failure, got ${JSON.stringify(result)}`)
  return result
}

for (const [name, start] of Object.entries(harnesses)) {
  describe(`${name}: failure classification`, () => {
    let harness: Harness
    let closedOrigin: string
    const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
    const channels = createDeliveryChannels({ guard })
    const send = (configuration: ChannelConfiguration, timeoutMs = 2_000) =>
      channels.send(aDelivery(aPostureEvent()), configuration, { uiUrl: null, timeoutMs })

    before(async () => {
      harness = await start()
      const closed = await startHttpStandIn(() => ({ status: 200 }))
      closedOrigin = closed.url('')
      await closed.close()
    })
    after(async () => {
      guard.close()
      await harness.standIn.close()
    })

    it('succeeds against the healthy stand-in', async () => {
      const result = await send(harness.configuration)
      assert.equal(result.ok, true, JSON.stringify(result))
    })

    it('429 with Retry-After in seconds: retriable, with the delay', async () => {
      harness.standIn.failNext({
        status: 429,
        headers: { 'retry-after': '7' },
        body: { message: 'slow down' },
      })
      const result = failure(await send(harness.configuration))
      assert.deepEqual(
        [result.kind, result.code, result.status, result.retryAfterMs],
        ['retriable', 'rate_limited', 429, 7000],
      )
    })

    it('429 with Retry-After sent twice (a proxy repeating it): retriable, with the longest delay', async () => {
      harness.standIn.failNext({ status: 429, headers: { 'retry-after': ['7', '9'] } })
      const result = failure(await send(harness.configuration))
      assert.deepEqual(
        [result.kind, result.code, result.status, result.retryAfterMs],
        ['retriable', 'rate_limited', 429, 9000],
      )
    })

    it('429 with Retry-After as an HTTP date: retriable, until that date', async () => {
      const at = new Date(Math.ceil((Date.now() + 120_000) / 1000) * 1000).toUTCString()
      harness.standIn.failNext({ status: 429, headers: { 'retry-after': at } })
      const result = failure(await send(harness.configuration))
      assert.equal(result.kind, 'retriable')
      assert.ok(
        result.retryAfterMs !== undefined && result.retryAfterMs > 100_000 && result.retryAfterMs <= 121_000,
        String(result.retryAfterMs),
      )
    })

    for (const status of [502, 503, 504]) {
      it(`${status}: retriable`, async () => {
        harness.standIn.failNext({ status, body: 'upstream trouble' })
        const result = failure(await send(harness.configuration))
        assert.deepEqual(
          [result.kind, result.code, result.status, result.retryAfterMs],
          ['retriable', 'http_status', status, undefined],
        )
      })
    }

    it('410: gone, the configuration is to be disabled', async () => {
      harness.standIn.failNext({ status: 410, body: 'gone' })
      const result = failure(await send(harness.configuration))
      assert.deepEqual([result.kind, result.code, result.status], ['gone', 'gone', 410])
    })

    for (const status of [400, 401, 403, 404, 422]) {
      it(`${status}: permanent`, async () => {
        harness.standIn.failNext({ status, body: { message: 'no' } })
        const result = failure(await send(harness.configuration))
        assert.deepEqual([result.kind, result.status], ['permanent', status])
      })
    }

    it('a redirect: permanent, and not followed', async () => {
      const before = harness.standIn.requests.length
      harness.standIn.failNext({
        status: 302,
        headers: { location: 'http://169.254.169.254/latest/meta-data/' },
      })
      const result = failure(await send(harness.configuration))
      assert.deepEqual([result.kind, result.code, result.status], ['permanent', 'redirect', 302])
      assert.equal(harness.standIn.requests.length, before + 1)
    })

    it('connection refused: retriable', async () => {
      const result = failure(await send(harness.at(closedOrigin)))
      assert.deepEqual([result.kind, result.code, result.status], ['retriable', 'network', null])
      assert.match(result.error, /ECONNREFUSED/)
    })

    it('no answer within the time limit: retriable, after about the limit', async () => {
      harness.standIn.hangNext()
      const started = performance.now()
      const result = failure(await send(harness.configuration, 300))
      const elapsed = performance.now() - started
      assert.deepEqual([result.kind, result.code], ['retriable', 'timeout'])
      assert.ok(elapsed >= 290 && elapsed < 3_000, `took ${elapsed} ms`)
    })

    it('an address the SSRF guard refuses: permanent, and nothing is sent', async () => {
      const strictGuard = createOutboundGuard()
      const strict = createDeliveryChannels({ guard: strictGuard })
      const before = harness.standIn.requests.length
      const result = failure(
        await strict.send(aDelivery(aPostureEvent()), harness.configuration, {
          uiUrl: null,
          timeoutMs: 1_000,
        }),
      )
      strictGuard.close()
      assert.deepEqual([result.kind, result.code], ['permanent', 'blocked'])
      assert.equal(harness.standIn.requests.length, before)
    })

    it('a send the caller aborts: retriable', async () => {
      harness.standIn.hangNext()
      const controller = new AbortController()
      setTimeout(() => controller.abort(new Error('shutting down')), 50)
      const result = failure(
        await channels.send(aDelivery(aPostureEvent()), harness.configuration, {
          uiUrl: null,
          timeoutMs: 5_000,
          signal: controller.signal,
        }),
      )
      assert.deepEqual([result.kind, result.code], ['retriable', 'aborted'])
    })
  })
}
