import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { LogFields } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { aDelivery, aPostureEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import {
  type ChannelConfiguration,
  type ChannelResult,
  createDeliveryChannels,
} from '../../streams/delivery/index.ts'
import { type HttpStandIn, type StandInRequest, startHttpStandIn } from '../support/http-stand-in.ts'
import { type SmtpReceiver, startSmtpReceiver } from '../support/smtp-receiver.ts'

/**
 * Secret canaries: unique strings in every credential of every channel. Endpoints here are
 * hostile: they echo the whole request (URL, headers, body) back in their answers, success
 * and failure alike. No canary may appear in a result, an error or a log line.
 */
const CANARY = {
  slackToken: 'CanarySlackTokenA1b2C3d4E5f6',
  teamsSig: 'CanaryTeamsSigQ2FuYXJ5U2ln',
  webhookPassword: 'CanaryWebhookPassw0rd',
  webhookQuery: 'CanaryQueryKey99887766',
  signingKey: 'Q2FuYXJ5U2lnbmluZ0tleTEyMzQ1Njc4',
  githubToken: 'ghp_CanaryGitHubToken0123456789',
  jiraToken: 'ATATT3xCanaryJiraApiToken',
  smtpPassword: 'CanarySmtpPassw0rd!',
}

const forms = [
  ...Object.values(CANARY),
  Buffer.from(`herald:${CANARY.webhookPassword}`).toString('base64'),
  Buffer.from(`bot@acme.example:${CANARY.jiraToken}`).toString('base64'),
]

const assertClean = (what: string, value: unknown) => {
  const text = JSON.stringify(value)
  for (const secret of forms)
    assert.ok(!text.includes(secret), `${what} leaks ${secret.slice(0, 12)}…: ${text}`)
}

/** Answers every request with the request itself, as `status`. */
const echo = (status: number) => (request: StandInRequest) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: {
    message: `echo ${request.method} ${request.path}?${request.query} ${JSON.stringify(request.headers)} ${request.body}`,
    errorMessages: [`${request.path}?${request.query} ${request.headers.authorization ?? ''}`],
  },
})

describe('no secret in any result, error or log line', () => {
  let failing: HttpStandIn
  let succeeding: HttpStandIn
  let smtp: SmtpReceiver
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const lines: { level: string; event: string; fields: LogFields | undefined }[] = []
  const channels = createDeliveryChannels({
    guard,
    logger: (level, event, fields) => lines.push({ level, event, fields }),
  })
  const results: ChannelResult[] = []

  const configurations = (origin: string, smtpPort: number): ChannelConfiguration[] => [
    {
      endpoint: 'slack',
      id: 's',
      account: 'acme',
      webhookUrl: `${origin}/services/T0CANARY1/B0CANARY2/${CANARY.slackToken}`,
      // Valid when saved (the sample event has no controls), over the limits on this event: the default is used.
      templates: {
        text: '{% for i in (1..data.controls.total) %}{% for j in (1..data.controls.total) %}{% for k in (1..data.controls.total) %}x{% endfor %}{% endfor %}{% endfor %}',
      },
    },
    {
      endpoint: 'teams',
      id: 't',
      account: 'acme',
      webhookUrl: `${origin}/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sv=1.0&sig=${CANARY.teamsSig}`,
    },
    {
      endpoint: 'webhook',
      id: 'w',
      account: 'acme',
      url: `${origin}/hook?key=${CANARY.webhookQuery}`,
      username: 'herald',
      password: CANARY.webhookPassword,
      signingSecrets: [`whsec_${CANARY.signingKey}`],
    },
    {
      endpoint: 'github',
      id: 'g',
      account: 'acme',
      apiUrl: origin,
      owner: 'acme',
      repository: 'sec',
      token: CANARY.githubToken,
    },
    {
      endpoint: 'jira',
      id: 'j',
      account: 'acme',
      url: origin,
      username: 'bot@acme.example',
      apiToken: CANARY.jiraToken,
      projectKey: 'SEC',
      issueType: 'Bug',
    },
    {
      endpoint: 'email',
      id: 'e',
      account: 'acme',
      host: '127.0.0.1',
      port: smtpPort,
      from: 'herald@acme.example',
      to: ['secops@acme.example'],
      username: 'herald',
      password: CANARY.smtpPassword,
      tls: 'none',
    },
  ]

  before(async () => {
    failing = await startHttpStandIn(echo(400))
    succeeding = await startHttpStandIn(echo(200))
    // The SMTP server refuses the login, quoting the password it was given.
    smtp = await startSmtpReceiver({
      user: { username: 'herald', password: 'something else' },
      echoRefusedPassword: true,
    })
  })
  after(async () => {
    guard.close()
    await failing.close()
    await succeeding.close()
    await smtp.close()
    assertClean('log lines', lines)
  })

  const sendAll = async (origin: string, smtpPort: number, timeoutMs = 2_000) => {
    const sent: ChannelResult[] = []
    for (const configuration of configurations(origin, smtpPort)) {
      const result = await channels.send(aDelivery(aPostureEvent()), configuration, {
        uiUrl: 'https://herald.example.com',
        timeoutMs,
      })
      sent.push(result)
      results.push(result)
    }
    return sent
  }

  it('when endpoints refuse, echoing the request in their errors', async () => {
    const sent = await sendAll(failing.url(''), smtp.port)
    assert.deepEqual(
      sent.map((r) => r.ok),
      [false, false, false, false, false, false],
    )
    // The echo did come back: the channels report what the service said, scrubbed.
    assert.match(JSON.stringify(sent[0]), /\[redacted\]/)
    assert.equal(sent[5]?.ok === false && sent[5].code, 'smtp_auth')
    assertClean('results', sent)
    // The requests did carry the credentials: the canaries are live.
    const seen = JSON.stringify(failing.requests.map((r) => [r.path, `${r.query}`, r.headers, r.body]))
    for (const canary of [CANARY.slackToken, CANARY.teamsSig, CANARY.webhookQuery, CANARY.githubToken])
      assert.ok(seen.includes(canary))
  })

  it('when endpoints accept, echoing the request in their answers', async () => {
    const sent = await sendAll(succeeding.url(''), smtp.port)
    assert.ok(sent.slice(0, 3).every((r) => r.ok))
    assertClean('results', sent)
  })

  it('when nothing answers, or nothing is listening', async () => {
    failing.hangNext(10)
    assertClean('results', await sendAll(failing.url(''), smtp.port, 200))
    const closed = await startHttpStandIn(echo(200))
    const origin = closed.url('')
    await closed.close()
    assertClean('results', await sendAll(origin, 1))
  })

  it('in template fallbacks and ticket logs', () => {
    assert.ok(lines.some((l) => l.event === 'delivery.slack.template_fallback'))
    assertClean('log lines', lines)
    assertClean('all results', results)
  })
})
