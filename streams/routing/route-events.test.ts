import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { TestScheduler } from 'rxjs/testing'
import type { CloudEvent } from '../../src/events/index.ts'
import type { SelectorSet } from '../../src/notifications/index.ts'
import type { DeliveryCommand } from './delivery-command.ts'
import { deliveryIdFor } from './delivery-command.ts'
import { routeEvents } from './route-events.ts'
import { buildSelectorIndex, emptySelectorIndex, type SelectorIndex } from './selector-index.ts'
import { aConfiguration, anEvent, aSelector } from './test-fixtures.ts'

const newScheduler = () => new TestScheduler((actual, expected) => assert.deepEqual(actual, expected))

const set = (enabled = true): SelectorSet => ({
  position: 1,
  disabledEndpoints: new Set(),
  configurations: new Map([
    ['cfg-1', aConfiguration({ id: 'cfg-1' })],
    ['cfg-2', aConfiguration({ id: 'cfg-2', enabled })],
    ['cfg-admin', aConfiguration({ id: 'cfg-admin', account: 'admin' })],
  ]),
  selectors: new Map(
    [
      aSelector({ type: 'user.checks.*' }, { id: 's1', configurationId: 'cfg-1' }),
      aSelector({ level: 'info' }, { id: 's2', configurationId: 'cfg-1' }),
      aSelector({ type: 'user.*' }, { id: 's3', configurationId: 'cfg-2' }),
      aSelector(
        { level: 'error' },
        { id: 's4', configurationId: 'cfg-admin', account: 'admin', scope: 'global' },
      ),
    ].map((s) => [s.id, s]),
  ),
})

const CREATED = '1970-01-01T00:00:00.000Z'
const command = (
  event: ReturnType<typeof anEvent>,
  configurationId: string,
  selectorIds: string[],
  account = 'acme',
): DeliveryCommand => ({
  deliveryId: deliveryIdFor(event, configurationId),
  account,
  endpoint: 'webhook',
  configurationId,
  event,
  matchedSelectorIds: selectorIds,
  createdAt: CREATED,
})

describe('routeEvents', () => {
  it('emits one command per matched configuration, in configuration order', () => {
    const a = anEvent({ id: 'a' })
    const b = anEvent({ id: 'b', type: 'system.feeds.sync.failed', level: 'error', account: 'globex' })
    const c = anEvent({ id: 'c', type: 'user.image.analysis.completed', level: 'warning' })
    const index = buildSelectorIndex(set())
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a----b-c-|', { a, b, c })
      // `a` matches two selectors of cfg-1 but yields one command for it; `c` matches only cfg-2.
      expectObservable(
        source.pipe(
          routeEvents(
            () => index,
            () => 0,
          ),
        ),
      ).toBe('-(xy)-z-w-|', {
        x: command(a, 'cfg-1', ['s1', 's2']),
        y: command(a, 'cfg-2', ['s3']),
        z: command(b, 'cfg-admin', ['s4'], 'admin'),
        w: command(c, 'cfg-2', ['s3']),
      })
    })
  })

  it('skips disabled configurations', () => {
    const a = anEvent({ id: 'a' })
    const index = buildSelectorIndex(set(false))
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold('-a-|', { a }).pipe(
          routeEvents(
            () => index,
            () => 0,
          ),
        ),
      ).toBe('-x-|', {
        x: command(a, 'cfg-1', ['s1', 's2']),
      })
    })
  })

  it('uses the index current at each event, so a swap applies from the next event on', () => {
    const a = anEvent({ id: 'a', type: 'user.image.analysis.completed', level: 'warning' })
    const b = anEvent({ id: 'b', type: 'user.image.analysis.completed', level: 'warning' })
    let current: SelectorIndex = emptySelectorIndex
    newScheduler().run(({ cold, expectObservable, flush }) => {
      expectObservable(
        cold('-a---b-|', { a, b }).pipe(
          routeEvents(
            () => current,
            () => 0,
          ),
        ),
      ).toBe('-----x-|', {
        x: command(b, 'cfg-2', ['s3']),
      })
      cold('---s|').subscribe(() => {
        current = buildSelectorIndex(set())
      })
      flush()
    })
  })

  it('stamps commands with the clock', () => {
    const a = anEvent({ id: 'a' })
    const index = buildSelectorIndex(set(false))
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold('a|', { a }).pipe(
          routeEvents(
            () => index,
            () => Date.UTC(2026, 10, 22, 10),
          ),
        ),
      ).toBe('x|', {
        x: { ...command(a, 'cfg-1', ['s1', 's2']), createdAt: '2026-11-22T10:00:00.000Z' },
      })
    })
  })

  it('matches each event against one whole index: the old one before a swap, the new one after', () => {
    // Old index: only cfg-1's selectors. New index: only cfg-2's. An event routed across the
    // swap sees one or the other, never cfg-1 and cfg-2 together.
    const onlyCfg1 = buildSelectorIndex({
      ...set(),
      selectors: new Map([...set().selectors].filter(([, s]) => s.configurationId === 'cfg-1')),
    })
    const onlyCfg2 = buildSelectorIndex({
      ...set(),
      selectors: new Map([...set().selectors].filter(([, s]) => s.configurationId === 'cfg-2')),
    })
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => anEvent({ id })) as [
      CloudEvent,
      CloudEvent,
      CloudEvent,
      CloudEvent,
    ]
    let current = onlyCfg1
    newScheduler().run(({ cold, expectObservable }) => {
      cold('----s|').subscribe(() => {
        current = onlyCfg2
      })
      expectObservable(
        cold('-a-b--c-d|', { a, b, c, d }).pipe(
          routeEvents(
            () => current,
            () => 0,
          ),
        ),
      ).toBe('-a-b--c-d|', {
        a: command(a, 'cfg-1', ['s1', 's2']),
        b: command(b, 'cfg-1', ['s1', 's2']),
        c: command(c, 'cfg-2', ['s3']),
        d: command(d, 'cfg-2', ['s3']),
      })
    })
  })

  it('errors when the index cannot be read, and when it throws matching', () => {
    const a = anEvent({ id: 'a' })
    const b = anEvent({ id: 'b', type: 'user.image.analysis.completed', level: 'warning' })
    const failure = new Error('index unavailable')
    const index = buildSelectorIndex(set())
    newScheduler().run(({ cold, expectObservable }) => {
      let reads = 0
      expectObservable(
        cold('-a---b-a|', { a, b }).pipe(
          routeEvents(
            () => {
              if (++reads === 2) throw failure
              return index
            },
            () => 0,
          ),
        ),
      ).toBe('-(xy)#', { x: command(a, 'cfg-1', ['s1', 's2']), y: command(a, 'cfg-2', ['s3']) }, failure)
      const throwing: SelectorIndex = {
        size: 1,
        match: () => {
          throw failure
        },
      }
      expectObservable(
        cold('--a|', { a }).pipe(
          routeEvents(
            () => throwing,
            () => 0,
          ),
        ),
      ).toBe('--#', {}, failure)
    })
  })

  it('passes an upstream error through', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      expectObservable(
        cold<CloudEvent>('-#', undefined, new Error('log closed')).pipe(
          routeEvents(
            () => emptySelectorIndex,
            () => 0,
          ),
        ),
      ).toBe('-#', {}, new Error('log closed'))
    })
  })
})
