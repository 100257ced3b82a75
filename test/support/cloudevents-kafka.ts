import type { Message } from 'kafkajs'

/** A CloudEvent as producers hand it over: attributes, extensions and `data`. */
export type CloudEventLike = { readonly [attribute: string]: unknown; readonly account: string }

/**
 * The CloudEvents Kafka protocol binding, written from the specification rather than from
 * Herald's code, so tests produce what any other producer would. Structured mode: the whole
 * event as JSON, `content-type: application/cloudevents+json`. Both modes key by account.
 *
 * @example
 * await producer.send({ topic: 'engine.events', messages: [structuredMessage(event)] })
 */
export const structuredMessage = (event: CloudEventLike): Message => ({
  key: event.account,
  value: JSON.stringify(event),
  headers: { 'content-type': 'application/cloudevents+json' },
})

/**
 * Binary mode: every attribute but `data` in a `ce_<name>` header, `data` as the value and
 * `datacontenttype` as the message's `content-type` (JSON when the event names none).
 *
 * @example
 * await producer.send({ topic: 'engine.events', messages: [binaryMessage(event)] })
 */
export const binaryMessage = (event: CloudEventLike): Message => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(event)) {
    if (name === 'data' || name === 'datacontenttype' || value === undefined) continue
    headers[`ce_${name}`] = String(value)
  }
  headers['content-type'] = String(event.datacontenttype ?? 'application/json')
  return { key: event.account, value: JSON.stringify(event.data), headers }
}
