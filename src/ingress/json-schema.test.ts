import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ajvIssues, compileJsonSchema, pointerToPath } from './json-schema.ts'

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
})
