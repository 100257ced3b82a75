import { isLeft } from 'fp-ts/lib/Either.js'
import { Hono } from 'hono'
import type { AppEnv } from '../access/index.ts'
import { ValidationError } from '../errors/index.ts'
import { toFieldIssues } from '../events/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject } from '../http/body.ts'
import { noQueryParameters } from '../http/query.ts'
import type { TokenService, TokenView } from './service.ts'
import { IssueTokenBody } from './tokens.ts'

const present = (token: TokenView) => ({
  id: token.tokenId,
  account: token.account,
  role: token.role,
  description: token.description,
  issued_by: token.issuedBy,
  issued_at: token.issuedAt,
  revoked_at: token.revokedAt,
})

/**
 * `/v1/auth/tokens`: admins issue, list and revoke API tokens. The secret is in the creation
 * response only; Herald keeps its SHA-256. `/v1/auth/whoami`: any caller reads whom its token
 * stands for (its account, role and token id), e.g. for a client to check before it sends.
 */
export const createTokenRoutes = ({ tokens }: { tokens: TokenService }) => {
  const app = new Hono<AppEnv>()
  app.use('/tokens', authorize('manageTokens'))
  app.use('/tokens/*', authorize('manageTokens'))

  app.get('/whoami', noQueryParameters, (c) => {
    const { account, role, tokenId } = c.get('principal')
    return c.json({ account, role, token_id: tokenId ?? null })
  })

  app.post('/tokens', noQueryParameters, async (c) => {
    const json = await readJsonObject(c, { fields: ['account', 'role', 'description'] })
    const body = IssueTokenBody.decode(json)
    if (isLeft(body)) throw new ValidationError('invalid token request', toFieldIssues(body.left))
    const { token, record } = await tokens.issue(c.get('principal'), body.right)
    return c.json({ ...present(record), token }, 201)
  })

  app.get('/tokens', noQueryParameters, async (c) => c.json({ items: (await tokens.list()).map(present) }))

  app.delete('/tokens/:id', noQueryParameters, async (c) => {
    // Token ids are hex, written in lower case; upper case names the same token.
    await tokens.revoke(c.get('principal'), c.req.param('id').toLowerCase())
    return c.body(null, 204)
  })
  return app
}
