import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { causeChain, clipped, errorText, HeraldError, UnauthorizedError } from '../errors/index.ts'
import type { Logger, Metrics } from '../observability/index.ts'
import type { EventLog } from '../ports/event-log.ts'
import type { Warehouse } from '../ports/warehouse.ts'
import { isGraphiqlPageRequest } from '../reports/index.ts'
import { ADMIN_ACCOUNT, type Authenticator, bearerToken } from './auth.ts'
import type { Authorizer } from './authorize.ts'
import type { AppEnv } from './env.ts'
import { createGraphqlRoutes } from './graphql.ts'
import { createIngestRoutes, type IngestOptions } from './ingest.ts'
import { problem, readinessDetail, toProblem } from './problem.ts'

export interface HttpAppOptions {
  readonly log: EventLog
  readonly eventsTopic: string
  /** Told each event ingest publishes: the engine-event consumers' decoder (`IngressDecoder.remember`). */
  readonly rememberEvent?: IngestOptions['remember']
  readonly warehouse: Warehouse
  /** One probe per port for `/ready`; each resolves when its port answers. */
  readonly readiness: Readonly<Record<string, () => Promise<void>>>
  readonly authenticate: Authenticator
  /** Decides each route's action (default: the seed's role table). */
  readonly authorizer?: Authorizer
  /**
   * The seed's `require_auth`: when false a request without a bearer token acts as the admin
   * account; one with a token is still authenticated (a wrong token answers 401).
   */
  readonly requireAuth: boolean
  readonly metrics: Metrics
  readonly logger: Logger
  readonly graphiql: boolean
  /** The projection lag every report answer carries; default from the warehouse alone. */
  readonly reportLag?: () => Promise<number>
  /** Largest request body accepted, in bytes: a batch of events, and any other route's JSON (5 MiB). */
  readonly maxIngestBytes?: number
  /**
   * Hides the configuration's secrets in text the log writes of a failed request (its error,
   * causes and stack): `secretFree(config)`. None hidden by default.
   */
  readonly hideSecrets?: (text: string) => string
  /** Sub-apps mounted behind authentication, e.g. the notifications API. */
  readonly mounts?: readonly { readonly path: string; readonly app: Hono<AppEnv> }[]
}

const PUBLIC_PATHS = new Set(['/health', '/ready', '/metrics'])
const GRAPHQL_PATH = '/v1/reports/graphql'
const INGEST_PATH = '/v1/events'
const READY_TIMEOUT_MS = 2_000

const withTimeout = (probe: Promise<void>, ms: number): Promise<void> =>
  Promise.race([
    probe,
    new Promise<void>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref(),
    ),
  ])

/** Whether a route's path (`/v1/x/:id`) names `path`; a parameter matches one non-empty segment. */
const routeMatches = (route: string, path: string): boolean => {
  const want = route.split('/')
  const got = path.split('/')
  return (
    want.length === got.length && want.every((w, i) => (w.startsWith(':') ? got[i] !== '' : w === got[i]))
  )
}

const literalSegments = (route: string): number => route.split('/').filter((s) => !s.startsWith(':')).length

/**
 * The methods of the app's routes (not its middleware) that take `path`: for a 405's Allow.
 * A route naming the path literally shadows one taking it as a parameter: an id is never
 * `replay`, so `PUT …/deliveries/replay` is allowed POST, not the GET of `…/deliveries/:id`.
 * HEAD follows GET: Hono answers it wherever GET is routed.
 */
const allowedMethods = (app: Hono<AppEnv>, path: string): string[] => {
  const matching = app.routes.filter((r) => r.method !== 'ALL' && routeMatches(r.path, path))
  const closest = Math.max(0, ...matching.map((r) => literalSegments(r.path)))
  const methods = [
    ...new Set(matching.filter((r) => literalSegments(r.path) === closest).map((r) => r.method)),
  ]
  return methods.flatMap((method) =>
    method === 'GET' && !methods.includes('HEAD') ? ['GET', 'HEAD'] : [method],
  )
}

/**
 * Herald's HTTP API as a Hono app over Web-standard requests: the Node server is only an
 * adapter, and tests drive this app in process with `app.request(...)`.
 *
 * @example
 * const app = createHttpApp({ log, eventsTopic: 'engine.events', warehouse, ... })
 * const res = await app.request('/health')
 */
export const createHttpApp = (options: HttpAppOptions): Hono<AppEnv> => {
  const { metrics, logger } = options
  const hide = options.hideSecrets ?? ((text: string) => text)
  const maxBodyBytes = options.maxIngestBytes ?? 5 * 1024 * 1024
  const app = new Hono<AppEnv>()

  app.onError((error, c) => {
    const body = toProblem(error, c.req.path)
    if (body.status >= 500) {
      // The causes say what a wrapping error leaves out (the external authorizer's is fetch's,
      // whose own names the address and errno); the stack, where an internal error was thrown.
      const causes = causeChain(error).map(hide)
      logger('error', 'http.request_failed', {
        path: c.req.path,
        status: body.status,
        error: hide(String(error)),
        ...(causes.length === 0 ? {} : { causes }),
        ...(body.status === 500 && typeof error.stack === 'string' ? { stack: hide(error.stack) } : {}),
      })
    }
    return c.json(body, body.status as 400, { 'content-type': 'application/problem+json' })
  })
  app.notFound((c) => {
    const allow = allowedMethods(app, c.req.path)
    // As in every other problem, `instance` is the path the request named.
    const at = { instance: c.req.path }
    if (allow.length > 0)
      return c.json(
        problem(
          405,
          'method_not_allowed',
          `${clipped(c.req.path)} takes ${allow.join(', ')}, not ${c.req.method}`,
          at,
        ),
        405,
        { 'content-type': 'application/problem+json', allow: allow.join(', ') },
      )
    return c.json(problem(404, 'not_found', `no route for ${c.req.method} ${clipped(c.req.path)}`, at), 404, {
      'content-type': 'application/problem+json',
    })
  })

  app.use(async (c, next) => {
    await next()
    metrics.httpRequests.inc({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) })
  })

  app.get('/health', (c) => c.json({ status: 'ok' }))

  // The last failure each check logged: a probe polled every few seconds logs a failure once.
  const notReady = new Map<string, string>()
  app.get('/ready', async (c) => {
    const entries = await Promise.all(
      Object.entries(options.readiness).map(async ([name, probe]) => {
        try {
          await withTimeout(probe(), READY_TIMEOUT_MS)
          notReady.delete(name)
          return [name, { status: 'ok' }] as const
        } catch (error) {
          // The answer is public: what it does not show (a path, a server's address) is logged.
          const shown = readinessDetail(error)
          const whole = errorText(error)
          if (whole !== shown && notReady.get(name) !== whole) {
            notReady.set(name, whole)
            logger('warn', 'http.not_ready', { check: name, error: whole })
          }
          return [name, { status: 'unavailable', error: shown }] as const
        }
      }),
    )
    const ready = entries.every(([, check]) => check.status === 'ok')
    return c.json(
      { status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(entries) },
      ready ? 200 : 503,
    )
  })

  app.get('/metrics', async (c) =>
    c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  )

  app.use('/v1/*', async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path)) return next()
    // The GraphiQL page (no data; its queries carry their own token).
    if (options.graphiql && c.req.path === GRAPHQL_PATH && isGraphiqlPageRequest(c.req.raw)) return next()
    if (options.authorizer !== undefined) c.set('authorizer', options.authorizer)
    const header = c.req.header('authorization')
    const token = bearerToken(header)
    // Anonymous is a request without a bearer token. Another scheme (a proxy's Basic) is not a
    // Herald token, but a malformed one (`Bearer` with none, or with a space in it) is refused
    // below, never made the admin.
    if (!options.requireAuth && token === undefined && !/^\s*bearer\b/i.test(header ?? '')) {
      c.set('principal', { account: ADMIN_ACCOUNT, role: 'admin', tokenId: 'anonymous' })
      return next()
    }
    // A token sent is checked even when none is required: a wrong one is refused, not taken
    // as anonymous, and a known one acts as its own account and role, as in production.
    const principal = token === undefined ? undefined : await options.authenticate(token)
    if (principal === undefined) {
      c.header('www-authenticate', 'Bearer realm="herald"')
      throw new UnauthorizedError()
    }
    c.set('principal', principal)
    return next()
  })

  // Every route's body is bounded, as ingest's is (by its own limit, so it is read once).
  const limitBody = bodyLimit({
    maxSize: maxBodyBytes,
    onError: () => {
      throw new HeraldError('payload_too_large', `the body exceeds ${maxBodyBytes} bytes`)
    },
  })
  app.use('/v1/*', (c, next) => (c.req.path === INGEST_PATH ? next() : limitBody(c, next)))

  app.route(
    INGEST_PATH,
    createIngestRoutes({
      log: options.log,
      topic: options.eventsTopic,
      metrics,
      maxBodyBytes,
      ...(options.rememberEvent === undefined ? {} : { remember: options.rememberEvent }),
    }),
  )
  app.route(
    GRAPHQL_PATH,
    createGraphqlRoutes({
      warehouse: options.warehouse,
      graphiql: options.graphiql,
      logger,
      endpoint: GRAPHQL_PATH,
      ...(options.reportLag === undefined ? {} : { lag: options.reportLag }),
    }),
  )
  for (const mount of options.mounts ?? []) app.route(mount.path, mount.app)
  return app
}
