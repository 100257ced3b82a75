import { randomUUID } from 'node:crypto'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryLog } from '../../src/deliveries/index.ts'
import { deliveryIdFor } from '../../streams/routing/index.ts'
import { padded } from './padding.ts'

export interface DeliveryLogFill {
  /** The embedded delivery store's file to append to. */
  readonly path: string
  readonly deliveries: number
  readonly configurations: number
  /** About how many store events one commit holds. */
  readonly commit: number
  /** How many deliveries after its request each delivery's attempt is appended. */
  readonly lag: number
  /** Events padded to about this many bytes of JSON; about 300 without. */
  readonly eventBytes?: number
  /** The deliverer instance the attempts are of (a read model with this id publishes them). */
  readonly origin: string
}

/**
 * Appends a delivery log as the deliverer would: requests in batches (`requestMany`), and each
 * delivery's attempt with its success appended together `lag` deliveries after its request,
 * one store commit per turn. Resolves with the last position.
 */
export const fillDeliveryLog = async (fill: DeliveryLogFill): Promise<number> => {
  const configurations = Array.from({ length: fill.configurations }, (_, k) => ({
    id: randomUUID(),
    account: `acct-${k % 10}`,
  }))
  const requestOf = (n: number) => {
    const configuration = configurations[n % configurations.length] ?? { id: 'cfg', account: 'acme' }
    const event = {
      specversion: '1.0' as const,
      id: randomUUID(),
      source: '/engine/analyzer',
      type: 'user.image.analysis.completed',
      account: configuration.account,
      level: 'info' as const,
      resourcetype: 'image',
      time: new Date().toISOString(),
      data: { digest: `sha256:${'ab'.repeat(32)}` },
    }
    return {
      deliveryId: deliveryIdFor(event, configuration.id),
      account: configuration.account,
      endpoint: 'webhook' as const,
      configurationId: configuration.id,
      event: fill.eventBytes === undefined ? event : padded(event, fill.eventBytes),
      matchedSelectorIds: ['sel-1'],
      createdAt: new Date().toISOString(),
    }
  }
  // Requests per store commit: with the attempts and outcomes of as many earlier deliveries,
  // about `commit` events.
  const batchSize = Math.max(1, Math.round(fill.commit / 3))
  const store = createSqliteEventStore({ path: fill.path, groupCommit: true })
  const log = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: fill.origin })
  const ids: string[] = []
  const answer = { ok: true, status: 204, latencyMs: 7, code: null, error: null, response: 'ok' }
  let last = 0
  const attempt = (id: string) =>
    log.record({ deliveryId: id, revision: 0, status: 'pending', attempts: 0, replays: 0 }, answer, {
      outcome: 'sent',
    })
  try {
    for (let n = 0; n < fill.deliveries + fill.lag; n += batchSize) {
      const batch = Array.from({ length: Math.max(0, Math.min(batchSize, fill.deliveries - n)) }, (_, i) =>
        requestOf(n + i),
      )
      for (const r of batch) ids.push(r.deliveryId)
      // One turn: one store commit of the new requests and the attempts of earlier ones.
      const settled = ids.slice(Math.max(0, n - fill.lag), Math.max(0, n - fill.lag + batchSize))
      const positions = await Promise.all([
        batch.length === 0 ? 0 : log.requestMany(batch),
        ...settled.map(async (id) => (await attempt(id)).position),
      ])
      last = Math.max(last, ...positions)
    }
  } finally {
    await store.close()
  }
  return last
}
