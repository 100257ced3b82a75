import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { envelopeSchema } from './catalog/catalog.ts'
import { MAX_EVENT_DEPTH, tooDeepMember } from './depth.ts'

/** `levels` arrays (or objects) one inside another, the innermost holding 1. */
const nested = (levels: number, kind: 'array' | 'object' = 'array'): unknown => {
  let value: unknown = 1
  for (let i = 0; i < levels; i++) value = kind === 'array' ? [value] : { x: value }
  return value
}

describe('tooDeepMember', () => {
  it('names the first member nested past the limit, the event itself being the first level', () => {
    const fits = nested(MAX_EVENT_DEPTH - 1)
    const over = nested(MAX_EVENT_DEPTH)
    assert.equal(tooDeepMember({ id: 'e', data: fits }), undefined)
    assert.equal(tooDeepMember({ id: 'e', data: over }), 'data')
    assert.equal(tooDeepMember({ id: 'e', data: nested(MAX_EVENT_DEPTH, 'object') }), 'data')
    assert.equal(tooDeepMember({ data: { ok: [1, { a: 2 }] }, ext: over }), 'ext')
  })

  it('measures any depth without recursing', () => {
    assert.equal(tooDeepMember({ data: nested(200_000) }), 'data')
  })

  it('takes anything that is no object as nothing to measure', () => {
    assert.equal(tooDeepMember('text'), undefined)
    assert.equal(tooDeepMember(null), undefined)
  })
})

describe('the depth limit, where producers read the contract', () => {
  it('is stated in the schemas README and the envelope schema, which JSON Schema cannot enforce', () => {
    const readme = readFileSync(new URL('../../schemas/README.md', import.meta.url), 'utf8')
    assert.match(readme, new RegExp(`at most ${MAX_EVENT_DEPTH}\\s+levels`))
    assert.match(String(envelopeSchema.description), new RegExp(`at most ${MAX_EVENT_DEPTH}\\s+levels`))
  })
})
