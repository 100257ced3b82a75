import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { teamsMessageProblems } from '../../../test/support/teams-stand-in.ts'
import { messageScope } from './message.ts'
import { teamsMessage } from './teams.ts'
import { aDelivery, aPostureEvent } from './test-fixtures.ts'

describe('teamsMessage', () => {
  const scope = messageScope(aDelivery(aPostureEvent({ level: 'error' })), {
    uiUrl: 'https://herald.example.com',
  })

  it('is one Adaptive Card with the title, the text, the facts and a link into the UI', () => {
    const message = teamsMessage(scope, 'Validation completed: my-test-validation-scan', 'Scan completed.')
    assert.deepEqual(teamsMessageProblems(message), [])
    const card = message.attachments[0]?.content
    assert.equal(card?.version, '1.4')
    assert.deepEqual(card?.body[0], {
      type: 'TextBlock',
      text: 'Validation completed: my-test-validation-scan',
      size: 'Large',
      weight: 'Bolder',
      color: 'Attention',
      wrap: true,
      style: 'heading',
    })
    assert.deepEqual(card?.body[2], {
      type: 'FactSet',
      facts: [
        { title: 'Level', value: 'error' },
        { title: 'Resource', value: 'my-test-validation-scan' },
        { title: 'Account', value: 'acme' },
        { title: 'Time', value: '2026-11-22T10:00:00Z' },
        { title: 'Event', value: 'com.ibm.cloud.compliance.posture (evt-posture-1)' },
      ],
    })
    assert.deepEqual(card?.actions, [
      {
        type: 'Action.OpenUrl',
        title: 'View in Herald',
        url: 'https://herald.example.com/events/evt-posture-1',
      },
    ])
  })

  it('has no action without a link', () => {
    const message = teamsMessage({ ...scope, link: null }, 'Title', '')
    assert.equal('actions' in (message.attachments[0]?.content ?? {}), false)
    assert.equal(message.attachments[0]?.content.body.length, 2)
    assert.deepEqual(teamsMessageProblems(message), [])
  })
})
