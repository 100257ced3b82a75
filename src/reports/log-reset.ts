import { Hono } from 'hono'
import {
  acceptLogResets,
  type LogResetKey,
  LogResetsNotPendingError,
  listLogResets,
} from '../../projections/projector/index.ts'
import { type AppEnv, actorOf, type RecordAction } from '../access/index.ts'
import { type FieldIssue, HeraldError, ValidationError } from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject } from '../http/body.ts'
import { noQueryParameters } from '../http/query.ts'
import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/**
 * An acceptance was asked for while the projector found no log reset waiting for one, or
 * (`missing`) not each of those it names: nothing was accepted.
 */
export class NoLogResetError extends HeraldError {
  constructor(missing?: readonly LogResetKey[]) {
    super(
      'no_log_reset',
      missing === undefined
        ? 'no log reset is waiting to be accepted: the projector found none, or it was accepted'
        : `nothing was accepted: no log reset waits at ${missing.map(resetName).join(', ')} (accepted already, or the log was restored); list them again`,
    )
  }
}

/** `engine.events/0@5`: a reset as the command line names it (partition @ position projected through). */
const resetName = (key: LogResetKey): string => `${key.topic}/${key.partition}@${key.projectedThrough}`

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0

/** The resets a `POST` names (`{resets: [{topic, partition, projectedThrough}]}`), or undefined for all. */
const namedResets = (body: Record<string, unknown>): LogResetKey[] | undefined => {
  if (body.resets === undefined) return undefined
  const issues: FieldIssue[] = []
  if (!Array.isArray(body.resets) || body.resets.length === 0)
    throw new ValidationError('invalid log reset acceptance', [
      { path: 'resets', message: 'must be a non-empty list of {topic, partition, projectedThrough}' },
    ])
  const keys = (body.resets as unknown[]).map((item, i): LogResetKey => {
    const { topic, partition, projectedThrough } = (
      typeof item === 'object' && item !== null ? item : {}
    ) as Record<string, unknown>
    if (typeof topic !== 'string' || topic === '')
      issues.push({ path: `resets[${i}].topic`, message: 'must be a topic name' })
    if (!isCount(partition))
      issues.push({ path: `resets[${i}].partition`, message: 'must be a whole number of at least 0' })
    if (!isCount(projectedThrough))
      issues.push({ path: `resets[${i}].projectedThrough`, message: 'must be a whole number of at least 0' })
    return { topic: String(topic), partition: Number(partition), projectedThrough: Number(projectedThrough) }
  })
  if (issues.length > 0) throw new ValidationError('invalid log reset acceptance', issues)
  return keys
}

export interface LogResetRoutesOptions {
  readonly warehouse: Warehouse
  readonly clock: () => number
  readonly logger: Logger
  /** Puts each acceptance in the audit. */
  readonly recordAction?: RecordAction
}

/**
 * `GET /v1/reports/log-reset` lists the log resets the projector found under the report tables
 * (`pending` until accepted); `POST /v1/reports/log-reset` accepts every pending one, or with
 * `{resets: [{topic, partition, projectedThrough}]}` those it names, all or none, so an
 * operator accepts what they were shown and never a reset found since; the projector takes
 * those partitions up again and projects the new log after what the tables hold, keeping it
 * (200 with the resets accepted; 409 when none waits, or not each one named). For administrators.
 * Any instance may be asked: the resets and their acceptance live in the warehouse, which
 * every projector sharing it reads.
 *
 * @example
 * app.route('/v1/reports/log-reset', createLogResetRoutes({ warehouse, clock, logger, recordAction }))
 */
export const createLogResetRoutes = (options: LogResetRoutesOptions) => {
  const { warehouse, clock, logger, recordAction } = options
  const app = new Hono<AppEnv>()
  app.use(authorize('manageReports'))
  app.get('/', noQueryParameters, async (c) => c.json({ resets: await listLogResets(warehouse) }))
  app.post('/', noQueryParameters, async (c) => {
    const principal = c.get('principal')
    const only = namedResets(
      (await readJsonObject(c, { empty: {}, fields: ['resets'] })) as Record<string, unknown>,
    )
    let accepted: Awaited<ReturnType<typeof acceptLogResets>>
    try {
      accepted = await acceptLogResets(warehouse, clock, only === undefined ? {} : { only })
    } catch (error) {
      if (error instanceof LogResetsNotPendingError) throw new NoLogResetError(error.missing)
      throw error
    }
    if (accepted.length === 0) throw new NoLogResetError()
    for (const reset of accepted) {
      logger('warn', 'reports.log_reset_accepted', {
        topic: reset.topic,
        partition: reset.partition,
        offset: reset.offset,
        projected_through: reset.projectedThrough,
        base: reset.base,
        ...actorOf(principal),
      })
      await recordAction?.(principal, {
        type: 'LogResetAccepted',
        account: null,
        aggregate: { type: 'report_tables', id: `${reset.topic}/${reset.partition}` },
        details: { topic: reset.topic, partition: reset.partition, offset: reset.offset, base: reset.base },
      })
    }
    return c.json({ accepted })
  })
  return app
}
