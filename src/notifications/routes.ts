import { type Context, Hono } from 'hono'
import * as t from 'io-ts'
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../errors/index.ts'
import {
  Description,
  EventPattern,
  SelectorScope,
  SigningSecret,
  Uuid,
  validate,
  WebhookUrl,
} from './codecs.ts'
import type { NotificationsEnv, Principal, Selector, WebhookConfigurationView } from './model.ts'
import type { NotificationConfigService } from './service.ts'

// Request bodies in Anchore's snake_case; unknown fields are ignored, never stored.
export const CreateWebhookConfigurationBody = t.intersection([
  t.type({ url: WebhookUrl }),
  t.partial({ signing_secret: SigningSecret, description: Description }),
])

export const CreateSelectorBody = t.type({ scope: SelectorScope, event: EventPattern })

const configurationResponse = (c: WebhookConfigurationView) => ({
  uuid: c.id,
  url: c.url,
  description: c.description ?? null,
  enabled: c.enabled,
})

const selectorResponse = (s: Selector) => ({
  uuid: s.id,
  configuration_uuid: s.configurationId,
  scope: s.scope,
  event: s.event,
})

const principalOf = (c: Context<NotificationsEnv>): Principal => {
  const principal = c.get('principal') as Principal | undefined
  if (principal === undefined) throw new UnauthorizedError()
  return principal
}

const writer = (c: Context<NotificationsEnv>): Principal => {
  const principal = principalOf(c)
  if (principal.role === 'read-only')
    throw new ForbiddenError('a read-only token may not change notification configurations')
  return principal
}

const jsonBody = async (c: Context<NotificationsEnv>): Promise<unknown> => {
  try {
    return await c.req.json()
  } catch {
    throw new ValidationError('the request body must be JSON', [
      { path: '(body)', message: 'must be a JSON document' },
    ])
  }
}

const configurationIdParam = (c: Context<NotificationsEnv>): string => {
  const id = c.req.param('uuid') ?? ''
  // A malformed id names no configuration, exactly like an unknown one.
  if (!Uuid.is(id)) throw new NotFoundError(`webhook configuration ${id} not found`, { configurationId: id })
  return id
}

export interface NotificationRoutesOptions {
  readonly service: NotificationConfigService
  /** Refuses a target URL the outbound guard would not deliver to (SSRF), before it is stored. */
  readonly checkTarget?: (url: string) => Promise<void>
}

/**
 * The notification configuration API as a Hono sub-app; mount it at `/v1/notifications`
 * behind middleware that sets `principal`. Errors are thrown as Herald errors for the app's
 * `onError` to render as problem details.
 *
 * @example
 * app.route('/v1/notifications', createNotificationRoutes({ service }))
 */
export const createNotificationRoutes = ({
  service,
  checkTarget,
}: NotificationRoutesOptions): Hono<NotificationsEnv> => {
  const app = new Hono<NotificationsEnv>()

  app.get('/endpoints/webhook/configurations', async (c) => {
    const { account } = principalOf(c)
    const configurations = await service.listWebhookConfigurations(account)
    return c.json({ items: configurations.map(configurationResponse) })
  })

  app.post('/endpoints/webhook/configurations', async (c) => {
    const { account } = writer(c)
    const body = validate(CreateWebhookConfigurationBody, await jsonBody(c), 'webhook configuration')
    await checkTarget?.(body.url)
    const created = await service.createWebhookConfiguration(account, {
      url: body.url,
      ...(body.signing_secret === undefined ? {} : { signingSecret: body.signing_secret }),
      ...(body.description === undefined ? {} : { description: body.description }),
    })
    // The one response that carries the secret: the receiver needs it to verify signatures.
    return c.json({ ...configurationResponse(created), signing_secret: created.signingSecret }, 201)
  })

  app.post('/endpoints/webhook/configurations/:uuid/selectors', async (c) => {
    const principal = writer(c)
    const configurationId = configurationIdParam(c)
    const body = validate(CreateSelectorBody, await jsonBody(c), 'selector')
    if (body.scope === 'global' && principal.role !== 'admin') {
      throw new ForbiddenError('only an admin may add a selector with global scope')
    }
    const selector = await service.addSelector(principal.account, configurationId, {
      scope: body.scope,
      event: { level: body.event.level, type: body.event.type, resource_type: body.event.resource_type },
    })
    return c.json(selectorResponse(selector), 201)
  })

  return app
}
