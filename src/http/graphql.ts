import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { createReportGraphqlRoutes } from '../reports/index.ts'

export interface GraphqlOptions {
  readonly warehouse: Warehouse
  readonly graphiql: boolean
  readonly logger: Logger
  /** Path the GraphiQL page posts to. */
  readonly endpoint: string
  /** The projection lag in seconds; default from the warehouse alone. */
  readonly lag?: () => Promise<number>
}

/**
 * `/v1/reports/graphql`: the reports module's GraphQL endpoint (graphql-helix, GraphiQL for
 * browsers where enabled, query limits, projection lag), mounted here.
 */
export const createGraphqlRoutes = (options: GraphqlOptions) => createReportGraphqlRoutes(options)
