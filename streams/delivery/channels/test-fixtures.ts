import { validDataOf } from '../../../schemas/fixtures.ts'
import type { CloudEvent } from '../../../src/events/index.ts'
import { deliveryIdFor } from '../../routing/index.ts'
import type { ChannelDelivery } from './channel.ts'

/** Builders shared by the channel tests (unit and integration); not part of the module's surface. */

/** The catalog's `index`th valid `data` of `type` (schemas/fixtures), so events are what the router passes on. */
export const catalogData = (type: string, index = 0): Record<string, unknown> => validDataOf(type, index)

export const anEvent = (overrides: Partial<CloudEvent> = {}): CloudEvent => ({
  specversion: '1.0',
  id: 'evt-1',
  source: '/engine/policy',
  type: 'user.checks.tag.vulnerabilities.update',
  account: 'acme',
  level: 'info',
  resourcetype: 'image_tag',
  time: '2026-11-22T10:00:00Z',
  data: catalogData('user.checks.tag.vulnerabilities.update', 0),
  ...overrides,
})

/** The seed's example: a posture scan of `my-test-validation-scan` completed. */
export const aPostureEvent = (overrides: Partial<CloudEvent> = {}): CloudEvent =>
  anEvent({
    id: 'evt-posture-1',
    source: '/scc/posture',
    type: 'com.ibm.cloud.compliance.posture',
    subtype: 'posture-scan-completed',
    resourcetype: 'posture_scan',
    data: { ...catalogData('com.ibm.cloud.compliance.posture', 1), scope: 'my-test-validation-scan' },
    ...overrides,
  })

export const aDelivery = (
  event: CloudEvent = anEvent(),
  overrides: Partial<ChannelDelivery> = {},
): ChannelDelivery => ({
  deliveryId: deliveryIdFor(event, overrides.configurationId ?? 'cfg-1'),
  account: 'acme',
  configurationId: 'cfg-1',
  event,
  createdAt: '2026-11-22T10:00:01.000Z',
  ...overrides,
})

/** A clock that advances `step` ms on every reading, from `start`. */
export const ticking = (start: number, step: number): (() => number) => {
  let now = start - step
  return () => {
    now += step
    return now
  }
}
