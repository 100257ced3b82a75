import { Hono } from 'hono'
import { acceptLogResets, listLogResets } from '../../projections/projector/index.ts'
import { type AppEnv, actorOf, type RecordAction } from '../access/index.ts'
import { HeraldError } from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { noQueryParameters } from '../http/query.ts'
import type { Logger } from '../observability/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/** An acceptance was asked for while the projector found no log reset waiting for one. */
export class NoLogResetError extends HeraldError {
  constructor() {
    super(
      'no_log_reset',
      'no log reset is waiting to be accepted: the projector found none, or it was accepted',
    )
  }
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
 * (`pending` until accepted); `POST /v1/reports/log-reset` accepts every pending one, so the
 * projector takes those partitions up again and projects the new log after what the tables
 * hold, keeping it (200 with the resets accepted; 409 when none waits). For administrators.
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
    const accepted = await acceptLogResets(warehouse, clock)
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
