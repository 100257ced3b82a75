import { createHash } from 'node:crypto'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { CloudEvent, type Decoded, toFieldIssues } from '../../src/events/index.ts'
import type { EndpointType } from '../../src/notifications/index.ts'
import type { LogMessage, OutgoingMessage } from '../../src/ports/index.ts'

/**
 * What the router asks the deliverer to do: deliver one event to one configuration. This is
 * the value of the `notifications.deliveries` topic, so its JSON shape is a contract with
 * downstream consumers.
 */
export interface DeliveryCommand {
  /** sha256(event id, configuration id): redeliveries and replays carry the same id. */
  readonly deliveryId: string
  /** The account that owns the configuration (for global selectors, not the event's). */
  readonly account: string
  readonly endpoint: EndpointType
  readonly configurationId: string
  readonly event: CloudEvent
  readonly matchedSelectorIds: readonly string[]
  /** RFC 3339, when the router decided the delivery. */
  readonly createdAt: string
}

export const DeliveryCommandCodec = t.type({
  deliveryId: t.string,
  account: t.string,
  endpoint: t.keyof({ slack: null, teams: null, email: null, webhook: null, github: null, jira: null }),
  configurationId: t.string,
  event: CloudEvent,
  matchedSelectorIds: t.readonlyArray(t.string),
  createdAt: t.string,
})

/**
 * @example
 * deliveryIdFor('evt-1', '0b0c…') // 64 hex characters, the same on every call
 */
export const deliveryIdFor = (eventId: string, configurationId: string): string =>
  createHash('sha256').update(`${eventId}\u0000${configurationId}`).digest('hex')

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Keyed by configuration, so one endpoint's deliveries stay in order in one partition. */
export const encodeDeliveryCommand = (command: DeliveryCommand): OutgoingMessage => ({
  key: command.configurationId,
  value: encoder.encode(JSON.stringify(command)),
  headers: { 'content-type': 'application/json', 'herald-type': 'DeliveryCommand' },
})

export const decodeDeliveryCommand = (message: LogMessage): Decoded<DeliveryCommand> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(message.value))
  } catch (error) {
    return {
      ok: false,
      issues: [{ path: '(value)', message: `not UTF-8 JSON: ${(error as Error).message}` }],
    }
  }
  const result = DeliveryCommandCodec.decode(parsed)
  return isLeft(result)
    ? { ok: false, issues: toFieldIssues(result.left) }
    : { ok: true, value: result.right }
}
