import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Worker } from 'node:worker_threads'
import { eventually } from '../../test/support/eventually.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import type { EventStore } from '../ports/index.ts'
import { deliveryStream } from './events.ts'
import { createDeliveryLog, type DeliveryLog } from './log.ts'
import type { DeliveryReadModel } from './read-model.ts'
import {
  createThreadedDeliveryReadModel,
  type ThreadedDeliveryReadModelOptions,
} from './read-model-thread.ts'

// What both ways of keeping the read model answer is the contract suite in read-model.test.ts.
const requestOf = (n: number) => ({
  deliveryId: n.toString(16).padStart(64, '0'),
  account: 'acme',
  endpoint: 'webhook' as const,
  configurationId: 'cfg-a',
  event: { specversion: '1.0' as const, id: `evt-${n}`, source: '/engine', type: 'x.y', account: 'acme' },
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:00.000Z',
})

/**
 * A threaded read model following a new embedded store (writer thread, group commits), with
 * the delivery log over it; both closed and the folder removed after `body`.
 */
const withThreadedView = async (
  options: Omit<ThreadedDeliveryReadModelOptions, 'path' | 'storePath' | 'newId'>,
  body: (view: DeliveryReadModel, deliveries: DeliveryLog, store: EventStore) => Promise<void>,
) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-delivery-view-thread-'))
  const storePath = join(dir, 'deliveries.sqlite')
  const store = createSqliteEventStore({ path: storePath, groupCommit: true, writerThread: true })
  const view = createThreadedDeliveryReadModel({
    path: join(dir, 'view.sqlite'),
    storePath,
    newId: randomUUID,
    ...options,
  })
  try {
    view.follow(store)
    await body(
      view,
      createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId }),
      store,
    )
  } finally {
    await view.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('delivery read model folded by its own thread', () => {
  it('starts its thread again after it stopped, resuming from its checkpoint; waiters keep waiting', async () => {
    const started: Worker[] = []
    const errors: string[] = []
    const options = {
      resubscribeMs: 10,
      onStarted: (worker: Worker) => started.push(worker),
      onFollowError: (error: unknown) => errors.push(error instanceof Error ? error.message : String(error)),
    }
    await withThreadedView(options, async (view, deliveries) => {
      await view.waitFor(await deliveries.request(requestOf(1)))
      let changes = 0
      view.onChange(() => changes++)

      await started[0]?.terminate()
      const position = await deliveries.request(requestOf(2))
      await view.waitFor(position)
      assert.equal(started.length, 2)
      assert.match(errors.join('\n'), /folding thread stopped/)
      assert.ok(changes > 0, 'its commits wake the queues again')
      assert.deepEqual(
        view.dueHeads(Date.now(), new Set(), 10).map((d) => d.eventId),
        ['evt-1'],
      )
      assert.equal(view.list({ limit: 10 }).items.length, 2)
    })
  })

  it('forgets what it was told to while its thread was starting again, once it runs', async () => {
    const started: Worker[] = []
    const options = { resubscribeMs: 300, onStarted: (worker: Worker) => started.push(worker) }
    await withThreadedView(options, async (view, deliveries, store) => {
      await view.waitFor(await deliveries.request(requestOf(1)))
      const pending = view.get(requestOf(1).deliveryId)
      assert.ok(pending)
      const settled = await deliveries.record(pending, null, {
        outcome: 'skipped',
        reason: 'configuration_disabled',
      })
      await view.waitFor(settled.position)
      const row = view.get(requestOf(1).deliveryId)
      assert.ok(row)
      assert.deepEqual(
        await store.deleteStreams([
          { stream: deliveryStream(row.deliveryId), expectedRevision: row.revision },
        ]),
        ['deleted'],
      )

      await started[0]?.terminate()
      view.forget([{ seq: row.seq, revision: row.revision }])
      await view.waitFor(await deliveries.request(requestOf(2)))
      assert.equal(started.length, 2)
      await eventually(() => assert.equal(view.get(row.deliveryId), undefined), { timeoutMs: 3_000 })
      assert.deepEqual(
        view.list({ limit: 10 }).items.map((d) => d.eventId),
        ['evt-2'],
      )
    })
  })

  it("holds a busy fold's next commit for busyCommitWaitMs, and commits a quiet one at once", async () => {
    // Far apart, so that "at once" and "held" cannot be mistaken for each other on a busy machine.
    await withThreadedView({ busyCommitWaitMs: 3_000, busyCommitEvents: 20 }, async (view, deliveries) => {
      const folded = async (position: number) => {
        const started = performance.now()
        await view.waitFor(position)
        return performance.now() - started
      }
      // Quiet: the commits before held fewer than 20 events.
      assert.ok((await folded(await deliveries.request(requestOf(1)))) < 1_500)
      assert.ok((await folded(await deliveries.request(requestOf(2)))) < 1_500)
      // 30 requests in one store commit: that commit is the thread's first busy one.
      const burst = Array.from({ length: 30 }, (_, i) => requestOf(100 + i))
      assert.ok((await folded(await deliveries.requestMany(burst))) < 1_500)
      // The next transaction is held open for 3 s before it commits.
      assert.ok((await folded(await deliveries.request(requestOf(3)))) >= 2_900)
      // Which held one event: the fold is quiet again, and commits at once.
      assert.ok((await folded(await deliveries.request(requestOf(4)))) < 1_500)
      assert.equal(view.list({ limit: 100 }).items.length, 34)
    })
  })
})
