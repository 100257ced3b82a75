import {
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  getArgumentValues,
  getNamedType,
  getVariableValues,
  isAbstractType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql'
import { limitDefault } from './paging.ts'

export interface QueryLimits {
  /** Deepest field nesting allowed (a root field is depth 1). Default 10. */
  readonly maxDepth: number
  /** Aliased fields allowed in one document. Default 30. */
  readonly maxAliases: number
  /**
   * Highest estimated cost (rows and objects the answer may hold, and `AGGREGATE_COST` for each
   * report over the whole scope). Default 250,000: a page of 1,000 vulnerabilities with the
   * first 100 tags of each (about 103,000) passes; four of those in one query, or 1,000 tags
   * each, do not; nor do 13 whole-scope reports.
   */
  readonly maxCost: number
  /** Most tokens a document may have; the parser stops beyond it. Default 5,000. */
  readonly maxTokens: number
  /**
   * Most bytes of raw event `data` one answer may carry, over all its `events` pages (aliases
   * included). Default 32 MiB. The cost limit counts an event as one object, but one may hold
   * up to 5 MiB of data (what ingest accepts): 1,000 of them, in 30 aliased pages, would have
   * the server build gigabytes. Each page's data is counted from the stored lengths before it
   * is read, and a page that would pass the limit is refused (`response_too_large`).
   */
  readonly maxDataBytes: number
}

export const DEFAULT_QUERY_LIMITS = {
  maxDepth: 10,
  maxAliases: 30,
  maxCost: 250_000,
  maxTokens: 5_000,
  maxDataBytes: 32 * 1024 * 1024,
} as const satisfies QueryLimits

/** How many items a list field without a `limit` argument is assumed to hold. */
export const NESTED_LIST_SIZE = 10

/**
 * What a report computed over everything in the caller's scope counts, however little it
 * answers (`findingAging`'s six severities read every finding of the account): as a page of
 * 20,000 objects, so that a dozen fit within the default cost limit and 30 aliased copies do
 * not. Schema fields carry it as `@aggregate(cost: …)`.
 */
export const AGGREGATE_COST = 20_000

/**
 * The cost a schema field's `@aggregate(cost: …)` gives it (0 without one): the field reads
 * everything in the caller's scope, once per root however many items select it (a page of
 * metrics shares one computation of their values), so it counts once each time the query
 * selects it, not once per item of its parent.
 */
export const aggregateCost = (field: GraphQLField<unknown, unknown>): number => {
  const directive = field.astNode?.directives?.find((d) => d.name.value === 'aggregate')
  const cost = directive?.arguments?.find((a) => a.name.value === 'cost')?.value
  return cost?.kind === Kind.INT ? Number(cost.value) : 0
}

// Introspection (GraphiQL's schema query is a dozen levels deep) reads no data: it neither
// counts towards depth nor cost. Aliases on it still count.
const isIntrospection = (node: FieldNode): boolean => node.name.value.startsWith('__')

type Fragments = (name: string) => FragmentDefinitionNode | null | undefined

/** A selection set's estimated cost: per item of its parent, and once whatever their number. */
interface Cost {
  readonly items: number
  readonly once: number
}

/**
 * `measure` of a fragment's selection set for a parent type, worked out once per document
 * however often the fragment is spread (a chain of fragments each spreading the next twice is
 * a short document that expands to exponentially many fields), and `none` for a fragment
 * spread within itself: the cycle is refused by graphql's own rules anyway.
 */
const perFragment = <Parent extends { readonly name: string } | undefined, Value = number>(
  fragment: Fragments,
  measure: (set: SelectionSetNode, parent: Parent) => Value,
  none: Value,
) => {
  const known = new Map<string, Value>()
  const entered = new Set<string>()
  return (name: string, parent: Parent): Value => {
    const key = parent === undefined ? name : `${name}\u0000${parent.name}`
    const cached = known.get(key)
    if (cached !== undefined) return cached
    const definition = fragment(name)
    if (definition === null || definition === undefined || entered.has(name)) return none
    entered.add(name)
    const value = measure(definition.selectionSet, parent)
    entered.delete(name)
    known.set(key, value)
    return value
  }
}

/** The deepest field nesting under `set`, through fragments (each measured once) and inline fragments. */
const depthMeasure = (fragment: Fragments) => {
  const depthOf = (set: SelectionSetNode): number => {
    let deepest = 0
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (isIntrospection(selection)) continue
        const below = selection.selectionSet === undefined ? 0 : depthOf(selection.selectionSet)
        deepest = Math.max(deepest, 1 + below)
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(selection.selectionSet))
      } else {
        deepest = Math.max(deepest, fragmentDepth(selection.name.value, undefined))
      }
    }
    return deepest
  }
  const fragmentDepth = perFragment<undefined>(fragment, (set) => depthOf(set), 0)
  return depthOf
}

const reject = (context: ValidationContext, code: string, message: string, node: OperationDefinitionNode) =>
  context.reportError(new GraphQLError(message, { nodes: [node], extensions: { code } }))

/**
 * Validation rules that refuse abusive queries before any resolver runs: too deep, too many
 * aliases, or too costly. The cost estimate multiplies down the tree: a field with a `limit`
 * argument returns up to that many results (its literal, its variable's value or default, the
 * argument's default, also for null), a page's `results` list holds that many, and any other
 * list is assumed to hold `NESTED_LIST_SIZE` items; every object counts one. A field marked
 * `@aggregate(cost: …)` adds its cost once each time it is selected (`aggregateCost`). A
 * `limit` of a million, or 30 aliased copies of a report over the whole account, are thus
 * rejected here, not by the warehouse.
 *
 * @example
 * processRequest({ ..., validationRules: [...specifiedRules, ...queryLimitRules(DEFAULT_QUERY_LIMITS, variables)] })
 */
export const queryLimitRules = (
  limits: QueryLimits,
  variables: Readonly<Record<string, unknown>> | null | undefined,
): ValidationRule[] => {
  const depthRule: ValidationRule = (context): ASTVisitor => ({
    OperationDefinition(node) {
      const depth = depthMeasure((name) => context.getFragment(name))(node.selectionSet)
      if (depth > limits.maxDepth) {
        reject(
          context,
          'query_too_deep',
          `the query is ${depth} levels deep; at most ${limits.maxDepth} are allowed`,
          node,
        )
      }
    },
  })

  const aliasRule: ValidationRule = (context): ASTVisitor => {
    let aliases = 0
    return {
      Field(node) {
        if (node.alias !== undefined) aliases++
      },
      Document: {
        leave(document) {
          if (aliases <= limits.maxAliases) return
          const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION)
          if (operation !== undefined) {
            reject(
              context,
              'too_many_aliases',
              `the query has ${aliases} aliases; at most ${limits.maxAliases} are allowed`,
              operation,
            )
          }
        },
      },
    }
  }

  const costRule: ValidationRule = (context): ASTVisitor => {
    const schema = context.getSchema()
    const fragment: Fragments = (name) => context.getFragment(name)

    /**
     * The estimated cost of each selection set: `items`, per item of its parent (the estimate
     * is linear in the number of parents, so a fragment's is worked out once per parent type
     * and scaled), and `once`, the aggregates it selects, whatever the number of parents.
     * A `limit` counts what the resolver will be handed, as execution coerces it: a literal, a
     * variable's value or its default, and the argument's default when neither is given or
     * null is (what the resolvers make of null, `limitDefault`).
     */
    const costMeasure = (variables: Readonly<Record<string, unknown>>) => {
      const limitOf = (node: FieldNode, definition: GraphQLField<unknown, unknown>): number | undefined => {
        if (!definition.args.some((a) => a.name === 'limit')) return undefined
        let value: unknown
        try {
          value = getArgumentValues(definition, node, variables).limit
        } catch {
          // An argument of the wrong type: refused by graphql's own rules or at execution.
          return 0
        }
        const limit = value ?? limitDefault(definition)
        return typeof limit === 'number' && Number.isFinite(limit) ? Math.max(0, limit) : 0
      }

      const costOf = (set: SelectionSetNode, parent: GraphQLNamedType): Cost => {
        const total = { items: 0, once: 0 }
        const add = (cost: Cost, times = 1) => {
          total.items += times * cost.items
          total.once += cost.once
        }
        for (const selection of set.selections) {
          if (selection.kind === Kind.INLINE_FRAGMENT) {
            add(costOf(selection.selectionSet, parent))
            continue
          }
          if (selection.kind === Kind.FRAGMENT_SPREAD) {
            add(fragmentCost(selection.name.value, parent))
            continue
          }
          if (isIntrospection(selection)) continue
          const owners = isAbstractType(parent) ? schema.getPossibleTypes(parent) : [parent]
          const definition = owners
            .map((owner) => (isObjectType(owner) ? owner.getFields()[selection.name.value] : undefined))
            .find((d) => d !== undefined)
          if (definition === undefined) continue
          total.once += aggregateCost(definition)
          if (selection.selectionSet === undefined) continue
          const unwrapped = isNonNullType(definition.type) ? definition.type.ofType : definition.type
          const items =
            limitOf(selection, definition) ??
            (isListType(unwrapped) && selection.name.value !== 'results' ? NESTED_LIST_SIZE : 1)
          const below = costOf(selection.selectionSet, getNamedType(definition.type))
          add({ items: 1 + below.items, once: below.once }, items)
        }
        return total
      }

      const fragmentCost = perFragment<GraphQLNamedType, Cost>(
        fragment,
        (set, parent) => costOf(set, parent),
        { items: 0, once: 0 },
      )
      return costOf
    }

    return {
      OperationDefinition(node) {
        const root =
          node.operation === 'query'
            ? schema.getQueryType()
            : node.operation === 'mutation'
              ? schema.getMutationType()
              : schema.getSubscriptionType()
        if (root === null || root === undefined) return
        // The variables as execution will see them, the operation's defaults filled in; values
        // it would refuse are refused there, and count as not given here.
        const coerced = getVariableValues(schema, node.variableDefinitions ?? [], variables ?? {})
        const { items, once } = costMeasure(coerced.coerced ?? {})(node.selectionSet, root)
        const cost = items + once
        if (cost > limits.maxCost) {
          reject(
            context,
            'query_too_costly',
            `the query could return about ${Math.round(cost).toLocaleString('en-US')} objects; at most ${limits.maxCost.toLocaleString('en-US')} are allowed (lower the limits or select fewer lists)`,
            node,
          )
        }
      },
    }
  }

  return [depthRule, aliasRule, costRule]
}
