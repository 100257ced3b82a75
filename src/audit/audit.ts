import type { Principal } from '../access/index.ts'
import { decodeTokenEvent, TOKEN_STREAM_PREFIX } from '../auth/index.ts'
import { instantOf } from '../events/index.ts'
import {
  STREAM_PREFIX as CONFIGURATION_STREAM_PREFIX,
  type ConfigurationEvent,
  decodeConfigurationEvent,
  ENDPOINT_STREAM_PREFIX,
  endpointStatusChange,
  isConfigurationStream,
  type JsonValue,
  REDACTED,
} from '../notifications/index.ts'
import type { EventStore, RecordedEvent } from '../ports/event-store.ts'
import { ACTIONS_STREAM, decodeActionRecorded } from './recorded-actions.ts'

export type AggregateType =
  | 'notification_configuration'
  | 'notification_endpoint'
  | 'api_token'
  | 'report_tables'
  | 'report_metrics'

/** One change to configuration, as `GET /v1/audit` shows it: secrets redacted, never their values. */
export interface AuditEntry {
  /** The event's global position: entries are in this order, and `next_token` continues after one. */
  readonly position: number
  /** When the change was decided (RFC 3339). */
  readonly at: string
  /** Who made it, `<account>/<role>`; `null` when the event does not say. */
  readonly by: string | null
  /** The account the changed resource belongs to; `null` for system-wide resources. */
  readonly account: string | null
  readonly aggregate: { readonly type: AggregateType; readonly id: string }
  readonly event: string
  /** What changed: new values by field name, `<redacted>` for a secret that was set. */
  readonly changes: Readonly<Record<string, JsonValue>>
}

const redactedSecrets = (sealed: Readonly<Record<string, string>>): Record<string, JsonValue> =>
  Object.fromEntries(Object.keys(sealed).map((name) => [name, REDACTED]))

const options = (d: {
  description: string | null
  enabled: boolean
  verifyTls: boolean
  templates: Readonly<Record<string, JsonValue>>
  digest: { enabled: boolean; windowSeconds: number | null }
  maxInFlight?: number
}): Record<string, JsonValue> => ({
  description: d.description,
  enabled: d.enabled,
  verify_tls: d.verifyTls,
  templates: d.templates,
  digest: d.digest.enabled,
  digest_window_seconds: d.digest.windowSeconds,
  // Stored only when set; an update that resets it names it in `changed`, and shows null.
  ...(d.maxInFlight === undefined ? {} : { max_in_flight: d.maxInFlight }),
})

const configurationEntry = (
  event: ConfigurationEvent,
): Pick<AuditEntry, 'at' | 'by' | 'account' | 'aggregate' | 'changes'> => {
  const base = {
    at: event.data.at,
    by: event.data.by,
    account: event.data.account,
    aggregate: { type: 'notification_configuration' as const, id: event.data.configurationId },
  }
  switch (event.type) {
    case 'ConfigurationCreated':
      return {
        ...base,
        changes: {
          endpoint: event.data.endpoint,
          ...event.data.settings,
          ...redactedSecrets(event.data.secrets),
          ...options(event.data),
        },
      }
    case 'ConfigurationUpdated': {
      const all: Record<string, JsonValue> = {
        ...event.data.settings,
        ...redactedSecrets(event.data.secrets),
        ...Object.fromEntries(event.data.clearedSecrets.map((name) => [name, null])),
        ...options(event.data),
      }
      // A field the update removed has no value any more: null says so.
      return {
        ...base,
        changes: Object.fromEntries(event.data.changed.map((name) => [name, all[name] ?? null])),
      }
    }
    case 'ConfigurationDeleted':
      return { ...base, changes: {} }
    case 'SelectorAdded':
    case 'SelectorUpdated':
      return {
        ...base,
        changes: {
          selector_uuid: event.data.selectorId,
          scope: event.data.scope,
          event: { ...event.data.event },
          pattern: event.data.pattern,
        },
      }
    case 'SelectorRemoved':
      return { ...base, changes: { selector_uuid: event.data.selectorId } }
    case 'SecretsResealed':
      // The same values, sealed again: which fields, and the id of the key that sealed them.
      return {
        ...base,
        changes: { resealed: Object.keys(event.data.secrets).sort(), key_id: event.data.keyId },
      }
  }
}

/**
 * An audit entry for a stored event of a configuration, endpoint status or API token stream,
 * or an audited action (`ACTIONS_STREAM`); undefined for any other event. Pure: the redaction is decided here, once, for every reader.
 */
export const toAuditEntry = (recorded: RecordedEvent): AuditEntry | undefined => {
  const common = { position: recorded.position, event: recorded.type }
  if (isConfigurationStream(recorded.stream)) {
    const decoded = decodeConfigurationEvent(recorded)
    return decoded.ok ? { ...common, ...configurationEntry(decoded.value) } : undefined
  }
  const action = decodeActionRecorded(recorded)
  if (action !== undefined)
    return {
      ...common,
      at: action.at,
      by: action.by,
      account: action.account,
      aggregate: action.aggregate,
      // What was asked, and with which token (its id).
      changes: { ...action.details, token_id: action.tokenId },
    }
  const endpoint = endpointStatusChange(recorded)
  if (endpoint !== undefined) {
    const data = recorded.data as { by?: unknown; at?: unknown }
    return {
      ...common,
      at: typeof data.at === 'string' ? data.at : new Date(recorded.recordedAt).toISOString(),
      by: typeof data.by === 'string' ? data.by : null,
      account: null,
      aggregate: { type: 'notification_endpoint', id: endpoint.endpoint },
      changes: { enabled: endpoint.enabled },
    }
  }
  if (recorded.stream.startsWith(TOKEN_STREAM_PREFIX)) {
    const decoded = decodeTokenEvent(recorded)
    if (!decoded.ok) return undefined
    const event = decoded.value
    const aggregate = { type: 'api_token' as const, id: event.data.tokenId }
    return event.type === 'TokenIssued'
      ? {
          ...common,
          at: event.data.issuedAt,
          by: event.data.issuedBy,
          account: null,
          aggregate,
          // The token's hash stays out: it is what authenticates.
          changes: {
            account: event.data.account,
            role: event.data.role,
            description: event.data.description,
          },
        }
      : {
          ...common,
          at: event.data.revokedAt,
          by: event.data.revokedBy,
          account: null,
          aggregate,
          changes: {},
        }
  }
  return undefined
}

export interface AuditQuery {
  /** Entries at or after this instant (RFC 3339). */
  readonly since?: string
  /** Entries before this instant. */
  readonly until?: string
  readonly aggregateType?: AggregateType
  readonly aggregateId?: string
  /** Continue after this position (the previous page's `next_token`). */
  readonly after?: number
  readonly limit: number
}

export interface AuditPage {
  readonly items: readonly AuditEntry[]
  /** Pass as `next_token` for the next page; null when there is none. */
  readonly next: number | null
}

/** Admins see every entry; anyone else only changes to their own account's configurations. */
export const visibleTo = (principal: Principal, entry: AuditEntry): boolean =>
  principal.role === 'admin' || entry.account === principal.account

// The streams audit entries come from (toAuditEntry); the delivery log is not read.
const AUDITED_STREAMS = [
  CONFIGURATION_STREAM_PREFIX,
  ENDPOINT_STREAM_PREFIX,
  TOKEN_STREAM_PREFIX,
  ACTIONS_STREAM,
]

/**
 * Reads the audit trail from the event streams themselves: the history is the audit log, so it
 * can neither lag behind nor disagree with what the configuration API answers.
 *
 * @example
 * const page = await readAudit(store, principal, { aggregateType: 'notification_configuration', limit: 100 })
 */
export const readAudit = async (
  store: Pick<EventStore, 'readAll'>,
  principal: Principal,
  query: AuditQuery,
  { pageSize = 1_000 } = {},
): Promise<AuditPage> => {
  // As the routes read them (a leap second too, which Date.parse refuses: NaN filtered nothing).
  const since = query.since === undefined ? undefined : instantOf(query.since)
  const until = query.until === undefined ? undefined : instantOf(query.until)
  const items: AuditEntry[] = []
  let after = query.after ?? 0
  for (;;) {
    const page = await store.readAll({ after, maxCount: pageSize, streamPrefixes: AUDITED_STREAMS })
    for (const recorded of page) {
      after = recorded.position
      const entry = toAuditEntry(recorded)
      if (entry === undefined || !visibleTo(principal, entry)) continue
      const at = Date.parse(entry.at)
      if (since !== undefined && at < since) continue
      if (until !== undefined && at >= until) continue
      if (query.aggregateType !== undefined && entry.aggregate.type !== query.aggregateType) continue
      if (query.aggregateId !== undefined && entry.aggregate.id !== query.aggregateId) continue
      items.push(entry)
      if (items.length === query.limit) return { items, next: entry.position }
    }
    if (page.length < pageSize) return { items, next: null }
  }
}
