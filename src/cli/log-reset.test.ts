import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { acceptedText, type ListedReset, listText } from './log-reset.ts'

const pending: ListedReset = {
  topic: 'engine.events',
  partition: 0,
  offset: 0,
  projectedThrough: 5,
  event: '"new-0" of /engine',
  projectedEvent: '"old-0" of /engine',
  detectedAt: '2026-11-22T10:00:00.000Z',
  state: 'pending',
  base: null,
  acceptedAt: null,
}
const accepted: ListedReset = {
  ...pending,
  partition: 1,
  offset: 3,
  projectedThrough: 41,
  state: 'accepted',
  base: 42,
  acceptedAt: '2026-11-22T10:05:00.000Z',
}

describe('herald log-reset output', () => {
  it('lists each reset on a line, and says what to do about the pending ones', () => {
    assert.equal(
      listText([pending, accepted]),
      'engine.events/0: pending since 2026-11-22T10:00:00.000Z: offset 0 holds event "new-0" of /engine, ' +
        'where the report tables hold event "old-0" of /engine (projected through position 5)\n' +
        'engine.events/1: accepted at 2026-11-22T10:05:00.000Z: its new log is projected from position 42 ' +
        '(found 2026-11-22T10:00:00.000Z at offset 3)\n' +
        '1 pending: the projector leaves that partition alone until it is accepted. If its log was reset on ' +
        'purpose (a topic deleted and created again, the embedded event log file removed), accept it with ' +
        'herald log-reset --accept engine.events/0@5; otherwise restore the log the report tables were projected from.\n',
    )
    assert.match(
      listText([pending, { ...pending, partition: 2 }]),
      /\n2 pending: the projector leaves those partitions alone until they are accepted\. If their logs were reset on purpose .*, accept them with herald log-reset --accept engine\.events\/0@5 engine\.events\/2@5; otherwise restore the logs the report tables were projected from\.\n$/,
    )
  })

  it('says so when there is none, or none pending', () => {
    assert.equal(listText([]), 'no log resets: the projector found none under the report tables\n')
    assert.doesNotMatch(listText([accepted]), /pending/)
  })

  it('names each reset accepted and where its new log goes', () => {
    assert.equal(
      acceptedText([{ ...pending, state: 'accepted', base: 6, acceptedAt: '2026-11-22T10:05:00.000Z' }]),
      'accepted engine.events/0: its new log is projected from position 6, after everything the report tables hold\n' +
        'the projector takes the partition up again at its next try, within a few seconds\n',
    )
  })
})
