import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Principal } from '../access/index.ts'
import { isExpectedRevisionConflict } from '../errors/index.ts'
import type { EventStore, JsonObject } from '../ports/event-store.ts'
import {
  decideToken,
  decodeTokenEvent,
  evolveToken,
  type IssueTokenBody,
  initialTokenState,
  TOKEN_STREAM_PREFIX,
  type TokenCommand,
  type TokenRecord,
  type TokenState,
  tokenStreamName,
} from './tokens.ts'

export interface TokenServiceOptions {
  readonly store: EventStore
  readonly clock: () => number
  readonly newId: () => string
  /** How long an authentication result is reused before the store is read again (default 1000 ms). */
  readonly cacheMs?: number
  readonly newSecret?: () => string
}

/** What a listing shows: everything but the hash. */
export type TokenView = Omit<TokenRecord, 'tokenHash'>

export interface TokenService {
  /** Issues a token; the returned secret is never stored and cannot be shown again. */
  issue(issuer: Principal, body: IssueTokenBody): Promise<{ token: string; record: TokenView }>
  revoke(revoker: Principal, tokenId: string): Promise<void>
  list(): Promise<readonly TokenView[]>
  /** The principal of an active token, or undefined. */
  authenticate(token: string): Promise<Principal | undefined>
}

const TOKEN_PREFIX = 'hrld_'

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Token ids are a prefix of the hash: enough to address the stream, useless to guess the secret. */
const tokenIdOf = (hash: Buffer): string => hash.subarray(0, 12).toString('hex')

const view = ({ tokenHash: _hash, ...rest }: TokenRecord): TokenView => rest

/**
 * Event-sourced API tokens. Authentication reads the token's own stream (cached briefly), so
 * a token works from the moment its issue is acknowledged, and a revocation made through this
 * service takes effect at once here and within `cacheMs` in every other process.
 *
 * @example
 * const tokens = createTokenService({ store, clock: Date.now, newId: randomUUID })
 * const { token } = await tokens.issue(admin, { account: 'acme', role: 'read-only' })
 */
export const createTokenService = (options: TokenServiceOptions): TokenService => {
  const { store, clock } = options
  const cacheMs = options.cacheMs ?? 1_000
  const newSecret = options.newSecret ?? (() => `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`)
  const cache = new Map<string, { state: TokenState; until: number }>()

  const load = async (tokenId: string): Promise<{ state: TokenState; revision: number | 'no_stream' }> => {
    const recorded = await store.readStream(tokenStreamName(tokenId))
    let state = initialTokenState
    for (const event of recorded) {
      const decoded = decodeTokenEvent(event)
      if (decoded.ok) state = evolveToken(state, decoded.value)
    }
    return { state, revision: recorded.at(-1)?.revision ?? 'no_stream' }
  }

  const handle = async (tokenId: string, command: TokenCommand): Promise<TokenState> => {
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await load(tokenId)
      const events = decideToken(command, state)
      if (events.length === 0) return state
      try {
        await store.append(
          tokenStreamName(tokenId),
          events.map((e) => ({ id: options.newId(), type: e.type, data: e.data as unknown as JsonObject })),
          { expectedRevision: revision },
        )
      } catch (error) {
        if (isExpectedRevisionConflict(error) && attempt < 3) continue
        throw error
      }
      const next = events.reduce(evolveToken, state)
      cache.delete(tokenId)
      return next
    }
  }

  return {
    issue: async (issuer, body) => {
      const token = newSecret()
      const hash = sha256(token)
      const tokenId = tokenIdOf(hash)
      const state = await handle(tokenId, {
        type: 'IssueToken',
        data: {
          ...body,
          tokenId,
          tokenHash: hash.toString('hex'),
          issuedBy: `${issuer.account}/${issuer.role}`,
        },
        now: clock(),
      })
      if (state === null) throw new Error('issued token has no state')
      return { token, record: view(state) }
    },

    revoke: async (revoker, tokenId) => {
      await handle(tokenId, {
        type: 'RevokeToken',
        data: { tokenId, revokedBy: `${revoker.account}/${revoker.role}` },
        now: clock(),
      })
    },

    list: async () => {
      const tokens = new Map<string, TokenState>()
      // A full scan is fine for an admin listing; a projection replaces it when it matters.
      let after: number | undefined
      for (;;) {
        const page = await store.readAll({
          ...(after === undefined ? {} : { after }),
          maxCount: 1_000,
          streamPrefixes: [TOKEN_STREAM_PREFIX],
        })
        for (const event of page) {
          if (!event.stream.startsWith(TOKEN_STREAM_PREFIX)) continue
          const decoded = decodeTokenEvent(event)
          if (!decoded.ok) continue
          const id = decoded.value.data.tokenId
          tokens.set(id, evolveToken(tokens.get(id) ?? null, decoded.value))
        }
        const last = page.at(-1)
        if (last === undefined) break
        after = last.position
      }
      return [...tokens.values()].filter((s): s is TokenRecord => s !== null).map(view)
    },

    authenticate: async (token) => {
      if (!token.startsWith(TOKEN_PREFIX)) return undefined
      const hash = sha256(token)
      const tokenId = tokenIdOf(hash)
      const now = clock()
      let entry = cache.get(tokenId)
      if (entry === undefined || entry.until < now) {
        entry = { state: (await load(tokenId)).state, until: now + cacheMs }
        cache.set(tokenId, entry)
        if (cache.size > 10_000) cache.delete(cache.keys().next().value as string)
      }
      const { state } = entry
      if (state === null || state.revokedAt !== null) return undefined
      if (!timingSafeEqual(Buffer.from(state.tokenHash, 'hex'), hash)) return undefined
      return { account: state.account, role: state.role, tokenId }
    },
  }
}
