import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cardTexts, teamsMessageProblems } from '../../../test/support/teams-stand-in.ts'
import { renderChatMessage } from './chat-message.ts'
import { messageScope } from './message.ts'
import { teamsMessage } from './teams.ts'
import { aDelivery, anEvent, aPostureEvent, catalogData } from './test-fixtures.ts'

type Card = ReturnType<typeof teamsMessage>['attachments'][number]['content']
type Block = {
  readonly type: string
  readonly spacing?: string
  readonly inlines?: readonly { readonly text: string }[]
  readonly items?: readonly Block[]
}

const cardOf = (message: ReturnType<typeof teamsMessage>): Card =>
  message.attachments[0]?.content ?? assert.fail('no card')

/** Each block of a container as its text, the runs joined. */
const lines = (block: unknown): string[] =>
  ((block as Block).items ?? []).map((item) => (item.inlines ?? []).map((r) => r.text).join(''))

describe('teamsMessage', () => {
  const scope = messageScope(aDelivery(aPostureEvent({ level: 'error' })), {
    uiUrl: 'https://herald.example.com',
  })

  it('is one Adaptive Card with the title, the text, the facts and a link into the UI', () => {
    const message = teamsMessage(scope, 'Validation completed: my-test-validation-scan', 'Scan completed.')
    assert.deepEqual(teamsMessageProblems(message), [])
    const card = cardOf(message)
    assert.equal(card.version, '1.4')
    assert.deepEqual(card.body[0], {
      type: 'RichTextBlock',
      inlines: [
        {
          type: 'TextRun',
          text: 'Validation completed: my-test-validation-scan',
          size: 'Large',
          weight: 'Bolder',
          color: 'Attention',
        },
      ],
    })
    assert.deepEqual(lines(card.body[1]), ['Scan completed.'])
    assert.deepEqual(lines(card.body[2]), [
      'Level: error',
      'Resource: my-test-validation-scan',
      'Account: acme',
      'Time: 2026-11-22T10:00:00Z',
      'Event: com.ibm.cloud.compliance.posture (evt-posture-1)',
    ])
    assert.deepEqual((card.body[2] as Block).items?.[0], {
      type: 'RichTextBlock',
      spacing: 'Medium',
      inlines: [
        { type: 'TextRun', text: 'Level: ', weight: 'Bolder' },
        { type: 'TextRun', text: 'error' },
      ],
    })
    assert.deepEqual(card.actions, [
      {
        type: 'Action.OpenUrl',
        title: 'View in Herald',
        url: 'https://herald.example.com/events/evt-posture-1',
      },
    ])
  })

  it('has no action without a link, and no text block without text', () => {
    const message = teamsMessage({ ...scope, link: null }, 'Title', '')
    assert.equal('actions' in cardOf(message), false)
    assert.equal(cardOf(message).body.length, 2)
    assert.deepEqual(teamsMessageProblems(message), [])
  })

  it('shows an event’s text as written: nothing of it where Teams renders Markdown', async () => {
    const hostile = '[x](https://evil.example) **loud** _slanted_ <at>everyone</at>'
    const delivery = aDelivery(
      anEvent({
        id: `evt-[id](https://evil.example)`,
        data: {
          ...catalogData('user.checks.tag.vulnerabilities.update'),
          full_tag: `docker.io/acme/api:${hostile}`,
        },
      }),
    )
    const {
      scope: hostileScope,
      title,
      text,
    } = await renderChatMessage('teams', delivery, { id: 'cfg-1' }, { uiUrl: null }, undefined)
    const message = teamsMessage(hostileScope, title, text)
    assert.deepEqual(teamsMessageProblems(message), [])
    const texts = cardTexts(cardOf(message))
    assert.deepEqual(texts.markdown, [])
    assert.ok(
      texts.plain.includes(`Vulnerability update: docker.io/acme/api:${hostile}`),
      JSON.stringify(texts.plain),
    )
    assert.ok(texts.plain.includes(`docker.io/acme/api:${hostile}`))
    assert.ok(texts.plain.includes('user.checks.tag.vulnerabilities.update (evt-[id](https://evil.example))'))
  })

  it('puts each line of the text in a block of its own, a blank line as a gap, and bounds their number', () => {
    const card = cardOf(teamsMessage(scope, 'Title', 'First\nsecond\r\n\nthird\n'))
    assert.deepEqual(
      ((card.body[1] as Block).items ?? []).map((b) => [b.spacing, b.inlines?.[0]?.text]),
      [
        [undefined, 'First'],
        ['None', 'second'],
        ['Medium', 'third'],
      ],
    )
    const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}`).join('\n')
    assert.deepEqual(lines(cardOf(teamsMessage(scope, 'Title', numbered(60))).body[1]).slice(-1), ['line 59'])
    const long = cardOf(teamsMessage(scope, 'Title', numbered(500)))
    const shown = lines(long.body[1])
    assert.equal(shown.length, 60)
    assert.deepEqual(shown.slice(-2), ['line 58', '…'])
    assert.ok(JSON.stringify(long).length < 28_000)
    // A TextRun needs text: a title rendered empty shows as a dash.
    const untitled = teamsMessage(scope, '  ', 'text')
    assert.deepEqual(teamsMessageProblems(untitled), [])
    assert.equal((cardOf(untitled).body[0] as Block).inlines?.[0]?.text, '—')
  })
})
