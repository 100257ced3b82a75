import type { FieldIssue } from '../errors/index.ts'
import { type Decoded, decodeEngineEvent, type EngineEvent, isUnknownTypeIssue } from '../events/index.ts'

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
export const decodeEventBatch = (input: unknown): Decoded<IngressEvent[]> => {
  if (!Array.isArray(input))
    return { ok: false, issues: [{ path: '(root)', message: 'must be a JSON array' }] }
  const events: IngressEvent[] = []
  const issues: FieldIssue[] = []
  const seen = new Set<string>()
  input.forEach((item, i) => {
    const decoded = decodeEvent(item, `[${i}]`)
    if (!decoded.ok) {
      issues.push(...decoded.issues)
      return
    }
    const key = `${decoded.value.source}\u0000${decoded.value.id}`
    if (seen.has(key))
      issues.push({ path: `[${i}].id`, message: 'repeats the id of an earlier event in the batch' })
    seen.add(key)
    events.push(decoded.value)
  })
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: events }
}
