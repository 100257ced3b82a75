/**
 * What an account name may be, wherever one comes in: a token's account, an event's `account`,
 * an account a query names. 1 to 128 ASCII letters, digits, dots, dashes and underscores,
 * starting with a letter or digit. An event's account keys its log partition and ends up in
 * metric labels, warehouse rows and delivery ids, so no control character, no Unicode and no
 * unbounded length may come in with it.
 *
 * `schemas/cloudevent.schema.json` states the same pattern for `account`; a test holds them equal.
 *
 * @example
 * isAccountName('acme.prod-1_x') // true
 * isAccountName('acme\u0000') // false
 */
export const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Why a value is not an account name, as a field issue's message. */
export const ACCOUNT_NAME_RULE =
  'must be an account name: 1-128 ASCII letters, digits, dots, dashes or underscores, starting with a letter or digit'

export const isAccountName = (value: unknown): value is string =>
  typeof value === 'string' && ACCOUNT_NAME.test(value)
