import { ACCOUNT_NAME_RULE, isAccountName, type Principal } from '../access/index.ts'
import { ForbiddenError, ValidationError } from '../errors/index.ts'
import type { AccountScope } from './sql.ts'

export interface ScopeFilter {
  readonly account?: string | null
  readonly allAccounts?: boolean | null
}

/**
 * The account a query names (`filter.account`), checked by the rule every account follows, so
 * a name no account can have is refused as a mistake rather than answered with nothing.
 */
export const checkNamedAccount = (requested: string, path = 'filter.account'): void => {
  if (!isAccountName(requested))
    throw new ValidationError(`${path} ${ACCOUNT_NAME_RULE}`, [{ path, message: ACCOUNT_NAME_RULE }])
}

/**
 * The accounts a report may read: the caller's own unless an admin names another account or
 * asks for all of them. Anything else is refused rather than quietly narrowed, so a client
 * never mistakes its own data for another account's.
 */
export const resolveScope = (principal: Principal, filter: ScopeFilter | null | undefined): AccountScope => {
  const requested = filter?.account
  // Both: one narrows, the other widens. Either reading could hand the caller numbers it did
  // not ask for, so neither is taken.
  if (filter?.allAccounts === true && requested !== undefined && requested !== null)
    throw new ValidationError('filter.account and filter.allAccounts: give one or the other', [
      { path: 'filter.allAccounts', message: 'cannot be true together with filter.account' },
    ])
  if (filter?.allAccounts === true) {
    if (principal.role !== 'admin') throw new ForbiddenError('only an admin may query across accounts')
    return { all: true }
  }
  if (requested === undefined || requested === null || requested === principal.account) {
    return { accounts: [principal.account] }
  }
  checkNamedAccount(requested)
  if (principal.role !== 'admin') throw new ForbiddenError('only an admin may query another account')
  return { accounts: [requested] }
}
