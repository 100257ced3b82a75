import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type QueueSchedulerOptions, type QueueSource, startQueueScheduler } from './scheduler.ts'

interface Item {
  readonly queue: string
  readonly id: string
  readonly dueAt: number
}

/** Queues in memory: each queue's items in order; an attempt takes its head off. */
const memoryQueues = (items: readonly Item[]) => {
  const queues = new Map<string, Item[]>()
  for (const item of items) queues.set(item.queue, [...(queues.get(item.queue) ?? []), item])
  const heads = (exclude: ReadonlySet<string>) =>
    [...queues]
      .filter(([queue, list]) => list.length > 0 && !exclude.has(queue))
      .map(([, list]) => list[0] as Item)
      .sort((a, b) => a.dueAt - b.dueAt)
  const source: QueueSource<Item> = {
    dueHeads: (now, exclude, limit) =>
      heads(exclude)
        .filter((h) => h.dueAt <= now)
        .slice(0, limit),
    nextDueAt: (exclude) => heads(exclude)[0]?.dueAt,
  }
  const attempted: string[] = []
  const attempt = async (item: Item) => {
    attempted.push(item.id)
    queues.get(item.queue)?.shift()
    return undefined
  }
  return { source, attempt, attempted }
}

/** A scheduler over `queues`, one slot unless `options` says otherwise. */
const schedule = (
  queues: Pick<ReturnType<typeof memoryQueues>, 'source' | 'attempt'>,
  options: Partial<QueueSchedulerOptions<Item>> = {},
) =>
  startQueueScheduler({
    source: queues.source,
    queueOf: (item) => item.queue,
    attempt: queues.attempt,
    concurrency: 1,
    clock: Date.now,
    ...options,
  })

describe('queue scheduler shared with other schedulers', () => {
  it('serves only the queues it owns, also when others’ heads fall due first', async () => {
    const now = Date.now()
    // Ten foreign queues due before the owned one: with one slot, they must not crowd it out.
    const items: Item[] = [
      ...Array.from({ length: 10 }, (_, i) => ({ queue: `other-${i}`, id: `o${i}`, dueAt: now - 100 + i })),
      { queue: 'mine', id: 'm1', dueAt: now - 10 },
      { queue: 'mine', id: 'm2', dueAt: now - 10 },
    ]
    const queues = memoryQueues(items)
    const { attempted } = queues
    const scheduler = schedule(queues, { queueOwnedFrom: (queue) => (queue === 'mine' ? 0 : undefined) })
    await sleep(100)
    await scheduler.stop(100)
    assert.deepEqual(attempted, ['m1', 'm2'])
  })

  it('serves a queue taken over only from when it is handed over', async () => {
    const start = Date.now()
    const queues = memoryQueues([{ queue: 'q', id: 'a', dueAt: start - 1_000 }])
    const { attempted } = queues
    const at: number[] = []
    const scheduler = schedule(queues, {
      attempt: async (item: Item) => {
        at.push(Date.now())
        return queues.attempt(item)
      },
      queueOwnedFrom: () => start + 150,
    })
    await sleep(60)
    assert.deepEqual(attempted, [])
    await sleep(250)
    await scheduler.stop(100)
    assert.deepEqual(attempted, ['a'])
    assert.ok((at[0] as number) >= start + 150)
  })

  it('takes up a queue that becomes its own, within the recheck interval', async () => {
    const queues = memoryQueues([{ queue: 'q', id: 'a', dueAt: Date.now() - 1 }])
    const { attempted } = queues
    let owned = false
    const scheduler = schedule(queues, {
      queueOwnedFrom: () => (owned ? 0 : undefined),
      ownershipRecheckMs: 50,
    })
    await sleep(120)
    assert.deepEqual(attempted, [], 'not served while another scheduler owns it')
    owned = true
    await sleep(200)
    await scheduler.stop(100)
    assert.deepEqual(attempted, ['a'])
  })

  it('serves every queue when nothing is shared', async () => {
    const now = Date.now()
    const queues = memoryQueues([
      { queue: 'a', id: 'a1', dueAt: now - 2 },
      { queue: 'b', id: 'b1', dueAt: now - 1 },
    ])
    const { attempted } = queues
    const scheduler = schedule(queues)
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(attempted, ['a1', 'b1'])
  })
})
