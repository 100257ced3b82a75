import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { envKeysOf } from './env.ts'
import { REFERENCE_URL, updateReference, withoutTablePadding } from './reference.ts'
import { schema } from './schema.ts'

describe('REFERENCE.md', () => {
  const document = withoutTablePadding(readFileSync(REFERENCE_URL, 'utf8'))

  it('holds the key tables generated from the schema (regenerate: npx node src/config/reference.ts --write)', () => {
    assert.equal(document, withoutTablePadding(updateReference(document)))
  })

  it('documents every key with its variable', () => {
    for (const { name, path } of envKeysOf(schema)) {
      assert.ok(document.includes(`|\`${path.join('.')}\`|\`${name}\``), path.join('.'))
    }
  })
})
