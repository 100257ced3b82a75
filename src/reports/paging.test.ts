import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ValidationError } from '../errors/index.ts'
import { checkLimit, createPaging } from './paging.ts'

describe('createPaging', () => {
  const rows = [
    { a: 'acme', v: 'CVE-1' },
    { a: 'acme', v: 'CVE-2' },
    { a: 'acme', v: 'CVE-3' },
  ]
  const key = (r: { a: string; v: string }) => [r.a, r.v]

  it('cuts limit + 1 rows into a page and a token that resumes after its last row', () => {
    const paging = createPaging('q', { filter: { severity: 'high' } })
    const { pageInfo, results } = paging.page(rows, 2, key)
    assert.deepEqual(results, rows.slice(0, 2))
    assert.equal(pageInfo.count, 2)
    assert.deepEqual(paging.after(pageInfo.nextToken, 2), ['acme', 'CVE-2'])
    assert.equal(paging.page(rows.slice(0, 2), 2, key).pageInfo.nextToken, null)
    assert.equal(paging.after(null, 2), undefined)
  })

  it('refuses tokens it did not issue, of another shape, or for another query or filter', () => {
    const token = createPaging('q', { f: 1 }).page(rows, 1, key).pageInfo.nextToken
    const refused = (fn: () => unknown, message: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof ValidationError && message.test(e.message))
    refused(() => createPaging('q', { f: 2 }).after(token, 2), /another query or filter/)
    refused(() => createPaging('other', { f: 1 }).after(token, 2), /another query or filter/)
    refused(() => createPaging('q', { f: 1 }).after(token, 3), /not a token this API issued/)
    refused(() => createPaging('q', { f: 1 }).after('bm90IGpzb24', 2), /not a token this API issued/)
    const forged = Buffer.from(JSON.stringify({ f: 'x', k: [{ sql: '1' }, 'b'] })).toString('base64url')
    refused(() => createPaging('q', { f: 1 }).after(forged, 2), /not a token this API issued/)
  })

  it('checks each part of a key against the kinds asked for', () => {
    const paging = createPaging('q', {})
    const tokenOf = (k: unknown[]) =>
      paging.page([{ k }, { k }], 1, (r) => r.k as (string | number)[]).pageInfo.nextToken
    assert.deepEqual(
      paging.after(tokenOf([1_700_000_000_000, 'id', '/src']), ['integer', 'string', 'string']),
      [1_700_000_000_000, 'id', '/src'],
    )
    for (const k of [
      ["x' OR 1=1 --", 'id', '/src'],
      [1.5, 'id', '/src'],
      [1, 2, '/src'],
      [1, 'id'],
    ])
      assert.throws(
        () => paging.after(tokenOf(k), ['integer', 'string', 'string']),
        /not a token this API issued/,
        JSON.stringify(k),
      )
  })

  it('takes a number of kinds as that many strings: a number in a key of strings is refused', () => {
    const paging = createPaging('q', {})
    const tokenOf = (k: unknown[]) =>
      paging.page([{ k }, { k }], 1, (r) => r.k as (string | number)[]).pageInfo.nextToken
    assert.deepEqual(paging.after(tokenOf(['acme', 'CVE-1']), 2), ['acme', 'CVE-1'])
    for (const k of [
      [1e300, 'acme'],
      ['acme', 7],
    ])
      assert.throws(() => paging.after(tokenOf(k), 2), /not a token this API issued/, JSON.stringify(k))
  })

  it('accepts limits from 1 to 1000', () => {
    assert.equal(checkLimit(undefined), 100)
    assert.equal(checkLimit(1000), 1000)
    for (const bad of [0, -1, 1001, 2.5, Number.NaN]) assert.throws(() => checkLimit(bad), ValidationError)
  })
})
