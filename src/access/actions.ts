import type { Role } from './index.ts'

/**
 * The seed's action table: what each role may do. Routes name an action; anything not listed
 * for a role is denied (deny by default). Reads are account-scoped by the routes themselves.
 */
export const ACTIONS = {
  listNotificationEndpoints: ['read-only', 'read-write', 'admin'],
  updateNotificationEndpoint: ['admin'],
  listNotificationEndpointConfigurations: ['read-only', 'read-write', 'admin'],
  getNotificationEndpointConfiguration: ['read-only', 'read-write', 'admin'],
  createNotificationEndpointConfiguration: ['read-write', 'admin'],
  updateNotificationEndpointConfiguration: ['read-write', 'admin'],
  deleteNotificationEndpointConfiguration: ['read-write', 'admin'],
  listNotificationDeliveries: ['read-only', 'read-write', 'admin'],
  replayNotificationDeliveries: ['read-write', 'admin'],
  listImages: ['read-only', 'read-write', 'admin'],
  publishEvents: ['read-write', 'admin'],
  manageTokens: ['admin'],
  readAudit: ['read-write', 'admin'],
  manageReports: ['admin'],
} as const satisfies Record<string, readonly Role[]>

export type Action = keyof typeof ACTIONS

export const isAllowed = (role: Role, action: Action): boolean =>
  (ACTIONS[action] as readonly Role[]).includes(role)
