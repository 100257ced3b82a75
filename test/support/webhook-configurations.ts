import { randomBytes, randomUUID } from 'node:crypto'
import type { Principal } from '../../src/access/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import {
  createNotificationConfigService,
  type EndpointConfiguration,
  emptySelectorSet,
  type NotificationConfigService,
  type SelectorSet,
} from '../../src/notifications/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { EventStore } from '../../src/ports/index.ts'
import { createSecretBox } from '../../src/secrets/index.ts'
import { deliverableConfiguration } from '../../src/wiring/channel-configuration.ts'
import {
  DEFAULT_RATE_LIMITS,
  DEFAULT_RETRY_POLICY,
  type DeliveryEngineOptions,
} from '../../streams/delivery/index.ts'
import { type DeliveryCommand, deliveryIdFor } from '../../streams/routing/index.ts'

export interface WebhookConfigurations {
  readonly service: NotificationConfigService
  /** The event store the configurations (and, as in Herald, the audited actions) are kept in. */
  readonly store: EventStore
  /** The selector set as the service last published it. */
  selectors(): SelectorSet
  /** A new webhook configuration of `principal`'s account posting to `url`, once the selector set shows it. */
  create(principal: Principal, url: string, description?: string): Promise<EndpointConfiguration>
  /** What the deliverer reads a configuration through, as the wiring builds it. */
  readonly getConfiguration: DeliveryEngineOptions['getConfiguration']
  close(): Promise<void>
}

/**
 * The configuration side of a deliverer, all real: the configuration service on a SQLite event
 * store at `path`, its selector set followed as the wiring follows it, and configurations read
 * for delivery as the wiring reads them (secrets opened, in their rotation grace too).
 *
 * @example
 * const configurations = startWebhookConfigurations(join(dir, 'eventstore.sqlite'))
 * const hook = await configurations.create({ account: 'acme', role: 'read-write' }, `${sink.url}/hook`)
 */
export const startWebhookConfigurations = (path: string): WebhookConfigurations => {
  const store = createSqliteEventStore({ path })
  const service = createNotificationConfigService({
    store,
    box: createSecretBox({ current: randomBytes(32).toString('base64') }),
    clock: Date.now,
    newId: randomUUID,
    readAll: (o) => store.readAll(o),
  })
  let selectors: SelectorSet = emptySelectorSet
  const shown: { id: string; resolve: () => void }[] = []
  const feed = service.selectors$().subscribe((set) => {
    selectors = set
    for (const waiting of shown.splice(0)) {
      if (set.configurations.has(waiting.id)) waiting.resolve()
      else shown.push(waiting)
    }
  })
  return {
    service,
    store,
    selectors: () => selectors,
    create: async (principal, url, description) => {
      const created = await service.createConfiguration(principal, 'webhook', {
        fields: { url },
        options: description === undefined ? {} : { description },
      })
      const id = created.value.id
      if (!selectors.configurations.has(id)) await new Promise<void>((resolve) => shown.push({ id, resolve }))
      return created.value
    },
    getConfiguration: (id) => {
      const stored = selectors.configurations.get(id)
      return stored === undefined ? undefined : deliverableConfiguration(service, stored, Date.now)
    },
    close: async () => {
      feed.unsubscribe()
      await store.close()
    },
  }
}

/**
 * The deliverer's options as `npm start` has them, where a test has no reason to differ: the
 * outcomes topic, no UI link, the default retry schedule and rate limits, the real clock and
 * ids, a silent logger. Spread first, then what the test sets.
 */
export const deliveryEngineDefaults = {
  outcomesTopic: 'notifications.outcomes',
  uiUrl: null,
  logger: silentLogger,
  clock: Date.now,
  newId: randomUUID,
  policy: DEFAULT_RETRY_POLICY,
  rateLimits: DEFAULT_RATE_LIMITS,
} satisfies Partial<DeliveryEngineOptions>

let sequence = 0

/**
 * A delivery command for `configuration`, as the router would publish it for an image-analysis
 * event (`eventId`, unique by default).
 */
export const webhookCommand = (
  configuration: Pick<EndpointConfiguration, 'id' | 'account'>,
  eventId = `evt-${++sequence}`,
): DeliveryCommand => ({
  deliveryId: deliveryIdFor(
    { account: configuration.account, source: '/engine/analyzer', id: eventId },
    configuration.id,
  ),
  account: configuration.account,
  endpoint: 'webhook',
  configurationId: configuration.id,
  event: {
    specversion: '1.0',
    id: eventId,
    source: '/engine/analyzer',
    type: 'user.image.analysis.completed',
    account: configuration.account,
    level: 'info',
    resourcetype: 'image',
    time: new Date().toISOString(),
    data: { digest: `sha256:${'ab'.repeat(32)}` },
  },
  matchedSelectorIds: ['sel-1'],
  createdAt: new Date().toISOString(),
})
