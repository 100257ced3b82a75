import { Hono } from 'hono'
import { ACCOUNT_NAME_RULE, type AppEnv, isAccountName } from '../../access/index.ts'
import { type FieldIssue, ValidationError } from '../../errors/index.ts'
import { instantOf, NOT_A_TIMESTAMP } from '../../events/index.ts'
import { authorize } from '../../http/authorize.ts'
import { digitsOf, queryParams } from '../../http/query.ts'
import type { Warehouse } from '../../ports/warehouse.ts'
import { FINER_THAN_STORED, isFinerThanStored, type ReportContext } from '../context.ts'
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
 * Whether a time that is no RFC 3339 timestamp would be one with a + in place of its space
 * before the offset (`2026-01-01T00:00:00 02:00`): a URL's query reads an unencoded + as a
 * space, so a client that sent `+02:00` as it is sent that.
 */
const plusAsSpace = (value: string): boolean =>
  / \d{2}:\d{2}$/.test(value) && instantOf(value.replace(/ (\d{2}:\d{2})$/, '+$1')) !== undefined

const PLUS_AS_SPACE = 'it holds a space where its offset has a +, which a URL reads as a space: send + as %2B'

const SCOPE = ['account', 'allAccounts']
const POINTS = [...SCOPE, 'start', 'end', 'limit', 'nextToken']

/**
 * The parameters as the REST API names them, checked here so that a bad one is named as it
 * was sent (`start`, not GraphQL's `filter.start`) and none is quietly read as another value.
 */
const checked = (params: Readonly<Record<string, string>>): Readonly<Record<string, string>> => {
  const issues: FieldIssue[] = []
  if (text(params.account) !== undefined && !isAccountName(params.account))
    issues.push({ path: 'account', message: ACCOUNT_NAME_RULE })
  const all = params.allAccounts
  if (all !== undefined && all !== 'true' && all !== 'false')
    issues.push({ path: 'allAccounts', message: 'must be true or false' })
  if (all === 'true' && text(params.account) !== undefined)
    issues.push({ path: 'allAccounts', message: 'cannot be true together with account' })
  const [start, end] = (['start', 'end'] as const).map((name) => {
    if (text(params[name]) === undefined) return undefined
    const at = instantOf(params[name] as string)
    if (at === undefined)
      issues.push({
        path: name,
        message: plusAsSpace(params[name] as string)
          ? `${NOT_A_TIMESTAMP}; ${PLUS_AS_SPACE}`
          : NOT_A_TIMESTAMP,
      })
    else if (isFinerThanStored(params[name] as string))
      issues.push({ path: name, message: FINER_THAN_STORED })
    return at
  })
  if (start !== undefined && end !== undefined && start > end)
    issues.push({ path: 'start', message: 'must not be after end' })
  if (text(params.limit) !== undefined && Number.isNaN(digitsOf(params.limit as string)))
    issues.push({ path: 'limit', message: 'must be a whole number from 1 to 1000' })
  if (issues.length > 0) throw ValidationError.of('query', issues)
  return params
}

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
  const scopeOf = (params: Readonly<Record<string, string>>) => ({
    account: text(params.account) ?? null,
    allAccounts: params.allAccounts === 'true',
  })

  app.get('/', async (c) => {
    const context = contextOf(c.get('principal'))
    const params = checked(queryParams(c, SCOPE))
    const page = await metrics({ filter: scopeOf(params), limit: 1000 }, context)
    const results = await Promise.all(
      page.results.map(async ({ value, ...definition }) => ({ ...definition, value: await value() })),
    )
    return c.json({ metrics: results, projectionLagSeconds: page.projectionLagSeconds })
  })

  app.get('/:id', async (c) => {
    const context = contextOf(c.get('principal'))
    const params = checked(queryParams(c, POINTS))
    const limit = text(params.limit)
    const page = await metricData(
      {
        filter: {
          metricId: c.req.param('id'),
          start: text(params.start) ?? null,
          end: text(params.end) ?? null,
          ...scopeOf(params),
        },
        limit: limit === undefined ? null : Number(limit),
        nextToken: text(params.nextToken) ?? null,
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
