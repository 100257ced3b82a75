import type { FieldIssue } from '../errors/index.ts'
import {
  type Decoded,
  decodeBatch,
  decodeEngineEvent,
  type EngineEvent,
  isUnknownTypeIssue,
} from '../events/index.ts'

/**
 * The one contract every way in enforces — Kafka structured and binary mode, plain JSON or
 * the Confluent wire format, and `POST /v1/events` — so an event Herald accepts over HTTP
 * is exactly an event it accepts from Kafka: the event catalog's decoder (the envelope, then
 * `data` by `type`; a type outside the catalog is refused).
 */
export type IngressEvent = EngineEvent

/** Validates one event; `prefix` names its place in a batch (`[3]`). */
export const decodeEvent = (input: unknown, prefix = ''): Decoded<IngressEvent> =>
  decodeEngineEvent(input, prefix)

/** Whether the contract refused an event for its type being outside the catalog. */
export const isUnknownType = (issues: readonly FieldIssue[]): boolean => issues.some(isUnknownTypeIssue)

/** Every event of a batch, every bad field reported, all or nothing; ids unique per source. */
export const decodeEventBatch = (input: unknown): Decoded<IngressEvent[]> => decodeBatch(input, decodeEvent)
