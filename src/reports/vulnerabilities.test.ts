import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { execute, parse } from 'graphql'
import { reportSchema } from './schema.ts'
import { nested } from './vulnerabilities.ts'

describe('nested report lists', () => {
  it('take null for a limit as the field’s own default in the schema', async () => {
    const packages = Array.from({ length: 30 }, (_, i) => ({ name: `p${i}`, version: '1', type: 'npm' }))
    const images = Array.from({ length: 120 }, (_, i) => ({
      digest: `sha256:${i}`,
      packages: nested(packages),
    }))
    const rootValue = { imagesByVulnerability: () => ({ results: [{ images: nested(images) }] }) }
    const result = await execute({
      schema: reportSchema,
      document: parse(`{
        imagesByVulnerability {
          results {
            images(limit: null) { digest none: packages(limit: null) { name } omitted: packages { name } three: packages(limit: 3) { name } }
            defaulted: images { digest }
          }
        }
      }`),
      rootValue,
    })
    assert.equal(result.errors, undefined)
    const data = result.data as { imagesByVulnerability: { results: Record<string, unknown[]>[] } }
    const [page] = data.imagesByVulnerability.results
    const listed = page?.images as { none: unknown[]; omitted: unknown[]; three: unknown[] }[]
    // images(limit: Int = 100), packages(limit: Int = 10): null is each one's default.
    assert.equal(listed.length, 100)
    assert.equal(page?.defaulted?.length, 100)
    assert.deepEqual(
      listed.map((image) => [image.none.length, image.omitted.length, image.three.length]),
      listed.map(() => [10, 10, 3]),
    )
  })
})
