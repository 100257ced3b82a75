import { inspect } from 'node:util'
import {
  type ASTVisitor,
  type DocumentNode,
  GraphQLError,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  OperationTypeNode,
  parse,
  specifiedRules,
  type ValidationContext,
  type ValidationRule,
  validate,
} from 'graphql'
import { getGraphQLParameters, processRequest, renderGraphiQL, shouldRenderGraphiQL } from 'graphql-helix'
import { Hono } from 'hono'
import type { AppEnv } from '../access/index.ts'
import {
  type FieldIssue,
  isHeraldError,
  isStackOverflow,
  isWarehouseFailure,
  ValidationError,
} from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJson } from '../http/body.ts'
import { isShown, shownDetail } from '../http/problem.ts'
import { readQueryParams } from '../http/query.ts'
import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { lagOf, type ReportContext } from './context.ts'
import { DEFAULT_QUERY_LIMITS, type QueryLimits, queryLimitRules } from './limits.ts'
import { rootValue } from './resolvers.ts'
import { reportSchema } from './schema.ts'

export interface ReportGraphqlOptions {
  readonly warehouse: Warehouse
  readonly graphiql: boolean
  readonly logger: Logger
  /** Path the GraphiQL page posts to. */
  readonly endpoint: string
  readonly clock?: () => number
  /** The projection lag in seconds; default from the warehouse's `projection_progress`. */
  readonly lag?: () => Promise<number>
  readonly limits?: Partial<QueryLimits>
}

/**
 * Whether a request is a browser asking for the GraphiQL page (a GET accepting HTML). The page
 * holds no data, so it is served without a token: a browser cannot send one when it opens a
 * URL. Its header editor starts with the Authorization header its queries need.
 */
export const isGraphiqlPageRequest = (request: Request): boolean =>
  shouldRenderGraphiQL({ body: undefined, headers: request.headers, method: request.method, query: {} })

const GRAPHIQL_HEADERS = JSON.stringify({ Authorization: 'Bearer <your API token>' }, null, 2)

const attempt = <T>(read: () => T): T | undefined => {
  try {
    return read()
  } catch {
    return undefined
  }
}

/** A thrown value as text: an object that is no Error shown with what it holds. */
const printed = (thrown: unknown): string | undefined =>
  typeof thrown === 'object' && thrown !== null && !(thrown instanceof Error)
    ? attempt(() => inspect(thrown, { depth: 2, breakLength: Number.POSITIVE_INFINITY }))
    : attempt(() => String(thrown))

/**
 * What a thrown value says of itself, for the log, read without trusting its shape: it may be
 * no Error at all, and any getter of it may throw (a message's, while printing it).
 */
const describeThrown = (thrown: unknown): { error: string; stack?: string } => {
  const stack = thrown instanceof Error ? attempt(() => thrown.stack) : undefined
  const error =
    printed(thrown) ??
    (typeof stack === 'string' ? stack.split('\n', 1)[0] : undefined) ??
    `${attempt(() => Object.prototype.toString.call(thrown)) ?? 'a value'} that cannot be printed`
  return typeof stack === 'string' ? { error, stack } : { error }
}

/** An unexpected error a root threw, logged already (`guardRoots`): answered as an internal error. */
class RootFailure extends Error {}

const internalError = (path: GraphQLError['path']) => ({
  message: 'internal error',
  path,
  extensions: { code: 'internal' },
})

/**
 * The roots, each answering what it throws unexpectedly (neither a Herald nor a GraphQL error)
 * as an internal error, logged here once with the message and stack it came with. graphql-js
 * reads a thrown value's message, path and extensions to place it in the answer: one whose
 * getter throws, or with a `path` of its own, would reach the answer as graphql-js's TypeError
 * in its place, or as itself rather than a GraphQLError.
 */
const guardRoots = (
  roots: Readonly<Record<string, (args: never, context: ReportContext, info: GraphQLResolveInfo) => unknown>>,
  logger: Logger,
) =>
  Object.fromEntries(
    Object.entries(roots).map(([name, root]) => [
      name,
      async (args: never, context: ReportContext, info: GraphQLResolveInfo) => {
        try {
          return await root(args, context, info)
        } catch (thrown) {
          if (isHeraldError(thrown) || thrown instanceof GraphQLError) throw thrown
          logger('error', 'graphql.resolver_failed', { ...describeThrown(thrown), path: [info.path.key] })
          throw new RootFailure('internal error')
        }
      },
    ]),
  )

/**
 * Herald errors keep their code for clients, and so do GraphQL's own (a variable of the wrong
 * type); a Herald error's message is answered as a REST problem's detail would be
 * (`shownDetail`): the warehouse's own, which names where it is and carries ClickHouse's text,
 * and an internal one's are logged instead. Anything else is masked and logged once (a root's
 * unexpected errors by `guardRoots`), an entry that is no GraphQLError too: graphql-js passes
 * on as it is what it failed to place.
 */
const formatError = (error: unknown, logger: Logger) => {
  if (!(error instanceof GraphQLError)) {
    logger('error', 'graphql.resolver_failed', describeThrown(error))
    return internalError(undefined)
  }
  const original = error.originalError
  if (original instanceof RootFailure) return internalError(error.path)
  if (original === undefined || original === null || original instanceof GraphQLError) return error.toJSON()
  if (isHeraldError(original)) {
    if (isShown(original))
      return { ...error.toJSON(), message: original.message, extensions: { code: original.code } }
    if (isWarehouseFailure(original))
      logger('error', 'graphql.warehouse_failed', { error: original.message, path: error.path })
    else logger('error', 'graphql.resolver_failed', { ...describeThrown(original), path: error.path })
    return { message: shownDetail(original), path: error.path, extensions: { code: original.code } }
  }
  logger('error', 'graphql.resolver_failed', { ...describeThrown(original), path: error.path })
  return internalError(error.path)
}

/** An error of a request refused before it ran, with `validation_failed` for its code if it has none. */
const withCode = (error: ReturnType<typeof formatError>) => {
  const extensions: Record<string, unknown> = error.extensions ?? {}
  return { ...error, extensions: { ...extensions, code: extensions.code ?? 'validation_failed' } }
}

const variablesOf = (variables: unknown): Record<string, unknown> => {
  if (typeof variables === 'string') {
    try {
      const parsed: unknown = JSON.parse(variables)
      return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {}
    } catch {
      return {}
    }
  }
  return variables !== null && typeof variables === 'object' ? (variables as Record<string, unknown>) : {}
}

/**
 * The request's `query`, `variables` and `operationName` as GraphQL over HTTP has them (a
 * string, an object or its JSON, a string), refused with a 400 naming each one that is not:
 * graphql-helix would take a `query` that is not a string as a parsed document, skipping the
 * parser and its token limit, or fail on it with a 500.
 */
const checkParameters = (parameters: { query?: unknown; variables?: unknown; operationName?: unknown }) => {
  const issues: FieldIssue[] = []
  const { query, variables, operationName } = parameters
  if (query !== undefined && query !== null && typeof query !== 'string')
    issues.push({ path: 'query', message: 'must be a string holding a GraphQL document' })
  if (
    variables !== undefined &&
    variables !== null &&
    typeof variables !== 'string' &&
    (typeof variables !== 'object' || Array.isArray(variables))
  )
    issues.push({ path: 'variables', message: 'must be an object of variable values' })
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    issues.push({ path: 'operationName', message: 'must be a string naming an operation of the query' })
  if (issues.length > 0) throw ValidationError.of('GraphQL request', issues)
}

// GraphQL over HTTP's request parameters; `extensions` is accepted and not used.
const PARAMETERS = ['query', 'variables', 'operationName', 'extensions']
const NOT_A_PARAMETER = `is not a GraphQL request parameter (${PARAMETERS.join(', ')})`

/**
 * The request's shape, before its parameters: a POST's body is one JSON object of GraphQL's
 * parameters and its URL has none (graphql-helix would ignore them), a GET's URL has only
 * those, each once (graphql-helix would take the first). Anything else is refused with a 400
 * naming it, rather than silently ignored. Returns the GET's parameters, as graphql-helix
 * reads them.
 */
const checkRequest = (
  method: string,
  body: unknown,
  queries: Readonly<Record<string, readonly string[]>>,
): Record<string, string> => {
  const issues: FieldIssue[] = []
  let search: Record<string, string> = {}
  if (method === 'POST') {
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      issues.push({
        path: '(body)',
        message: 'must be a JSON object with query, variables and operationName',
      })
    else
      for (const key of Object.keys(body))
        if (!PARAMETERS.includes(key)) issues.push({ path: key, message: NOT_A_PARAMETER })
    for (const key of Object.keys(queries))
      issues.push({ path: `?${key}`, message: 'is not read from the URL of a POST: send it in the body' })
  } else {
    const read = readQueryParams(queries, PARAMETERS, (name) => `?${name}`)
    issues.push(...read.issues)
    search = read.params
  }
  if (issues.length > 0) throw ValidationError.of('GraphQL request', issues)
  return search
}

/**
 * A query nested too deeply for the parser's or a validation rule's recursion (within the token
 * limit, how deep that is depends on the stack left): the request's own doing, refused with a
 * 400 as the depth limit refuses one. graphql-helix would pass the RangeError on as if it were
 * a GraphQL error.
 */
const nestedTooDeeply = (): GraphQLError =>
  new GraphQLError('the query is nested too deeply to be processed', {
    extensions: { code: 'query_too_deep' },
  })

/** graphql's `parse`, with a recursion too deep for the stack thrown as a GraphQL error naming it. */
export const parseQuery = (source: string, maxTokens: number): DocumentNode => {
  try {
    return parse(source, { maxTokens })
  } catch (error) {
    if (isStackOverflow(error)) throw nestedTooDeeply()
    throw error
  }
}

/**
 * What graphql-js answers, with nothing else, when the rule checking that a selection's
 * repeated fields can be merged runs out of its budget of comparisons (a field selected about
 * a thousand times in one selection set): validation stops there.
 */
const VALIDATION_ABORTED = 'Validation aborted.'

const repeatsTooOften = (): GraphQLError =>
  new GraphQLError(
    'the query repeats fields too often to be checked (one field selected hundreds of times in a selection set): select each field once',
    { extensions: { code: 'query_too_complex' } },
  )

/**
 * graphql's `validate`, with a recursion too deep for the stack answered as a GraphQL error
 * naming it, and its bare "Validation aborted." as one saying why.
 */
export const validateQuery = (
  schema: GraphQLSchema,
  document: DocumentNode,
  rules: readonly ValidationRule[],
): readonly GraphQLError[] => {
  try {
    return validate(schema, document, rules).map((error) =>
      error.message === VALIDATION_ABORTED && error.extensions.code === undefined ? repeatsTooOften() : error,
    )
  } catch (error) {
    if (isStackOverflow(error)) return [nestedTooDeeply()]
    throw error
  }
}

/** The reports are read-only: a mutation or subscription is refused (400) before anything runs. */
const queriesOnly = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition: (node) => {
    if (node.operation !== OperationTypeNode.QUERY)
      context.reportError(
        new GraphQLError(`the reports API answers queries only, not a ${node.operation}`, {
          nodes: node,
          extensions: { code: 'validation_failed' },
        }),
      )
  },
})

/**
 * `/v1/reports/graphql` through graphql-helix, GraphiQL for browsers where enabled. Before
 * anything runs, the request is refused if it has parameters GraphQL does not, and the
 * document if it is not a query, has too many tokens, is too deep, has too many aliases or
 * could return too much (see `queryLimitRules`); as it runs, a page of events whose data would
 * take the answer past `maxDataBytes` (`takeDataBytes`). Every answer with data carries
 * `extensions.projectionLagSeconds` as well as the field on each page.
 *
 * @example
 * app.route('/v1/reports/graphql', createReportGraphqlRoutes({ warehouse, graphiql: true, logger, endpoint: '/v1/reports/graphql' }))
 */
export const createReportGraphqlRoutes = (options: ReportGraphqlOptions) => {
  const { warehouse, graphiql, logger, endpoint } = options
  const limits: QueryLimits = { ...DEFAULT_QUERY_LIMITS, ...options.limits }
  const roots = guardRoots(rootValue, logger)
  const app = new Hono<AppEnv>()
  if (graphiql)
    app.get('/', async (c, next) =>
      isGraphiqlPageRequest(c.req.raw)
        ? c.html(renderGraphiQL({ endpoint, headers: GRAPHIQL_HEADERS }))
        : next(),
    )
  app.on(['GET', 'POST'], '/', authorize('listImages'), async (c) => {
    const sent = c.req.method === 'POST' ? await readJson(c) : undefined
    const request = {
      body: sent,
      headers: c.req.raw.headers,
      method: c.req.method,
      query: checkRequest(c.req.method, sent, c.req.queries()),
    }
    const { operationName, query, variables } = getGraphQLParameters(request)
    checkParameters({ operationName, query, variables })
    const context: ReportContext = {
      principal: c.get('principal'),
      warehouse,
      maxDataBytes: limits.maxDataBytes,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.lag === undefined ? {} : { lag: options.lag }),
    }
    const result = await processRequest({
      operationName,
      query,
      variables,
      request,
      schema: reportSchema,
      parse: (source: string) => parseQuery(source, limits.maxTokens),
      validate: validateQuery,
      validationRules: [...specifiedRules, queriesOnly, ...queryLimitRules(limits, variablesOf(variables))],
      rootValueFactory: () => roots,
      contextFactory: () => context,
    })
    if (result.type !== 'RESPONSE') {
      return c.json({ errors: [{ message: 'streaming responses are not supported' }] }, 400)
    }
    // `errors` are GraphQLErrors by graphql-js's types, but not always in fact (`formatError`).
    const payload = result.payload as { data?: unknown; errors?: readonly unknown[] }
    // Execution started (GraphQL then answers `data`, null when a root failed): the answer
    // keeps `data` and carries the lag. A request refused before it ran has neither, and is a
    // 400 whose errors each carry a code: graphql-js refuses variables it cannot coerce
    // without running anything, which graphql-helix answers as a 200, and neither its rules'
    // errors nor those give a code.
    const executed = 'data' in payload
    const errors = payload.errors?.map((e) => formatError(e, logger))
    const body = {
      ...(executed ? { data: payload.data ?? null } : {}),
      ...(errors ? { errors: executed ? errors : errors.map(withCode) } : {}),
      ...(executed ? { extensions: { projectionLagSeconds: await lagOf(context) } } : {}),
    }
    for (const { name, value } of result.headers) c.header(name, value)
    return c.json(body, (executed || result.status !== 200 ? result.status : 400) as 200)
  })
  return app
}
