import { Hono } from 'hono'
import type { AppEnv } from '../access/index.ts'
import { type FieldIssue, ValidationError } from '../errors/index.ts'
import { instantOf, NOT_A_TIMESTAMP } from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { digitsOf, queryParams } from '../http/query.ts'
import type { EventStore } from '../ports/event-store.ts'
import { type AggregateType, type AuditQuery, readAudit } from './audit.ts'

const AGGREGATE_TYPES: readonly AggregateType[] = [
  'notification_configuration',
  'notification_endpoint',
  'api_token',
  'report_tables',
  'report_metrics',
]
const MAX_LIMIT = 1_000
const PARAMS = ['since', 'until', 'aggregate_type', 'aggregate_id', 'limit', 'next_token']

const query = (params: Record<string, string>): AuditQuery => {
  const issues: FieldIssue[] = []
  const instant = (name: 'since' | 'until') => {
    const value = params[name]
    if (value === undefined) return {}
    if (instantOf(value) === undefined) {
      issues.push({ path: name, message: NOT_A_TIMESTAMP })
      return {}
    }
    return { [name]: value }
  }
  const limitText = params.limit ?? '100'
  const limit = digitsOf(limitText)
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    issues.push({ path: 'limit', message: `must be a whole number from 1 to ${MAX_LIMIT}` })
  const type = params.aggregate_type
  if (type !== undefined && !(AGGREGATE_TYPES as readonly string[]).includes(type))
    issues.push({ path: 'aggregate_type', message: `must be one of ${AGGREGATE_TYPES.join(', ')}` })
  const token = params.next_token
  const after = token === undefined ? undefined : digitsOf(token)
  if (after !== undefined && Number.isNaN(after))
    issues.push({ path: 'next_token', message: 'must be a next_token from a previous page' })
  // An empty page would read as "nothing changed then"; a reversed window is a mistake.
  const [since, until] = [instantOf(params.since ?? ''), instantOf(params.until ?? '')]
  if (since !== undefined && until !== undefined && since > until)
    issues.push({ path: 'since', message: 'must not be after until' })
  const result: AuditQuery = {
    ...instant('since'),
    ...instant('until'),
    ...(type === undefined ? {} : { aggregateType: type as AggregateType }),
    // Every aggregate id is lower case (a UUID, a hex token id, an endpoint type): one typed
    // in upper case names the same aggregate.
    ...(params.aggregate_id === undefined ? {} : { aggregateId: params.aggregate_id.toLowerCase() }),
    ...(after === undefined ? {} : { after }),
    limit,
  }
  if (issues.length > 0) throw ValidationError.of('audit query', issues)
  return result
}

/**
 * `GET /v1/audit`: configuration changes (who, when, which aggregate, what changed), newest
 * last, secrets redacted; filter with `since`, `until`, `aggregate_type`, `aggregate_id`;
 * page with `limit` and `next_token`.
 *
 * @example
 * app.route('/v1/audit', createAuditRoutes({ store }))
 */
export const createAuditRoutes = ({ store }: { store: Pick<EventStore, 'readAll'> }) => {
  const app = new Hono<AppEnv>()
  app.get('/', authorize('readAudit'), async (c) => {
    const page = await readAudit(store, c.get('principal'), query(queryParams(c, PARAMS)))
    return c.json({ items: page.items, next_token: page.next === null ? null : String(page.next) })
  })
  return app
}
