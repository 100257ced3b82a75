import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { Hono } from 'hono'
import { createDelivererHandler } from '../../streams/deliverer.ts'
import { createDeliveryChannels, validateTemplates } from '../../streams/delivery/index.ts'
import { buildSelectorIndex, emptySelectorIndex, type SelectorIndex } from '../../streams/routing/index.ts'
import type { Config } from '../config/index.ts'
import { createEventTypeRoutes } from '../http/event-types.ts'
import type { AppEnv } from '../http/index.ts'
import {
  createDeliveryHealth,
  createEndpointRoutes,
  createEndpointStatusService,
  createNotificationConfigService,
  createNotificationRoutes,
  emptySelectorSet,
  type SelectorSet,
} from '../notifications/index.ts'
import type { Logger, Metrics } from '../observability/index.ts'
import type { OutboundGuard } from '../outbound/index.ts'
import type { Consumer, EventLog } from '../ports/event-log.ts'
import type { EventStore } from '../ports/event-store.ts'
import { createSecretBox, loadOrCreateKeyFile } from '../secrets/index.ts'
import { toChannelConfiguration } from './channel-configuration.ts'
import { type IngressWiring, startRouter } from './ingress.ts'

export interface NotificationsWiring {
  readonly consumers: readonly Consumer[]
  readonly mounts: readonly { readonly path: string; readonly app: Hono<AppEnv> }[]
  close(): Promise<void>
}

export interface WireNotificationsOptions {
  readonly config: Config
  readonly log: EventLog
  readonly store: EventStore
  readonly logger: Logger
  readonly metrics: Metrics
  readonly clock: () => number
  /** Every delivery and target check goes through the SSRF guard. */
  readonly outbound: OutboundGuard
  /** The engine-event decoder and processed-id window the router uses. */
  readonly ingress: IngressWiring
}

/**
 * Notifications' part of the composition root: the configuration service on the event store,
 * the live selector index the router reads (swapped whole on every change), and the router
 * and deliverer consumer groups.
 */
export const wireNotifications = async (options: WireNotificationsOptions): Promise<NotificationsWiring> => {
  const { config, log, store, logger, clock } = options
  const box = createSecretBox({
    current: config.secrets.encryption_key ?? loadOrCreateKeyFile(join(config.data_dir, 'secret.key')),
    previous: config.secrets.previous_keys,
  })
  const health = createDeliveryHealth()
  const channels = createDeliveryChannels({ guard: options.outbound, clock, logger })
  const service = createNotificationConfigService({
    store,
    box,
    clock,
    newId: randomUUID,
    onInvalidEvent: (event, issues) =>
      logger('error', 'notifications.stored_event_invalid', {
        stream: event.stream,
        revision: event.revision,
        type: event.type,
        issues: issues.slice(0, 10),
      }),
    // A full read first, so the router's first index holds every selector ever added.
    readAll: (o) => store.readAll(o),
  })
  const endpoints = createEndpointStatusService({ store, clock, newId: randomUUID })
  const mounts = [
    { path: '/v1/notifications', app: createEndpointRoutes({ endpoints }) },
    { path: '/v1/notifications', app: createEventTypeRoutes() },
    {
      path: '/v1/notifications',
      app: createNotificationRoutes({
        service,
        health,
        checkTemplates: (templates, endpoint) => validateTemplates(templates, endpoint),
        checkTarget: async (url) => {
          await options.outbound.checkUrl(url)
        },
      }),
    },
  ]
  const routerOptions = { config, log, ingress: options.ingress, metrics: options.metrics, logger, clock }
  if (!config.notifications.enabled) {
    logger('info', 'notifications.disabled', { reason: 'notifications.enabled is false' })
    // The router is the one group that dead-letters bad input, so it keeps validating.
    const router = await startRouter({ ...routerOptions, getIndex: () => emptySelectorIndex, route: false })
    return { consumers: [router], mounts, close: async () => {} }
  }

  // One reference, replaced whole: a batch in flight sees the old index or the new, never a mix.
  let index: SelectorIndex = emptySelectorIndex
  let selectors: SelectorSet = emptySelectorSet
  // The router must not see an event before the index holds every stored selector: an event
  // routed against a partial index would be committed with deliveries missing.
  let markLoaded: () => void = () => {}
  let failLoad: (error: unknown) => void = () => {}
  const loaded = new Promise<void>((resolve, reject) => {
    markLoaded = resolve
    failLoad = reject
  })
  const subscription = service.selectors$().subscribe({
    next: (set) => {
      selectors = set
      index = buildSelectorIndex(set, {
        onUncompilable: (selector, error) =>
          logger('error', 'router.selector_uncompilable', { selector_id: selector.id, error: String(error) }),
      })
      markLoaded()
      logger('debug', 'router.index_swapped', { configurations: set.configurations.size })
    },
    error: (error: unknown) => {
      failLoad(error)
      logger('error', 'notifications.selector_feed_failed', { error: String(error) })
    },
  })
  try {
    await loaded
  } catch (error) {
    subscription.unsubscribe()
    throw error
  }

  const { topics } = config.event_log
  const router = await startRouter({ ...routerOptions, getIndex: () => index, route: true })
  const deliverer = await log.consume(
    { groupId: 'herald-deliverer', topics: [topics.deliveries] },
    createDelivererHandler({
      getConfiguration: (id) => {
        const configuration = selectors.configurations.get(id)
        if (configuration === undefined) return undefined
        const webhook = () => service.webhookDelivery(configuration, clock())
        const signingSecrets = () => {
          const delivery = webhook()
          return delivery === undefined
            ? []
            : [delivery.signingSecret, ...(delivery.previousSigningSecrets ?? [])]
        }
        return {
          enabled: configuration.enabled,
          channel: toChannelConfiguration(
            configuration,
            (field) => service.openSecret(configuration, field),
            signingSecrets,
          ),
        }
      },
      send: channels.send,
      uiUrl: config.ui_url,
      logger,
      timeoutMs: config.notifications.webhook_timeout_ms,
      onOutcome: (outcome, command) => {
        options.metrics.deliveries.inc({ endpoint: command.endpoint, outcome })
        if (outcome !== 'skipped') health.record(command.configurationId, outcome === 'sent', clock())
      },
      // The endpoint says it no longer exists: stop sending to it, visibly in the audit trail.
      onGone: async (command) => {
        const fields = { configuration_id: command.configurationId, endpoint: command.endpoint }
        try {
          await service.disableConfiguration(command.configurationId, 'endpoint_gone')
          logger('warn', 'delivery.configuration_disabled', { ...fields, reason: 'endpoint_gone' })
        } catch (error) {
          logger('error', 'delivery.configuration_disable_failed', { ...fields, error: String(error) })
        }
      },
    }),
  )
  return {
    consumers: [router, deliverer],
    mounts,
    close: async () => {
      subscription.unsubscribe()
    },
  }
}
