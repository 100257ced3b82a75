import { createHash, timingSafeEqual } from 'node:crypto'

export type Role = 'read-only' | 'read-write' | 'admin'

/** Who is calling: the account whose data a request may see, and what it may do there. */
export interface Principal {
  readonly account: string
  readonly role: Role
}

/** Resolves a bearer token to its principal; `undefined` for an unknown token. */
export type Authenticator = (token: string) => Promise<Principal | undefined>

/** The account that owns system-wide settings and global selectors. */
export const ADMIN_ACCOUNT = 'admin'

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

/**
 * The bootstrap authenticator: the configured admin token, compared in constant time on
 * hashes so neither its length nor its content leaks through timing. Issued tokens arrive
 * with the configuration work and chain in front of this one.
 */
export const createAdminTokenAuthenticator = (adminToken: string | null): Authenticator => {
  const expected = adminToken === null ? undefined : digest(adminToken)
  return async (token) =>
    expected !== undefined && timingSafeEqual(digest(token), expected)
      ? { account: ADMIN_ACCOUNT, role: 'admin' }
      : undefined
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

export const bearerToken = (header: string | undefined): string | undefined => header?.match(BEARER)?.[1]
