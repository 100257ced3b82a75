import { type Context, Hono } from 'hono'
import { ADMIN_ACCOUNT } from '../access/index.ts'
import {
  clipped,
  collectIssues,
  type FieldIssue,
  ForbiddenError,
  HeraldError,
  isSecretRequired,
  NotFoundError,
  type SecretRequiredError,
  ValidationError,
} from '../errors/index.ts'
import { authorize } from '../http/authorize.ts'
import { readJsonObject, unknownFields } from '../http/body.ts'
import { noQueryParameters } from '../http/query.ts'
import { unknownEventFields } from './codecs.ts'
import type { SelectorInput, SelectorPatch } from './configuration.ts'
import { changedReadOnly, configurationBody } from './configuration-body.ts'
import { type Target, targetsOf } from './endpoint-fields.ts'
import type { DeliveryHealth } from './health.ts'
import type { EndpointType, JsonValue, NotificationsEnv, Principal } from './model.ts'
import { pageById, pageRequestOf } from './paging.ts'
import { endpointParam, idParam } from './params.ts'
import {
  assertWritableAt,
  type ConfigurationInput,
  type NotificationConfigService,
  type WriteOptions,
} from './service.ts'
import { configurationView, holdsRedacted, selectorView } from './views.ts'

// A selector's fields, and the ids of one read earlier, which may be sent back.
const SELECTOR_FIELDS = ['scope', 'event', 'pattern', 'uuid', 'configuration_uuid']

const principalOf = (c: Context<NotificationsEnv>): Principal => c.get('principal')

const etag = (revision: number): string => `"${revision}"`

/**
 * `If-Match` as an expected revision. `*` asks only that the resource exists, which every
 * write checks anyway; a tag Herald never issued can never match, so the write fails with 412.
 * Neither can a weak one: If-Match compares strongly (RFC 9110 §13.1.1), and Herald's are strong.
 */
const writeOptions = (c: Context<NotificationsEnv>, what: string): WriteOptions => {
  const header = c.req.header('if-match')?.trim()
  if (header === undefined || header === '*') return {}
  // A list of tags (RFC 9110 §13.1.1) matches when any of them does; only one can be current.
  const tags = header
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '')
  const revisions = tags.flatMap((tag) => {
    const match = /^"(\d{1,15})"$/.exec(tag)
    return match?.[1] === undefined ? [] : [Number(match[1])]
  })
  if (revisions.length > 0) return { expectedRevisions: revisions }
  if (tags.some((tag) => tag.startsWith('W/')))
    throw new HeraldError(
      'precondition_failed',
      `If-Match ${header.slice(0, 64)} is a weak ETag, which If-Match cannot use: send the ETag of ${what} as Herald issued it, without W/`,
    )
  throw new HeraldError(
    'precondition_failed',
    `If-Match ${header.slice(0, 64)} is not an ETag Herald issued for ${what}; read it again and send its ETag`,
  )
}

/**
 * The fields a selector body sends, unchecked (the decider checks them): a field left out is
 * absent here, so an update keeps its value; `pattern: null` is kept as null, which removes it.
 */
const selectorFields = (
  body: Record<string, unknown>,
  principal: Principal,
  ids: { readonly configuration: string; readonly selector?: string },
): SelectorPatch => {
  const unknown = [
    ...unknownFields(body, SELECTOR_FIELDS),
    ...unknownEventFields(body.event),
    ...changedIds(body, ids),
  ]
  if (unknown.length > 0) throw ValidationError.of('selector', unknown)
  if (body.scope === 'global' && (principal.role !== 'admin' || principal.account !== ADMIN_ACCOUNT))
    throw new ForbiddenError('only the admin account may add a selector with global scope')
  return {
    ...(body.scope === undefined ? {} : { scope: body.scope as SelectorInput['scope'] }),
    ...(body.event === undefined ? {} : { event: body.event as SelectorInput['event'] }),
    ...(body.pattern === undefined ? {} : { pattern: body.pattern as JsonValue | null }),
  }
}

/** The ids a selector body sends back that are not the ones its path names (any for a new selector). */
const changedIds = (
  body: Record<string, unknown>,
  ids: { readonly configuration: string; readonly selector?: string },
): FieldIssue[] => {
  const issues: FieldIssue[] = []
  const same = (value: unknown, id: string | undefined) =>
    id !== undefined && typeof value === 'string' && value.toLowerCase() === id
  if (body.uuid !== undefined && !same(body.uuid, ids.selector))
    issues.push({
      path: 'uuid',
      message:
        ids.selector === undefined
          ? 'is read-only: Herald sets it'
          : 'is read-only: it must be the path’s selector id',
    })
  if (body.configuration_uuid !== undefined && !same(body.configuration_uuid, ids.configuration))
    issues.push({
      path: 'configuration_uuid',
      message: 'is read-only: it must be the path’s configuration id',
    })
  return issues
}

/** A new selector: without `pattern` it has none; a missing `scope` or `event` is refused by the decider. */
const selectorInput = (
  body: Record<string, unknown>,
  principal: Principal,
  configurationId: string,
): SelectorInput => {
  const fields = selectorFields(body, principal, { configuration: configurationId })
  return { ...fields, pattern: fields.pattern ?? null } as SelectorInput
}

export interface NotificationRoutesOptions {
  readonly service: NotificationConfigService
  /** Refuses a target the outbound guard would not deliver to (SSRF), before it is stored. */
  readonly checkTarget?: (target: Target) => Promise<void>
  /** Recent delivery outcomes, for `…/{uuid}/status`. */
  readonly health?: DeliveryHealth
  /** Parses template overrides, refusing a bad one with issues naming it (the channel layer's `validateTemplates`). */
  readonly checkTemplates?: (templates: unknown, endpoint: EndpointType) => Promise<void>
}

/**
 * The notification configuration API as a Hono sub-app; mount it at `/v1/notifications`
 * behind middleware that sets `principal`. Each route names its action of the seed's table.
 * Errors are thrown as Herald errors for the app's `onError` to render as problem details.
 *
 * @example
 * app.route('/v1/notifications', createNotificationRoutes({ service, checkTarget }))
 */
export const createNotificationRoutes = ({
  service,
  checkTarget,
  health,
  checkTemplates,
}: NotificationRoutesOptions): Hono<NotificationsEnv> => {
  const app = new Hono<NotificationsEnv>()
  const CONFIGURATIONS = '/endpoints/:endpoint/configurations'
  const CONFIGURATION = `${CONFIGURATIONS}/:uuid`
  const SELECTORS = `${CONFIGURATION}/selectors`
  const SELECTOR = `${SELECTORS}/:selector`

  /**
   * A create or update body as the service takes it, every field checked and every issue
   * refused in one 400: unknown names, read-only ones (`uuid`, `created_at`, …) other than as a
   * read of the stored configuration shows them, values and secrets as the service would decide
   * them, template overrides. Its targets are checked after this, so a host the SSRF guard
   * refuses, or DNS cannot resolve, hides no bad field.
   */
  const checkedInput = async (
    c: Context<NotificationsEnv>,
    endpoint: EndpointType,
    configurationId?: string,
    write: WriteOptions = {},
  ): Promise<ConfigurationInput> => {
    const principal = principalOf(c)
    const { fields, options, readOnly, issues } = configurationBody(endpoint, await readJsonObject(c))
    const all = [...issues]
    if (Object.keys(readOnly).length > 0) {
      let stored: Awaited<ReturnType<typeof service.getConfiguration>>['value'] | undefined
      if (configurationId !== undefined) {
        const current = await service.getConfiguration(principal.account, endpoint, configurationId)
        // A read sent back after someone else changed the configuration differs in its read-only
        // fields (`updated_at`, `selectors`) because of that change: the answer is 412, not 400.
        assertWritableAt(`configuration ${configurationId}`, write, current.revision)
        stored = current.value
      }
      all.push(...changedReadOnly(endpoint, readOnly, stored))
    }
    const input = { fields, options }
    const keepIssues = (error: unknown) => collectIssues(all, error)
    // Secrets to give again are a 422 of their own, unless something else is wrong too.
    let required: SecretRequiredError | undefined
    await service.checkConfiguration(principal, endpoint, input, configurationId).catch((error) => {
      if (isSecretRequired(error)) required = error
      else keepIssues(error)
    })
    if (options.templates != null) await checkTemplates?.(options.templates, endpoint).catch(keepIssues)
    if (all.length > 0) {
      for (const issue of required?.issues ?? []) if (!all.some((i) => i.path === issue.path)) all.push(issue)
      throw ValidationError.of(`${endpoint} configuration`, all)
    }
    if (required !== undefined) throw required
    return input
  }

  /** Creation checks every target, defaults included; an update the targets it changes. */
  const checkTargets = async (
    endpoint: EndpointType,
    fields: Readonly<Record<string, unknown>>,
    withDefaults: boolean,
  ) => {
    if (checkTarget === undefined) return
    // A secret URL sent back as a read shows it keeps the stored one: no new target.
    const scalars = Object.fromEntries(
      Object.entries(fields).filter(
        ([, v]) => (typeof v === 'string' && !holdsRedacted(v)) || typeof v === 'number',
      ),
    ) as Record<string, JsonValue>
    for (const target of targetsOf(endpoint, scalars, { withDefaults })) await checkTarget(target)
  }

  app.get(CONFIGURATIONS, authorize('listNotificationEndpointConfigurations'), async (c) => {
    const endpoint = endpointParam(c)
    const request = pageRequestOf(c)
    const page = pageById(await service.listConfigurations(principalOf(c).account, endpoint), request)
    return c.json({ items: page.items.map(configurationView), next_token: page.next })
  })

  app.post(
    CONFIGURATIONS,
    authorize('createNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const input = await checkedInput(c, endpoint)
      await checkTargets(endpoint, input.fields, true)
      const created = await service.createConfiguration(principalOf(c), endpoint, input)
      c.header('etag', etag(created.revision))
      c.header('location', `${c.req.path}/${created.value.id}`)
      // The one response that carries a generated secret: the receiver needs it to verify signatures.
      return c.json({ ...configurationView(created.value), ...created.generated }, 201)
    },
  )

  app.get(CONFIGURATION, authorize('getNotificationEndpointConfiguration'), noQueryParameters, async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const { value, revision } = await service.getConfiguration(principalOf(c).account, endpoint, id)
    c.header('etag', etag(revision))
    return c.json({ ...configurationView(value.configuration), selectors: value.selectors.map(selectorView) })
  })

  app.put(
    CONFIGURATION,
    authorize('updateNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const id = idParam(c, 'uuid', 'notification configuration')
      const write = writeOptions(c, `configuration ${id}`)
      const input = await checkedInput(c, endpoint, id, write)
      await checkTargets(endpoint, input.fields, false)
      const updated = await service.updateConfiguration(principalOf(c), endpoint, id, input, write)
      c.header('etag', etag(updated.revision))
      return c.json(configurationView(updated.value))
    },
  )

  app.delete(
    CONFIGURATION,
    authorize('deleteNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const id = idParam(c, 'uuid', 'notification configuration')
      await service.deleteConfiguration(principalOf(c), endpoint, id, writeOptions(c, `configuration ${id}`))
      return c.body(null, 204)
    },
  )

  app.get(
    `${CONFIGURATION}/status`,
    authorize('getNotificationEndpointConfiguration'),
    noQueryParameters,
    async (c) => {
      const endpoint = endpointParam(c)
      const id = idParam(c, 'uuid', 'notification configuration')
      // Read first: another account's id is a 404 here too.
      const { value } = await service.getConfiguration(principalOf(c).account, endpoint, id)
      const report = health?.statusOf(id) ?? {
        status: 'unknown',
        recent: { succeeded: 0, failed: 0 },
        last_outcome_at: null,
      }
      return c.json({ uuid: value.configuration.id, enabled: value.configuration.enabled, ...report })
    },
  )

  app.get(SELECTORS, authorize('getNotificationEndpointConfiguration'), async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const request = pageRequestOf(c)
    const { value, revision } = await service.getConfiguration(principalOf(c).account, endpoint, id)
    const page = pageById(value.selectors, request)
    // The configuration's revision: a client paging through its selectors sees whether it changed meanwhile.
    c.header('etag', etag(revision))
    return c.json({ items: page.items.map(selectorView), next_token: page.next })
  })

  app.post(SELECTORS, authorize('updateNotificationEndpointConfiguration'), noQueryParameters, async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const write = writeOptions(c, `configuration ${id}`)
    const input = selectorInput(await readJsonObject(c), principalOf(c), id)
    const { value, revision } = await service.addSelector(principalOf(c), endpoint, id, input, write)
    c.header('etag', etag(revision))
    c.header('location', `${c.req.path}/${value.id}`)
    return c.json(selectorView(value), 201)
  })

  app.get(SELECTOR, authorize('getNotificationEndpointConfiguration'), noQueryParameters, async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const selectorId = idParam(c, 'selector', 'selector')
    const { value, revision } = await service.getConfiguration(principalOf(c).account, endpoint, id)
    const selector = value.selectors.find((s) => s.id === selectorId)
    if (selector === undefined) throw new NotFoundError(`selector ${clipped(selectorId)} not found`)
    c.header('etag', etag(revision))
    return c.json(selectorView(selector))
  })

  app.put(SELECTOR, authorize('updateNotificationEndpointConfiguration'), noQueryParameters, async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const selectorId = idParam(c, 'selector', 'selector')
    const write = writeOptions(c, `configuration ${id}`)
    const input = selectorFields(await readJsonObject(c), principalOf(c), {
      configuration: id,
      selector: selectorId,
    })
    const { value, revision } = await service.updateSelector(
      principalOf(c),
      endpoint,
      id,
      selectorId,
      input,
      write,
    )
    c.header('etag', etag(revision))
    return c.json(selectorView(value))
  })

  app.delete(SELECTOR, authorize('updateNotificationEndpointConfiguration'), noQueryParameters, async (c) => {
    const endpoint = endpointParam(c)
    const id = idParam(c, 'uuid', 'notification configuration')
    const selectorId = idParam(c, 'selector', 'selector')
    await service.removeSelector(
      principalOf(c),
      endpoint,
      id,
      selectorId,
      writeOptions(c, `configuration ${id}`),
    )
    return c.body(null, 204)
  })

  app.get('/selectors', authorize('listNotificationEndpointConfigurations'), async (c) => {
    const request = pageRequestOf(c)
    const page = pageById(await service.listSelectors(principalOf(c).account), request)
    return c.json({ items: page.items.map(selectorView), next_token: page.next })
  })

  return app
}
