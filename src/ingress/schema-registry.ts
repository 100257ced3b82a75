import type { FieldIssue } from '../errors/index.ts'

/**
 * SchemaRegistry: Herald's port to the schemas behind the Confluent wire format. The
 * embedded adapter serves the schemas in `schemas/` from memory; the distributed one is a
 * Confluent Schema Registry. Either way a schema id resolves to a decoder once; the ingress
 * caches it, so no message pays for a lookup or a schema compilation.
 *
 * `decoderFor` rejects with a `NotFoundError` when the registry never issued the id (the
 * message is a poison pill) and with an `UnavailableError` when the registry cannot answer
 * (the batch is retried; the message is not to blame).
 *
 * @example
 * const id = await registry.register('engine.events-value', { type: 'JSON', schema: JSON.stringify(envelope) })
 * const decoder = await registry.decoderFor(id)
 * decoder.decode(payload) // { ok: true, value: {...} } or { ok: false, code: 'schema_invalid', issues }
 */
export type SchemaType = 'JSON' | 'AVRO'

export interface SchemaDefinition {
  readonly type: SchemaType
  /** The schema's text, as the registry stores it. */
  readonly schema: string
}

export type PayloadFailureCode = 'payload_undecodable' | 'schema_invalid'

export type PayloadResult =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false
      readonly code: PayloadFailureCode
      readonly issues: FieldIssue[]
      /** A payload read that its schema refused (`schema_invalid`): what it holds. */
      readonly value?: unknown
    }

/**
 * Which events Herald's event contract checks exactly as a schema does: that of one of
 * Herald's own schemas (see `contractCoverageOf`), whose rules the contract holds too — tests
 * prove the two accept and refuse the same events. `mode` is how the payload is carried
 * (structured: the whole event; binary: its `data`); `type` the one event type the schema
 * is for, or undefined for the envelope of any type.
 */
export interface ContractCoverage {
  readonly mode: 'structured' | 'binary'
  readonly type: string | undefined
}

/**
 * A decoder's two halves, for a schema the event contract covers: the payload read without
 * its schema check, and that check alone. The ingress skips the check for events the contract
 * covers, and makes it for the rest, and to name the reason an event is refused.
 */
export interface DeferredCheck {
  readonly coverage: ContractCoverage
  read(value: Uint8Array, start?: number): PayloadResult
  check(value: unknown): FieldIssue[] | undefined
}

/** Decodes payloads written with one schema; never throws. */
export interface PayloadDecoder {
  readonly schemaId: number
  readonly type: SchemaType
  /**
   * Decodes the payload that runs from `start` (0 by default) to the end of `value`, so a
   * framed message is read in place, without a view of its payload made per message.
   */
  decode(value: Uint8Array, start?: number): PayloadResult
  /** Present when the schema is one the event contract covers. */
  readonly deferred?: DeferredCheck
}

export interface SchemaRegistry {
  decoderFor(id: number): Promise<PayloadDecoder>
  /** Registers `schema` under `subject`; the same schema again returns the same id. */
  register(subject: string, schema: SchemaDefinition): Promise<number>
  /** The id of the subject's latest version, for producers that serialize by subject. */
  latestId(subject: string): Promise<number>
  /** Serializes `value` with schema `id` into the wire format, validating it first. */
  encode(id: number, value: unknown): Promise<Uint8Array>
  close(): Promise<void>
}
