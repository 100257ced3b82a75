import { Hono } from 'hono'
import { ACCOUNT_NAME_RULE, ADMIN_ACCOUNT, isAccountName } from '../access/index.ts'
import {
  AmbiguousError,
  clipped,
  type FieldIssue,
  isStackOverflow,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../errors/index.ts'
import type { CloudEvent } from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject } from '../http/body.ts'
import { noQueryParameters, queryParams } from '../http/query.ts'
import { isInvalidPatternError, type MatchFailure } from '../matching/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import type { EndpointStatusService } from './endpoints.ts'
import type { EndpointType, NotificationsEnv, Principal } from './model.ts'
import {
  createWarehouseEvents,
  type EventNarrowing,
  explainStoredSelector,
  firstMatches,
  type PreviewLimits,
  previewRequest,
  previewSelector,
  scanFilterOf,
} from './preview.ts'
import type { NotificationConfigService } from './service.ts'

/** The admin account's admin sees every account's events; everyone else only their own. */
const isAdmin = (principal: Principal): boolean =>
  principal.role === 'admin' && principal.account === ADMIN_ACCOUNT

const MAX_ID_LENGTH = 256

/** Events an ambiguous id's refusal names; past them it says there are more. */
const MAX_CANDIDATES = 10

/**
 * What besides the id tells the event to explain apart: `source`, and `account` (the caller's
 * own for anyone but the admin, who may name any or none).
 */
const narrowingOf = (params: Readonly<Record<string, string>>, principal: Principal): EventNarrowing => {
  const issues: FieldIssue[] = []
  const { source, account } = params
  if (source === '') issues.push({ path: 'source', message: 'must be a non-empty string' })
  if (account !== undefined && !isAccountName(account))
    issues.push({ path: 'account', message: ACCOUNT_NAME_RULE })
  else if (account !== undefined && !isAdmin(principal) && account !== principal.account)
    issues.push({ path: 'account', message: 'only an admin may name another account' })
  if (issues.length > 0) throw ValidationError.of('query', issues)
  const scoped = isAdmin(principal) ? account : principal.account
  return {
    ...(scoped === undefined ? {} : { account: scoped }),
    ...(source === undefined ? {} : { source }),
  }
}

const listed = (names: readonly string[], more: boolean, separator = ', '): string =>
  `${names.join(separator)}${more ? ' and more' : ''}`

/**
 * The refusal of an id that names more than one event: 409, naming each candidate (account
 * and source) and the parameters that would tell them apart.
 */
const ambiguity = (id: string, candidates: readonly CloudEvent[]): AmbiguousError => {
  const more = candidates.length > MAX_CANDIDATES
  const shown = candidates.slice(0, MAX_CANDIDATES)
  const distinct = (values: readonly string[]) => [...new Set(values)]
  const sources = distinct(shown.map((e) => JSON.stringify(clipped(e.source))))
  const accounts = distinct(shown.map((e) => e.account))
  const issues: FieldIssue[] = []
  if (sources.length > 1)
    issues.push({ path: 'source', message: `names which event: sent by ${listed(sources, more)}` })
  if (accounts.length > 1)
    issues.push({ path: 'account', message: `names which event: of ${listed(accounts, more)}` })
  const each = shown.map((e) => `account ${e.account}, source ${JSON.stringify(clipped(e.source))}`)
  return new AmbiguousError(
    `event ${clipped(id)} is ambiguous: more than one event has this id (${listed(each, more, '; ')}); name one with ${issues.map((i) => i.path).join(' and ')}`,
    issues,
  )
}

/** Why a disabled configuration's match is routed and yet not sent. */
const SKIPPED_WHILE_DISABLED =
  'the configuration is disabled: its delivery is recorded as skipped (configuration_disabled), to be replayed once it is enabled again'

export interface SelectorToolsRoutesOptions {
  readonly service: Pick<NotificationConfigService, 'listSelectors' | 'listConfigurations'>
  /**
   * The reports warehouse, whose `events` table previews scan and explain reads. Without it
   * (or before the projector created the table) a preview needs a posted `sample` and explain
   * answers 503.
   */
  readonly warehouse?: Warehouse
  /** Most `events` rows one preview examines, newest first (default 5000): the scan's bound. */
  readonly maxScan?: number
  readonly limits?: PreviewLimits
  /** Endpoint statuses, so explain can say a match would not be delivered to a switched-off type. */
  readonly endpoints?: Pick<EndpointStatusService, 'list'>
}

const eventSummary = (event: CloudEvent) => ({
  id: event.id,
  type: event.type,
  source: event.source,
  account: event.account,
  time: event.time ?? null,
  level: event.level ?? null,
  resourcetype: event.resourcetype ?? null,
  subject: event.subject ?? null,
})

const failureView = (failure: MatchFailure) => ({
  path: failure.path,
  expected: failure.expected,
  actual: failure.actual,
  message: failure.message,
})

const byIds = (a: { configuration_id: string; selector_id: string }, b: typeof a): number =>
  a.configuration_id.localeCompare(b.configuration_id) || a.selector_id.localeCompare(b.selector_id)

/**
 * `POST /selectors/preview` and `GET /events/{id}/explain` as a Hono sub-app; mount it at
 * `/v1/notifications` behind the middleware that sets `principal`, like the configuration
 * routes. Both are reads (`listNotificationEndpointConfigurations`,
 * `getNotificationEndpointConfiguration`).
 *
 * A preview answers which recent events a selector (the selector CRUD's body, plus optional
 * `since`, `until`, `limit`) would have matched, newest first: from a posted `sample` of
 * CloudEvents when there is one, otherwise from the warehouse's `events` table, of the
 * caller's account unless the caller is the admin, examining at most `maxScan` rows
 * (`complete: false` says the bound was reached before the range was exhausted).
 *
 * Explain judges an event by the caller's selectors as they are now (not as they were when the
 * event arrived): each one that matches, with `routed: false` and a reason when its endpoint
 * type is switched off (nothing is routed to it), `routed: true` and a reason when its
 * configuration is disabled (its delivery is recorded as skipped), and for each other the first
 * condition that failed (`event.type: expected "user.image.*", got "system.feeds.sync.failed"`).
 * Ids are unique per source only: `?source=` (and for the admin `?account=`) names the event,
 * and an id more than one event has is refused (409 `ambiguous`, naming them) rather than one
 * of them explained at random.
 *
 * @example
 * app.route('/v1/notifications', createSelectorToolsRoutes({ service, warehouse, endpoints }))
 */
export const createSelectorToolsRoutes = (options: SelectorToolsRoutesOptions): Hono<NotificationsEnv> => {
  const { service } = options
  const maxScan = options.maxScan ?? 5_000
  const events = options.warehouse === undefined ? undefined : createWarehouseEvents(options.warehouse)
  const app = new Hono<NotificationsEnv>()

  const warehouseEvents = async () => (events !== undefined && (await events.exists()) ? events : undefined)

  app.post(
    '/selectors/preview',
    authorize('listNotificationEndpointConfigurations'),
    noQueryParameters,
    async (c) => {
      const principal = c.get('principal')
      const request = previewRequest(await readJsonObject(c), principal, options.limits)
      const { compiled, range, limit } = request
      if (request.sample !== undefined) {
        const items = previewSelector(compiled.pattern, request.sample, range, limit)
        return c.json({
          source: 'sample',
          scanned: request.sample.length,
          complete: true,
          count: items.length,
          items,
        })
      }
      const source = await warehouseEvents()
      if (source === undefined)
        throw new ValidationError('there is no event warehouse to preview against; post a sample of events', [
          { path: 'sample', message: 'is required when reports are not available' },
        ])
      const filter = scanFilterOf(compiled)
      const scoped = isAdmin(principal) ? filter : { ...filter, account: principal.account }
      const rows = await source.recent(scoped, range, maxScan)
      const items = firstMatches(compiled.pattern, rows, limit)
      return c.json({
        source: 'warehouse',
        scanned: rows.length,
        complete: rows.length < maxScan,
        count: items.length,
        items,
      })
    },
  )

  app.get('/events/:id/explain', authorize('getNotificationEndpointConfiguration'), async (c) => {
    const principal = c.get('principal')
    const narrowing = narrowingOf(queryParams(c, ['source', 'account']), principal)
    const id = c.req.param('id') ?? ''
    const notFound = () =>
      new NotFoundError(
        `event ${clipped(id)} not found${narrowing.source === undefined ? '' : ` from source ${JSON.stringify(clipped(narrowing.source))}`}`,
      )
    if (id === '' || id.length > MAX_ID_LENGTH) throw notFound()
    const stored = await warehouseEvents()
    if (stored === undefined)
      throw new UnavailableError('events cannot be explained: the reports warehouse holds no events table')
    const candidates = await stored.byId(id, narrowing, MAX_CANDIDATES + 1)
    // Ids are unique per source only: rather than pick one of several events, ask which.
    if (candidates.length > 1) throw ambiguity(id, candidates)
    const event = candidates[0]
    if (event === undefined) throw notFound()

    const [selectors, configurations, statuses] = await Promise.all([
      service.listSelectors(principal.account),
      service.listConfigurations(principal.account),
      options.endpoints?.list() ?? Promise.resolve([]),
    ])
    const configurationsById = new Map(configurations.map((cfg) => [cfg.id, cfg]))
    const switchedOff = new Set<EndpointType>(statuses.filter((s) => !s.enabled).map((s) => s.name))
    const matched = []
    const unmatched = []
    for (const selector of selectors) {
      const configuration = configurationsById.get(selector.configurationId)
      if (configuration === undefined) continue
      const ids = {
        configuration_id: configuration.id,
        endpoint: configuration.endpoint,
        selector_id: selector.id,
      }
      let explanation: ReturnType<typeof explainStoredSelector>
      try {
        explanation = explainStoredSelector(selector, event)
      } catch (error) {
        // A stored pattern that a stricter compiler now refuses (one nested deeper than the
        // limit, say): the router leaves it out too. It is this selector's answer, never the
        // whole request's, and so is a recursion the stack could not hold.
        if (!isInvalidPatternError(error) && !isStackOverflow(error)) throw error
        unmatched.push({
          ...ids,
          failure: {
            path: 'pattern',
            expected: 'a valid pattern',
            actual: 'an invalid one',
            message: isInvalidPatternError(error)
              ? error.message
              : 'pattern: is nested too deeply to be evaluated',
          },
        })
        continue
      }
      if (!explanation.matched) {
        unmatched.push({ ...ids, failure: failureView(explanation.failure) })
        continue
      }
      // A switched-off endpoint type gets nothing; a disabled configuration gets its delivery,
      // recorded as skipped, which a replay sends once it is enabled again.
      if (switchedOff.has(configuration.endpoint))
        matched.push({
          ...ids,
          routed: false,
          reason: `the ${configuration.endpoint} endpoint type is disabled`,
        })
      else if (!configuration.enabled) matched.push({ ...ids, routed: true, reason: SKIPPED_WHILE_DISABLED })
      else matched.push({ ...ids, routed: true })
    }
    return c.json({
      event: eventSummary(event),
      matched: matched.sort(byIds),
      unmatched: unmatched.sort(byIds),
    })
  })

  return app
}
