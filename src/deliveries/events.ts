import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { type Decoded, RecordedCloudEvent, toFieldIssues } from '../events/index.ts'
import { ENDPOINT_TYPES, type EndpointType } from '../notifications/index.ts'
import { MAX_APPEND_BYTES } from '../ports/event-store.ts'

/**
 * The delivery log: one event stream per delivery (`delivery-<id>`, the id being
 * sha256(event account, source and id, configuration id); see `deliveryIdFor`), holding what
 * was asked, every attempt and how it ended.
 * Its history is what `GET /v1/notifications/deliveries/{id}` shows and what the retry
 * scheduler resumes from after a restart. Nothing in it is secret: attempts carry the
 * channels' scrubbed summaries only.
 */
export const DELIVERY_STREAM_PREFIX = 'delivery-'

export const deliveryStream = (deliveryId: string): string => `${DELIVERY_STREAM_PREFIX}${deliveryId}`

export const isDeliveryStream = (stream: string): boolean => stream.startsWith(DELIVERY_STREAM_PREFIX)

/**
 * The largest delivery command, in bytes as the event log counts a message, whose
 * `DeliveryRequested` the event store takes in one append (`MAX_APPEND_BYTES`): the request
 * holds the command's fields as they came, plus when it was recorded, its metadata and type,
 * well within the 4 KiB left over. The router sets aside an event whose command is larger, as
 * it does one larger than the event log takes, rather than let the deliverer fail on it.
 */
export const MAX_DELIVERY_COMMAND_BYTES = MAX_APPEND_BYTES - 4096

/**
 * Where a delivery stands. `pending`: waiting for its first attempt (or its first after a
 * replay); `retrying`: an attempt failed and another is scheduled; the rest are settled.
 */
export const DELIVERY_STATUSES = [
  'pending',
  'retrying',
  'sent',
  'rejected',
  'skipped',
  'dead_lettered',
] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

export const isDeliveryStatus = (value: string): value is DeliveryStatus =>
  (DELIVERY_STATUSES as readonly string[]).includes(value)

export const isSettled = (status: DeliveryStatus): boolean => status !== 'pending' && status !== 'retrying'

/** How one attempt ended: the `outcome` of a `notifications.outcomes` record. */
export const ATTEMPT_OUTCOMES = ['sent', 'failed', 'rejected', 'skipped', 'dead_lettered'] as const
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number]

const EndpointTypeCodec = t.keyof(
  Object.fromEntries(ENDPOINT_TYPES.map((e) => [e, null])) as Record<EndpointType, null>,
  'EndpointType',
)
const Nullable = <C extends t.Mixed>(codec: C) => t.union([t.null, codec])

const DeliveryRequestedData = t.intersection([
  t.type({
    deliveryId: t.string,
    account: t.string,
    endpoint: EndpointTypeCodec,
    configurationId: t.string,
    /**
     * The engine event as the router accepted it: metadata only, never a secret. Read as it was
     * recorded, so a delivery of an event accepted under older rules stays readable.
     */
    event: RecordedCloudEvent,
    matchedSelectorIds: t.readonlyArray(t.string),
    /** When the router decided the delivery (RFC 3339). */
    createdAt: t.string,
    /** When the deliverer recorded it (RFC 3339): the first attempt is due then. */
    at: t.string,
  }),
  t.partial({
    /** A digest delivery's window summary, as the router sent it: counts and the first events, metadata only. */
    digest: t.UnknownRecord,
  }),
])

const DeliveryAttemptedData = t.type({
  deliveryId: t.string,
  attempt: t.number,
  at: t.string,
  ok: t.boolean,
  /** HTTP status or SMTP reply code; null when no answer came. */
  status: Nullable(t.number),
  latencyMs: t.number,
  /** The channel's failure code (`http_status`, `timeout`, …); null on success. */
  code: Nullable(t.string),
  /** Why it failed, scrubbed of the configuration's secrets by the channel; null on success. */
  error: Nullable(t.string),
  /** A short, scrubbed summary of the answer (`ok`, `created SEC-4`); null on failure. */
  response: Nullable(t.string),
})

const DeliverySucceededData = t.type({ deliveryId: t.string, attempt: t.number, at: t.string })

const DeliveryFailedData = t.type({
  deliveryId: t.string,
  attempt: t.number,
  at: t.string,
  /** `failed`: another attempt follows at `nextAttemptAt`; `rejected` and `skipped` are final. */
  outcome: t.keyof({ failed: null, rejected: null, skipped: null }),
  /** `skipped`: why nothing was sent (`configuration_disabled`, …); else the failure kind. */
  reason: t.string,
  nextAttemptAt: Nullable(t.string),
  /** What the endpoint's `Retry-After` asked for, in milliseconds; null when it said nothing. */
  retryAfterMs: Nullable(t.number),
})

const DeliveryDeadLetteredData = t.type({
  deliveryId: t.string,
  attempt: t.number,
  at: t.string,
  reason: t.string,
})

const DeliveryReplayedData = t.type({
  deliveryId: t.string,
  at: t.string,
  /** `<account>/<role>` of whoever asked. */
  by: t.string,
})

export const DeliveryEvent = t.union([
  t.type({ type: t.literal('DeliveryRequested'), data: DeliveryRequestedData }),
  t.type({ type: t.literal('DeliveryAttempted'), data: DeliveryAttemptedData }),
  t.type({ type: t.literal('DeliverySucceeded'), data: DeliverySucceededData }),
  t.type({ type: t.literal('DeliveryFailed'), data: DeliveryFailedData }),
  t.type({ type: t.literal('DeliveryDeadLettered'), data: DeliveryDeadLetteredData }),
  t.type({ type: t.literal('DeliveryReplayed'), data: DeliveryReplayedData }),
])
export type DeliveryEvent = t.TypeOf<typeof DeliveryEvent>
export type DeliveryEventOf<K extends DeliveryEvent['type']> = Extract<DeliveryEvent, { type: K }>
export type DeliveryRequestedData = t.TypeOf<typeof DeliveryRequestedData>
export type DeliveryAttemptedData = t.TypeOf<typeof DeliveryAttemptedData>

export const decodeDeliveryEvent = (recorded: {
  readonly type: string
  readonly data: unknown
}): Decoded<DeliveryEvent> => {
  const result = DeliveryEvent.decode({ type: recorded.type, data: recorded.data })
  return isLeft(result)
    ? { ok: false, issues: toFieldIssues(result.left) }
    : { ok: true, value: result.right }
}
