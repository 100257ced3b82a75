import type { Action } from './actions.ts'

/**
 * Who is calling: the account whose data a request may see, and what it may do there. Set by
 * the HTTP authentication middleware, read by every module that decides access.
 */
export const ROLES = ['read-only', 'read-write', 'admin'] as const
export type Role = (typeof ROLES)[number]

export interface Principal {
  readonly account: string
  readonly role: Role
  /**
   * Which token authenticated, for log lines and the audit (never the token itself): an issued
   * token's id, `admin_token` for the configured or generated admin token, `anonymous` for a
   * request without one while `require_auth` is false.
   */
  readonly tokenId?: string
}

/** Who did something, as log lines name them: `<account>/<role>` and the token's id. */
export const actorOf = (principal: Principal): { readonly by: string; readonly token_id: string | null } => ({
  by: `${principal.account}/${principal.role}`,
  token_id: principal.tokenId ?? null,
})

/**
 * An action that changes no configuration yet belongs in the audit (`GET /v1/audit`): one that
 * changes what reports hold, or sends stored credentials out. `account` is the one whose data
 * it concerns (null: system-wide, for admins only). Deliveries sent again are one too: they
 * send stored credentials out, and the delivery log names who asked for each but the audit is
 * where an operator looks for who did what.
 */
export interface AuditedAction {
  readonly type:
    | 'LogResetAccepted'
    | 'ReportRebuildStarted'
    | 'MetricsBackfillStarted'
    | 'ConfigurationTestSent'
    | 'DeliveriesReplayed'
  readonly account: string | null
  readonly aggregate: {
    readonly type: 'report_tables' | 'report_metrics' | 'notification_configuration'
    readonly id: string
  }
  readonly details: Readonly<Record<string, string | number | boolean | null>>
}

/** Records an audited action by `principal`; never fails the action (a failure to record is logged). */
export type RecordAction = (principal: Principal, action: AuditedAction) => Promise<void>

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
