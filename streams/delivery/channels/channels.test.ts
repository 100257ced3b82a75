import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createOutboundGuard } from '../../../src/outbound/index.ts'
import { createDeliveryChannels } from './channels.ts'
import type { ChannelConfiguration } from './configuration.ts'
import { aDelivery } from './test-fixtures.ts'

describe('createDeliveryChannels', () => {
  it('has one channel per endpoint type', () => {
    const guard = createOutboundGuard()
    const { channels } = createDeliveryChannels({ guard })
    assert.deepEqual(
      Object.entries(channels).map(([name, channel]) => [name, channel.endpoint]),
      ['slack', 'teams', 'email', 'webhook', 'github', 'jira'].map((e) => [e, e]),
    )
    guard.close()
  })

  it('refuses a configuration of an endpoint it does not know, without throwing', async () => {
    const guard = createOutboundGuard()
    const unknown = { endpoint: 'pagerduty', id: 'c', account: 'acme' } as unknown as ChannelConfiguration
    const result = await createDeliveryChannels({ guard }).send(aDelivery(), unknown, {
      uiUrl: null,
      timeoutMs: 100,
    })
    assert.deepEqual(result, {
      ok: false,
      kind: 'permanent',
      code: 'configuration',
      status: null,
      error: 'no channel for endpoint pagerduty',
      latencyMs: 0,
    })
    guard.close()
  })
})
