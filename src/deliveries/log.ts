import { isExpectedRevisionConflict } from '../errors/index.ts'
import type { EventData, EventStore, ExpectedRevision, JsonObject } from '../ports/index.ts'
import {
  type AttemptDetails,
  type DeliveryCommand,
  type DeliveryState,
  decide,
  evolve,
  initialState,
  type NewDeliveryEvent,
  type Resolution,
} from './delivery.ts'
import {
  type DeliveryRequestedData,
  type DeliveryStatus,
  decodeDeliveryEvent,
  deliveryStream,
} from './events.ts'

/** What the delivery log records; each call resolves with the store position to wait for (0: nothing written). */
export interface DeliveryLog {
  /** Records that a delivery was asked for. The same delivery id again records nothing. */
  request(request: Omit<DeliveryRequestedData, 'at'>): Promise<number>
  /**
   * `request` for many deliveries in one store write (`appendMany`), in the given order: each
   * delivery id is recorded once, whether it repeats in the list or was recorded before.
   * Resolves with the highest position of the listed deliveries' requests.
   */
  requestMany(requests: readonly Omit<DeliveryRequestedData, 'at'>[]): Promise<number>
  /**
   * Records how the next attempt of a delivery went, expecting the stream at `revision` (what
   * the caller read). When someone appended meanwhile it decides again on the fresh state;
   * DeliveryStateError when the attempt can no longer be recorded (settled, recorded by another
   * deliverer). A delivery replayed since the caller read it records the attempt's answer only
   * (`superseded`): it stays pending for the replay's first attempt.
   */
  record(
    delivery: {
      readonly deliveryId: string
      readonly revision: number
      readonly status: DeliveryStatus
      /** Attempts recorded so far: this result is attempt `attempts + 1`. */
      readonly attempts: number
      /** Replays so far, as the caller read them when the attempt began. */
      readonly replays: number
    },
    details: AttemptDetails | null,
    resolution: Resolution,
  ): Promise<RecordedAttempt>
  /**
   * Sends a settled (or retrying) delivery again from the start of the retry schedule; with
   * `listed`, only if it is still as listed. 0 when nothing was written (pending, or changed
   * since listed). NotFoundError when unknown.
   */
  replay(
    deliveryId: string,
    by: string,
    listed?: { readonly status: DeliveryStatus; readonly replays: number },
  ): Promise<number>
}

/** Where an attempt's result was written (0: nothing written), and whether a replay superseded its outcome. */
export interface RecordedAttempt {
  readonly position: number
  readonly superseded: boolean
}

export interface DeliveryLogOptions {
  readonly store: Pick<EventStore, 'append' | 'appendMany' | 'readStream'>
  readonly clock: () => number
  readonly newId: () => string
  /** Stamped on every event as `metadata.origin`: the read model of this instance publishes their outcomes. */
  readonly origin: string
}

// A concurrent writer (a replay during an attempt, a second deliverer) makes an append fail;
// the command is decided again on the fresh state a few times before giving up.
const MAX_ATTEMPTS = 3

/**
 * The delivery aggregate on the EventStore port: one stream per delivery, appended with
 * optimistic concurrency. Event ids are derived from the delivery and attempt, so an append
 * retried after a lost answer is not written twice.
 *
 * @example
 * const deliveries = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId })
 * await view.waitFor(await deliveries.request({ deliveryId, account, endpoint, configurationId, event,
 *   matchedSelectorIds, createdAt }))
 */
export const createDeliveryLog = ({ store, clock, newId, origin }: DeliveryLogOptions): DeliveryLog => {
  const load = async (deliveryId: string): Promise<{ state: DeliveryState; revision: ExpectedRevision }> => {
    const recorded = await store.readStream(deliveryStream(deliveryId))
    let state = initialState
    for (const event of recorded) {
      const decoded = decodeDeliveryEvent(event)
      if (decoded.ok) state = evolve(state, decoded.value)
    }
    const last = recorded.at(-1)
    return { state, revision: last === undefined ? 'no_stream' : last.revision }
  }

  const idOf = (event: NewDeliveryEvent): string => {
    switch (event.type) {
      case 'DeliveryRequested':
        return 'requested'
      case 'DeliveryReplayed':
        return newId()
      default:
        return `attempt-${String(event.data.attempt)}-${event.type}`
    }
  }

  const toEventData = (events: readonly NewDeliveryEvent[]): EventData[] =>
    events.map((event) => ({
      id: idOf(event),
      type: event.type,
      data: event.data,
      metadata: { origin } satisfies JsonObject,
    }))

  const append = async (
    deliveryId: string,
    events: readonly NewDeliveryEvent[],
    expectedRevision: ExpectedRevision,
  ): Promise<number> => {
    if (events.length === 0) return 0
    const result = await store.append(deliveryStream(deliveryId), toEventData(events), { expectedRevision })
    return result.position
  }

  /** Decides on `state` first, then on fresh state after each conflict; the events decided and where they went. */
  const decideAndAppend = async (
    deliveryId: string,
    command: DeliveryCommand,
    first?: { state: DeliveryState; revision: ExpectedRevision },
  ): Promise<{ events: readonly NewDeliveryEvent[]; position: number }> => {
    let current = first ?? (await load(deliveryId))
    for (let attempt = 1; ; attempt++) {
      const events = decide(command, current.state)
      try {
        return { events, position: await append(deliveryId, events, current.revision) }
      } catch (error) {
        if (!isExpectedRevisionConflict(error) || attempt >= MAX_ATTEMPTS) throw error
        current = await load(deliveryId)
      }
    }
  }

  const handle = async (
    deliveryId: string,
    command: DeliveryCommand,
    first?: { state: DeliveryState; revision: ExpectedRevision },
  ): Promise<number> => (await decideAndAppend(deliveryId, command, first)).position

  const request: DeliveryLog['request'] = (request) =>
    handle(
      request.deliveryId,
      { type: 'RequestDelivery', request, now: clock() },
      { state: initialState, revision: 'no_stream' },
    )

  const requestMany: DeliveryLog['requestMany'] = async (requests) => {
    const byId = new Map<string, Omit<DeliveryRequestedData, 'at'>>()
    for (const r of requests) if (!byId.has(r.deliveryId)) byId.set(r.deliveryId, r)
    const unique = [...byId.values()]
    const now = clock()
    // Every request is decided on a new stream, as `request` does first: one recorded before is
    // the same append again, which the store recognises as a retry and answers without writing.
    const appends = unique.map((r) => ({
      stream: deliveryStream(r.deliveryId),
      events: toEventData(decide({ type: 'RequestDelivery', request: r, now }, initialState)),
      expectedRevision: 'no_stream' as const,
    }))
    try {
      const results = await store.appendMany(appends)
      return results.reduce((highest, r) => Math.max(highest, r.position), 0)
    } catch (error) {
      if (!isExpectedRevisionConflict(error)) throw error
    }
    // Some stream holds something else than this request first (never in Herald's own use):
    // decide on each stream's state, as one `request` at a time would.
    let position = 0
    for (const r of unique) position = Math.max(position, await request(r))
    return position
  }

  return {
    request,
    requestMany,
    record: async (delivery, details, resolution) => {
      const { events, position } = await decideAndAppend(
        delivery.deliveryId,
        {
          type: 'RecordAttempt',
          deliveryId: delivery.deliveryId,
          attempt: delivery.attempts + 1,
          replays: delivery.replays,
          details,
          resolution,
          now: clock(),
        },
        // What `decide` reads of the state for an attempt; a conflict loads the whole stream.
        {
          state: {
            ...initialState,
            status: delivery.status,
            attempts: delivery.attempts,
            replays: delivery.replays,
          },
          revision: delivery.revision,
        },
      )
      // Every outcome appends an event besides the attempt's answer; a superseded one none.
      return { position, superseded: !events.some((e) => e.type !== 'DeliveryAttempted') }
    },
    replay: (deliveryId, by, listed) =>
      handle(deliveryId, {
        type: 'ReplayDelivery',
        deliveryId,
        by,
        now: clock(),
        ...(listed === undefined ? {} : { listed }),
      }),
  }
}
