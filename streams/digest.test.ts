import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { CloudEvent } from '../src/events/index.ts'
import { processedKey } from '../src/ingress/index.ts'
import type { EndpointConfiguration } from '../src/notifications/index.ts'
import {
  decideRoutes,
  digestCommand,
  digestWindowMs,
  levelCounts,
  noDigests,
  type RouteDecision,
} from './digest.ts'
import type { PendingDigest } from './digest-store.ts'
import { buildSelectorIndex, deliveryIdFor, digestDeliveryIdFor } from './routing/index.ts'
import { aConfiguration, anEvent, aSelector, aSelectorSet } from './routing/test-fixtures.ts'

const CREATED = '1970-01-01T00:00:00.000Z'
// cfg-now delivers each event; cfg-digest wants a digest with the default window; cfg-5m one of five minutes.
const configurations = [
  aConfiguration({ id: 'cfg-now' }),
  aConfiguration({ id: 'cfg-digest', endpoint: 'slack', digest: { enabled: true, windowSeconds: null } }),
  aConfiguration({ id: 'cfg-5m', endpoint: 'email', digest: { enabled: true, windowSeconds: 300 } }),
]
const selectors = [
  aSelector({ type: 'user.checks.*' }, { id: 's1', configurationId: 'cfg-now' }),
  aSelector({ type: 'user.checks.*' }, { id: 's2', configurationId: 'cfg-digest' }),
  aSelector({ level: 'info' }, { id: 's3', configurationId: 'cfg-digest' }),
  aSelector({ type: 'system.*' }, { id: 's4', configurationId: 'cfg-5m' }),
]
const index = buildSelectorIndex(aSelectorSet(configurations, selectors))
const windowOf = (c: EndpointConfiguration) => digestWindowMs(c.digest, 30)

const deliver = (event: CloudEvent, configurationId: string, selectorIds: string[]): RouteDecision => ({
  kind: 'deliver',
  command: {
    deliveryId: deliveryIdFor(event, configurationId),
    account: 'acme',
    endpoint: 'webhook',
    configurationId,
    event,
    matchedSelectorIds: selectorIds,
    createdAt: CREATED,
  },
})
const hold = (
  event: CloudEvent,
  configurationId: string,
  selectorIds: string[],
  windowMs: number,
  endpoint: 'slack' | 'email' = 'slack',
): RouteDecision => ({
  kind: 'digest',
  entry: {
    configurationId,
    account: 'acme',
    endpoint,
    eventKey: processedKey(event),
    event,
    matchedSelectorIds: selectorIds,
    windowMs,
  },
})

describe('digestWindowMs', () => {
  it('is null for a configuration without digests, its own window, else the default', () => {
    assert.equal(digestWindowMs({ enabled: false, windowSeconds: 60 }, 30), null)
    assert.equal(digestWindowMs({ enabled: true, windowSeconds: 60 }, 30), 60_000)
    assert.equal(digestWindowMs({ enabled: true, windowSeconds: null }, 30), 30_000)
  })
})

describe('decideRoutes', () => {
  it('delivers for one configuration and holds for another; several selectors of one configuration make one decision', () => {
    const event = anEvent({ id: 'a' })
    assert.deepEqual(decideRoutes(index.match(event), event, CREATED, windowOf), [
      hold(event, 'cfg-digest', ['s2', 's3'], 30_000),
      deliver(event, 'cfg-now', ['s1']),
    ])
  })

  it('delivers everything at once without digests', () => {
    const event = anEvent({ id: 'a' })
    assert.deepEqual(
      decideRoutes(index.match(event), event, CREATED, noDigests).map((d) => d.kind),
      ['deliver', 'deliver'],
    )
  })
})

describe('digestCommand', () => {
  const first = anEvent({ id: 'first' })
  const pending: PendingDigest = {
    configurationId: 'cfg-digest',
    account: 'acme',
    endpoint: 'slack',
    windowStart: Date.UTC(2026, 10, 22, 10, 0, 0),
    windowEnd: Date.UTC(2026, 10, 22, 10, 0, 30),
    total: 14,
    counts: [
      { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 10 },
      { type: 'user.image.analysis.failed', level: 'error', count: 3 },
      { type: 'com.ibm.cloud.compliance.posture', level: 'warning', count: 1 },
    ],
    events: [first, anEvent({ id: 'second' })],
    matchedSelectorIds: ['s2', 's3'],
    unreadable: 0,
    attempts: 0,
  }

  it('is one command for the window: its first event, an id from configuration and window start, the counts', () => {
    assert.deepEqual(digestCommand(pending, '2026-11-22T10:00:31.000Z'), {
      deliveryId: digestDeliveryIdFor('cfg-digest', '2026-11-22T10:00:00.000Z'),
      account: 'acme',
      endpoint: 'slack',
      configurationId: 'cfg-digest',
      event: first,
      matchedSelectorIds: ['s2', 's3'],
      createdAt: '2026-11-22T10:00:31.000Z',
      digest: {
        windowStart: '2026-11-22T10:00:00.000Z',
        windowEnd: '2026-11-22T10:00:30.000Z',
        total: 14,
        counts: pending.counts,
        levels: [
          { level: 'error', count: 3 },
          { level: 'warning', count: 1 },
          { level: 'info', count: 10 },
        ],
        events: pending.events,
      },
    })
  })

  it('keeps its id when the window is published again later', () => {
    assert.equal(
      digestCommand(pending, '2026-11-22T10:00:31.000Z').deliveryId,
      digestCommand(pending, '2026-11-22T11:00:00.000Z').deliveryId,
    )
  })

  it('refuses a window without an event, which the store never gives', () => {
    assert.throws(() => digestCommand({ ...pending, events: [] }, CREATED), TypeError)
  })
})

describe('levelCounts', () => {
  it('sums the counts by level, most severe first, unknown levels last', () => {
    assert.deepEqual(
      levelCounts([
        { type: 'a', level: 'info', count: 2 },
        { type: 'b', level: 'notice', count: 1 },
        { type: 'c', level: 'info', count: 3 },
        { type: 'd', level: 'warning', count: 4 },
      ]),
      [
        { level: 'warning', count: 4 },
        { level: 'info', count: 5 },
        { level: 'notice', count: 1 },
      ],
    )
  })
})
