import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { executeSync, type GraphQLResolveInfo, parse } from 'graphql'
import { ValidationError } from '../errors/index.ts'
import { checkLimit, createPaging, MAX_LIMIT, selectedLimit } from './paging.ts'
import { reportSchema } from './schema.ts'

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

describe('selectedLimit', () => {
  /** What the root sees of `query`'s selections under `results { reasons }`. */
  const selected = (query: string, variableValues: Record<string, unknown> = {}) => {
    let seen: number | undefined
    const result = executeSync({
      schema: reportSchema,
      document: parse(query),
      variableValues,
      rootValue: {
        policyEvaluationsByTag: (_args: unknown, _context: unknown, info: GraphQLResolveInfo) => {
          seen = selectedLimit(info, ['results', 'reasons'])
          return { pageInfo: { nextToken: null, count: 0 }, results: [], projectionLagSeconds: 0 }
        },
      },
    })
    assert.equal(result.errors, undefined, JSON.stringify(result.errors))
    return seen
  }

  it('takes the largest limit of every alias, fragment and variable, the default for none, 0 when not selected', () => {
    assert.equal(selected('{ policyEvaluationsByTag { results { tag } } }'), 0)
    assert.equal(selected('{ policyEvaluationsByTag { results { reasons { gate } } } }'), 100)
    assert.equal(
      selected(
        '{ policyEvaluationsByTag { results { a: reasons(limit: 5) { gate } b: reasons(limit: 7) { gate } } } }',
      ),
      7,
    )
    assert.equal(
      selected(
        `query ($n: Int) { policyEvaluationsByTag { ...page } }
         fragment page on PolicyEvaluationsByTagPage { results { ... on TagPolicyEvaluation { reasons(limit: $n) { gate } } } }`,
        { n: 250 },
      ),
      250,
    )
    // Beyond the most a list gives, its field resolver refuses it: no more is read.
    assert.equal(
      selected('{ policyEvaluationsByTag { results { reasons(limit: 5000) { gate } } } }'),
      MAX_LIMIT,
    )
  })

  it('enters each fragment once, however often it is spread', { timeout: 10_000 }, () => {
    // 40 short lines that expand to 2^40 selections of the last fragment.
    const chain = [
      '{ policyEvaluationsByTag { results { ...F0 } } }',
      ...Array.from(
        { length: 40 },
        (_, i) => `fragment F${i} on TagPolicyEvaluation { ...F${i + 1} ...F${i + 1} }`,
      ),
      'fragment F40 on TagPolicyEvaluation { reasons(limit: 3) { gate } }',
    ].join('\n')
    assert.equal(selected(chain), 3)
  })
})
