import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { adfProblems } from '../../../test/support/jira-stand-in.ts'
import { adfDocument, jiraDetail } from './jira.ts'

describe('adfDocument', () => {
  it('turns paragraphs, line breaks and the UI link into ADF', () => {
    const link = 'https://herald.example.com/events/e1'
    const doc = adfDocument(`Scan completed.\n\nLevel: info\nResource: r\n\nView in Herald: ${link}`, link)
    assert.deepEqual(adfProblems(doc, 'description'), [])
    assert.deepEqual(doc, {
      type: 'doc',
      version: 1,
      content: [
        { type: 'paragraph', content: [{ type: 'text', text: 'Scan completed.' }] },
        {
          type: 'paragraph',
          content: [
            { type: 'text', text: 'Level: info' },
            { type: 'hardBreak' },
            { type: 'text', text: 'Resource: r' },
          ],
        },
        {
          type: 'paragraph',
          content: [
            { type: 'text', text: 'View in Herald: ' },
            { type: 'text', text: link, marks: [{ type: 'link', attrs: { href: link } }] },
          ],
        },
      ],
    })
  })

  it('never writes an empty text node, which Jira refuses', () => {
    const doc = adfDocument('\n\n\na\n\n\n\nb\n\r\n', null)
    assert.deepEqual(adfProblems(doc, 'd'), [])
    assert.equal(doc.content?.length, 2)
    assert.deepEqual(adfProblems(adfDocument('', null), 'd'), [])
  })
})

describe('jiraDetail', () => {
  it("reads Jira's errorMessages and field errors", () => {
    const body = JSON.stringify({
      errorMessages: ['Nope.'],
      errors: { priority: 'Specify the Priority (name)' },
    })
    assert.equal(
      jiraDetail({ status: 400, headers: new Headers(), body }),
      'Nope.; priority: Specify the Priority (name)',
    )
    assert.equal(
      jiraDetail({ status: 502, headers: new Headers(), body: '<html>bad gateway</html>' }),
      undefined,
    )
  })
})
