import type { MiddlewareHandler } from 'hono'
import { type Action, type AppEnv, type AuthorizerFn, isAllowed } from '../access/index.ts'
import { ForbiddenError, UnauthorizedError, UnavailableError } from '../errors/index.ts'

/** Decides whether `principal` may perform `action`; the request says on what. */
export type Authorizer = AuthorizerFn

/** `authorization_handler: native`: the seed's role table. */
export const nativeAuthorizer: Authorizer = async (principal, action) => isAllowed(principal.role, action)

export interface ExternalAuthorizerOptions {
  /** `authorization_handler_config.endpoint`. */
  readonly endpoint: string
  readonly timeoutMs: number
  readonly fetch?: typeof globalThis.fetch
}

/**
 * `authorization_handler: external`: each decision is POSTed to the configured authorizer as
 * `{ principal: { account, role }, action, request: { method, path } }` and allowed only when
 * it answers 200 with `{ "allowed": true }`. Anything else denies: an answer of `false` with
 * 403, no usable answer (timeout, error status, other body) with 503, so a broken authorizer
 * never lets a request through. The endpoint is the operator's own service, so it is called
 * directly rather than through the SSRF guard that protects user-supplied URLs.
 *
 * @example
 * const authorizer = createExternalAuthorizer({ endpoint: 'http://authz.internal/decide', timeoutMs: 2000 })
 */
export const createExternalAuthorizer = ({
  endpoint,
  timeoutMs,
  fetch = globalThis.fetch,
}: ExternalAuthorizerOptions): Authorizer => {
  const unusable = (reason: string, cause?: unknown) =>
    new UnavailableError(`the external authorizer gave no usable answer (${reason})`, {
      ...(cause === undefined ? {} : { cause }),
    })
  return async (principal, action, request) => {
    let response: Response
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          principal: { account: principal.account, role: principal.role },
          action,
          request,
        }),
        signal: AbortSignal.timeout(timeoutMs),
      })
    } catch (error) {
      throw unusable(
        (error as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'unreachable',
        error,
      )
    }
    if (response.status !== 200) {
      await response.body?.cancel()
      throw unusable(`status ${response.status}`)
    }
    const body = (await response.json().catch(() => undefined)) as { allowed?: unknown } | undefined
    if (typeof body?.allowed !== 'boolean') throw unusable('the body has no boolean "allowed"')
    return body.allowed
  }
}

/**
 * Guards a route with one action of the seed's table; the authorizer the app set for the
 * request decides (the role table when none is set).
 *
 * @example
 * app.post('/tokens', authorize('manageTokens'), handler)
 */
export const authorize =
  (action: Action): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const principal = c.get('principal')
    if (principal === undefined) throw new UnauthorizedError()
    const decide = c.get('authorizer') ?? nativeAuthorizer
    if (!(await decide(principal, action, { method: c.req.method, path: c.req.path }))) {
      throw new ForbiddenError(`a ${principal.role} token may not ${action}`)
    }
    await next()
  }
