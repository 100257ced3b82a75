import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { aDelivery, aPostureEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import { createSlackChannel, type SlackConfiguration } from '../../streams/delivery/index.ts'
import { type SlackStandIn, startSlackStandIn } from '../support/slack-stand-in.ts'

describe('Slack channel against a Slack stand-in', () => {
  let slack: SlackStandIn
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const channel = createSlackChannel({ guard })
  let configuration: SlackConfiguration
  const context = { uiUrl: 'https://herald.example.com', timeoutMs: 2_000 }

  before(async () => {
    slack = await startSlackStandIn()
    configuration = { endpoint: 'slack', id: 'cfg-slack', account: 'acme', webhookUrl: slack.webhookUrl }
  })
  after(async () => {
    guard.close()
    await slack.close()
  })

  it('posts one Block Kit message with title, level, resource, account, time and a link', async () => {
    const result = await channel.send(aDelivery(aPostureEvent()), configuration, context)
    assert.deepEqual(result, { ok: true, status: 200, response: 'ok', latencyMs: result.latencyMs })
    assert.deepEqual(slack.problems, [])
    const message = slack.messages.at(-1) as {
      text: string
      blocks: { type: string; [k: string]: unknown }[]
    }
    assert.equal(message.text, 'Validation completed: my-test-validation-scan')
    assert.deepEqual(message.blocks[0], {
      type: 'header',
      text: { type: 'plain_text', text: 'Validation completed: my-test-validation-scan', emoji: true },
    })
    const fields = (message.blocks[2]?.fields as { text: string }[] | undefined)?.map(
      (f) => f.text.split('\n')[0],
    )
    assert.deepEqual(fields, ['*Level*', '*Resource*', '*Account*', '*Time*'])
    const button = (message.blocks[3]?.elements as { url: string }[] | undefined)?.[0]
    assert.equal(button?.url, 'https://herald.example.com/events/evt-posture-1')
    const request = slack.requests.at(-1)
    assert.equal(request?.headers['content-type'], 'application/json')
    assert.match(String(request?.headers['user-agent']), /@slack:webhook/)
  })

  it('sends no link when ui_url is not set', async () => {
    const result = await channel.send(aDelivery(aPostureEvent()), configuration, { ...context, uiUrl: null })
    assert.equal(result.ok, true)
    const message = slack.messages.at(-1) as { blocks: { type: string }[] }
    assert.ok(!message.blocks.some((b) => b.type === 'actions'))
    assert.doesNotMatch(JSON.stringify(message), /https?:\/\//)
  })

  it('uses the configuration templates', async () => {
    const templated = {
      ...configuration,
      templates: { title: '[{{ level | upcase }}] {{ resource }}', text: 'Seen by {{ account }}' },
    }
    const result = await channel.send(aDelivery(aPostureEvent()), templated, context)
    assert.equal(result.ok, true)
    const message = slack.messages.at(-1) as { text: string; blocks: { text?: { text: string } }[] }
    assert.equal(message.text, '[INFO] my-test-validation-scan')
    assert.equal(message.blocks[1]?.text?.text, 'Seen by acme')
  })

  it('sends a title template that renders nothing as a dash, where Slack refuses an empty header', async () => {
    const untitled = { ...configuration, templates: { title: '{{ data.no_such_field }}' } }
    const result = await channel.send(aDelivery(aPostureEvent()), untitled, context)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(slack.problems, [])
    const message = slack.messages.at(-1) as { text: string; blocks: { text?: { text: string } }[] }
    assert.deepEqual([message.text, message.blocks[0]?.text?.text], ['—', '—'])
  })

  it("does not retry by itself (Herald's deliverer does), and a channel that was archived is gone", async () => {
    const before = slack.requests.length
    slack.failNext({ status: 503, body: 'service_unavailable' })
    const unavailable = await channel.send(aDelivery(aPostureEvent()), configuration, context)
    assert.equal(slack.requests.length, before + 1)
    assert.deepEqual(
      unavailable.ok
        ? unavailable
        : [unavailable.kind, unavailable.code, unavailable.status, unavailable.error],
      ['retriable', 'http_status', 503, 'HTTP 503: service_unavailable'],
    )
    slack.archive()
    const archived = await channel.send(aDelivery(aPostureEvent()), configuration, context)
    assert.deepEqual(archived.ok ? archived : [archived.kind, archived.error], [
      'gone',
      'HTTP 410: channel_is_archived',
    ])
  })
})
