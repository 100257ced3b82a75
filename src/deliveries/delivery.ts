import { clipped, HeraldError, NotFoundError } from '../errors/index.ts'
import type { JsonObject } from '../ports/index.ts'
import type { DeliveryAttemptedData, DeliveryEvent, DeliveryRequestedData, DeliveryStatus } from './events.ts'

/**
 * The delivery aggregate: pure `decide` and `evolve` over one delivery's stream. Time comes in
 * with each command; the retry schedule is the caller's (the deliverer's) policy, so a
 * decision here only records what the policy chose.
 */
export interface DeliveryState {
  readonly status: DeliveryStatus | 'new'
  readonly request: DeliveryRequestedData | null
  /** Attempts made so far, across replays: the next one is `attempts + 1`. */
  readonly attempts: number
  /** Retriable failures since the request or the last replay: where the retry schedule stands. */
  readonly roundFailures: number
  /** RFC 3339; null once settled. */
  readonly nextAttemptAt: string | null
  readonly replays: number
}

export const initialState: DeliveryState = {
  status: 'new',
  request: null,
  attempts: 0,
  roundFailures: 0,
  nextAttemptAt: null,
  replays: 0,
}

export const evolve = (state: DeliveryState, event: DeliveryEvent): DeliveryState => {
  switch (event.type) {
    case 'DeliveryRequested':
      return { ...state, status: 'pending', request: event.data, nextAttemptAt: event.data.at }
    case 'DeliveryAttempted':
      return { ...state, attempts: Math.max(state.attempts, event.data.attempt) }
    case 'DeliverySucceeded':
      return { ...state, status: 'sent', nextAttemptAt: null }
    case 'DeliveryFailed':
      return event.data.outcome === 'failed'
        ? {
            ...state,
            status: 'retrying',
            attempts: Math.max(state.attempts, event.data.attempt),
            roundFailures: state.roundFailures + 1,
            nextAttemptAt: event.data.nextAttemptAt,
          }
        : {
            ...state,
            status: event.data.outcome,
            attempts: Math.max(state.attempts, event.data.attempt),
            nextAttemptAt: null,
          }
    case 'DeliveryDeadLettered':
      return { ...state, status: 'dead_lettered', nextAttemptAt: null }
    case 'DeliveryReplayed':
      return {
        ...state,
        status: 'pending',
        roundFailures: 0,
        nextAttemptAt: event.data.at,
        replays: state.replays + 1,
      }
  }
}

/** What a channel answered, as the log keeps it: no secret, no payload. */
export type AttemptDetails = Omit<DeliveryAttemptedData, 'deliveryId' | 'attempt' | 'at'>

/**
 * How an attempt ends, as the deliverer's policy decided: `failed` schedules another attempt,
 * `dead_lettered` gives up on a retriable failure, the rest are final.
 */
export type Resolution =
  | { readonly outcome: 'sent' }
  | {
      readonly outcome: 'failed'
      readonly reason: string
      readonly nextAttemptAt: number
      readonly retryAfterMs: number | null
    }
  | { readonly outcome: 'rejected'; readonly reason: string }
  | { readonly outcome: 'skipped'; readonly reason: string }
  | { readonly outcome: 'dead_lettered'; readonly reason: string }

export type DeliveryCommand =
  | {
      readonly type: 'RequestDelivery'
      readonly request: Omit<DeliveryRequestedData, 'at'>
      readonly now: number
    }
  | {
      readonly type: 'RecordAttempt'
      readonly deliveryId: string
      /** The attempt this result belongs to: the one the caller read as next. */
      readonly attempt: number
      /** The delivery's replays when the attempt began: one made since starts a round this result must not settle. */
      readonly replays: number
      /** What the endpoint answered; null when nothing was sent (`skipped`). */
      readonly details: AttemptDetails | null
      readonly resolution: Resolution
      readonly now: number
    }
  | {
      readonly type: 'ReplayDelivery'
      readonly deliveryId: string
      readonly by: string
      readonly now: number
      /**
       * The delivery as the caller listed it: replayed only if still so, not once it changed
       * meanwhile (a bulk replay's listing, while the delivery was replayed and sent otherwise).
       */
      readonly listed?: { readonly status: DeliveryStatus; readonly replays: number }
    }

/** An event as `decide` produces it: the log adds its id and metadata. */
export interface NewDeliveryEvent {
  readonly type: DeliveryEvent['type']
  readonly data: JsonObject
}

/**
 * An attempt's result could not be recorded: the delivery was settled or replayed meanwhile,
 * or another deliverer recorded this attempt first. Not retriable: deciding again gives the
 * same answer.
 */
export class DeliveryStateError extends HeraldError {
  constructor(deliveryId: string, reason: string) {
    super('delivery_state', `delivery ${deliveryId}: ${reason}`, { context: { deliveryId } })
  }
}

const iso = (ms: number): string => new Date(ms).toISOString()

const resolutionEvents = (
  deliveryId: string,
  attempt: number,
  at: string,
  resolution: Resolution,
): NewDeliveryEvent[] => {
  switch (resolution.outcome) {
    case 'sent':
      return [{ type: 'DeliverySucceeded', data: { deliveryId, attempt, at } }]
    case 'dead_lettered':
      return [{ type: 'DeliveryDeadLettered', data: { deliveryId, attempt, at, reason: resolution.reason } }]
    case 'failed':
      return [
        {
          type: 'DeliveryFailed',
          data: {
            deliveryId,
            attempt,
            at,
            outcome: 'failed',
            reason: resolution.reason,
            nextAttemptAt: iso(resolution.nextAttemptAt),
            retryAfterMs: resolution.retryAfterMs,
          },
        },
      ]
    case 'rejected':
    case 'skipped':
      return [
        {
          type: 'DeliveryFailed',
          data: {
            deliveryId,
            attempt,
            at,
            outcome: resolution.outcome,
            reason: resolution.reason,
            nextAttemptAt: null,
            retryAfterMs: null,
          },
        },
      ]
  }
}

/**
 * @example
 * decide({ type: 'ReplayDelivery', deliveryId, by: 'acme/read-write', now: Date.now() }, state)
 * // [{ type: 'DeliveryReplayed', data: { deliveryId, at, by } }]
 */
export const decide = (command: DeliveryCommand, state: DeliveryState): NewDeliveryEvent[] => {
  switch (command.type) {
    case 'RequestDelivery':
      // A redelivered or re-routed command names a delivery that exists: it is the same one.
      if (state.status !== 'new') return []
      return [
        {
          type: 'DeliveryRequested',
          // The event came in as JSON and was decoded, so it goes back out as JSON unchanged.
          data: { ...command.request, at: iso(command.now) } as unknown as JsonObject,
        },
      ]
    case 'RecordAttempt': {
      if (state.status === 'new') throw new NotFoundError(`delivery ${clipped(command.deliveryId)} not found`)
      if (state.status !== 'pending' && state.status !== 'retrying')
        throw new DeliveryStateError(command.deliveryId, `already ${state.status}`)
      if (command.attempt !== state.attempts + 1)
        throw new DeliveryStateError(command.deliveryId, `attempt ${command.attempt} was recorded already`)
      const at = iso(command.now)
      const attempted: NewDeliveryEvent[] =
        command.details === null
          ? []
          : [
              {
                type: 'DeliveryAttempted',
                data: { deliveryId: command.deliveryId, attempt: command.attempt, at, ...command.details },
              },
            ]
      // Replayed while this attempt was in flight: what the endpoint answered is this attempt's,
      // but the replay was acknowledged as a new round from the start of the schedule, which an
      // outcome decided on the old round (dead letters, its next retry, even a success) would undo.
      if (state.replays > command.replays) return attempted
      return [...attempted, ...resolutionEvents(command.deliveryId, command.attempt, at, command.resolution)]
    }
    case 'ReplayDelivery':
      if (state.status === 'new') throw new NotFoundError(`delivery ${clipped(command.deliveryId)} not found`)
      // Waiting for its first attempt already: a replay would change nothing.
      if (state.status === 'pending') return []
      if (
        command.listed !== undefined &&
        (command.listed.status !== state.status || command.listed.replays !== state.replays)
      )
        return []
      return [
        {
          type: 'DeliveryReplayed',
          data: { deliveryId: command.deliveryId, at: iso(command.now), by: command.by },
        },
      ]
  }
}
