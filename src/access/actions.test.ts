import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ACTIONS, type Action, isAllowed } from './actions.ts'

describe('action table', () => {
  it('lets read-only tokens read and nothing else', () => {
    const allowed = (Object.keys(ACTIONS) as Action[]).filter((a) => isAllowed('read-only', a)).sort()
    assert.deepEqual(allowed, [
      'getNotificationEndpointConfiguration',
      'listImages',
      'listNotificationDeliveries',
      'listNotificationEndpointConfigurations',
      'listNotificationEndpoints',
    ])
  })

  it('keeps token management and endpoint switches for admins', () => {
    for (const action of ['manageTokens', 'updateNotificationEndpoint'] as const) {
      assert.ok(isAllowed('admin', action))
      assert.ok(!isAllowed('read-write', action))
      assert.ok(!isAllowed('read-only', action))
    }
  })

  it('lets read-write tokens replay deliveries, and every role read them', () => {
    for (const role of ['read-only', 'read-write', 'admin'] as const) {
      assert.ok(isAllowed(role, 'listNotificationDeliveries'), role)
    }
    assert.ok(isAllowed('read-write', 'replayNotificationDeliveries'))
    assert.ok(isAllowed('admin', 'replayNotificationDeliveries'))
    assert.ok(!isAllowed('read-only', 'replayNotificationDeliveries'))
  })

  it('gives admins every action', () => {
    assert.ok((Object.keys(ACTIONS) as Action[]).every((a) => isAllowed('admin', a)))
  })
})
