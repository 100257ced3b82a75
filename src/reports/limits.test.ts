import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { getIntrospectionQuery, getNullableType, isListType, isObjectType, parse, validate } from 'graphql'
import {
  AGGREGATE_COST,
  aggregateCost,
  DEFAULT_QUERY_LIMITS,
  type QueryLimits,
  queryLimitRules,
} from './limits.ts'
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
    // (tags: their own limit's default), besides the root's fixed cost (it ranks every finding).
    const query = '{ tagsByVulnerability { results { vulnerability { vulnerabilityId } tags { tag } } } }'
    assert.deepEqual(check(query, { maxCost: AGGREGATE_COST + 10_300 }), [])
    assert.equal(check(query, { maxCost: AGGREGATE_COST + 10_299 })[0]?.[0], 'query_too_costly')
    const withVariable =
      'query ($n: Int, $t: Int) { tagsByVulnerability(limit: $n) { results { tags(limit: $t) { tag } } } }'
    // n × (1 + 1 + t)
    assert.deepEqual(check(withVariable, { maxCost: AGGREGATE_COST + 12_000 }, { n: 1_000, t: 10 }), [])
    assert.equal(
      check(withVariable, { maxCost: AGGREGATE_COST + 12_000 }, { n: 1_001, t: 10 })[0]?.[0],
      'query_too_costly',
    )
    // A nested list counts what its limit lets through: 1,000 tags each of 1,000 vulnerabilities.
    assert.equal(
      check('{ tagsByVulnerability(limit: 1000) { results { tags(limit: 1000) { tag } } } }')[0]?.[0],
      'query_too_costly',
    )
    // A nested list's own limit counts, an image's packages included.
    const packages =
      '{ imagesByVulnerability(limit: 10) { results { images(limit: 10) { packages(limit: 5) { name } } } } }'
    assert.deepEqual(check(packages, { maxCost: AGGREGATE_COST + 10 + 10 + 100 + 500 }), [])
    assert.equal(
      check(packages, { maxCost: AGGREGATE_COST + 10 + 10 + 100 + 499 })[0]?.[0],
      'query_too_costly',
    )
    assert.equal(
      check('{ metricData(filter: { metricId: "x" }, limit: 100000000) { results { value } } }')[0]?.[0],
      'query_too_costly',
    )
  })
  it('measures each fragment once, however often it is spread', { timeout: 30_000 }, () => {
    // Each fragment spreads the next twice: 40 short lines that expand to 2^40 selections of
    // the last one, each a page of 100 metrics (100 + 100 × its pageInfo). The old walk expanded
    // every spread and would not finish.
    const chain = (n: number) =>
      [
        'query { ...F0 }',
        ...Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`),
        `fragment F${n} on Query { metrics { pageInfo { count } } }`,
      ].join('\n')
    assert.deepEqual(check(chain(2), { maxCost: 800 }), [])
    assert.deepEqual(check(chain(40)), [
      [
        'query_too_costly',
        `the query could return about ${(2 ** 40 * 200).toLocaleString('en-US')} objects; at most 250,000 are allowed (lower the limits or select fewer lists)`,
      ],
    ])
    assert.deepEqual(check(chain(40), { maxCost: Number.POSITIVE_INFINITY, maxDepth: 3 }), [])
    assert.deepEqual(check(chain(40), { maxCost: Number.POSITIVE_INFINITY, maxDepth: 2 }), [
      ['query_too_deep', 'the query is 3 levels deep; at most 2 are allowed'],
    ])
  })

  it('counts a limit as execution will coerce it: variable defaults, unsent variables and null', () => {
    // 1,000 × (1 + 1 + 1,000) when the variable's default applies.
    const defaulted =
      'query ($l: Int = 1000) { tagsByVulnerability(limit: $l) { results { tags(limit: $l) { tag } } } }'
    assert.equal(check(defaulted)[0]?.[0], 'query_too_costly')
    assert.deepEqual(check(defaulted, {}, { l: 10 }), [])
    // An unsent variable without a default leaves the argument's own default (100 and 100).
    const unsent =
      'query ($l: Int) { tagsByVulnerability(limit: $l) { results { tags(limit: $l) { tag } } } }'
    assert.deepEqual(check(unsent, { maxCost: AGGREGATE_COST + 10_200 }), [])
    assert.equal(check(unsent, { maxCost: AGGREGATE_COST + 10_199 })[0]?.[0], 'query_too_costly')
    // null is what the resolvers make of it, the argument's default: an image's packages are 10.
    const nulls =
      '{ imagesByVulnerability(limit: 10) { results { images(limit: 10) { packages(limit: null) { name } } } } }'
    assert.deepEqual(check(nulls, { maxCost: AGGREGATE_COST + 10 + 10 + 100 + 1_000 }), [])
    assert.equal(check(nulls, { maxCost: AGGREGATE_COST + 10 + 10 + 100 + 999 })[0]?.[0], 'query_too_costly')
    const nullImages = '{ imagesByVulnerability(limit: 10) { results { images(limit: null) { digest } } } }'
    assert.deepEqual(check(nullImages, { maxCost: AGGREGATE_COST + 10 + 10 + 1_000 }), [])
    assert.equal(check(nullImages, { maxCost: AGGREGATE_COST + 10 + 10 + 999 })[0]?.[0], 'query_too_costly')
  })

  it('leaves no list unbounded: each takes a limit, or is the results of a root that takes one or costs a fixed amount', () => {
    const unbounded: string[] = []
    for (const type of Object.values(reportSchema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue
      for (const field of Object.values(type.getFields()))
        if (
          isListType(getNullableType(field.type)) &&
          field.name !== 'results' &&
          !field.args.some((a) => a.name === 'limit')
        )
          unbounded.push(`${type.name}.${field.name}`)
    }
    assert.deepEqual(unbounded, [])
    const roots = Object.values(reportSchema.getQueryType()?.getFields() ?? {})
    assert.deepEqual(
      roots
        .filter((root) => !root.args.some((a) => a.name === 'limit') && aggregateCost(root) === 0)
        .map((r) => r.name),
      [],
    )
  })

  it('counts a whole-scope aggregate once each time the query selects it, however many items select it', () => {
    const aging = '{ findingAging { results { severity } } }'
    assert.deepEqual(check(aging, { maxCost: AGGREGATE_COST + 2 }), [])
    assert.equal(check(aging, { maxCost: AGGREGATE_COST + 1 })[0]?.[0], 'query_too_costly')
    // A metric's value is computed once per root for all of its metrics: 100 × 2 + one aggregate.
    const values = '{ metrics(limit: 100) { results { id value } } }'
    assert.deepEqual(check(values, { maxCost: 200 + AGGREGATE_COST }), [])
    assert.equal(check(values, { maxCost: 199 + AGGREGATE_COST })[0]?.[0], 'query_too_costly')
    assert.deepEqual(check('{ metrics(limit: 100) { results { id } } }', { maxCost: 200 }), [])
    // Through fragments too, once per spread.
    const spread = `{ a: findingAging { ...rows } b: findingAging { ...rows } ...breakdown }
      fragment rows on FindingAgingReport { results { severity } }
      fragment breakdown on Query { vulnerabilityBreakdown { results { severity } } }`
    assert.deepEqual(check(spread, { maxCost: 3 * (AGGREGATE_COST + 2) }), [])
    assert.equal(check(spread, { maxCost: 3 * (AGGREGATE_COST + 2) - 1 })[0]?.[0], 'query_too_costly')
    // A dozen fit within the default; 30 aliased copies, each reading every finding, do not.
    const copies = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: vulnerabilityBreakdown { results { findings } }`).join(' ')} }`
    assert.deepEqual(check(copies(12)), [])
    assert.equal(check(copies(30))[0]?.[0], 'query_too_costly')
  })
})
