import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getIntrospectionQuery, parse, validate } from 'graphql'
import { DEFAULT_QUERY_LIMITS, type QueryLimits, queryLimitRules } from './limits.ts'
import { reportSchema } from './schema.ts'

const check = (query: string, limits: Partial<QueryLimits> = {}, variables: Record<string, unknown> = {}) =>
  validate(
    reportSchema,
    parse(query),
    queryLimitRules({ ...DEFAULT_QUERY_LIMITS, ...limits }, variables),
  ).map((e) => [e.extensions.code, e.message])

describe('queryLimitRules', () => {
  it('measures depth through fragments and inline fragments, but not introspection', () => {
    const query = `query { tagsByVulnerability { ...page } }
      fragment page on TagsByVulnerabilityPage { results { ... on VulnerabilityTags { tags { tag } } } }`
    assert.deepEqual(check(query, { maxDepth: 4 }), [])
    assert.deepEqual(check(query, { maxDepth: 3 }), [
      ['query_too_deep', 'the query is 4 levels deep; at most 3 are allowed'],
    ])
    assert.deepEqual(check(getIntrospectionQuery()), [])
  })

  it('counts aliases in the whole document', () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: metrics(limit: 1) { pageInfo { count } }`).join(' ')} }`
    assert.deepEqual(check(aliases(30)), [])
    assert.deepEqual(check(aliases(31)), [
      ['too_many_aliases', 'the query has 31 aliases; at most 30 are allowed'],
    ])
  })

  it('multiplies cost by limits (literal, variable or default) and nested lists, not by a page’s results', () => {
    // 100 pages' worth by default: 100 (page) + 100 (results) + 100 (vulnerability) + 100×10 (tags).
    const query = '{ tagsByVulnerability { results { vulnerability { vulnerabilityId } tags { tag } } } }'
    assert.deepEqual(check(query, { maxCost: 1_300 }), [])
    assert.equal(check(query, { maxCost: 1_299 })[0]?.[0], 'query_too_costly')
    const withVariable = 'query ($n: Int) { tagsByVulnerability(limit: $n) { results { tags { tag } } } }'
    // n × (1 + 1 + 10)
    assert.deepEqual(check(withVariable, { maxCost: 12_000 }, { n: 1_000 }), [])
    assert.equal(check(withVariable, { maxCost: 12_000 }, { n: 1_001 })[0]?.[0], 'query_too_costly')
    assert.equal(
      check('{ metricData(filter: { metricId: "x" }, limit: 100000000) { results { value } } }')[0]?.[0],
      'query_too_costly',
    )
  })
})
