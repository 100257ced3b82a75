import type { FieldIssue } from '../errors/index.ts'
import type { Headers, OutgoingMessage } from '../ports/event-log.ts'
import { encodeFrame } from './wire-format.ts'

/**
 * CloudEvents' protocol bindings as Herald reads them, shared by Kafka and HTTP so both turn
 * the same bytes into the same candidate event before the one contract judges it.
 *
 * Kafka (kafka-protocol-binding 1.0): structured mode carries the whole event as the value,
 * `content-type: application/cloudevents+json`; binary mode carries the attributes in
 * `ce_<name>` headers and `data` as the value, with `content-type` as `datacontenttype`.
 * A message with no `ce_specversion` header is read as structured, so producers that set no
 * headers at all (a bare `kcat -P`, a Confluent serializer) are understood.
 */

export const STRUCTURED_MEDIA_TYPE = 'application/cloudevents+json'
export const BATCH_MEDIA_TYPE = 'application/cloudevents-batch+json'
export const KAFKA_HEADER_PREFIX = 'ce_'
export const HTTP_HEADER_PREFIX = 'ce-'

/** `Application/JSON; charset=utf-8` → `application/json`. */
export const mediaType = (header: string | undefined): string => {
  if (header === undefined) return ''
  const semicolon = header.indexOf(';')
  return (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase()
}

export const isJsonMediaType = (type: string): boolean =>
  type === 'application/json' || type === 'text/json' || type.endsWith('+json')

export type KafkaMode =
  | { readonly mode: 'structured' }
  | {
      readonly mode: 'binary'
      readonly attributes: Readonly<Record<string, string>>
      readonly contentType: string
    }
  | { readonly mode: 'unsupported'; readonly reason: string }

const STRUCTURED: KafkaMode = { mode: 'structured' }
// A literal, not a template: a key built per call is a fresh string, hashed on every lookup.
const SPECVERSION_HEADER = 'ce_specversion'

/** Reads the mode off a Kafka message's headers; no allocation for structured messages. */
export const kafkaMode = (headers: Headers): KafkaMode => {
  const contentType = mediaType(headers['content-type'])
  if (contentType === BATCH_MEDIA_TYPE)
    return {
      mode: 'unsupported',
      reason: `${BATCH_MEDIA_TYPE} is not defined for Kafka; send one event per message`,
    }
  if (contentType.startsWith('application/cloudevents')) {
    return contentType === STRUCTURED_MEDIA_TYPE
      ? STRUCTURED
      : { mode: 'unsupported', reason: `structured mode needs ${STRUCTURED_MEDIA_TYPE}, got ${contentType}` }
  }
  // Attribute headers are read whatever their case (`prefixedAttributes`), so is this one.
  if (headers[SPECVERSION_HEADER] === undefined && !hasHeader(headers, SPECVERSION_HEADER)) return STRUCTURED
  return { mode: 'binary', attributes: prefixedAttributes(headers, KAFKA_HEADER_PREFIX), contentType }
}

const hasHeader = (headers: Headers, lowerCaseName: string): boolean => {
  for (const name in headers) if (name.toLowerCase() === lowerCaseName) return true
  return false
}

// Header name → attribute name (null: not an attribute), per prefix. Producers send the same
// dozen names on every message; remembering them spares a lower-casing, a slice and the
// interning of a fresh property key per header (the most of binary mode's decode cost).
// Bounded, so a producer inventing names costs only the uncached path.
const attributeNames = new Map<string, Map<string, string | null>>()
const NAMES_REMEMBERED = 1_024

/** `ce_id: e1` → `{ id: 'e1' }`; attribute names are lower case in every binding. */
export const prefixedAttributes = (
  headers: Iterable<[string, string]> | Headers,
  prefix: string,
): Record<string, string> => {
  let names = attributeNames.get(prefix)
  if (names === undefined) {
    names = new Map()
    attributeNames.set(prefix, names)
  }
  const known = names
  const attributes: Record<string, string> = {}
  const add = (name: string, value: string) => {
    let attribute = known.get(name)
    if (attribute === undefined) {
      const lower = name.toLowerCase()
      attribute = lower.startsWith(prefix) && lower.length > prefix.length ? lower.slice(prefix.length) : null
      if (known.size < NAMES_REMEMBERED) known.set(name, attribute)
    }
    if (attribute !== null) attributes[attribute] = value
  }
  if (Symbol.iterator in headers)
    for (const [name, value] of headers as Iterable<[string, string]>) add(name, value)
  else for (const name in headers) add(name, (headers as Headers)[name] as string)
  return attributes
}

export type DataResult =
  | { readonly ok: true; readonly data: unknown }
  | {
      readonly ok: false
      readonly code: 'payload_undecodable' | 'content_type_unsupported'
      readonly issues: FieldIssue[]
    }

const NO_DATA: DataResult = { ok: true, data: undefined }
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A binary-mode body as `data`: JSON when the content type says so or says nothing (the
 * CloudEvents default), text for `text/*`. Any other type would need `data_base64`, which
 * Herald does not accept, so it is refused rather than mangled.
 */
export const dataFromBody = (contentType: string, body: Uint8Array | string): DataResult => {
  if (body.length === 0) return NO_DATA
  const json = contentType === '' || isJsonMediaType(contentType)
  if (!json && !contentType.startsWith('text/')) {
    return {
      ok: false,
      code: 'content_type_unsupported',
      issues: [
        {
          path: 'datacontenttype',
          message: `binary data (${contentType}) is not accepted; send JSON or text`,
        },
      ],
    }
  }
  let text: string
  try {
    text = typeof body === 'string' ? body : utf8.decode(body)
  } catch {
    return {
      ok: false,
      code: 'payload_undecodable',
      issues: [{ path: 'data', message: 'is not valid UTF-8' }],
    }
  }
  if (!json) return { ok: true, data: text }
  try {
    return { ok: true, data: JSON.parse(text) }
  } catch (error) {
    return {
      ok: false,
      code: 'payload_undecodable',
      issues: [{ path: 'data', message: `is not JSON: ${(error as Error).message}` }],
    }
  }
}

/** The candidate event of a binary-mode message: its attributes, then `data` if any. */
export const eventFromBinary = (
  attributes: Readonly<Record<string, string>>,
  contentType: string,
  data: unknown,
): Record<string, unknown> => {
  const event: Record<string, unknown> = { ...attributes }
  if (contentType !== '') event.datacontenttype = contentType
  if (data !== undefined) event.data = data
  return event
}

/** What producers (and tests) put on Kafka; Herald's own log writes structured JSON. */
export interface KafkaEventOptions {
  readonly mode: 'structured' | 'binary'
  /** Confluent wire format with this schema id; plain JSON when absent. */
  readonly schemaId?: number
}

const encoder = new TextEncoder()

/**
 * Encodes an event for `engine.events` in either mode, keyed by account.
 *
 * @example
 * toKafkaMessage(event, { mode: 'binary' })
 * // { key: 'acme', value: <data as JSON>, headers: { ce_specversion: '1.0', ce_id: 'e1', ... } }
 */
export const toKafkaMessage = (
  event: Readonly<Record<string, unknown>>,
  options: KafkaEventOptions,
): OutgoingMessage => {
  const frame = (json: string) => {
    const bytes = encoder.encode(json)
    return options.schemaId === undefined ? bytes : encodeFrame(options.schemaId, bytes)
  }
  const key = typeof event.account === 'string' ? event.account : null
  if (options.mode === 'structured') {
    return {
      key,
      value: frame(JSON.stringify(event)),
      headers: { 'content-type': `${STRUCTURED_MEDIA_TYPE}; charset=utf-8` },
    }
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(event)) {
    if (name === 'data' || name === 'datacontenttype' || value === undefined) continue
    headers[`${KAFKA_HEADER_PREFIX}${name}`] = typeof value === 'string' ? value : JSON.stringify(value)
  }
  if (typeof event.datacontenttype === 'string') headers['content-type'] = event.datacontenttype
  return {
    key,
    value: event.data === undefined ? new Uint8Array(0) : frame(JSON.stringify(event.data)),
    headers,
  }
}
