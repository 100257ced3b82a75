import type { CloudEvent } from '../../src/events/index.ts'
import type {
  EndpointConfiguration,
  EventPattern,
  JsonValue,
  Selector,
  SelectorScope,
  SelectorSet,
  WebhookConfiguration,
} from '../../src/notifications/index.ts'

/** Builders shared by the routing tests; not part of the module's surface. */
export const anEvent = (overrides: Partial<CloudEvent> = {}): CloudEvent => ({
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/policy',
  type: 'user.checks.tag.vulnerabilities.update',
  account: 'acme',
  level: 'info',
  resourcetype: 'tag',
  time: '2026-11-22T10:00:00Z',
  data: { tag: 'docker.io/library/nginx:latest' },
  ...overrides,
})

export const aSelector = (
  event: Partial<EventPattern> = {},
  {
    id = 'sel-1',
    configurationId = 'cfg-1',
    account = 'acme',
    scope = 'account',
    pattern = null,
  }: Partial<{
    id: string
    configurationId: string
    account: string
    scope: SelectorScope
    pattern: JsonValue | null
  }> = {},
): Selector => ({
  id,
  configurationId,
  account,
  scope,
  event: { level: '*', type: '*', resource_type: '*', ...event },
  pattern,
})

/** A webhook configuration as the read model holds it; its secret sealed-looking, never opened here. */
export const aConfiguration = (overrides: Partial<EndpointConfiguration> = {}): EndpointConfiguration => ({
  id: 'cfg-1',
  account: 'acme',
  endpoint: 'webhook',
  settings: { url: 'https://hooks.example.com/herald' },
  secrets: {},
  hints: {},
  description: null,
  enabled: true,
  verifyTls: true,
  templates: {},
  digest: { enabled: false, windowSeconds: null },
  maxInFlight: null,
  createdAt: '2026-11-22T10:00:00.000Z',
  updatedAt: '2026-11-22T10:00:00.000Z',
  ...overrides,
})

export const aSelectorSet = (
  configurations: readonly EndpointConfiguration[],
  selectors: readonly Selector[],
  disabledEndpoints: SelectorSet['disabledEndpoints'] = new Set(),
): SelectorSet => ({
  position: 1,
  configurations: new Map(configurations.map((c) => [c.id, c])),
  selectors: new Map(selectors.map((s) => [s.id, s])),
  disabledEndpoints,
  unannounced: new Map(),
})

/** A webhook configuration as the webhook deliverer takes it: its signing secret opened. */
export const aWebhookConfiguration = (
  overrides: Partial<WebhookConfiguration> = {},
): WebhookConfiguration => ({
  id: 'cfg-1',
  account: 'acme',
  url: 'https://hooks.example.com/herald',
  signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  enabled: true,
  ...overrides,
})
