/**
 * The notification configuration model as the rest of Herald sees it: what the router
 * matches events against and what the deliverer sends with. Field names follow Anchore's
 * selector shape (`resource_type`) so a selector reads the same in the API and in code.
 */
import type { AppEnv, Principal, Role } from '../access/index.ts'

export type { Principal, Role }

/** Hono environment of the notification routes; the auth middleware sets `principal`. */
export type NotificationsEnv = AppEnv

export type LevelPattern = '*' | 'info' | 'warning' | 'error'

/** `account`: events of the selector's own account; `global`: events of every account (admin only). */
export type SelectorScope = 'account' | 'global'

/** Anchore's `event` block: `*` in `type` or `resource_type` matches any run of characters. */
export interface EventPattern {
  readonly level: LevelPattern
  readonly type: string
  readonly resource_type: string
}

export interface WebhookConfiguration {
  readonly id: string
  readonly account: string
  readonly url: string
  /** `whsec_` + base64 of 24–64 random bytes (Standard Webhooks). Never leaves through the API after creation. */
  readonly signingSecret: string
  readonly description?: string
  readonly enabled: boolean
}

/** A configuration as it may be shown: everything but the secret. */
export type WebhookConfigurationView = Omit<WebhookConfiguration, 'signingSecret'>

export interface Selector {
  readonly id: string
  readonly configurationId: string
  readonly account: string
  readonly scope: SelectorScope
  readonly event: EventPattern
}

/**
 * An immutable snapshot of every configuration and selector, as of global store position
 * `position`. A new snapshot is a new object: holders of an old one never see it change.
 */
export interface SelectorSet {
  /** Position of the last configuration event folded in; 0 before any. */
  readonly position: number
  readonly configurations: ReadonlyMap<string, WebhookConfiguration>
  readonly selectors: ReadonlyMap<string, Selector>
}

export const emptySelectorSet: SelectorSet = Object.freeze({
  position: 0,
  configurations: new Map<string, WebhookConfiguration>(),
  selectors: new Map<string, Selector>(),
})

export const withoutSecret = ({
  signingSecret: _,
  ...view
}: WebhookConfiguration): WebhookConfigurationView => view
