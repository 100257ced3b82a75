import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type DocumentNode,
  type FieldNode,
  GraphQLError,
  Kind,
  OperationTypeNode,
  type SelectionNode,
  type SelectionSetNode,
  specifiedRules,
} from 'graphql'
import { parseQuery, validateQuery } from './graphql.ts'
import { DEFAULT_QUERY_LIMITS, queryLimitRules } from './limits.ts'
import { reportSchema } from './schema.ts'

const field = (name: string, selectionSet?: SelectionSetNode): FieldNode => ({
  kind: Kind.FIELD,
  name: { kind: Kind.NAME, value: name },
  ...(selectionSet === undefined ? {} : { selectionSet }),
})

const set = (...selections: SelectionNode[]): SelectionSetNode => ({ kind: Kind.SELECTION_SET, selections })

const TOO_DEEP = [{ message: 'the query is nested too deeply to be processed', code: 'query_too_deep' }]

const summary = (errors: readonly GraphQLError[]) =>
  errors.map((e) => ({ message: e.message, code: e.extensions.code }))

describe('the reports’ GraphQL parse and validation', () => {
  it('answer a query too deep for the parser’s stack with a GraphQL error naming it', () => {
    const depth = 100_000
    let thrown: unknown
    try {
      parseQuery(`{${'metrics {'.repeat(depth)}id${'}'.repeat(depth)}}`, 1_000_000)
    } catch (error) {
      thrown = error
    }
    assert.ok(thrown instanceof GraphQLError, String(thrown))
    assert.deepEqual(summary([thrown]), TOO_DEEP)
    // The token limit still comes first.
    assert.throws(() => parseQuery('{ metrics { results { id } } }', 5), /more that 5 tokens/)
  })

  it('answer a query that repeats a field too often for graphql to check with a GraphQL error saying why', () => {
    const rules = [...specifiedRules, ...queryLimitRules(DEFAULT_QUERY_LIMITS, {})]
    // graphql-js compares a selection's repeated fields pairwise within a budget and gives up
    // past it with its bare "Validation aborted.".
    for (const query of [
      `{ metrics { results { ${'id '.repeat(1_000)} } } }`,
      `{ ${'__typename '.repeat(1_000)} }`,
    ])
      assert.deepEqual(summary(validateQuery(reportSchema, parseQuery(query, 5_000), rules)), [
        {
          message:
            'the query repeats fields too often to be checked (one field selected hundreds of times in a selection set): select each field once',
          code: 'query_too_complex',
        },
      ])
    // A few repeats are checked as ever.
    assert.deepEqual(
      validateQuery(
        reportSchema,
        parseQuery(`{ metrics { results { ${'id '.repeat(100)} } } }`, 5_000),
        rules,
      ),
      [],
    )
  })

  it('answer a document too deep for a validation rule’s stack with a GraphQL error naming it', () => {
    // Built by hand, as no parser would hand one this deep to validation: inline fragments,
    // which add no depth the depth limit counts, nested 100,000 levels.
    let selectionSet = set(field('metrics', set(field('results', set(field('id'))))))
    for (let level = 0; level < 100_000; level++)
      selectionSet = set({ kind: Kind.INLINE_FRAGMENT, selectionSet })
    const document: DocumentNode = {
      kind: Kind.DOCUMENT,
      definitions: [{ kind: Kind.OPERATION_DEFINITION, operation: OperationTypeNode.QUERY, selectionSet }],
    }
    const rules = [...specifiedRules, ...queryLimitRules(DEFAULT_QUERY_LIMITS, {})]
    assert.deepEqual(summary(validateQuery(reportSchema, document, rules)), TOO_DEEP)
    assert.deepEqual(
      validateQuery(reportSchema, parseQuery('{ ... { metrics { results { id } } } }', 100), rules),
      [],
    )
  })
})
