import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decideEndpoint, type EndpointEvent, evolveEndpoint, initialEndpointState } from './endpoints.ts'

const now = Date.UTC(2026, 10, 22)
const given = (events: readonly EndpointEvent[]) => ({
  when: (enabled: boolean) =>
    decideEndpoint(
      { endpoint: 'slack', enabled, by: 'admin/admin', now },
      events.reduce(evolveEndpoint, initialEndpointState),
    ),
})
const disabled: EndpointEvent = {
  type: 'EndpointDisabled',
  data: { endpoint: 'slack', by: 'admin/admin', at: new Date(now).toISOString() },
}

describe('endpoint status decider', () => {
  it('starts enabled, so enabling again decides nothing', () => {
    assert.deepEqual(given([]).when(true), [])
  })
  it('disables an enabled endpoint', () => {
    assert.deepEqual(given([]).when(false), [disabled])
  })
  it('re-enables a disabled endpoint', () => {
    assert.deepEqual(given([disabled]).when(true), [{ ...disabled, type: 'EndpointEnabled' }])
  })
})
