import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CloudEvent } from '../../src/events/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import { fromClickHouseTime, storedEvent, toEventRow } from './rows.ts'

const message: LogMessage = {
  topic: 'engine.events',
  partition: 2,
  offset: 41,
  key: 'acme',
  value: new Uint8Array(),
  headers: {},
  timestamp: Date.UTC(2026, 10, 22, 9),
}

const minimal: CloudEvent = {
  specversion: '1.0',
  id: 'e-3',
  source: 's',
  type: 't',
  account: 'a',
}

const roundTrip = (event: CloudEvent): CloudEvent => {
  const row = toEventRow(event, message, Date.UTC(2026, 10, 22, 10))
  return storedEvent(row, fromClickHouseTime(row.time))
}

describe('storedEvent', () => {
  it('gives back the event a row was made from, attributes and data included', () => {
    const event: CloudEvent = {
      specversion: '1.0',
      id: 'e-1',
      source: 'anchore-engine',
      type: 'user.image.analysis.completed',
      account: 'acme',
      time: '2026-11-22T08:15:30.250Z',
      subject: 'docker.io/acme/api:1.2',
      level: 'warning',
      resourcetype: 'image_digest',
      subtype: 'analysis',
      data: { digest: 'sha256:aa', findings: [{ id: 'CVE-1', cvss: 9.8 }] },
    }
    assert.deepEqual(roundTrip(event), event)
  })

  it('leaves out what the event did not carry, its time included (the row holds its log time)', () => {
    const event: CloudEvent = {
      specversion: '1.0',
      id: 'e-2',
      source: 'anchore-engine',
      type: 'system.feeds.sync.started',
      account: 'acme',
      level: 'info',
    }
    const row = toEventRow(event, message, Date.UTC(2026, 10, 22, 10))
    assert.equal(fromClickHouseTime(row.time), message.timestamp)
    assert.deepEqual(roundTrip(event), event)
  })

  it('keeps the content type, data schema and extension attributes the columns do not hold', () => {
    const event = {
      ...minimal,
      time: '2026-11-22T08:00:00.000Z',
      datacontenttype: 'application/json',
      dataschema: 'https://schemas.example.com/x',
      region: 'eu-west-1',
      priority: 3,
      data: { a: 1 },
    } as CloudEvent
    const row = toEventRow(event, message, 0)
    assert.deepEqual(JSON.parse(row.attributes), {
      datacontenttype: 'application/json',
      dataschema: 'https://schemas.example.com/x',
      region: 'eu-west-1',
      priority: 3,
    })
    assert.deepEqual(roundTrip(event), { ...event, level: 'info' })
    assert.equal(toEventRow({ ...minimal, time: '2026-11-22T08:00:00.000Z' }, message, 0).attributes, '{}')
  })

  it('gives back a time as it was written when the column cannot (no milliseconds, an offset, more digits)', () => {
    for (const time of [
      '2026-11-24T00:00:00Z',
      '2026-11-24T01:00:00.5+01:00',
      '2026-11-24T00:00:00.123456Z',
    ]) {
      const event = { ...minimal, time }
      const row = toEventRow(event, message, 0)
      assert.equal(fromClickHouseTime(row.time), Math.trunc(Date.parse(time)), 'the column holds the instant')
      assert.equal(roundTrip(event).time, time)
    }
    // The common case stores nothing beside the column.
    assert.equal(toEventRow({ ...minimal, time: '2026-11-24T00:00:00.000Z' }, message, 0).attributes, '{}')
  })

  it('stores a time before 1900 or after 2299 at the nearer end of that range, and gives it back as written', () => {
    for (const [time, stored] of [
      ['1850-03-01T00:00:00.000Z', '1900-01-01 00:00:00.000'],
      ['0000-06-01T00:00:00.000Z', '1900-01-01 00:00:00.000'],
      ['2400-01-01T00:00:00.000Z', '2299-12-31 23:59:59.999'],
      ['9999-12-31T23:30:00-01:00', '2299-12-31 23:59:59.999'],
    ]) {
      const event = { ...minimal, time }
      assert.equal(toEventRow(event, message, 0).time, stored, time)
      assert.equal(roundTrip(event).time, time)
    }
    // Both ends are held as they are.
    for (const time of ['1900-01-01T00:00:00.000Z', '2299-12-31T23:59:59.999Z'])
      assert.equal(toEventRow({ ...minimal, time }, message, 0).attributes, '{}', time)
  })

  it('stores a leap second as the instant after :59, and gives it back as written', () => {
    const event = { ...minimal, time: '2026-12-31T23:59:60Z' }
    const row = toEventRow(event, message, 0)
    assert.equal(row.time, '2027-01-01 00:00:00.000')
    assert.equal(roundTrip(event).time, '2026-12-31T23:59:60Z')
  })

  it('reads a row stored before the attributes column as before', () => {
    const { attributes: _, ...old } = toEventRow({ ...minimal, time: '2026-11-22T08:00:00.000Z' }, message, 0)
    assert.equal(storedEvent(old, Date.parse('2026-11-22T08:00:00.000Z')).time, '2026-11-22T08:00:00.000Z')
  })

  it('gives data that is not JSON back as its text', () => {
    const row = { ...toEventRow({ ...minimal, data: 'x' }, message, 0), data: 'not json' }
    assert.equal(storedEvent(row, 0).data, 'not json')
  })
})
