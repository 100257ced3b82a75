import { type GraphQLError, parse } from 'graphql'
import { getGraphQLParameters, processRequest, renderGraphiQL, shouldRenderGraphiQL } from 'graphql-helix'
import { Hono } from 'hono'
import { isHeraldError, ValidationError } from '../errors/index.ts'
import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { type ReportContext, reportSchema, rootValue } from '../reports/index.ts'
import { authorize } from './authorize.ts'
import type { AppEnv } from './env.ts'

export interface GraphqlOptions {
  readonly warehouse: Warehouse
  readonly graphiql: boolean
  readonly logger: Logger
  /** Path the GraphiQL page posts to. */
  readonly endpoint: string
}

/** Herald errors keep their code for clients; anything else is masked and logged. */
const formatError = (error: GraphQLError, logger: Logger) => {
  const original = error.originalError
  if (original === undefined || original === null) return error.toJSON()
  if (isHeraldError(original)) {
    return { ...error.toJSON(), message: original.message, extensions: { code: original.code } }
  }
  logger('error', 'graphql.resolver_failed', { error: String(original), path: error.path })
  return { message: 'internal error', path: error.path, extensions: { code: 'internal' } }
}

/** `/v1/reports/graphql` through graphql-helix; GraphiQL for browsers where enabled. */
export const createGraphqlRoutes = ({ warehouse, graphiql, logger, endpoint }: GraphqlOptions) => {
  const app = new Hono<AppEnv>()
  app.on(['GET', 'POST'], '/', authorize('listImages'), async (c) => {
    const request = {
      body:
        c.req.method === 'POST'
          ? await c.req.json().catch(() => {
              throw new ValidationError('the body is not valid JSON', [
                { path: '(body)', message: 'not JSON' },
              ])
            })
          : undefined,
      headers: c.req.raw.headers,
      method: c.req.method,
      query: c.req.query(),
    }
    if (graphiql && shouldRenderGraphiQL(request)) return c.html(renderGraphiQL({ endpoint }))
    const { operationName, query, variables } = getGraphQLParameters(request)
    const context: ReportContext = { principal: c.get('principal'), warehouse }
    const result = await processRequest({
      operationName,
      query,
      variables,
      request,
      schema: reportSchema,
      parse,
      rootValueFactory: () => rootValue,
      contextFactory: () => context,
    })
    if (result.type !== 'RESPONSE') {
      return c.json({ errors: [{ message: 'streaming responses are not supported' }] }, 400)
    }
    const payload = result.payload as { data?: unknown; errors?: readonly GraphQLError[] }
    const body = {
      ...(payload.data === undefined ? {} : { data: payload.data }),
      ...(payload.errors ? { errors: payload.errors.map((e) => formatError(e, logger)) } : {}),
    }
    for (const { name, value } of result.headers) c.header(name, value)
    return c.json(body, result.status as 200)
  })
  return app
}
