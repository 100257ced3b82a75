import { type Context, Hono } from 'hono'
import {
  ACCOUNT_NAME_RULE,
  type AppEnv,
  actorOf,
  isAccountName,
  type Principal,
  type RecordAction,
} from '../access/index.ts'
import { clipped, type FieldIssue, HeraldError, NotFoundError, ValidationError } from '../errors/index.ts'
import { instantOf, NOT_A_TIMESTAMP } from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject } from '../http/body.ts'
import { digitsOf, noQueryParameters, queryParams } from '../http/query.ts'
import { ENDPOINT_TYPES, type EndpointType, isEndpointType, Uuid } from '../notifications/index.ts'
import type { Logger } from '../observability/index.ts'
import { DELIVERY_STATUSES, type DeliveryStatus, isDeliveryStatus } from './events.ts'
import type { DeliveryLog } from './log.ts'
import type {
  AttemptRow,
  DeliveryQuery,
  DeliveryReadModel,
  DeliveryRow,
  StoredDelivery,
} from './read-model.ts'

const MAX_LIMIT = 1_000
const DELIVERY_ID = /^[0-9a-f]{64}$/i
/** The filters the listing and the bulk replay take; any other name is refused. */
const FILTERS = [
  'account',
  'configuration_id',
  'status',
  'event_id',
  'endpoint',
  'since',
  'until',
  'limit',
  'next_token',
] as const

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** A delivery as the API shows it: no secret is in the log, so nothing needs redacting. */
export const deliveryView = (row: DeliveryRow) => ({
  id: row.deliveryId,
  account: row.account,
  endpoint: row.endpoint,
  configuration_id: row.configurationId,
  event_id: row.eventId,
  event_type: row.eventType,
  status: row.status,
  attempts: row.attempts,
  replays: row.replays,
  next_attempt_at: iso(row.nextAttemptAt),
  created_at: iso(row.requestedAt),
  updated_at: iso(row.updatedAt),
  last_attempt:
    row.lastAttempt === null
      ? null
      : {
          status: row.lastAttempt.status,
          code: row.lastAttempt.code,
          error: row.lastAttempt.error,
          latency_ms: row.lastAttempt.latencyMs,
        },
})

export const attemptView = (row: AttemptRow) => ({
  attempt: row.attempt,
  outcome: row.outcome,
  status: row.status,
  code: row.code,
  error: row.error,
  latency_ms: row.latencyMs,
  at: iso(row.at),
  next_attempt_at: iso(row.nextAttemptAt),
})

const detailView = (delivery: StoredDelivery, attempts: readonly AttemptRow[]) => ({
  ...deliveryView(delivery),
  matched_selector_ids: delivery.matchedSelectorIds,
  event: delivery.event,
  attempt_history: attempts.map(attemptView),
})

/** Admins see every account's deliveries; anyone else their own account's only. */
const isAdmin = (principal: Principal): boolean => principal.role === 'admin'

type Params = Readonly<Record<string, unknown>>

/**
 * The filters shared by the listing and the bulk replay, from query parameters or a JSON body.
 * `oldestFirst`: pages go oldest first, `next_token` the seq they continue after.
 */
const parseFilters = (
  params: Params,
  principal: Principal,
  defaults: { limit: number; maxLimit: number; status?: DeliveryStatus; oldestFirst?: boolean },
): DeliveryQuery => {
  const issues: FieldIssue[] = []
  const text = (name: string): string | undefined => {
    const value = params[name]
    if (value === undefined || value === null) return undefined
    if (typeof value === 'string' && value !== '') return value
    issues.push({ path: name, message: 'must be a non-empty string' })
    return undefined
  }
  const instant = (name: 'since' | 'until'): number | undefined => {
    const value = text(name)
    if (value === undefined) return undefined
    const ms = instantOf(value)
    if (ms === undefined) issues.push({ path: name, message: NOT_A_TIMESTAMP })
    return ms
  }
  const whole = (name: string, fallback: number, min: number, max: number): number => {
    const value = params[name]
    if (value === undefined || value === null) return fallback
    const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      issues.push({ path: name, message: `must be a whole number from ${min} to ${max}` })
      return fallback
    }
    return n
  }

  const status = text('status') ?? defaults.status
  if (status !== undefined && !isDeliveryStatus(status))
    issues.push({ path: 'status', message: `must be one of ${DELIVERY_STATUSES.join(', ')}` })
  const endpoint = text('endpoint')
  if (endpoint !== undefined && !isEndpointType(endpoint))
    issues.push({ path: 'endpoint', message: `must be one of ${ENDPOINT_TYPES.join(', ')}` })
  const account = text('account')
  if (account !== undefined && !isAccountName(account))
    issues.push({ path: 'account', message: ACCOUNT_NAME_RULE })
  else if (account !== undefined && !isAdmin(principal) && account !== principal.account)
    issues.push({ path: 'account', message: 'only an admin may name another account' })
  const token = text('next_token')
  const cursor = token === undefined ? undefined : digitsOf(token)
  if (cursor !== undefined && Number.isNaN(cursor))
    issues.push({ path: 'next_token', message: 'must be a next_token from a previous page' })
  // Configuration ids are always UUIDs, so any other value is a mistake, not a filter matching
  // nothing; event ids are the producer's own strings.
  // Herald's ids are lower case; a UUID in upper case is the same one.
  const configurationId = text('configuration_id')?.toLowerCase()
  if (configurationId !== undefined && !Uuid.is(configurationId))
    issues.push({ path: 'configuration_id', message: 'must be a UUID' })
  const eventId = text('event_id')
  const since = instant('since')
  const until = instant('until')
  // An empty page would read as "nothing was delivered then"; a reversed window is a mistake.
  if (since !== undefined && until !== undefined && since > until)
    issues.push({ path: 'since', message: 'must not be after until' })
  const limit = whole('limit', defaults.limit, 1, defaults.maxLimit)

  if (issues.length > 0) throw ValidationError.of('delivery filter', issues)
  const scope = isAdmin(principal) ? account : principal.account
  return {
    ...(scope === undefined ? {} : { account: scope }),
    ...(configurationId === undefined ? {} : { configurationId }),
    ...(status === undefined ? {} : { status: status as DeliveryStatus }),
    ...(eventId === undefined ? {} : { eventId }),
    ...(endpoint === undefined ? {} : { endpoint: endpoint as EndpointType }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    ...(defaults.oldestFirst === true ? { oldestFirst: true } : {}),
    ...(cursor === undefined ? {} : defaults.oldestFirst === true ? { after: cursor } : { before: cursor }),
    limit,
  }
}

export interface DeliveryRoutesOptions {
  readonly view: Pick<DeliveryReadModel, 'get' | 'list' | 'attemptsOf' | 'waitFor'>
  readonly log: Pick<DeliveryLog, 'replay'>
  /** Most deliveries one bulk replay sends again (`notifications.delivery.replay_limit`). */
  readonly replayLimit: number
  /**
   * Why an attempt of a delivery would now be skipped rather than sent (`configuration_missing`,
   * `configuration_disabled`, `endpoint_disabled`; notifications' `createSkipCheck`), undefined
   * when it would be sent: such a replay is refused rather than skipped again. Absent: none is.
   */
  readonly skipReason?: (delivery: DeliveryRow) => Promise<string | undefined>
  /**
   * Puts each replay in the audit (`DeliveriesReplayed`): one entry per configuration whose
   * deliveries a call sent again, with how many. Absent: replays are in the delivery log only.
   */
  readonly recordAction?: RecordAction
  /** Logs each replay as it audits it (`delivery.replayed`, naming who asked). */
  readonly logger?: Logger
}

/** Deliveries one call replayed, by configuration id: whose they are and how many. */
type ReplaysByConfiguration = Map<string, { account: string; endpoint: string; count: number }>

/** A replay that would send nothing: the delivery is pending already, or its attempt would be skipped. */
export class ReplayRefusedError extends HeraldError {
  constructor(deliveryId: string, reason: string, why: string) {
    super('replay_refused', `delivery ${deliveryId} is not replayed: ${why}`, {
      context: { deliveryId, reason },
    })
  }
}

/** What a refused replay says, by the reason. */
const refusal = (delivery: DeliveryRow, reason: string): string => {
  switch (reason) {
    case 'pending':
      return 'it is pending already, waiting for its next attempt; a replay would change nothing'
    case 'configuration_missing':
      return `its configuration ${delivery.configurationId} was deleted; a replay would only be skipped again`
    case 'configuration_disabled':
      return `its configuration ${delivery.configurationId} is disabled; enable it, then replay, or it would only be skipped again`
    case 'endpoint_disabled':
      return `the ${delivery.endpoint} endpoint type is switched off; a replay would only be skipped again`
    default:
      return `an attempt would skip it (${reason})`
  }
}

/**
 * The delivery log API as a Hono sub-app; mount it at `/v1/notifications` behind the
 * authentication middleware. Listing and reading take `listNotificationDeliveries`, replaying
 * `replayNotificationDeliveries` (the seed's table): delivery history can be granted or withheld
 * apart from the configurations.
 *
 * - `GET /deliveries?configuration_id=&status=&event_id=&endpoint=&since=&until=&limit=&next_token=`
 * - `GET /deliveries/{id}`: with its attempts
 * - `POST /deliveries/{id}/replay`
 * - `POST /deliveries/replay` `{configuration_id?, status? (dead_lettered), event_id?, endpoint?, since?, until?, limit?, next_token?}`:
 *   oldest first, `next_token` walking on to later ones
 *
 * @example
 * app.route('/v1/notifications', createDeliveryRoutes({ view, log, replayLimit: 1000 }))
 */
export const createDeliveryRoutes = ({
  view,
  log,
  replayLimit,
  skipReason,
  recordAction,
  logger,
}: DeliveryRoutesOptions): Hono<AppEnv> => {
  const app = new Hono<AppEnv>()

  // Another account's delivery is not found, exactly like one that does not exist.
  const visible = (c: Context<AppEnv>): StoredDelivery => {
    const id = c.req.param('id') ?? ''
    // A delivery id is hex, which Herald writes in lower case; upper case names the same one.
    const delivery = DELIVERY_ID.test(id) ? view.get(id.toLowerCase()) : undefined
    const principal = c.get('principal')
    if (delivery === undefined || (!isAdmin(principal) && delivery.account !== principal.account))
      throw new NotFoundError(`delivery ${clipped(id)} not found`)
    return delivery
  }

  const by = (principal: Principal): string => `${principal.account}/${principal.role}`

  // Recorded once the replays are written: a replay refused or left as it was sends nothing.
  const audit = async (principal: Principal, replayed: ReplaysByConfiguration, deliveryId: string | null) => {
    for (const [configurationId, { account, endpoint, count }] of replayed) {
      logger?.('info', 'delivery.replayed', {
        configuration_id: configurationId,
        account,
        endpoint,
        replayed: count,
        delivery_id: deliveryId,
        ...actorOf(principal),
      })
      await recordAction?.(principal, {
        type: 'DeliveriesReplayed',
        account,
        aggregate: { type: 'notification_configuration', id: configurationId },
        details: { endpoint, replayed: count, delivery_id: deliveryId },
      })
    }
  }
  const tally = (replayed: ReplaysByConfiguration, row: DeliveryRow) => {
    const seen = replayed.get(row.configurationId)
    if (seen === undefined)
      replayed.set(row.configurationId, { account: row.account, endpoint: row.endpoint, count: 1 })
    else seen.count++
  }

  app.get('/deliveries', authorize('listNotificationDeliveries'), (c) => {
    const query = parseFilters(queryParams(c, FILTERS), c.get('principal'), {
      limit: 100,
      maxLimit: MAX_LIMIT,
    })
    const page = view.list(query)
    return c.json({
      items: page.items.map(deliveryView),
      next_token: page.next === null ? null : String(page.next),
    })
  })

  app.get('/deliveries/:id', authorize('listNotificationDeliveries'), noQueryParameters, (c) => {
    // The bulk replay's path, not an id: answered 405 with the method it takes.
    if (c.req.param('id') === 'replay') return c.notFound()
    const delivery = visible(c)
    return c.json(detailView(delivery, view.attemptsOf(delivery.deliveryId)))
  })

  app.post(
    '/deliveries/:id/replay',
    authorize('replayNotificationDeliveries'),
    noQueryParameters,
    async (c) => {
      const delivery = visible(c)
      const skipped = await skipReason?.(delivery)
      if (skipped !== undefined)
        throw new ReplayRefusedError(delivery.deliveryId, skipped, refusal(delivery, skipped))
      const position = await log.replay(delivery.deliveryId, by(c.get('principal')))
      // Nothing written: the delivery log found it pending (maybe since it was read here).
      if (position === 0)
        throw new ReplayRefusedError(delivery.deliveryId, 'pending', refusal(delivery, 'pending'))
      const replayedOf: ReplaysByConfiguration = new Map()
      tally(replayedOf, delivery)
      await audit(c.get('principal'), replayedOf, delivery.deliveryId)
      await view.waitFor(position)
      const replayed = view.get(delivery.deliveryId) ?? delivery
      return c.json(deliveryView(replayed), 202)
    },
  )

  app.post('/deliveries/replay', authorize('replayNotificationDeliveries'), noQueryParameters, async (c) => {
    // The filter is the body's: one in the URL is refused (noQueryParameters), never ignored.
    // The body is required, as JSON: `{}` replays every dead letter, an empty request nothing.
    const body = await readJsonObject(c, { fields: FILTERS })
    const principal = c.get('principal')
    // Dead-lettered deliveries by default: what a bulk replay is for after an endpoint is fixed.
    const query = parseFilters(body as Params, principal, {
      limit: replayLimit,
      maxLimit: replayLimit,
      status: 'dead_lettered',
      // Each queue sends its deliveries in the order they were first requested: one replayed
      // ahead of an older one would go before it, in one call or across the calls of a cursor.
      oldestFirst: true,
    })
    const page = view.list(query)
    let last = 0
    let replayed = 0
    const byConfiguration: ReplaysByConfiguration = new Map()
    // What was left as it was, counted by why (as a replay of one would be refused).
    const notReplayed: Record<string, number> = {}
    const skips = new Map<string, Promise<string | undefined>>()
    const skipOf = (row: DeliveryRow) => {
      let reason = skips.get(row.configurationId)
      if (reason === undefined) {
        reason = skipReason?.(row) ?? Promise.resolve(undefined)
        skips.set(row.configurationId, reason)
      }
      return reason
    }
    for (const row of page.items) {
      const skipped = row.status === 'pending' ? 'pending' : await skipOf(row)
      // Nothing written: the delivery changed since it was listed (replayed otherwise, say, and
      // maybe sent already), so it may no longer be what the filter asked for.
      const position =
        skipped === undefined
          ? await log.replay(row.deliveryId, by(principal), { status: row.status, replays: row.replays })
          : 0
      if (position > 0) {
        last = Math.max(last, position)
        replayed++
        tally(byConfiguration, row)
      } else {
        const reason = skipped ?? 'changed'
        notReplayed[reason] = (notReplayed[reason] ?? 0) + 1
      }
    }
    await audit(principal, byConfiguration, null)
    await view.waitFor(last)
    // The cursor, oldest first: the same filter with it replays the deliveries requested after
    // these, so a filter that replaying does not change (`status: sent`) still moves on.
    return c.json(
      {
        replayed,
        not_replayed: notReplayed,
        truncated: page.next !== null,
        next_token: page.next === null ? null : String(page.next),
      },
      202,
    )
  })

  return app
}
