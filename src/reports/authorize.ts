import type { MiddlewareHandler } from 'hono'
import { type AppEnv, isAllowed } from '../access/index.ts'
import { ForbiddenError, UnauthorizedError } from '../errors/index.ts'

/**
 * Every report route needs the seed's `listImages` action. Checked here rather than with the
 * HTTP module's `authorize`, which imports this module: reports must not import it back.
 */
export const requireListImages: MiddlewareHandler<AppEnv> = async (c, next) => {
  const principal = c.get('principal')
  if (principal === undefined) throw new UnauthorizedError()
  if (!isAllowed(principal.role, 'listImages')) {
    throw new ForbiddenError(`a ${principal.role} token may not listImages`)
  }
  await next()
}
