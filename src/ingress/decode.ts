import { loopSlice, type Slice } from '../cooperative.ts'
import { type FieldIssue, NotFoundError } from '../errors/index.ts'
import { type Decoded, notAsHeraldEmits } from '../events/index.ts'
import type { Headers, LogMessage } from '../ports/event-log.ts'
import { dataFromBody, eventFromBinary, KAFKA_HEADER_PREFIX, kafkaMode } from './cloudevents-binding.ts'
import { decodeEvent, type IngressEvent, isUnknownType } from './contract.ts'
import { parseJsonBytes } from './payload-decoders.ts'
import { createSchemaDecoders, isLookupFailure, type SchemaDecoders } from './schema-decoders.ts'
import type { DeferredCheck, SchemaRegistry } from './schema-registry.ts'
import { FRAME_HEADER_BYTES, frameSchemaId, isFramed } from './wire-format.ts'

/**
 * Why a message was refused, as the dead-letter headers name it:
 * - `wire_format_invalid`: a zero magic byte, then fewer than the 4 bytes of a schema id;
 * - `schema_not_found`: a schema id the registry never issued;
 * - `schema_unsupported`: a schema of a type Herald cannot read (Protobuf);
 * - `payload_undecodable`: not UTF-8 JSON, or not Avro of its schema;
 * - `schema_invalid`: a payload its own writer schema rejects;
 * - `content_type_unsupported`: a batch, or binary data that is neither JSON nor text;
 * - `event_type_unknown`: a `type` outside the event catalog;
 * - `event_invalid`: anything else the event contract rejects;
 * - `event_reserved`: an event of Herald's own types or sources (`system.notifications.*`,
 *   `/herald`) that is not as Herald emits them (`notAsHeraldEmits`);
 * - `event_unroutable`: an event the contract accepts that the router cannot write into a
 *   command (nested deeper than JSON serialisation goes), or whose command is larger than the
 *   event log takes in one message.
 */
export type IngressFailureCode =
  | 'wire_format_invalid'
  | 'schema_not_found'
  | 'schema_unsupported'
  | 'payload_undecodable'
  | 'schema_invalid'
  | 'content_type_unsupported'
  | 'event_type_unknown'
  | 'event_invalid'
  | 'event_reserved'
  | 'event_unroutable'

export interface IngressFailure {
  readonly code: IngressFailureCode
  /** One line for people: the first issues, joined. */
  readonly message: string
  readonly issues: readonly FieldIssue[]
}

export type IngressResult =
  | { readonly ok: true; readonly event: IngressEvent }
  | { readonly ok: false; readonly failure: IngressFailure }

/**
 * Turns `engine.events` messages into events or reasons: CloudEvents structured or binary
 * mode, plain JSON or the Confluent wire format, then the one event contract.
 *
 * @example
 * const results = await decoder.decodeBatch(batch.messages) // one result per message, in order
 */
export interface IngressDecoder {
  /**
   * Rejects only when the schema registry cannot answer (retriable): then no message of the
   * batch can be judged, and none may be dead-lettered for the registry's fault.
   */
  decodeBatch(messages: readonly LogMessage[]): Promise<IngressResult[]>
  /**
   * Tells the decoder what a message about to be published holds: `event`, which the default
   * contract (`decodeEvent`) accepted, encoded by `encodeLogEvent` into `message`. A consumer of
   * this process that is handed the same value (the embedded log hands out what was published)
   * then gets that event without reading and judging the bytes again. Nothing is remembered by
   * a decoder that does not keep what it decodes (`keepDecoded` option), nor by one with a
   * contract of its own (`decodeEvent` option), nor of an event its JSON text does not hold
   * exactly (a number too large for JSON, -0, an `undefined` member), which is read from the
   * bytes as before.
   */
  remember(message: { readonly value: Uint8Array; readonly headers?: Headers }, event: IngressEvent): void
}

export interface IngressDecoderOptions {
  /** Without one, any framed value is refused as `schema_not_found`. */
  readonly registry?: Pick<SchemaRegistry, 'decoderFor'>
  /** A cache to share; by default one is made around `registry`. */
  readonly decoders?: SchemaDecoders
  /** The event contract; `decodeEvent` by default. */
  readonly decodeEvent?: (input: unknown) => Decoded<IngressEvent>
  /** When a batch's decoding lets other work run: the process's shared slice by default. */
  readonly slice?: Slice
  /**
   * Keep what each value decodes to (and what `remember` is told), by the value itself, so a
   * second consumer handed the same value reads nothing: on for the embedded log, which hands
   * every consumer group of the process the published messages themselves. Off by default:
   * values fetched from Kafka are each consumer's own, never handed to another, so keeping
   * them would only cost (a weak map entry per message, and the collector's work on it).
   */
  readonly keepDecoded?: boolean
}

const MAX_MESSAGE_ISSUES = 3

/**
 * Whether a value read back from its JSON text is the value itself: JSON holds no number
 * outside the finite ones (a literal such as 1e400 parses to Infinity, and is written as
 * `null`), no -0 (written as 0) and no `undefined` (left out).
 */
const sameWhenRead = (value: unknown): boolean => {
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0)
  if (value === undefined) return false
  if (typeof value !== 'object' || value === null) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!sameWhenRead(value[i])) return false
    return true
  }
  for (const key in value) if (!sameWhenRead((value as Record<string, unknown>)[key])) return false
  return true
}

export const failure = (code: IngressFailureCode, issues: readonly FieldIssue[]): IngressFailure => {
  const shown = issues.slice(0, MAX_MESSAGE_ISSUES).map((i) => {
    const line = `${i.path}: ${i.message}`
    return line.length > 200 ? `${line.slice(0, 199)}…` : line
  })
  const more = issues.length > MAX_MESSAGE_ISSUES ? `; and ${issues.length - MAX_MESSAGE_ISSUES} more` : ''
  return { code, message: `${shown.join('; ')}${more}`, issues }
}

// An attribute or content type whose bytes were no UTF-8 text cannot be read faithfully: ids
// differing only in their bad bytes would read the same, and the second be skipped as a repeat.
// Other headers (a producer's own, binary ones) are not Herald's to judge.
const unreadableHeaders = (names: readonly string[]): FieldIssue[] =>
  names
    .filter((name) => {
      const lower = name.toLowerCase()
      return lower === 'content-type' || lower.startsWith(KAFKA_HEADER_PREFIX)
    })
    .map((name) => ({ path: name, message: 'is not UTF-8 text' }))

const fail = (code: IngressFailureCode, issues: readonly FieldIssue[]): IngressResult => ({
  ok: false,
  failure: failure(code, issues),
})

const contractFailure = (issues: readonly FieldIssue[]): IngressResult =>
  fail(isUnknownType(issues) ? 'event_type_unknown' : 'event_invalid', issues)

const noRegistry: Pick<SchemaRegistry, 'decoderFor'> = {
  decoderFor: async (id) => {
    throw new NotFoundError(`no schema registry is configured to resolve schema id ${id}`)
  },
}

/**
 * A payload read; `deferred` holds its writer schema's check where the contract may stand in
 * for it. A failure with a `value` is a payload read that its writer schema refused.
 */
type Step =
  | { readonly ok: true; readonly value: unknown; readonly deferred?: DeferredCheck }
  | {
      readonly ok: false
      readonly code: IngressFailureCode
      readonly issues: readonly FieldIssue[]
      readonly value?: unknown
    }

/** Issues about binary mode's value, which is `data`, named as the contract names them. */
const inData = (issues: readonly FieldIssue[]): FieldIssue[] =>
  issues.map((i) => ({
    ...i,
    path: i.path === '(root)' ? 'data' : i.path.startsWith('[') ? `data${i.path}` : `data.${i.path}`,
  }))

/**
 * What a message whose writer schema refused its payload is told: when the contract refuses
 * the event too, its issues, which name the same faults as for an event not framed (its
 * messages, its paths, an extension by its name), then the schema's about any other field (a
 * `type` another than the schema's); when the contract accepts it, the schema's alone.
 */
const refusedIssues = (
  schema: readonly FieldIssue[],
  contract: readonly FieldIssue[] | undefined,
): readonly FieldIssue[] => {
  if (contract === undefined) return schema
  const named = new Set(contract.map((i) => i.path))
  return [...contract, ...schema.filter((i) => !named.has(i.path))]
}

export const createIngressDecoder = (options: IngressDecoderOptions = {}): IngressDecoder => {
  const decoders = options.decoders ?? createSchemaDecoders(options.registry ?? noRegistry)
  const contract = options.decodeEvent ?? decodeEvent
  const slice = options.slice ?? loopSlice
  // What each value published or already decoded in this process holds, by the value itself:
  // the router and the projector both read every event, and on the embedded log they are
  // handed the same bytes, so the second reads nothing. A result holds only for the headers it
  // was decoded with (they say how to read the bytes); an entry goes with its value.
  const known =
    options.keepDecoded === true
      ? new WeakMap<Uint8Array, { readonly headers: Headers | undefined; readonly result: IngressResult }>()
      : undefined

  // The payload is read in place, past the frame's header: no view of it is made per message.
  // The check of one of Herald's own schemas waits for the contract, which makes it anyway.
  const framedPayload = (value: Uint8Array, mode: 'structured' | 'binary'): Step => {
    if (value.length < FRAME_HEADER_BYTES) {
      return {
        ok: false,
        code: 'wire_format_invalid',
        issues: [{ path: '(value)', message: `a Confluent frame needs 5 header bytes, got ${value.length}` }],
      }
    }
    const schemaId = frameSchemaId(value)
    const decoder = decoders.lookup(schemaId)
    if (decoder === undefined || isLookupFailure(decoder)) {
      const message = decoder?.message ?? `schema id ${schemaId} is not registered`
      return {
        ok: false,
        code: decoder?.code ?? 'schema_not_found',
        issues: [{ path: '(schema id)', message }],
      }
    }
    const deferred = decoder.deferred
    if (deferred === undefined || deferred.coverage.mode !== mode)
      return decoder.decode(value, FRAME_HEADER_BYTES)
    const read = deferred.read(value, FRAME_HEADER_BYTES)
    return read.ok ? { ok: true, value: read.value, deferred } : read
  }

  const structuredBody = (value: Uint8Array): Step => {
    if (isFramed(value)) return framedPayload(value, 'structured')
    const parsed = parseJsonBytes(value)
    return parsed.ok ? parsed : { ok: false, code: 'payload_undecodable', issues: parsed.issues }
  }

  const binaryData = (value: Uint8Array, contentType: string): Step => {
    if (isFramed(value)) return framedPayload(value, 'binary')
    const body = dataFromBody(contentType, value)
    return body.ok ? { ok: true, value: body.data } : body
  }

  const decodeOne = (message: LogMessage): IngressResult => {
    if (message.undecodableHeaders !== undefined) {
      const unread = unreadableHeaders(message.undecodableHeaders)
      if (unread.length > 0) return fail('payload_undecodable', unread)
    }
    const mode = kafkaMode(message.headers)
    if (mode.mode === 'unsupported')
      return fail('content_type_unsupported', [{ path: 'content-type', message: mode.reason }])
    const body =
      mode.mode === 'structured' ? structuredBody(message.value) : binaryData(message.value, mode.contentType)
    if (!body.ok && !('value' in body)) return fail(body.code, body.issues)
    // A framed payload has been decoded to JSON data, whatever type its header named
    // (`application/avro`, a registry's media type): the event says what it now holds.
    const candidate =
      mode.mode === 'structured'
        ? body.value
        : eventFromBinary(
            mode.attributes,
            mode.contentType !== '' && isFramed(message.value) ? 'application/json' : mode.contentType,
            body.value,
          )
    const decoded = contract(candidate)
    // An event the contract accepted, of the type its writer schema is for, passes that schema
    // too; any other is checked against it, so a payload its schema refuses is named as such.
    const deferred = body.ok ? body.deferred : undefined
    const refused = !body.ok
      ? body.issues
      : deferred !== undefined &&
          !(decoded.ok && (deferred.coverage.type ?? decoded.value.type) === decoded.value.type)
        ? deferred.check(body.value)
        : undefined
    if (refused !== undefined) {
      const schema = mode.mode === 'binary' ? inData(refused) : refused
      return fail('schema_invalid', refusedIssues(schema, decoded.ok ? undefined : decoded.issues))
    }
    if (!decoded.ok) return contractFailure(decoded.issues)
    const impostor = notAsHeraldEmits(decoded.value)
    return impostor.length > 0 ? fail('event_reserved', impostor) : { ok: true, event: decoded.value }
  }

  return {
    async decodeBatch(messages) {
      const unknown = new Set<number>()
      for (const { value } of messages) {
        if (!isFramed(value) || value.length < FRAME_HEADER_BYTES) continue
        const schemaId = frameSchemaId(value)
        if (decoders.lookup(schemaId) === undefined) unknown.add(schemaId)
      }
      if (unknown.size > 0) await decoders.prepare(unknown)
      // A projector batch is thousands of messages: decoded in slices, the loop free between.
      const results = new Array<IngressResult>(messages.length)
      for (let i = 0; i < messages.length; i++) {
        if (slice.due()) await slice.pause()
        const message = messages[i] as LogMessage
        const memo = known?.get(message.value)
        if (memo !== undefined && memo.headers === message.headers) {
          results[i] = memo.result
          continue
        }
        const result = decodeOne(message)
        known?.set(message.value, { headers: message.headers, result })
        results[i] = result
      }
      return results
    },
    remember(message, event) {
      if (known !== undefined && contract === decodeEvent && sameWhenRead(event))
        known.set(message.value, { headers: message.headers, result: { ok: true, event } })
    },
  }
}
