import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import {
  aDelivery,
  anEvent,
  aPostureEvent,
  catalogData,
} from '../../streams/delivery/channels/test-fixtures.ts'
import { createTeamsChannel, type TeamsConfiguration } from '../../streams/delivery/index.ts'
import {
  cardTexts,
  connectorRefusal,
  startTeamsStandIn,
  type TeamsStandIn,
} from '../support/teams-stand-in.ts'

describe('Teams channel against a Teams stand-in', () => {
  let teams: TeamsStandIn
  const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
  const channel = createTeamsChannel({ guard })
  const context = { uiUrl: 'https://herald.example.com', timeoutMs: 2_000 }
  const configuration = (webhookUrl: string): TeamsConfiguration => ({
    endpoint: 'teams',
    id: 'cfg-teams',
    account: 'acme',
    webhookUrl,
  })

  before(async () => {
    teams = await startTeamsStandIn()
  })
  after(async () => {
    guard.close()
    await teams.close()
  })

  it('posts an Adaptive Card to a Workflows webhook, which answers 202', async () => {
    const result = await channel.send(aDelivery(aPostureEvent()), configuration(teams.workflowUrl), context)
    assert.deepEqual(result, { ok: true, status: 202, response: 'accepted', latencyMs: result.latencyMs })
    assert.deepEqual(teams.problems, [])
    const card = (
      teams.cards.at(-1) as {
        attachments: {
          content: { body: { inlines?: { text: string }[] }[]; actions: { url: string }[] }
        }[]
      }
    ).attachments[0]?.content
    assert.equal(card?.body[0]?.inlines?.[0]?.text, 'Validation completed: my-test-validation-scan')
    assert.equal(card?.actions[0]?.url, 'https://herald.example.com/events/evt-posture-1')
  })

  it('posts an event’s text where Teams renders no Markdown, so it cannot add links or formatting', async () => {
    const hostile = '[click](https://evil.example) **urgent** _now_'
    const event = anEvent({
      id: 'evt-[id](https://evil.example)',
      data: {
        ...catalogData('user.checks.tag.vulnerabilities.update'),
        full_tag: `docker.io/acme/api:${hostile}`,
      },
    })
    const result = await channel.send(aDelivery(event), configuration(teams.workflowUrl), context)
    assert.equal(result.ok, true, JSON.stringify(result))
    assert.deepEqual(teams.problems, [])
    const card = (teams.cards.at(-1) as { attachments: { content: unknown }[] }).attachments[0]?.content
    const texts = cardTexts(card)
    assert.deepEqual(texts.markdown, [])
    assert.ok(
      texts.plain.some((text) => text.includes(hostile)),
      JSON.stringify(texts.plain),
    )
    assert.ok(texts.plain.some((text) => text.includes('evt-[id](https://evil.example)')))
  })

  it('refuses a card that breaks the published shape, as Teams does', async () => {
    const post = (content: unknown) =>
      fetch(teams.workflowUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'message',
          attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', content }],
        }),
      })
    const card = (body: unknown[], version = '1.4') => ({ type: 'AdaptiveCard', version, body })
    const refused = [
      card([{ type: 'RichTextBlock', inlines: [] }]),
      card([{ type: 'RichTextBlock', inlines: [{ type: 'TextBlock', text: 'x' }] }]),
      card([{ type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: 'x', weight: 'Heavy' }] }]),
      card([{ type: 'RichTextBlock', inlines: ['x'] }], '1.1'),
      card([{ type: 'Container', items: [{ type: 'Paragraph' }] }]),
      card([{ type: 'RichTextBlock', spacing: 'Wide', inlines: ['x'] }]),
    ]
    for (const content of refused) {
      const before = teams.problems.length
      const response = await post(content)
      await response.body?.cancel()
      assert.equal(response.status, 400, JSON.stringify(content))
      assert.equal(teams.problems.length, before + 1, JSON.stringify(teams.problems.slice(before)))
    }
    teams.problems.length = 0
  })

  it('posts to a legacy connector, which answers 200 "1", without a link when ui_url is not set', async () => {
    const result = await channel.send(aDelivery(aPostureEvent()), configuration(teams.connectorUrl), {
      ...context,
      uiUrl: null,
    })
    assert.deepEqual(result.ok && [result.status, result.response], [200, 'accepted'])
    assert.doesNotMatch(JSON.stringify(teams.cards.at(-1)), /Action\.OpenUrl|herald\.example\.com/)
  })

  it("reads Teams' status out of the connector's 200: its throttling and trouble retriable, a refusal permanent", async () => {
    const cases = [
      [429, 'retriable', 'rate_limited'],
      [503, 'retriable', 'http_status'],
      [413, 'permanent', 'http_status'],
      [400, 'permanent', 'http_status'],
      [410, 'gone', 'gone'],
    ] as const
    for (const [status, kind, code] of cases) {
      teams.failNext(connectorRefusal(status))
      const result = await channel.send(
        aDelivery(aPostureEvent()),
        configuration(teams.connectorUrl),
        context,
      )
      assert.deepEqual(result.ok ? result : [result.kind, result.code, result.status], [kind, code, status])
      assert.match(
        result.ok ? '' : result.error,
        new RegExp(`^HTTP ${status}: Webhook message delivery failed`),
      )
    }
  })

  it('keeps the card under Teams’ 28 KB limit whatever the event holds, shortening long facts and text with an ellipsis', async () => {
    // A resource alone over the limit, in one-byte and in three-byte characters (in the title,
    // the text and the Resource fact).
    for (const filler of ['x', '語']) {
      const event = anEvent({
        data: {
          ...catalogData('user.checks.tag.vulnerabilities.update'),
          full_tag: `docker.io/acme/api:${filler.repeat(30_000)}`,
        },
      })
      const result = await channel.send(aDelivery(event), configuration(teams.connectorUrl), context)
      assert.deepEqual(
        result.ok && [result.status, result.response],
        [200, 'accepted'],
        JSON.stringify(result),
      )
      assert.deepEqual(teams.problems, [])
      const posted = teams.requests.at(-1)?.body ?? ''
      assert.ok(Buffer.byteLength(posted) <= 28 * 1024, `${Buffer.byteLength(posted)} bytes`)
      const texts = cardTexts(
        (teams.cards.at(-1) as { attachments: { content: unknown }[] }).attachments[0]?.content,
      )
      const resource = texts.plain[texts.plain.indexOf('Resource: ') + 1] ?? ''
      assert.match(resource, new RegExp(`^docker\\.io/acme/api:${filler}+…$`))
    }
  })

  it('a connector failure naming no status stays retriable', async () => {
    teams.failNext({ status: 200, body: 'Webhook message delivery failed with error: something else' })
    const result = await channel.send(aDelivery(aPostureEvent()), configuration(teams.connectorUrl), context)
    assert.deepEqual(result.ok ? result : [result.kind, result.status], ['retriable', 200])
  })

  it('a workflow URL without its signature is refused: permanent', async () => {
    const unsigned = teams.workflowUrl.replace(/&sig=[^&]+/, '')
    const result = await channel.send(aDelivery(aPostureEvent()), configuration(unsigned), context)
    assert.deepEqual(result.ok ? result : [result.kind, result.status], ['permanent', 401])
  })
})
