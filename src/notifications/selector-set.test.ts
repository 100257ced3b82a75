import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TestScheduler } from 'rxjs/testing'
import type { RecordedEvent } from '../ports/index.ts'
import { streamName } from './configuration.ts'
import { emptySelectorSet, type SelectorSet } from './model.ts'
import { applyToSelectorSet, selectorSets } from './selector-set.ts'

const CONFIG = '6f1e3b5a-2c4d-4e8f-9a1b-0c2d3e4f5a6b'
const SELECTOR = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'

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

const created = recorded(1, 'WebhookConfigurationCreated', {
  configurationId: CONFIG,
  account: 'acme',
  url: 'https://hooks.example.com/herald',
  signingSecret: SECRET,
  enabled: true,
  createdAt: '2026-11-22T10:00:00.000Z',
})
const added = recorded(2, 'SelectorAdded', {
  selectorId: SELECTOR,
  configurationId: CONFIG,
  account: 'acme',
  scope: 'account',
  event: { level: '*', type: '*', resource_type: '*' },
  addedAt: '2026-11-22T10:00:00.000Z',
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

  it('returns the same snapshot when no configuration event is in the burst', () => {
    const set = applyToSelectorSet(emptySelectorSet, [created])
    assert.equal(applyToSelectorSet(set, [unrelated]), set)
  })

  it('skips and reports events that fail their codec', () => {
    const reported: string[] = []
    const set = applyToSelectorSet(emptySelectorSet, [created, broken], (event) => reported.push(event.id))
    assert.deepEqual(summary(set), { position: 1, configurations: [CONFIG], selectors: [] })
    assert.deepEqual(reported, ['ev-4'])
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
