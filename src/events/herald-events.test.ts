import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { heraldClaims, notAsHeraldEmits } from './herald-events.ts'

const DISABLED = 'system.notifications.configuration_disabled'
const TEST = 'com.ibm.cloud.compliance.test'
const paths = (issues: readonly { path: string }[]) => issues.map((i) => i.path)

describe('Herald’s own events', () => {
  it('are claimed by a system.notifications.* type or a /herald source, whoever sends them', () => {
    assert.deepEqual(paths(heraldClaims({ type: DISABLED, source: '/herald/deliverer', account: 'admin' })), [
      'type',
      'source',
    ])
    assert.deepEqual(paths(heraldClaims({ type: DISABLED, source: '/engine', account: 'acme' })), ['type'])
    for (const source of ['/herald', '/herald/notifications/test', '/herald/anything'])
      assert.deepEqual(paths(heraldClaims({ type: TEST, source, account: 'acme' })), ['source'], source)
    // Only Herald's namespace: the engine's system events, and look-alike sources, are anyone's.
    assert.deepEqual(
      heraldClaims({ type: 'system.feeds.sync.failed', source: '/engine', account: 'acme' }),
      [],
    )
    assert.deepEqual(heraldClaims({ type: TEST, source: '/heraldry', account: 'acme' }), [])
    assert.deepEqual(heraldClaims({ type: TEST, source: 'https://herald/x', account: 'acme' }), [])
  })

  it('are on the log only as Herald emits them: the deliverer’s for the admin account, test events for any', () => {
    assert.deepEqual(notAsHeraldEmits({ type: DISABLED, source: '/herald/deliverer', account: 'admin' }), [])
    assert.deepEqual(
      notAsHeraldEmits({ type: TEST, source: '/herald/notifications/test', account: 'acme' }),
      [],
    )
    assert.deepEqual(
      notAsHeraldEmits({ type: TEST, source: '/scc/event-notifications', account: 'acme' }),
      [],
    )
    assert.deepEqual(
      paths(notAsHeraldEmits({ type: DISABLED, source: '/herald/deliverer', account: 'acme' })),
      ['account'],
    )
    assert.deepEqual(
      paths(notAsHeraldEmits({ type: DISABLED, source: '/herald/notifications/test', account: 'admin' })),
      ['source'],
    )
    assert.deepEqual(
      paths(
        notAsHeraldEmits({
          type: 'user.image.analysis.completed',
          source: '/herald/deliverer',
          account: 'admin',
        }),
      ),
      ['source'],
    )
    assert.deepEqual(paths(notAsHeraldEmits({ type: TEST, source: '/herald/deliverer', account: 'acme' })), [
      'source',
    ])
  })
})
