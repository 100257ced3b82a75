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
    // 100 pages' worth by default: 100 (page) + 100 (results) + 100 (vulnerability) + 100×100
    // (tags: their own limit's default).
    const query = '{ tagsByVulnerability { results { vulnerability { vulnerabilityId } tags { tag } } } }'
    assert.deepEqual(check(query, { maxCost: 10_300 }), [])
    assert.equal(check(query, { maxCost: 10_299 })[0]?.[0], 'query_too_costly')
    const withVariable =
      'query ($n: Int, $t: Int) { tagsByVulnerability(limit: $n) { results { tags(limit: $t) { tag } } } }'
    // n × (1 + 1 + t)
    assert.deepEqual(check(withVariable, { maxCost: 12_000 }, { n: 1_000, t: 10 }), [])
    assert.equal(check(withVariable, { maxCost: 12_000 }, { n: 1_001, t: 10 })[0]?.[0], 'query_too_costly')
    // A nested list counts what its limit lets through: 1,000 tags each of 1,000 vulnerabilities.
    assert.equal(
      check('{ tagsByVulnerability(limit: 1000) { results { tags(limit: 1000) { tag } } } }')[0]?.[0],
      'query_too_costly',
    )
    // A nested list's own limit counts, an image's packages included.
    const packages =
      '{ imagesByVulnerability(limit: 10) { results { images(limit: 10) { packages(limit: 5) { name } } } } }'
    assert.deepEqual(check(packages, { maxCost: 10 + 10 + 100 + 500 }), [])
    assert.equal(check(packages, { maxCost: 10 + 10 + 100 + 499 })[0]?.[0], 'query_too_costly')
    assert.equal(
      check('{ metricData(filter: { metricId: "x" }, limit: 100000000) { results { value } } }')[0]?.[0],
      'query_too_costly',
    )
  })
})
