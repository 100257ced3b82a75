import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { ADMIN_ACCOUNT } from '../access/index.ts'
import { clipped, NotFoundError, ValidationError } from '../errors/index.ts'
import { AccountName, type Decoded, toFieldIssues, withMessage } from '../events/index.ts'

/**
 * The API token aggregate: one stream per token, named by the token's id, which is derived
 * from the token's hash so that authenticating a request is one stream read, with no index
 * to fall behind. Only the SHA-256 of the secret is ever stored.
 */
export const TOKEN_STREAM_PREFIX = 'api-token-'

export const tokenStreamName = (tokenId: string): string => `${TOKEN_STREAM_PREFIX}${tokenId}`

export const Role = withMessage(
  t.keyof({ 'read-only': null, 'read-write': null, admin: null }),
  () => 'must be one of read-only, read-write, admin',
  'Role',
)

const Description = withMessage(
  t.refinement(t.string, (s) => s.length <= 500, 'Description'),
  () => 'must be a string of at most 500 characters',
)

/** The body of `POST /v1/auth/tokens`. */
export const IssueTokenBody = t.intersection([
  t.type({ account: AccountName, role: Role }),
  t.partial({ description: Description }),
])
export type IssueTokenBody = t.TypeOf<typeof IssueTokenBody>

const TokenIssuedData = t.type({
  tokenId: t.string,
  account: t.string,
  role: Role,
  description: t.string,
  tokenHash: t.string,
  issuedBy: t.string,
  issuedAt: t.string,
})

const TokenRevokedData = t.type({ tokenId: t.string, revokedBy: t.string, revokedAt: t.string })

export const TokenEvent = t.union([
  t.type({ type: t.literal('TokenIssued'), data: TokenIssuedData }),
  t.type({ type: t.literal('TokenRevoked'), data: TokenRevokedData }),
])
export type TokenEvent = t.TypeOf<typeof TokenEvent>

export type TokenCommand =
  | {
      readonly type: 'IssueToken'
      readonly data: IssueTokenBody & { tokenId: string; tokenHash: string; issuedBy: string }
      readonly now: number
    }
  | {
      readonly type: 'RevokeToken'
      readonly data: { tokenId: string; revokedBy: string }
      readonly now: number
    }

export interface TokenRecord {
  readonly tokenId: string
  readonly account: string
  readonly role: t.TypeOf<typeof Role>
  readonly description: string
  readonly tokenHash: string
  readonly issuedBy: string
  readonly issuedAt: string
  readonly revokedAt: string | null
}

export type TokenState = TokenRecord | null

export const initialTokenState: TokenState = null

export const decideToken = (command: TokenCommand, state: TokenState): TokenEvent[] => {
  const at = new Date(command.now).toISOString()
  switch (command.type) {
    case 'IssueToken': {
      if (state !== null) {
        throw new ValidationError('a token with this id already exists', [
          { path: 'tokenId', message: 'is taken' },
        ])
      }
      const { tokenId, account, role, description, tokenHash, issuedBy } = command.data
      // An admin token acts across accounts (every account's deliveries, tokens, reports): it
      // is the operator's, so it belongs to the admin account. An account's own users get
      // read-only or read-write tokens; one of its tokens with admin would reach every tenant.
      if (role === 'admin' && account !== ADMIN_ACCOUNT)
        throw ValidationError.of('token request', [
          {
            path: 'role',
            message: `admin is for the ${ADMIN_ACCOUNT} account only; a token of ${account} may be read-only or read-write`,
          },
        ])
      return [
        {
          type: 'TokenIssued',
          data: { tokenId, account, role, description: description ?? '', tokenHash, issuedBy, issuedAt: at },
        },
      ]
    }
    case 'RevokeToken': {
      if (state === null)
        throw new NotFoundError(`no token ${clipped(command.data.tokenId)}`, {
          tokenId: command.data.tokenId,
        })
      // Revoking twice is not an error: the caller's intent already holds.
      if (state.revokedAt !== null) return []
      return [{ type: 'TokenRevoked', data: { ...command.data, revokedAt: at } }]
    }
  }
}

export const evolveToken = (state: TokenState, event: TokenEvent): TokenState => {
  switch (event.type) {
    case 'TokenIssued':
      return { ...event.data, revokedAt: null }
    case 'TokenRevoked':
      return state === null ? null : { ...state, revokedAt: event.data.revokedAt }
  }
}

export const decodeTokenEvent = (recorded: { type: string; data: unknown }): Decoded<TokenEvent> => {
  const result = TokenEvent.decode({ type: recorded.type, data: recorded.data })
  return isLeft(result)
    ? { ok: false, issues: toFieldIssues(result.left) }
    : { ok: true, value: result.right }
}
