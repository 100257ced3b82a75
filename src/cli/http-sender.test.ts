import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ingestUrl } from './http-sender.ts'

describe('ingestUrl', () => {
  it('appends /v1/events to a base URL, also one behind a path prefix, and keeps an ingest URL', () => {
    const cases: [string, string][] = [
      ['http://herald.test:8228', 'http://herald.test:8228/v1/events'],
      ['http://herald.test:8228/', 'http://herald.test:8228/v1/events'],
      ['https://gateway.test/herald', 'https://gateway.test/herald/v1/events'],
      ['https://gateway.test/herald/', 'https://gateway.test/herald/v1/events'],
      ['https://gateway.test/a/b//', 'https://gateway.test/a/b/v1/events'],
      ['http://herald.test:8228/v1/events', 'http://herald.test:8228/v1/events'],
      ['http://herald.test:8228/v1/events/', 'http://herald.test:8228/v1/events'],
      ['https://gateway.test/herald/v1/events', 'https://gateway.test/herald/v1/events'],
    ]
    assert.deepEqual(
      cases.map(([url]) => [url, ingestUrl(url)]),
      cases,
    )
  })
})
