import { Hono } from 'hono'
import type { AppEnv } from '../../access/index.ts'
import { authorize } from '../../http/authorize.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import type { ReportContext } from '../context.ts'
import { metricData, metrics } from './queries.ts'

export interface MetricsRoutesOptions {
  readonly warehouse: Warehouse
  readonly clock?: () => number
  /** The projection lag, as for GraphQL; default from the warehouse. */
  readonly lag?: () => Promise<number>
}

const text = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value

/**
 * `GET /v1/reports/metrics` (the canned definitions, each with its current value) and
 * `GET /v1/reports/metrics/{id}?start=&end=&limit=&nextToken=` (recorded points, newest first),
 * as a Hono sub-app for the root to mount behind authentication at `/v1/reports/metrics`.
 * Scoped like GraphQL: the caller's account, or for an admin `?account=` or `?allAccounts=true`.
 * Errors are thrown as Herald errors for the root's problem-details handler.
 *
 * @example
 * app.route('/v1/reports/metrics', createMetricsRoutes({ warehouse }))
 */
export const createMetricsRoutes = (options: MetricsRoutesOptions) => {
  const app = new Hono<AppEnv>()
  app.use(authorize('listImages'))
  const contextOf = (principal: ReportContext['principal']): ReportContext => ({
    principal,
    warehouse: options.warehouse,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.lag === undefined ? {} : { lag: options.lag }),
  })
  const scopeOf = (query: (name: string) => string | undefined) => ({
    account: text(query('account')) ?? null,
    allAccounts: query('allAccounts') === 'true',
  })

  app.get('/', async (c) => {
    const context = contextOf(c.get('principal'))
    const page = await metrics({ filter: scopeOf((n) => c.req.query(n)), limit: 1000 }, context)
    const results = await Promise.all(
      page.results.map(async ({ value, ...definition }) => ({ ...definition, value: await value() })),
    )
    return c.json({ metrics: results, projectionLagSeconds: page.projectionLagSeconds })
  })

  app.get('/:id', async (c) => {
    const context = contextOf(c.get('principal'))
    const limit = text(c.req.query('limit'))
    const page = await metricData(
      {
        filter: {
          metricId: c.req.param('id'),
          start: text(c.req.query('start')) ?? null,
          end: text(c.req.query('end')) ?? null,
          ...scopeOf((n) => c.req.query(n)),
        },
        limit: limit === undefined ? null : Number(limit),
        nextToken: text(c.req.query('nextToken')) ?? null,
      },
      context,
    )
    return c.json({
      metricId: c.req.param('id'),
      points: page.results,
      pageInfo: page.pageInfo,
      projectionLagSeconds: page.projectionLagSeconds,
    })
  })
  return app
}
