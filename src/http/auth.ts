import { createHash, timingSafeEqual } from 'node:crypto'
import { ADMIN_ACCOUNT, type Principal } from '../access/index.ts'

export type { Principal, Role } from '../access/index.ts'
export { ADMIN_ACCOUNT } from '../access/index.ts'

/** Resolves a bearer token to its principal; `undefined` for an unknown token. */
export type Authenticator = (token: string) => Promise<Principal | undefined>

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
      ? { account: ADMIN_ACCOUNT, role: 'admin', tokenId: 'admin_token' }
      : undefined
}

const BEARER = /^Bearer\s+(\S+)\s*$/i

export const bearerToken = (header: string | undefined): string | undefined => header?.match(BEARER)?.[1]

/** Asks each authenticator in turn; the first that knows the token decides. */
export const chainAuthenticators =
  (...authenticators: readonly Authenticator[]): Authenticator =>
  async (token) => {
    for (const authenticate of authenticators) {
      const principal = await authenticate(token)
      if (principal !== undefined) return principal
    }
    return undefined
  }
