import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { LogMessage } from '../ports/event-log.ts'
import { DeadLetterHeaders, readDeadLetter, toDeadLetter } from './dead-letter.ts'
import { failure, type IngressFailureCode } from './decode.ts'

const codes: IngressFailureCode[] = [
  'wire_format_invalid',
  'schema_not_found',
  'schema_unsupported',
  'payload_undecodable',
  'schema_invalid',
  'content_type_unsupported',
  'event_type_unknown',
  'event_invalid',
  'event_reserved',
]

describe('dead letters', () => {
  it('keep the original key, bytes and headers, and name the reason and position', () => {
    const message = fc.record({
      topic: fc.constantFrom('engine.events', 'other'),
      partition: fc.nat(64),
      offset: fc.nat(),
      key: fc.option(fc.string(), { nil: null }),
      value: fc.uint8Array({ maxLength: 100 }),
      headers: fc.dictionary(fc.string({ minLength: 1 }), fc.string()),
      timestamp: fc.nat(),
    })
    const issues = fc.array(fc.record({ path: fc.string(), message: fc.string() }), {
      minLength: 1,
      maxLength: 5,
    })
    fc.assert(
      fc.property(message, fc.constantFrom(...codes), issues, (m: LogMessage, code, found) => {
        const letter = toDeadLetter(m, failure(code, found), { group: 'herald-router', now: 0 })
        assert.equal(letter.key, m.key)
        assert.equal(letter.value, m.value)
        for (const [name, value] of Object.entries(m.headers))
          if (!name.startsWith('herald.')) assert.equal(letter.headers?.[name], value)
        const info = readDeadLetter({ headers: letter.headers ?? {} })
        assert.deepEqual(info && { ...info, message: '' }, {
          code,
          message: '',
          issues: JSON.parse(JSON.stringify(found)),
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
        })
        assert.equal(letter.headers?.[DeadLetterHeaders.group], 'herald-router')
      }),
      { numRuns: 500 },
    )
  })

  it('bound the headers however many issues there were', () => {
    const many = Array.from({ length: 1_000 }, (_, i) => ({ path: `data.${i}`, message: 'x'.repeat(500) }))
    const letter = toDeadLetter(
      { topic: 't', partition: 0, offset: 0, key: null, value: new Uint8Array(), headers: {}, timestamp: 0 },
      failure('event_invalid', many),
      { group: 'g', now: 0 },
    )
    assert.ok((letter.headers?.[DeadLetterHeaders.issues] ?? '').length <= 4_000)
    assert.ok((letter.headers?.[DeadLetterHeaders.message] ?? '').length <= 1_000)
    assert.match(letter.headers?.[DeadLetterHeaders.message] ?? '', /and 997 more/)
    assert.equal(readDeadLetter({ headers: {} }), undefined)
  })
})
