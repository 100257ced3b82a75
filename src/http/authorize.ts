import type { MiddlewareHandler } from 'hono'
import { type Action, type AppEnv, isAllowed } from '../access/index.ts'
import { ForbiddenError, UnauthorizedError } from '../errors/index.ts'

/**
 * Guards a route with one action of the seed's table: the caller's role must allow it.
 *
 * @example
 * app.post('/tokens', authorize('manageTokens'), handler)
 */
export const authorize =
  (action: Action): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const principal = c.get('principal')
    if (principal === undefined) throw new UnauthorizedError()
    if (!isAllowed(principal.role, action)) {
      throw new ForbiddenError(`a ${principal.role} token may not ${action}`)
    }
    await next()
  }
