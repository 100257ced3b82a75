import type { CloudEvent } from '../../src/events/index.ts'
import type {
  EventPattern,
  Selector,
  SelectorScope,
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
  }: Partial<{
    id: string
    configurationId: string
    account: string
    scope: SelectorScope
  }> = {},
): Selector => ({
  id,
  configurationId,
  account,
  scope,
  event: { level: '*', type: '*', resource_type: '*', ...event },
})

export const aConfiguration = (overrides: Partial<WebhookConfiguration> = {}): WebhookConfiguration => ({
  id: 'cfg-1',
  account: 'acme',
  url: 'https://hooks.example.com/herald',
  signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  enabled: true,
  ...overrides,
})
