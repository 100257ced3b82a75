import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createOutboundGuard } from '../../../src/outbound/index.ts'
import { type GitHubStandIn, startGitHubStandIn } from '../../../test/support/github-stand-in.ts'
import { type JiraStandIn, startJiraStandIn } from '../../../test/support/jira-stand-in.ts'
import { slackMessageProblems } from '../../../test/support/slack-stand-in.ts'
import { teamsMessageProblems } from '../../../test/support/teams-stand-in.ts'
import type { DeliveryDigest } from '../../routing/index.ts'
import { digestDeliveryIdFor } from '../../routing/index.ts'
import type { ChannelDelivery } from './channel.ts'
import { createGitHubChannel } from './github.ts'
import { createJiraChannel } from './jira.ts'
import { messageScope } from './message.ts'
import { slackMessage } from './slack.ts'
import { teamsMessage } from './teams.ts'
import { aDelivery, anEvent, aPostureEvent, catalogData } from './test-fixtures.ts'
import { webhookChannelPayload } from './webhook.ts'

/** A digest as the router's flusher publishes it: a window of a storm, its first events listed. */
const aDigestDelivery = (
  windowStart: string,
  windowEnd: string,
  configurationId = 'cfg-1',
): ChannelDelivery => {
  const events = [
    anEvent({ id: 'v1', time: windowStart }),
    aPostureEvent({ level: 'warning' }),
    anEvent({ id: 'v2', data: catalogData('user.checks.tag.vulnerabilities.update', 1) }),
  ]
  const digest: DeliveryDigest = {
    windowStart,
    windowEnd,
    total: 42,
    counts: [
      { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 41 },
      { type: 'com.ibm.cloud.compliance.posture', level: 'warning', count: 1 },
    ],
    levels: [
      { level: 'warning', count: 1 },
      { level: 'info', count: 41 },
    ],
    events,
  }
  return aDelivery(events[0], {
    deliveryId: digestDeliveryIdFor(configurationId, windowStart),
    configurationId,
    digest,
  })
}

const W0 = '2026-11-22T10:00:00.000Z'
const W1 = '2026-11-22T10:00:30.000Z'
const W2 = '2026-11-22T10:01:00.000Z'

describe('a digest in chat messages', () => {
  const scope = messageScope(aDigestDelivery(W0, W1), { uiUrl: 'https://herald.example.com' })

  it('shows Slack its highest level, event count, account and window instead of one event', () => {
    const message = slackMessage(scope, 'Herald digest: 42 events for acme', 'text')
    assert.deepEqual(slackMessageProblems(message), [])
    const blocks = message.blocks as {
      type: string
      fields?: { text: string }[]
      elements?: { text: string }[]
    }[]
    const fields = blocks.find((b) => b.fields !== undefined)?.fields?.map((f) => f.text)
    assert.deepEqual(fields?.slice(0, 3), [
      '*Highest level*\n:warning: warning',
      '*Events*\n42',
      '*Account*\nacme',
    ])
    assert.match(fields?.[3] ?? '', /^\*Window\*\n<!date\^\d+\^.*\|2026-11-22T10:00:00\.000Z> – <!date/)
    assert.equal(blocks.at(-1)?.elements?.[0]?.text, 'digest · configuration cfg-1')
  })

  it('shows Teams the same facts', () => {
    const message = teamsMessage(scope, 'Herald digest: 42 events for acme', 'text')
    assert.deepEqual(teamsMessageProblems(message), [])
    const card = message.attachments[0]?.content ?? assert.fail('no card')
    type Runs = { readonly inlines: readonly { readonly text: string; readonly color?: string }[] }
    const facts = (card.body[2] as unknown as { items: Runs[] }).items.map((fact) =>
      fact.inlines.map((r) => r.text).join(''),
    )
    assert.deepEqual(facts, [
      'Highest level: warning',
      'Events: 42',
      'Account: acme',
      `Window: ${W0} – ${W1}`,
      'Configuration: cfg-1',
    ])
    assert.equal((card.body[0] as Runs).inlines[0]?.color, 'Warning')
  })
})

describe('a digest to a webhook', () => {
  it('carries the digest object: window, counts, levels and the first events whole', () => {
    const delivery = aDigestDelivery(W0, W1)
    assert.deepEqual(webhookChannelPayload(delivery), {
      type: 'herald.notification.digest',
      timestamp: W1,
      data: {
        account: 'acme',
        configuration_id: 'cfg-1',
        window_start: W0,
        window_end: W1,
        total: 42,
        counts: delivery.digest?.counts,
        levels: delivery.digest?.levels,
        events: delivery.digest?.events,
      },
    })
  })
})

describe('a configuration’s digests in tickets', () => {
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const context = { uiUrl: null, timeoutMs: 2_000 }
  let github: GitHubStandIn
  let jira: JiraStandIn
  before(async () => {
    github = await startGitHubStandIn({
      owner: 'acme',
      repo: 'security',
      token: 'ghp_DigestToken0123456789abcdefgh',
    })
    jira = await startJiraStandIn({
      projectKey: 'SEC',
      email: 'bot@acme.example',
      apiToken: 'ATATT3xDigestToken',
    })
  })
  after(async () => {
    guard.close()
    await github.close()
    await jira.close()
  })

  it('GitHub: one issue for the configuration, a comment per later digest, reopened when closed', async () => {
    const channel = createGitHubChannel({ guard })
    const configuration = {
      endpoint: 'github' as const,
      id: 'cfg-1',
      account: 'acme',
      apiUrl: github.apiUrl,
      owner: 'acme',
      repository: 'security',
      token: 'ghp_DigestToken0123456789abcdefgh',
    }
    const first = await channel.send(aDigestDelivery(W0, W1), configuration, context)
    assert.equal(first.ok, true, JSON.stringify(first))
    assert.deepEqual(github.problems, [])
    assert.equal(github.issues.length, 1, 'not one issue per event of the window')
    assert.equal(github.issues[0]?.title, 'Herald digests for acme: configuration cfg-1')
    assert.match(github.issues[0]?.body ?? '', /^42 events between .*\n- 41 × user\.checks/)

    // A retry of the same digest changes nothing; the next window comments.
    await channel.send(aDigestDelivery(W0, W1), configuration, context)
    assert.equal(github.comments.length, 0)
    await channel.send(aDigestDelivery(W1, W2), configuration, context)
    assert.equal(github.issues.length, 1)
    assert.equal(github.comments.length, 1)
    assert.match(github.comments[0]?.body ?? '', /^A new digest\.\n\n42 events between 2026-11-22T10:00:30/)

    github.closeIssue(1)
    const reopened = await channel.send(
      aDigestDelivery(W2, '2026-11-22T10:01:30.000Z'),
      configuration,
      context,
    )
    assert.deepEqual(reopened.ok && reopened.tickets?.map((t) => t.action), ['reopened'])
    assert.equal(github.issues.length, 1)
  })

  it('Jira: one ticket for the configuration, a comment per later digest', async () => {
    const channel = createJiraChannel({ guard })
    const configuration = {
      endpoint: 'jira' as const,
      id: 'cfg-1',
      account: 'acme',
      url: jira.siteUrl,
      username: 'bot@acme.example',
      apiToken: 'ATATT3xDigestToken',
      projectKey: 'SEC',
      issueType: 'Bug',
    }
    const first = await channel.send(aDigestDelivery(W0, W1), configuration, context)
    assert.equal(first.ok, true, JSON.stringify(first))
    await channel.send(aDigestDelivery(W1, W2), configuration, context)
    assert.deepEqual(jira.problems, [])
    assert.equal(jira.issues.length, 1)
    assert.equal(jira.issues[0]?.summary, 'Herald digests for acme: configuration cfg-1')
    assert.equal(jira.comments.length, 1)
  })
})
