import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ajvIssues, compileJsonSchema, pointerToPath } from './json-schema.ts'

// ajv-formats' own date-time check, which producers' validators run.
const { fullFormats } = createRequire(import.meta.url)('ajv-formats/dist/formats.js') as {
  fullFormats: Record<string, { validate: (s: string) => boolean }>
}
const ajvDateTime = (fullFormats['date-time'] as { validate: (s: string) => boolean }).validate

describe('JSON Schema helpers', () => {
  it('turn JSON pointers into dotted paths', () => {
    assert.equal(pointerToPath(''), '(root)')
    assert.equal(pointerToPath('/data/findings/0/severity'), 'data.findings.0.severity')
    assert.equal(pointerToPath('/a~1b/c~0d'), 'a/b.c~d')
    assert.equal(pointerToPath('/data', 'digest'), 'data.digest')
  })

  it('name the missing or extra field itself', () => {
    const validate = compileJsonSchema({
      type: 'object',
      required: ['a'],
      properties: { a: { type: 'string' }, b: { type: 'object', additionalProperties: false } },
    })
    assert.equal(validate({ b: { x: 1 } }), false)
    assert.deepEqual(ajvIssues(validate.errors), [
      { path: 'a', message: 'is required' },
      { path: 'b.x', message: 'is not allowed' },
    ])
  })

  it('name array elements by index and a refused property name by itself, as the event contract does', () => {
    const validate = compileJsonSchema({
      type: 'object',
      properties: {
        list: { type: 'array', items: { type: 'object', properties: { n: { type: 'integer' } } } },
        map: { type: 'object', properties: { '0': { type: 'string' } } },
        kind: { const: 'a' },
      },
      propertyNames: { anyOf: [{ pattern: '^[a-z0-9]+$' }, { const: 'data_base64' }] },
    })
    const value = { list: [{ n: 1 }, { n: 'x' }], map: { '0': 1 }, kind: 'b', Foo: 1 }
    assert.equal(validate(value), false)
    assert.deepEqual(ajvIssues(validate.errors, value), [
      { path: 'Foo', message: 'is not a property name the schema allows' },
      { path: 'list[1].n', message: 'must be integer' },
      { path: 'map.0', message: 'must be string' },
      { path: 'kind', message: 'must be "a"' },
    ])
  })

  it('follow the draft the schema declares', () => {
    const v2020 = compileJsonSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      prefixItems: [{ type: 'string' }],
    })
    assert.equal(v2020([1]), false)
    const v7 = compileJsonSchema({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'string',
      format: 'date-time',
    })
    assert.equal(v7('2026-11-22T10:00:00Z'), true)
    assert.equal(v7('noon'), false)
    assert.throws(() => compileJsonSchema({ type: 'nothing' }, { checkSchema: true }))
  })

  it('check date-time exactly as ajv-formats does, with or without a T and an offset', () => {
    const validate = compileJsonSchema({ type: 'string', format: 'date-time' })
    const digits = (n: number) => fc.stringMatching(new RegExp(`^\\d{${n}}$`))
    const shaped = fc
      .tuple(
        fc.constantFrom('2026', '2024', '1900', '2000', '0000'),
        fc.oneof(digits(2), fc.constantFrom('02', '12', '13', '00')),
        fc.oneof(digits(2), fc.constantFrom('28', '29', '30', '31')),
        fc.constantFrom('T', 't', ' ', '_', ''),
        fc.oneof(digits(2), fc.constantFrom('23', '24', '00')),
        fc.oneof(digits(2), fc.constantFrom('59', '60')),
        fc.oneof(digits(2), fc.constantFrom('59', '60', '61')),
        fc.constantFrom('', '.5', '.000001', '.', '.5a'),
        fc.constantFrom('Z', 'z', '', '+05:30', '-01:00', '+0530', '+05', '+24:00', '-00:59', ' Z'),
      )
      .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${z}`)
    fc.assert(
      fc.property(fc.oneof(shaped, fc.string({ maxLength: 30 })), (s) => {
        assert.equal(validate(s), ajvDateTime(s), s)
      }),
      { numRuns: 5_000 },
    )
    for (const s of [
      '2016-12-31T23:59:60Z',
      '2016-12-31 23:59:60Z',
      '2026-11-22T10:00:00',
      '2026-02-29T10:00:00Z',
    ])
      assert.equal(validate(s), ajvDateTime(s), s)
  })
})
