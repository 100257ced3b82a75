import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scrub, secretValues } from './configuration.ts'

const base = { id: 'cfg-1', account: 'acme' }

describe('secretValues and scrub', () => {
  it("treat Slack's and Teams' URLs as credentials, whole and in parts", () => {
    const url = 'https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/xoxSecretToken4f9c2a7e81b3d6'
    const secrets = secretValues({ ...base, endpoint: 'slack', webhookUrl: url })
    assert.equal(scrub(`posting to ${url} failed`, secrets), 'posting to [redacted] failed')
    assert.equal(
      scrub('POST /services/T0ABCDEF1/B0ABCDEF2/xoxSecretToken4f9c2a7e81b3d6 404', secrets),
      'POST [redacted] 404',
    )
    assert.equal(scrub('token xoxSecretToken4f9c2a7e81b3d6 revoked', secrets), 'token [redacted] revoked')
    const teams =
      'https://x.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sv=1.0&sig=SigSecret123456789'
    assert.equal(
      scrub('sig=SigSecret123456789', secretValues({ ...base, endpoint: 'teams', webhookUrl: teams })),
      'sig=[redacted]',
    )
  })

  it('scrub passwords, tokens, signing secrets and the basic-auth headers made of them, as is and URL-encoded', () => {
    const webhook = secretValues({
      ...base,
      endpoint: 'webhook',
      url: 'https://hooks.example.com/herald?key=QueryKey12345678',
      username: 'herald',
      password: 'p@ss w0rd!',
      signingSecrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
    })
    const basic = Buffer.from('herald:p@ss w0rd!').toString('base64')
    assert.equal(
      scrub(
        `p@ss w0rd! p%40ss%20w0rd! Basic ${basic} whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw key=QueryKey12345678 /herald`,
        webhook,
      ),
      '[redacted] [redacted] Basic [redacted] [redacted] [redacted] key=[redacted] /herald',
    )
    const jira = secretValues({
      ...base,
      endpoint: 'jira',
      url: 'https://acme.atlassian.net',
      username: 'bot@acme.example',
      apiToken: 'ATATT3xFfGF0Token',
      projectKey: 'SEC',
      issueType: 'Bug',
    })
    assert.equal(
      scrub(`Basic ${Buffer.from('bot@acme.example:ATATT3xFfGF0Token').toString('base64')}`, jira),
      'Basic [redacted]',
    )
    const github = secretValues({
      ...base,
      endpoint: 'github',
      owner: 'o',
      repository: 'r',
      token: 'ghp_TokenValue123',
    })
    assert.equal(scrub('token ghp_TokenValue123', github), 'token [redacted]')
  })

  it('leave a message without secrets as it is', () => {
    const secrets = secretValues({
      ...base,
      endpoint: 'email',
      host: 'smtp.example.com',
      port: 587,
      from: 'a@b',
      to: ['c@d'],
      tls: 'starttls',
    })
    assert.deepEqual(secrets, [])
    assert.equal(scrub('250 OK', secrets), '250 OK')
  })
})
