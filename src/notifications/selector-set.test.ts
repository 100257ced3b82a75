import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TestScheduler } from 'rxjs/testing'
import type { RecordedEvent } from '../ports/index.ts'
import { ANNOUNCEMENTS_STREAM } from './announcements.ts'
import { streamName } from './configuration.ts'
import { emptySelectorSet, type Selector, type SelectorSet } from './model.ts'
import { applyToSelectorSet, changedForDelivery, newlyDisabled, selectorSets } from './selector-set.ts'

const CONFIG = '6f1e3b5a-2c4d-4e8f-9a1b-0c2d3e4f5a6b'
const SELECTOR = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
const SEALED = 'enc:v1:0123abcd:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

const recorded = (
  position: number,
  type: string,
  data: Record<string, unknown>,
  stream = streamName(CONFIG),
): RecordedEvent =>
  ({
    stream,
    id: `ev-${position}`,
    type,
    data,
    metadata: {},
    revision: position - 1,
    position,
    recordedAt: 0,
  }) as RecordedEvent

const options = {
  description: null,
  enabled: true,
  verifyTls: true,
  templates: {},
  digest: { enabled: false, windowSeconds: null },
}
const change = { by: 'acme/read-write', at: '2026-11-22T10:00:00.000Z' }
const created = recorded(1, 'ConfigurationCreated', {
  configurationId: CONFIG,
  account: 'acme',
  endpoint: 'webhook',
  settings: { url: 'https://hooks.example.com/herald' },
  secrets: { signing_secret: SEALED },
  hints: {},
  ...options,
  ...change,
})
const added = recorded(2, 'SelectorAdded', {
  selectorId: SELECTOR,
  configurationId: CONFIG,
  account: 'acme',
  scope: 'account',
  event: { level: '*', type: '*', resource_type: '*' },
  pattern: null,
  ...change,
})
const unrelated = recorded(3, 'DeliverySucceeded', { anything: true }, 'delivery-1')
const broken = recorded(4, 'SelectorAdded', { selectorId: 'x' })

const summary = (set: SelectorSet) => ({
  position: set.position,
  configurations: [...set.configurations.keys()],
  selectors: [...set.selectors.keys()],
})

describe('applyToSelectorSet', () => {
  it('returns a new snapshot and leaves the old one as it was', () => {
    const first = applyToSelectorSet(emptySelectorSet, [created])
    const second = applyToSelectorSet(first, [added])
    assert.deepEqual(summary(first), { position: 1, configurations: [CONFIG], selectors: [] })
    assert.deepEqual(summary(second), { position: 2, configurations: [CONFIG], selectors: [SELECTOR] })
    assert.equal(second.configurations, first.configurations, 'unchanged maps are shared, not copied')
  })

  it('holds a disable Herald decided for a failure as unannounced until its announcement is recorded', () => {
    const disabled = recorded(2, 'ConfigurationUpdated', {
      configurationId: CONFIG,
      account: 'acme',
      settings: { url: 'https://hooks.example.com/herald' },
      secrets: {},
      clearedSecrets: [],
      hints: {},
      changed: ['enabled'],
      ...options,
      enabled: false,
      by: 'system/endpoint_gone',
      at: '2026-11-22T11:00:00.000Z',
      failure: { reason: 'endpoint_gone', failingSince: '2026-11-22T10:59:00.000Z', lastError: 'HTTP 410' },
    })
    const announced = (revision: number, position: number) =>
      recorded(position, 'DisableAnnounced', { configurationId: CONFIG, revision }, ANNOUNCEMENTS_STREAM)
    const pending = applyToSelectorSet(emptySelectorSet, [created, disabled])
    assert.deepEqual(
      [...pending.unannounced],
      [
        [
          `${CONFIG}@1`,
          {
            configurationId: CONFIG,
            account: 'acme',
            endpoint: 'webhook',
            revision: 1,
            at: '2026-11-22T11:00:00.000Z',
            reason: 'endpoint_gone',
            failingSince: '2026-11-22T10:59:00.000Z',
            lastError: 'HTTP 410',
          },
        ],
      ],
    )
    // Another disable's record leaves it; its own takes it off, in a new snapshot.
    assert.equal(applyToSelectorSet(pending, [announced(0, 3)]).unannounced.size, 1)
    const done = applyToSelectorSet(pending, [announced(1, 3)])
    assert.deepEqual([done.position, done.unannounced.size], [3, 0])
    // A disable stored before disables recorded their failure is not announced.
    const { failure: _, ...older } = disabled.data
    assert.equal(
      applyToSelectorSet(emptySelectorSet, [created, { ...disabled, data: older }]).unannounced.size,
      0,
    )
  })

  it('deletes many configurations in one burst in time linear in the selectors: a catch-up replays every deletion ever made', () => {
    const selectors = new Map(
      Array.from({ length: 50_000 }, (_, i) => {
        const id = `s-${i}`
        const selector: Selector = {
          id,
          configurationId: `c-${i % 100}`,
          account: 'acme',
          scope: 'account',
          event: { level: '*', type: '*', resource_type: '*' },
          pattern: null,
        }
        return [id, selector] as const
      }),
    )
    const set: SelectorSet = { ...emptySelectorSet, selectors }
    // Configurations without selectors, then one of the 100 that hold them.
    const deletions = [...Array.from({ length: 5_000 }, (_, i) => `c-${i + 100}`), 'c-0'].map((id, i) =>
      recorded(i + 1, 'ConfigurationDeleted', { configurationId: id, account: 'acme', ...change }),
    )
    const started = performance.now()
    const after = applyToSelectorSet(set, deletions)
    const ms = performance.now() - started
    assert.equal(after.selectors.size, 49_500)
    assert.ok(![...after.selectors.values()].some((s) => s.configurationId === 'c-0'))
    assert.equal(set.selectors.size, 50_000, 'the old snapshot keeps its selectors')
    // Looking through every selector for each deletion took about 5 s here; once per burst, 0.1 s.
    assert.ok(ms < 2_000, `applied in ${Math.round(ms)} ms`)
  })

  it('returns the same snapshot when no configuration event is in the burst', () => {
    const set = applyToSelectorSet(emptySelectorSet, [created])
    assert.equal(applyToSelectorSet(set, [unrelated]), set)
  })

  it('applies updates, removals and deletions, and endpoint types switched off and on', () => {
    const updated = recorded(3, 'ConfigurationUpdated', {
      configurationId: CONFIG,
      account: 'acme',
      settings: { url: 'https://hooks.example.com/v2' },
      secrets: {},
      clearedSecrets: [],
      hints: {},
      changed: ['enabled', 'url'],
      ...options,
      enabled: false,
      ...change,
    })
    const removed = recorded(4, 'SelectorRemoved', {
      selectorId: SELECTOR,
      configurationId: CONFIG,
      account: 'acme',
      ...change,
    })
    const slackOff = recorded(
      5,
      'EndpointDisabled',
      { endpoint: 'slack', by: 'admin/admin', at: change.at },
      'notification-endpoint-slack',
    )
    const set = applyToSelectorSet(emptySelectorSet, [created, added, updated, removed, slackOff])
    assert.equal(set.position, 5)
    assert.equal(set.configurations.get(CONFIG)?.enabled, false)
    assert.equal(set.configurations.get(CONFIG)?.settings.url, 'https://hooks.example.com/v2')
    assert.equal(set.selectors.size, 0)
    assert.deepEqual([...set.disabledEndpoints], ['slack'])
    const slackOn = recorded(
      6,
      'EndpointEnabled',
      { endpoint: 'slack', by: 'admin/admin', at: change.at },
      'notification-endpoint-slack',
    )
    const deleted = recorded(7, 'ConfigurationDeleted', {
      configurationId: CONFIG,
      account: 'acme',
      ...change,
    })
    const later = applyToSelectorSet(applyToSelectorSet(emptySelectorSet, [created, added]), [
      slackOn,
      deleted,
    ])
    assert.deepEqual(summary(later), { position: 7, configurations: [], selectors: [] })
    assert.equal(later.disabledEndpoints.size, 0)
  })

  it('skips and reports events that fail their codec', () => {
    const reported: string[] = []
    const set = applyToSelectorSet(emptySelectorSet, [created, broken], (event) => reported.push(event.id))
    assert.deepEqual(summary(set), { position: 1, configurations: [CONFIG], selectors: [] })
    assert.deepEqual(reported, ['ev-4'])
  })
})

describe('newlyDisabled', () => {
  const toggled = (position: number, enabled: boolean) =>
    recorded(position, 'ConfigurationUpdated', {
      configurationId: CONFIG,
      account: 'acme',
      settings: { url: 'https://hooks.example.com/herald' },
      secrets: {},
      clearedSecrets: [],
      hints: {},
      changed: ['enabled'],
      ...options,
      enabled,
      ...change,
    })

  it('names a configuration switched from enabled to disabled, once', () => {
    const on = applyToSelectorSet(emptySelectorSet, [created, added])
    const off = applyToSelectorSet(on, [toggled(3, false)])
    assert.deepEqual(newlyDisabled(on, off), [CONFIG])
    const stillOff = applyToSelectorSet(off, [
      recorded(4, 'SelectorRemoved', {
        selectorId: SELECTOR,
        configurationId: CONFIG,
        account: 'acme',
        ...change,
      }),
    ])
    assert.deepEqual(newlyDisabled(off, stillOff), [], 'already disabled before')
    assert.deepEqual(newlyDisabled(off, applyToSelectorSet(off, [toggled(4, true)])), [], 'enabled again')
  })

  it('names the configurations of an endpoint type an admin switches off, once, and not of another type', () => {
    const switched = (position: number, endpoint: string, type: 'EndpointDisabled' | 'EndpointEnabled') =>
      recorded(
        position,
        type,
        { endpoint, by: 'admin/admin', at: change.at },
        `notification-endpoint-${endpoint}`,
      )
    const on = applyToSelectorSet(emptySelectorSet, [created, added])
    const slackOff = applyToSelectorSet(on, [switched(3, 'slack', 'EndpointDisabled')])
    assert.deepEqual(newlyDisabled(on, slackOff), [], 'a webhook configuration')
    const webhooksOff = applyToSelectorSet(slackOff, [switched(4, 'webhook', 'EndpointDisabled')])
    assert.deepEqual(newlyDisabled(slackOff, webhooksOff), [CONFIG])
    assert.deepEqual(newlyDisabled(emptySelectorSet, webhooksOff), [CONFIG], 'at start-up')
    assert.deepEqual(
      newlyDisabled(
        webhooksOff,
        applyToSelectorSet(webhooksOff, [switched(5, 'webhook', 'EndpointEnabled')]),
      ),
      [],
    )
  })

  it('names a configuration deleted', () => {
    const on = applyToSelectorSet(emptySelectorSet, [created, added])
    const deleted = applyToSelectorSet(on, [
      recorded(3, 'ConfigurationDeleted', { configurationId: CONFIG, account: 'acme', ...change }),
    ])
    assert.equal(deleted.configurations.size, 0)
    assert.deepEqual(newlyDisabled(on, deleted), [CONFIG])
    assert.deepEqual(newlyDisabled(deleted, deleted), [])
  })

  it('names every disabled configuration of a first snapshot, and none that is enabled', () => {
    const on = applyToSelectorSet(emptySelectorSet, [created])
    assert.deepEqual(newlyDisabled(emptySelectorSet, on), [])
    assert.deepEqual(newlyDisabled(emptySelectorSet, applyToSelectorSet(on, [toggled(2, false)])), [CONFIG])
  })
})

describe('changedForDelivery', () => {
  const updated = (position: number, fields: Record<string, unknown>) =>
    recorded(position, 'ConfigurationUpdated', {
      configurationId: CONFIG,
      account: 'acme',
      settings: { url: 'https://hooks.example.com/herald' },
      secrets: {},
      clearedSecrets: [],
      hints: {},
      changed: Object.keys(fields),
      ...options,
      ...change,
      at: `2026-11-22T10:00:0${position}.000Z`,
      ...fields,
    })
  const on = applyToSelectorSet(emptySelectorSet, [created, added])
  const after = (...events: RecordedEvent[]) => changedForDelivery(on, applyToSelectorSet(on, events))

  it('names a configuration whose destination, secrets or TLS check changed, or that was enabled again', () => {
    assert.deepEqual(after(updated(3, { settings: { url: 'https://hooks.example.com/fixed' } })), [CONFIG])
    assert.deepEqual(after(updated(3, { secrets: { signing_secret: `${SEALED}B` } })), [CONFIG])
    assert.deepEqual(after(updated(3, { verifyTls: false })), [CONFIG])
    const off = applyToSelectorSet(on, [updated(3, { enabled: false })])
    assert.deepEqual(changedForDelivery(off, applyToSelectorSet(off, [updated(4, { enabled: true })])), [
      CONFIG,
    ])
  })

  it('names none for a change that sends nothing differently, a disable, a re-seal or a new selector', () => {
    assert.deepEqual(after(updated(3, { description: 'renamed' })), [])
    assert.deepEqual(after(updated(3, { templates: { title: 'x' } })), [])
    assert.deepEqual(
      after(updated(3, { settings: { url: 'https://hooks.example.com/fixed' }, enabled: false })),
      [],
    )
    assert.deepEqual(
      after(
        recorded(3, 'SecretsResealed', {
          configurationId: CONFIG,
          account: 'acme',
          keyId: 'k2',
          secrets: { signing_secret: { sealed: `${SEALED}C` } },
          ...change,
        }),
      ),
      [],
    )
    assert.deepEqual(changedForDelivery(on, on), [])
    assert.deepEqual(changedForDelivery(emptySelectorSet, on), [], 'created: nothing of it waits')
  })
})

describe('selectorSets', () => {
  it('emits the empty set at once, then one snapshot per burst of configuration changes', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected))
    scheduler.run(({ cold, expectObservable }) => {
      const events = cold('-(ab)-c-d-|', {
        a: created,
        b: added,
        c: unrelated,
        d: { ...broken, position: 5 },
      })
      const summaries = events.pipe(selectorSets({ scheduler }))
      expectObservable(summaries, '^').toBe('ex--------|', {
        e: emptySelectorSet,
        x: applyToSelectorSet(emptySelectorSet, [created, added]),
      })
    })
  })

  it('fails when the store subscription fails', () => {
    const scheduler = new TestScheduler((actual, expected) => assert.deepEqual(actual, expected))
    scheduler.run(({ cold, expectObservable }) => {
      expectObservable(
        cold('-a-#', { a: created }, new Error('store closed')).pipe(selectorSets({ scheduler })),
      ).toBe(
        'ea-#',
        { e: emptySelectorSet, a: applyToSelectorSet(emptySelectorSet, [created]) },
        new Error('store closed'),
      )
    })
  })
})
