import type { Action } from './actions.ts'

/**
 * Who is calling: the account whose data a request may see, and what it may do there. Set by
 * the HTTP authentication middleware, read by every module that decides access.
 */
export type Role = 'read-only' | 'read-write' | 'admin'

export interface Principal {
  readonly account: string
  readonly role: Role
}

/** The account that owns system-wide settings and global selectors. */
export const ADMIN_ACCOUNT = 'admin'

/** Decides one action for one principal; `authorize(action)` asks the one the app set. */
export type AuthorizerFn = (
  principal: Principal,
  action: Action,
  request: { readonly method: string; readonly path: string },
) => Promise<boolean>

/** Hono environment of every authenticated route. */
export type AppEnv = { Variables: { principal: Principal; authorizer?: AuthorizerFn } }

export { ACCOUNT_NAME, ACCOUNT_NAME_RULE, isAccountName } from './account.ts'
export { ACTIONS, type Action, isAllowed } from './actions.ts'
