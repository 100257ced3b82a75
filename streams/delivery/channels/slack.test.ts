import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { slackMessageProblems } from '../../../test/support/slack-stand-in.ts'
import { messageScope } from './message.ts'
import { slackMessage } from './slack.ts'
import { aDelivery, aPostureEvent } from './test-fixtures.ts'

describe('slackMessage', () => {
  const scope = messageScope(aDelivery(aPostureEvent({ level: 'warning' })), {
    uiUrl: 'https://herald.example.com',
  })

  it('is Block Kit Slack accepts: header, text, fields, a button into the UI, context', () => {
    const message = slackMessage(scope, 'Validation completed: my-test-validation-scan', 'Scan completed.')
    assert.deepEqual(slackMessageProblems(message), [])
    assert.equal(message.text, 'Validation completed: my-test-validation-scan')
    const blocks = message.blocks as { type: string; [k: string]: unknown }[]
    assert.deepEqual(
      blocks.map((b) => b.type),
      ['header', 'section', 'section', 'actions', 'context'],
    )
    assert.deepEqual(blocks[2]?.fields, [
      { type: 'mrkdwn', text: '*Level*\n:warning: warning' },
      { type: 'mrkdwn', text: '*Resource*\n`my-test-validation-scan`' },
      { type: 'mrkdwn', text: '*Account*\nacme' },
      {
        type: 'mrkdwn',
        text: `*Time*\n<!date^${Date.parse('2026-11-22T10:00:00Z') / 1000}^{date_short_pretty} {time_secs}|2026-11-22T10:00:00Z>`,
      },
    ])
    assert.deepEqual(
      (blocks[3]?.elements as { url: string }[] | undefined)?.[0]?.url,
      'https://herald.example.com/events/evt-posture-1',
    )
  })

  it('has no button without a link, and no empty section', () => {
    const message = slackMessage({ ...scope, link: null }, 'Title', '  ')
    assert.deepEqual(
      (message.blocks as { type: string }[]).map((b) => b.type),
      ['header', 'section', 'context'],
    )
    assert.deepEqual(slackMessageProblems(message), [])
  })

  it('shows a title that rendered empty as a dash, in the header and the notification text', () => {
    for (const title of ['', '  \n ']) {
      const message = slackMessage(scope, title, 'text')
      assert.deepEqual(slackMessageProblems(message), [])
      const header = (message.blocks as { text?: { text: string } }[])[0]
      assert.deepEqual([message.text, header?.text?.text], ['—', '—'])
    }
  })

  it("keeps within Slack's limits, and escapes mrkdwn in the fields", () => {
    const long = slackMessage(
      { ...scope, resource: `<!channel> ${'r'.repeat(3000)}` },
      't'.repeat(400),
      'x'.repeat(5000),
    )
    assert.deepEqual(slackMessageProblems(long), [])
    const fields = (long.blocks as { fields?: { text: string }[] }[])[2]?.fields ?? []
    assert.match(fields[1]?.text ?? '', /^\*Resource\*\n`&lt;!channel&gt; r+…$/)
  })

  it('cuts mrkdwn between entities and links, never inside one', () => {
    const message = slackMessage(
      { ...scope, resource: `${'r'.repeat(1_980)}&&&&&&`, type: `${'t'.repeat(290)}&&&&&&` },
      `${'h'.repeat(2_990)}&&&&`,
      `${'x'.repeat(2_990)}<https://herald.example.com|link> &amp; more`,
    )
    assert.deepEqual(slackMessageProblems(message), [])
    const blocks = message.blocks as {
      text?: { text: string }
      fields?: { text: string }[]
      elements?: { text: string }[]
    }[]
    const texts = {
      notification: message.text ?? '',
      section: blocks[1]?.text?.text ?? '',
      resource: blocks[2]?.fields?.[1]?.text ?? '',
      context: blocks.at(-1)?.elements?.[0]?.text ?? '',
    }
    for (const [name, text] of Object.entries(texts)) {
      const end = `${name}: …${text.slice(-12)}`
      assert.ok(text.endsWith('…') && !/&[a-z]{0,3}…$|<[^>]*…$/.test(text), end)
    }
  })

  it('escapes the notification text, which Slack reads as mrkdwn, as the blocks are', () => {
    const title = 'Failed to list tags: x <!channel> <https://evil.example|Reset your password> & more'
    const message = slackMessage(scope, title, '')
    assert.equal(
      message.text,
      'Failed to list tags: x &lt;!channel&gt; &lt;https://evil.example|Reset your password&gt; &amp; more',
    )
    const header = (message.blocks as { type: string; text?: { text: string } }[])[0]
    assert.equal(header?.text?.text, title, 'the header is plain_text: Slack shows it as it is')
  })
})
