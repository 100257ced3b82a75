import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fixturesOf } from '../../schemas/fixtures.ts'
import { decodeEngineEvent, eventTypes } from '../events/index.ts'
import { compileJsonSchema } from './json-schema.ts'
import { heraldSubjects } from './subjects.ts'

const TOPICS = { events: 'in', deliveries: 'out.d', outcomes: 'out.o', metrics: 'out.m' }
const subjects = new Map(heraldSubjects(TOPICS).map((s) => [s.subject, s.schema]))
const validatorOf = (subject: string) => {
  const schema = subjects.get(subject)
  assert.ok(schema, `subject ${subject}`)
  return compileJsonSchema(schema.schema)
}

describe('registered subjects', () => {
  it('names every subject after the configured topics, and each is a valid JSON Schema', () => {
    assert.ok(subjects.has('in-value'))
    for (const name of ['out.d-value', 'out.o-value', 'out.m-value']) assert.ok(subjects.has(name), name)
    assert.equal(subjects.size, 1 + 2 * eventTypes.length + 3)
    for (const [subject, schema] of subjects) {
      assert.equal(schema.type, 'JSON')
      assert.doesNotThrow(() => compileJsonSchema(schema.schema, { checkSchema: true }), subject)
    }
  })

  it('accepts and refuses the catalog fixtures as the event contract does, per type and for its data', () => {
    for (const entry of eventTypes) {
      const event = validatorOf(`in-${entry.type}`)
      const data = validatorOf(`in-${entry.type}-data`)
      const envelope = (payload: unknown) => ({
        specversion: '1.0',
        id: 'e1',
        source: '/engine',
        type: entry.type,
        account: 'acme',
        ...(entry.subtypes === undefined ? {} : { subtype: entry.subtypes[0]?.subtype }),
        data: payload,
      })
      const { valid, invalid } = fixturesOf(entry.type)
      for (const payload of valid) {
        assert.ok(decodeEngineEvent(envelope(payload)).ok, `${entry.type}: the contract accepts`)
        assert.ok(event(envelope(payload)), `${entry.type}: ${JSON.stringify(event.errors)}`)
        assert.ok(data(payload), entry.type)
      }
      for (const { because, data: payload } of invalid) {
        assert.equal(
          decodeEngineEvent(envelope(payload)).ok,
          false,
          `${entry.type}: the contract refuses ${because}`,
        )
        assert.equal(event(envelope(payload)), false, `${entry.type}: ${because}`)
        assert.equal(data(payload), false, `${entry.type}: ${because}`)
      }
    }
  })

  it('states a subtyped type’s subtype rule in its subject, as the event contract holds it', () => {
    const subtyped = eventTypes.filter((entry) => entry.subtypes !== undefined)
    assert.ok(subtyped.length > 0)
    for (const entry of subtyped) {
      const event = validatorOf(`in-${entry.type}`)
      const base = {
        specversion: '1.0',
        id: 'e1',
        source: '/engine',
        type: entry.type,
        account: 'acme',
        data: fixturesOf(entry.type).valid[0],
      }
      const cases: [string, Record<string, unknown>][] = [
        ['no subtype', base],
        ['an unknown subtype', { ...base, subtype: 'posture-scan-started' }],
        [
          'a subtype of another case',
          { ...base, subtype: (entry.subtypes?.[0]?.subtype ?? '').toUpperCase() },
        ],
        ...(entry.subtypes ?? []).map(
          ({ subtype }) => [`subtype ${subtype}`, { ...base, subtype }] as [string, Record<string, unknown>],
        ),
      ]
      for (const [because, value] of cases) {
        const contract = decodeEngineEvent(value).ok
        assert.equal(event(value), contract, `${entry.type}, ${because}: the contract says ${contract}`)
      }
    }
  })

  it('refuses an event under another type’s subject, so a wrong schema id is caught', () => {
    const [first, second] = eventTypes
    assert.ok(first && second)
    const payload = fixturesOf(first.type).valid[0]
    const event = {
      specversion: '1.0',
      id: 'e1',
      source: '/s',
      type: first.type,
      account: 'acme',
      data: payload,
    }
    assert.equal(validatorOf(`in-${first.type}`)(event), true)
    assert.equal(validatorOf(`in-${second.type}`)(event), false)
  })

  it('accepts any type under the envelope subject, and refuses a broken envelope', () => {
    const envelope = validatorOf('in-value')
    const event = { specversion: '1.0', id: 'e1', source: '/s', type: 'anything', account: 'acme' }
    assert.equal(envelope(event), true)
    assert.equal(envelope({ ...event, account: ' ' }), false)
    assert.equal(envelope({ ...event, data_base64: 'AA==' }), false)
  })
})
