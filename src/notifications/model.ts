/**
 * The notification configuration model as the rest of Herald sees it: what the router
 * matches events against and what the deliverer sends with. Field names follow Anchore's
 * selector shape (`resource_type`) so a selector reads the same in the API and in code.
 */
import type { AppEnv, Principal, Role } from '../access/index.ts'

export type { Principal, Role }

/** Hono environment of the notification routes; the auth middleware sets `principal`. */
export type NotificationsEnv = AppEnv

/** The endpoint types Herald delivers to; each can be switched off system-wide by an admin. */
export const ENDPOINT_TYPES = ['slack', 'teams', 'email', 'webhook', 'github', 'jira'] as const
export type EndpointType = (typeof ENDPOINT_TYPES)[number]

export const isEndpointType = (value: string): value is EndpointType =>
  (ENDPOINT_TYPES as readonly string[]).includes(value)

/**
 * The endpoint types whose configurations may have several deliveries in flight at once
 * (`max_in_flight`). GitHub and Jira file tickets one at a time: filing them in turn is what
 * finds the open issue of a ticket key before a repeat could file a second one.
 */
export const IN_FLIGHT_ENDPOINT_TYPES = ['webhook', 'email', 'slack', 'teams'] as const

export const takesMaxInFlight = (endpoint: EndpointType): boolean =>
  (IN_FLIGHT_ENDPOINT_TYPES as readonly string[]).includes(endpoint)

export type LevelPattern = '*' | 'info' | 'warning' | 'error'

/** `account`: events of the selector's own account; `global`: events of every account (admin only). */
export type SelectorScope = 'account' | 'global'

/** Anchore's `event` block: `*` in `type` or `resource_type` matches any run of characters. */
export interface EventPattern {
  readonly level: LevelPattern
  readonly type: string
  readonly resource_type: string
}

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { [key: string]: JsonValue }

/** A configuration's storm control: matching events within the window become one digest. */
export interface DigestSettings {
  readonly enabled: boolean
  /** Null: `cycle_timers.notifications` applies. */
  readonly windowSeconds: number | null
}

/** A value a signing secret replaced, and when. */
export interface ReplacedSecret {
  /** Sealed as the secret it replaced was. */
  readonly sealed: string
  readonly rotatedAt: string
}

/** A secret field's sealed value, and for a signing secret the values it replaced lately. */
export interface SealedSecret {
  /** `enc:v1:…`, sealed with associated data `<configuration id>/<field>`. */
  readonly sealed: string
  /**
   * A signing secret's replaced values, newest first, each still signing until its `rotatedAt`
   * plus the grace period; those whose grace period was over at the last rotation are gone.
   */
  readonly previous?: readonly ReplacedSecret[]
}

/**
 * One endpoint configuration of one account. Secrets stay sealed here: they are opened only
 * where a delivery uses them.
 */
export interface EndpointConfiguration {
  readonly id: string
  readonly account: string
  readonly endpoint: EndpointType
  /** The endpoint's non-secret fields, by their API names (`smtp_host`, `owner`, …). */
  readonly settings: Readonly<Record<string, JsonValue>>
  /** The endpoint's secret fields that are set, by their API names. */
  readonly secrets: Readonly<Record<string, SealedSecret>>
  /** What may be shown of a secret URL (its origin), by field name. */
  readonly hints: Readonly<Record<string, string>>
  readonly description: string | null
  readonly enabled: boolean
  readonly verifyTls: boolean
  /** Template overrides by field, and per event type under `event_types`; empty for the channel's defaults. */
  readonly templates: Readonly<Record<string, JsonValue>>
  readonly digest: DigestSettings
  /**
   * Its deliveries in flight at once (api: `max_in_flight`); null: the endpoint type's
   * `notifications.delivery.max_in_flight`. Always null for GitHub and Jira, which go one at a time.
   */
  readonly maxInFlight: number | null
  readonly createdAt: string
  readonly updatedAt: string
}

/** The legacy webhook shape the webhook deliverer sends with: its signing secret opened. */
export interface WebhookConfiguration {
  readonly id: string
  readonly account: string
  readonly url: string
  /** `whsec_` + base64 of 24–64 random bytes (Standard Webhooks). Never leaves through the API after creation. */
  readonly signingSecret: string
  /** Secrets still accepted during a rotation: their signatures are sent alongside. */
  readonly previousSigningSecrets?: readonly string[]
  readonly description?: string
  readonly enabled: boolean
}

export interface Selector {
  readonly id: string
  readonly configurationId: string
  readonly account: string
  readonly scope: SelectorScope
  readonly event: EventPattern
  /** An EventBridge content pattern over the whole CloudEvent, or null for none. */
  readonly pattern: JsonValue | null
}

/**
 * A configuration Herald switched off itself for a failure, whose announcement (the system
 * event `system.notifications.configuration_disabled`) is not known to be published yet: all
 * the announcement says, read from the stored disable.
 */
export interface UnannouncedDisable {
  readonly configurationId: string
  readonly account: string
  readonly endpoint: EndpointType
  /** Where in the configuration's stream the disable is: with its id, what names the announcement. */
  readonly revision: number
  /** RFC 3339: when it was disabled. */
  readonly at: string
  /** `sustained_failure` or `endpoint_gone`. */
  readonly reason: string
  /** RFC 3339. */
  readonly failingSince: string
  readonly lastError: string | null
}

/**
 * An immutable snapshot of every configuration and selector, as of global store position
 * `position`. A new snapshot is a new object: holders of an old one never see it change.
 */
export interface SelectorSet {
  /** Position of the last configuration event folded in; 0 before any. */
  readonly position: number
  readonly configurations: ReadonlyMap<string, EndpointConfiguration>
  readonly selectors: ReadonlyMap<string, Selector>
  /** Endpoint types an admin switched off system-wide: nothing is routed to them. */
  readonly disabledEndpoints: ReadonlySet<EndpointType>
  /** Herald's own disables not announced yet, by `announcementKey`: what the deliverer announces. */
  readonly unannounced: ReadonlyMap<string, UnannouncedDisable>
}

export const emptySelectorSet: SelectorSet = Object.freeze({
  position: 0,
  configurations: new Map<string, EndpointConfiguration>(),
  selectors: new Map<string, Selector>(),
  disabledEndpoints: new Set<EndpointType>(),
  unannounced: new Map<string, UnannouncedDisable>(),
})
