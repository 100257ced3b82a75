import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { actorOf, type RecordAction } from '../access/index.ts'
import { errorText } from '../errors/index.ts'
import type { Logger } from '../observability/index.ts'
import type { EventStore, RecordedEvent } from '../ports/event-store.ts'

/**
 * The audited actions that change no configuration (a log reset accepted, a report rebuild or
 * metrics backfill started, a stored configuration tested, deliveries replayed): one stream of their own, so the
 * audit reads them as it reads configuration changes, from the event store.
 */
export const ACTIONS_STREAM = 'herald-audited-actions'

const ActionType = t.keyof({
  LogResetAccepted: null,
  ReportRebuildStarted: null,
  MetricsBackfillStarted: null,
  ConfigurationTestSent: null,
  DeliveriesReplayed: null,
})

const ActionRecorded = t.type({
  /** `<account>/<role>`. */
  by: t.string,
  tokenId: t.union([t.null, t.string]),
  at: t.string,
  account: t.union([t.null, t.string]),
  aggregate: t.type({
    type: t.keyof({ report_tables: null, report_metrics: null, notification_configuration: null }),
    id: t.string,
  }),
  details: t.record(t.string, t.union([t.null, t.string, t.number, t.boolean])),
})
export type ActionRecorded = t.TypeOf<typeof ActionRecorded> & { readonly type: t.TypeOf<typeof ActionType> }

/** A stored action, or undefined for any other event (or one that fails its codec). */
export const decodeActionRecorded = (recorded: RecordedEvent): ActionRecorded | undefined => {
  if (recorded.stream !== ACTIONS_STREAM || !ActionType.is(recorded.type)) return undefined
  const data = ActionRecorded.decode(recorded.data)
  return isLeft(data) ? undefined : { ...data.right, type: recorded.type }
}

export interface ActionRecorderOptions {
  readonly store: Pick<EventStore, 'append'>
  readonly clock: () => number
  readonly newId: () => string
  readonly logger: Logger
}

/**
 * Appends each audited action to `ACTIONS_STREAM`. The action has happened by then: a store
 * that refuses the record does not undo it, and is logged (`audit.record_failed`, naming the
 * action and who took it) rather than thrown, so the caller still learns how the action went.
 *
 * @example
 * const recordAction = createActionRecorder({ store, clock: Date.now, newId: randomUUID, logger })
 * await recordAction(principal, { type: 'ReportRebuildStarted', account: null, aggregate: { type: 'report_tables', id: 'rebuild' }, details: {} })
 */
export const createActionRecorder =
  ({ store, clock, newId, logger }: ActionRecorderOptions): RecordAction =>
  async (principal, action) => {
    const actor = actorOf(principal)
    const data = {
      by: actor.by,
      tokenId: actor.token_id,
      at: new Date(clock()).toISOString(),
      account: action.account,
      aggregate: { ...action.aggregate },
      details: { ...action.details },
    }
    try {
      await store.append(ACTIONS_STREAM, [{ id: newId(), type: action.type, data }], {
        expectedRevision: 'any',
      })
    } catch (error) {
      logger('error', 'audit.record_failed', { action: action.type, ...actor, error: errorText(error) })
    }
  }
