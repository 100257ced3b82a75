import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import type { EventStore } from '../ports/index.ts'
import { deliveryStream } from './events.ts'
import { createDeliveryLog } from './log.ts'

const requestOf = (deliveryId: string, configurationId = 'cfg-1') => ({
  deliveryId,
  account: 'acme',
  endpoint: 'webhook' as const,
  configurationId,
  event: {
    specversion: '1.0' as const,
    id: `evt-${deliveryId}`,
    source: '/engine',
    type: 't',
    account: 'acme',
  },
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:00.000Z',
})

/** A real store whose writes are counted. */
const countingStore = () => {
  const store = createSqliteEventStore({ path: ':memory:' })
  after(() => store.close())
  const calls = { append: 0, appendMany: 0 }
  const counted: Pick<EventStore, 'append' | 'appendMany' | 'readStream'> = {
    append: (...args) => {
      calls.append += 1
      return store.append(...args)
    },
    appendMany: (...args) => {
      calls.appendMany += 1
      return store.appendMany(...args)
    },
    readStream: (...args) => store.readStream(...args),
  }
  return { store, counted, calls }
}

describe('delivery log requestMany', () => {
  it('records a list of requests in one write, in order, each delivery once', async () => {
    const { store, counted, calls } = countingStore()
    const log = createDeliveryLog({ store: counted, clock: () => 0, newId: randomUUID, origin: 'test' })
    await log.request(requestOf('old'))

    const position = await log.requestMany([
      requestOf('a'),
      requestOf('old'),
      requestOf('b', 'cfg-2'),
      { ...requestOf('a'), matchedSelectorIds: ['sel-2'] },
    ])

    assert.deepEqual(calls, { append: 1, appendMany: 1 })
    const all = await store.readAll()
    assert.deepEqual(
      all.map((e) => [e.stream, e.type]),
      [
        [deliveryStream('old'), 'DeliveryRequested'],
        [deliveryStream('a'), 'DeliveryRequested'],
        [deliveryStream('b'), 'DeliveryRequested'],
      ],
    )
    // The first of a repeated delivery is the one recorded, as when they come one by one.
    assert.deepEqual(all[1]?.data.matchedSelectorIds, ['sel-1'])
    assert.equal(position, all.at(-1)?.position)

    // Redelivered: nothing new, the same position to wait for.
    assert.equal(await log.requestMany([requestOf('a'), requestOf('b', 'cfg-2')]), position)
    assert.equal((await store.readAll()).length, 3)
    assert.equal(await log.requestMany([]), 0)
  })

  it('decides one by one when a stream holds something else first', async () => {
    const { store, counted } = countingStore()
    const log = createDeliveryLog({ store: counted, clock: () => 0, newId: randomUUID, origin: 'test' })
    // A request recorded under another event id, e.g. by an older Herald.
    await store.append(deliveryStream('odd'), [
      {
        id: 'legacy',
        type: 'DeliveryRequested',
        data: { ...requestOf('odd'), at: '2026-11-22T10:00:00.000Z' },
      },
    ])

    await log.requestMany([requestOf('new'), requestOf('odd')])

    assert.deepEqual(
      (await store.readAll()).map((e) => [e.stream, e.id]),
      [
        [deliveryStream('odd'), 'legacy'],
        [deliveryStream('new'), 'requested'],
      ],
    )
  })
})
