import {
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLNamedType,
  getNamedType,
  isAbstractType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  valueFromAST,
} from 'graphql'

export interface QueryLimits {
  /** Deepest field nesting allowed (a root field is depth 1). Default 10. */
  readonly maxDepth: number
  /** Aliased fields allowed in one document. Default 30. */
  readonly maxAliases: number
  /**
   * Highest estimated cost (rows and objects the answer may hold). Default 250,000: a page of
   * 1,000 vulnerabilities with the first 100 tags of each (about 103,000) passes; four of those
   * in one query, or 1,000 tags each, do not.
   */
  readonly maxCost: number
  /** Most tokens a document may have; the parser stops beyond it. Default 5,000. */
  readonly maxTokens: number
}

export const DEFAULT_QUERY_LIMITS = {
  maxDepth: 10,
  maxAliases: 30,
  maxCost: 250_000,
  maxTokens: 5_000,
} as const satisfies QueryLimits

/** How many items a list field without a `limit` argument is assumed to hold. */
export const NESTED_LIST_SIZE = 10

// Introspection (GraphiQL's schema query is a dozen levels deep) reads no data: it neither
// counts towards depth nor cost. Aliases on it still count.
const isIntrospection = (node: FieldNode): boolean => node.name.value.startsWith('__')

type Fragments = (name: string) => FragmentDefinitionNode | null | undefined

/** Every field selected under `set`, through fragments, each fragment entered once per path. */
const fieldsOf = (
  set: SelectionSetNode,
  fragment: Fragments,
  seen: ReadonlySet<string> = new Set(),
): FieldNode[] =>
  set.selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection]
    if (selection.kind === Kind.INLINE_FRAGMENT) return fieldsOf(selection.selectionSet, fragment, seen)
    const name = selection.name.value
    const definition = fragment(name)
    if (definition === null || definition === undefined || seen.has(name)) return []
    return fieldsOf(definition.selectionSet, fragment, new Set([...seen, name]))
  })

const depthOf = (set: SelectionSetNode, fragment: Fragments): number => {
  let deepest = 0
  for (const field of fieldsOf(set, fragment)) {
    if (isIntrospection(field)) continue
    const below = field.selectionSet === undefined ? 0 : depthOf(field.selectionSet, fragment)
    deepest = Math.max(deepest, 1 + below)
  }
  return deepest
}

const reject = (context: ValidationContext, code: string, message: string, node: OperationDefinitionNode) =>
  context.reportError(new GraphQLError(message, { nodes: [node], extensions: { code } }))

/**
 * Validation rules that refuse abusive queries before any resolver runs: too deep, too many
 * aliases, or too costly. The cost estimate multiplies down the tree: a field with a `limit`
 * argument returns up to that many results (its literal, its variable's value, or its
 * default), a page's `results` list holds that many, and any other list is assumed to hold
 * `NESTED_LIST_SIZE` items; every object counts one. A `limit` of a million is thus rejected
 * here, not by the warehouse.
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
      const depth = depthOf(node.selectionSet, (name) => context.getFragment(name))
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

    const limitOf = (node: FieldNode, definition: GraphQLField<unknown, unknown>): number | undefined => {
      const argument = definition.args.find((a) => a.name === 'limit')
      if (argument === undefined) return undefined
      const given = node.arguments?.find((a) => a.name.value === 'limit')
      const value =
        given === undefined
          ? argument.defaultValue
          : valueFromAST(given.value, argument.type, variables ?? {})
      return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, value) : 0
    }

    const costOf = (set: SelectionSetNode, parent: GraphQLNamedType, factor: number): number => {
      let total = 0
      for (const field of fieldsOf(set, fragment)) {
        if (isIntrospection(field)) continue
        const owners = isAbstractType(parent) ? schema.getPossibleTypes(parent) : [parent]
        const definition = owners
          .map((owner) => (isObjectType(owner) ? owner.getFields()[field.name.value] : undefined))
          .find((d) => d !== undefined)
        if (definition === undefined) continue
        const unwrapped = isNonNullType(definition.type) ? definition.type.ofType : definition.type
        const limit = limitOf(field, definition)
        const items =
          limit !== undefined
            ? factor * limit
            : isListType(unwrapped) && field.name.value !== 'results'
              ? factor * NESTED_LIST_SIZE
              : factor
        const named = getNamedType(definition.type)
        if (field.selectionSet !== undefined) total += items + costOf(field.selectionSet, named, items)
      }
      return total
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
        const cost = costOf(node.selectionSet, root, 1)
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
