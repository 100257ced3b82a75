import type { FieldIssue } from '../errors/index.ts'
import type { LogMessage, OutgoingMessage } from '../ports/event-log.ts'
import { type CloudEvent, type Decoded, decodeCloudEvent } from './cloudevent.ts'

const decoder = new TextDecoder('utf-8', { fatal: true })

// One frozen object for every event: the log works out its JSON once, and a decoder that was
// told what a value holds knows the headers it was told with.
const STRUCTURED_HEADERS = Object.freeze({ 'content-type': 'application/cloudevents+json; charset=utf-8' })

/**
 * Puts an event on the log in CloudEvents' Kafka structured mode, keyed by account so one
 * account's events keep their order.
 */
export const encodeLogEvent = (event: CloudEvent): OutgoingMessage => ({
  key: event.account,
  // Buffer.from rather than TextEncoder: about a third of the time for a kilobyte event.
  value: Buffer.from(JSON.stringify(event)),
  headers: STRUCTURED_HEADERS,
})

/** Reads a structured-mode event back; undecodable bytes become issues, never exceptions. */
export const decodeLogEvent = (message: LogMessage): Decoded<CloudEvent> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(message.value))
  } catch (error) {
    const issue: FieldIssue = { path: '(value)', message: `not UTF-8 JSON: ${(error as Error).message}` }
    return { ok: false, issues: [issue] }
  }
  return decodeCloudEvent(parsed)
}
