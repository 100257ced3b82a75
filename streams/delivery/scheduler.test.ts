import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ownedAfterHandover,
  type QueueSchedulerOptions,
  type QueueSource,
  startQueueScheduler,
} from './scheduler.ts'

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
    headOf: (queue) => queues.get(queue)?.[0],
  }
  const attempted: string[] = []
  const attempt = async (item: Item) => {
    attempted.push(item.id)
    queues.get(item.queue)?.shift()
    return undefined
  }
  return { source, attempt, attempted, queues }
}

/** A scheduler over `queues`, one slot unless `options` says otherwise. */
const schedule = (
  queues: Pick<QueueSchedulerOptions<Item>, 'source' | 'attempt'>,
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

describe('queue scheduler on a wall clock that steps', () => {
  it('times a queue’s deferral by the monotonic clock: a step back does not stretch it, nor the ownership recheck', async () => {
    let offset = 0
    const clock = () => Date.now() + offset
    const queues = memoryQueues([
      { queue: 'q', id: 'a', dueAt: 0 },
      { queue: 'q', id: 'b', dueAt: 0 },
    ])
    const at: number[] = []
    let deferred = false
    const scheduler = schedule(queues, {
      clock,
      queueOwnedFrom: () => 0,
      ownershipRecheckMs: 50,
      attempt: async (item: Item) => {
        at.push(performance.now())
        if (item.id === 'b' && !deferred) {
          deferred = true
          // A rate limit: 200 ms. Meanwhile the wall clock steps back ten minutes.
          offset = -600_000
          return { deferMs: 200 }
        }
        return queues.attempt(item)
      },
    })
    await sleep(600)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['a', 'b'])
    const waited = (at[2] as number) - (at[1] as number)
    assert.ok(waited >= 190 && waited < 450, `b went again after ${waited} ms`)
  })

  it('hands a queue over its handover after the hold began, by the monotonic clock, however the wall clock steps', () => {
    let wall = Date.parse('2026-11-22T10:00:00Z')
    let tick = 1_000
    const since = wall
    const ownedFrom = ownedAfterHandover({
      holdsSince: (queue) => (queue === 'mine' ? since : undefined),
      handoverMs: 30_000,
      clock: () => wall,
      monotonic: () => tick,
    })
    assert.equal(ownedFrom('theirs'), undefined)
    assert.equal(ownedFrom('mine'), wall + 30_000)
    // Ten seconds on, the wall clock steps back ten minutes: 20 s left all the same.
    tick += 10_000
    wall += 10_000 - 600_000
    assert.equal(ownedFrom('mine'), wall + 20_000)
    tick += 20_000
    wall += 20_000
    assert.equal(ownedFrom('mine'), wall, 'handed over')
    // Forward an hour: not early, nor ever taken back.
    wall += 3_600_000
    assert.equal(ownedFrom('mine'), wall)
  })
})

describe('queue scheduler whose source fails', () => {
  it('tells a failed read of the queues and looks again, rather than throwing out of its timer', async () => {
    const now = Date.now()
    const queues = memoryQueues([{ queue: 'a', id: 'a1', dueAt: now - 1 }])
    let failures = 2
    const failing: QueueSource<Item> = {
      ...queues.source,
      dueHeads: (...args) => {
        if (failures-- > 0) throw new Error('malformed JSON')
        return queues.source.dueHeads(...args)
      },
    }
    const told: string[] = []
    const scheduler = schedule(
      { source: failing, attempt: queues.attempt },
      { errorBackoffMs: 20, onReadError: (error) => told.push(String(error)) },
    )
    await sleep(150)
    await scheduler.stop(100)
    assert.deepEqual(told, ['Error: malformed JSON', 'Error: malformed JSON'])
    assert.deepEqual(queues.attempted, ['a1'], 'served once the read worked again')
  })
})

describe('queue scheduler with attempts released before their source shows them', () => {
  /**
   * Queues whose heads stay put until an attempt finishes (as the read model shows an outcome
   * only after it folds it in), each attempt releasing its queue at once and then held open until
   * `finishAll`.
   */
  const laggingQueues = (items: readonly Item[], { behind }: { behind: boolean }) => {
    const queues = memoryQueues(items)
    const source: QueueSource<Item> = {
      ...queues.source,
      ...(behind
        ? {
            nextBehind: (after: Item, now: number) => {
              const next = items
                .slice(items.indexOf(after) + 1)
                .find((item) => item.queue === after.queue && !queues.attempted.includes(item.id))
              if (next === undefined) return undefined
              return next.dueAt <= now ? { due: next } : { dueAt: next.dueAt, waiting: next }
            },
          }
        : {}),
    }
    const { promise: finished, resolve: finishAll } = Promise.withResolvers<void>()
    const open = new Set<string>()
    const attempt = async (item: Item, _signal: AbortSignal, release: () => void) => {
      open.add(item.id)
      release()
      await finished
      await queues.attempt(item)
      open.delete(item.id)
      return undefined
    }
    return { source, attempt, attempted: queues.attempted, open, finishAll }
  }

  it('goes on to the item behind a released one, in order, without handing the released one out again', async () => {
    const now = Date.now()
    const queues = laggingQueues(
      [
        { queue: 'q', id: 'q1', dueAt: now - 3 },
        { queue: 'q', id: 'q2', dueAt: now - 2 },
        { queue: 'q', id: 'q3', dueAt: now - 1 },
        { queue: 'r', id: 'r1', dueAt: now },
      ],
      { behind: true },
    )
    const scheduler = schedule(queues)
    await sleep(50)
    assert.deepEqual(queues.attempted, [], 'no attempt has finished')
    // r1 waits for no slot q holds: the one q1 released goes to it first.
    assert.deepEqual([...queues.open], ['q1', 'r1', 'q2', 'q3'], 'each released its slot to the next')
    queues.finishAll()
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1', 'r1', 'q2', 'q3'], 'each attempted once, q in order')
  })

  it('waits for each attempt to show in a source that cannot look behind a head', async () => {
    const now = Date.now()
    const queues = laggingQueues(
      [
        { queue: 'q', id: 'q1', dueAt: now - 2 },
        { queue: 'q', id: 'q2', dueAt: now - 1 },
      ],
      { behind: false },
    )
    const scheduler = schedule(queues, { concurrency: 2 })
    await sleep(50)
    assert.deepEqual([...queues.open], ['q1'])
    queues.finishAll()
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1', 'q2'])
  })

  it('waits for the item behind a released one to fall due', async () => {
    const now = Date.now()
    const queues = laggingQueues(
      [
        { queue: 'q', id: 'q1', dueAt: now - 1 },
        { queue: 'q', id: 'q2', dueAt: now + 120 },
      ],
      { behind: true },
    )
    const at: number[] = []
    const scheduler = schedule(queues, {
      attempt: async (item, signal, release) => {
        at.push(Date.now())
        return queues.attempt(item, signal, release)
      },
    })
    await sleep(50)
    assert.deepEqual([...queues.open], ['q1'])
    await sleep(150)
    assert.deepEqual([...queues.open], ['q1', 'q2'])
    assert.ok((at[1] as number) >= now + 120)
    queues.finishAll()
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1', 'q2'])
  })

  it('lets released attempts finish when stopping', async () => {
    const queues = laggingQueues([{ queue: 'q', id: 'q1', dueAt: Date.now() - 1 }], { behind: true })
    const scheduler = schedule(queues)
    await sleep(30)
    assert.equal(scheduler.active(), 1)
    const stopped = scheduler.stop(1_000)
    setTimeout(queues.finishAll, 50)
    await stopped
    assert.deepEqual(queues.attempted, ['q1'])
  })
})

describe('queue scheduler told to serve a head now', () => {
  it('hands out a head waiting for a far-off retry at once, and the due items behind it follow', async () => {
    const now = Date.now()
    const queues = memoryQueues([
      { queue: 'q', id: 'q1', dueAt: now + 3_600_000 },
      { queue: 'q', id: 'q2', dueAt: now - 2 },
      { queue: 'q', id: 'q3', dueAt: now - 1 },
      { queue: 'r', id: 'r1', dueAt: now + 3_600_000 },
    ])
    const scheduler = schedule(queues)
    await sleep(30)
    assert.deepEqual(queues.attempted, [], 'nothing is due')
    scheduler.serveHeadNow('q')
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1', 'q2', 'q3'], 'the other queue keeps waiting')
  })

  it('serves it once: a head its attempt left waiting is not handed out again before it is due', async () => {
    const now = Date.now()
    const queues = memoryQueues([{ queue: 'q', id: 'q1', dueAt: now + 3_600_000 }])
    const attempts: string[] = []
    // The attempt sends (the configuration was enabled again meanwhile) and fails: it waits for its retry again.
    const scheduler = schedule(queues, {
      attempt: async (item) => {
        attempts.push(item.id)
        return undefined
      },
    })
    scheduler.serveHeadNow('q')
    await sleep(80)
    await scheduler.stop(100)
    assert.deepEqual(attempts, ['q1'])
  })

  it('serves the head again once a deferral of its attempt is over (a rate limit, an error back-off), however far off it is due', async () => {
    const now = Date.now()
    const queues = memoryQueues([
      { queue: 'q', id: 'q1', dueAt: now + 3_600_000 },
      { queue: 'r', id: 'r1', dueAt: now + 3_600_000 },
    ])
    const attempts: string[] = []
    let answers = 0
    const scheduler = schedule(queues, {
      attempt: async (item) => {
        attempts.push(item.id)
        answers++
        // q1 meets its target's rate limit, r1 throws: neither attempt ran.
        if (item.id === 'q1' && answers <= 2) return { deferMs: 30 }
        if (item.id === 'r1' && attempts.filter((a) => a === 'r1').length === 1) throw new Error('store down')
        return queues.attempt(item)
      },
      concurrency: 2,
      errorBackoffMs: 30,
    })
    scheduler.serveHeadNow('q')
    scheduler.serveHeadNow('r')
    await sleep(200)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted.toSorted(), ['q1', 'r1'])
  })

  it('waits for an attempt in progress on the queue, then serves the head it leaves', async () => {
    const now = Date.now()
    const queues = memoryQueues([
      { queue: 'q', id: 'q1', dueAt: now - 1 },
      { queue: 'q', id: 'q2', dueAt: now + 3_600_000 },
    ])
    const { promise: answered, resolve: answer } = Promise.withResolvers<void>()
    const attempts: string[] = []
    const scheduler = schedule(queues, {
      attempt: async (item) => {
        attempts.push(item.id)
        if (item.id === 'q1') await answered
        return queues.attempt(item)
      },
    })
    await sleep(20)
    scheduler.serveHeadNow('q')
    await sleep(30)
    assert.deepEqual(attempts, ['q1'], 'one attempt at a time')
    answer()
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1', 'q2'])
  })

  it('leaves a queue another scheduler owns to it, also once it becomes its own', async () => {
    const now = Date.now()
    const queues = memoryQueues([{ queue: 'q', id: 'q1', dueAt: now + 3_600_000 }])
    let owned = false
    const scheduler = schedule(queues, {
      queueOwnedFrom: () => (owned ? 0 : undefined),
      ownershipRecheckMs: 20,
    })
    scheduler.serveHeadNow('q')
    await sleep(50)
    owned = true
    await sleep(80)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, [], 'its owner was told of the change itself')
  })

  it('serves a queue named at start-up once it becomes its own, within the wait for an owner', async () => {
    const now = Date.now()
    const queues = memoryQueues([
      { queue: 'q', id: 'q1', dueAt: now + 3_600_000 },
      { queue: 'r', id: 'r1', dueAt: now + 3_600_000 },
    ])
    // Nothing owned yet (the consumer has not joined its group), then q and, too late, r.
    const owned = new Set<string>()
    const scheduler = schedule(queues, {
      queueOwnedFrom: (queue) => (owned.has(queue) ? 0 : undefined),
      ownershipRecheckMs: 20,
    })
    scheduler.serveHeadNow('q', { waitForOwnerMs: 150 })
    scheduler.serveHeadNow('r', { waitForOwnerMs: 150 })
    await sleep(60)
    assert.deepEqual(queues.attempted, [])
    owned.add('q')
    await sleep(150)
    owned.add('r')
    await sleep(80)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1'], 'r was another’s for longer than the wait')
  })

  it('leaves queues named at start-up that another scheduler owns out of its looks until the recheck', async () => {
    const now = Date.now()
    const queues = memoryQueues([{ queue: 'mine', id: 'm1', dueAt: now + 3_600_000 }])
    // What each look asks the source to skip: it is read as a whole (a query's limit) each time.
    const skipped: number[] = []
    let ownershipAsked = 0
    const scheduler = schedule(queues, {
      source: {
        ...queues.source,
        nextDueAt: (exclude) => {
          skipped.push(exclude.size)
          return queues.source.nextDueAt(exclude)
        },
      },
      queueOwnedFrom: (queue) => {
        ownershipAsked++
        return queue === 'mine' ? 0 : undefined
      },
      ownershipRecheckMs: 60_000,
    })
    for (let i = 0; i < 1_000; i++) scheduler.serveHeadNow(`other-${i}`, { waitForOwnerMs: 60_000 })
    await sleep(20)
    const asked = ownershipAsked
    skipped.length = 0
    for (let i = 0; i < 20; i++) scheduler.wake()
    scheduler.serveHeadNow('mine')
    await sleep(20)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['m1'])
    assert.ok(
      skipped.every((size) => size <= 1),
      `skipped ${Math.max(...skipped)}`,
    )
    assert.ok(ownershipAsked - asked <= 2, `asked ${ownershipAsked - asked} times`)
  })

  it('serves a queue being handed over to it once the handover is done', async () => {
    const start = Date.now()
    const queues = memoryQueues([{ queue: 'q', id: 'q1', dueAt: start + 3_600_000 }])
    const at: number[] = []
    const scheduler = schedule(queues, {
      attempt: async (item) => {
        at.push(Date.now())
        return queues.attempt(item)
      },
      queueOwnedFrom: () => start + 100,
    })
    scheduler.serveHeadNow('q')
    await sleep(30)
    assert.deepEqual(queues.attempted, [])
    await sleep(150)
    await scheduler.stop(100)
    assert.deepEqual(queues.attempted, ['q1'])
    assert.ok((at[0] as number) >= start + 100)
  })
})

describe('queue scheduler with a window of items in flight per queue', () => {
  /**
   * Queues over items that settle in any order: a queue's head is its first unsettled item. An
   * attempt is held open until `finish(id)` says how it went: `sent` settles and releases it,
   * `failed` leaves it unsettled and due in an hour, as a retry would.
   */
  const windowedQueues = (items: readonly Item[]) => {
    const settled = new Set<string>()
    const retryAt = new Map<string, number>()
    const dueAt = (item: Item) => retryAt.get(item.id) ?? item.dueAt
    const unsettled = (queue: string) => items.filter((i) => i.queue === queue && !settled.has(i.id))
    const heads = (exclude: ReadonlySet<string>) =>
      [...new Set(items.map((i) => i.queue))]
        .filter((queue) => !exclude.has(queue))
        .flatMap((queue) => unsettled(queue).slice(0, 1))
        .sort((a, b) => dueAt(a) - dueAt(b))
    const source: QueueSource<Item> = {
      dueHeads: (now, exclude, limit) =>
        heads(exclude)
          .filter((h) => dueAt(h) <= now)
          .slice(0, limit),
      nextDueAt: (exclude) => {
        const first = heads(exclude)[0]
        return first === undefined ? undefined : dueAt(first)
      },
      headOf: (queue) => unsettled(queue)[0],
      nextBehind: (after, now) => {
        const next = unsettled(after.queue).find((i) => items.indexOf(i) > items.indexOf(after))
        if (next === undefined) return undefined
        return dueAt(next) <= now ? { due: next } : { dueAt: dueAt(next), waiting: next }
      },
    }
    const open = new Set<string>()
    const started: string[] = []
    const endings = new Map<string, (how: 'sent' | 'failed') => void>()
    const attempt = async (item: Item, _signal: AbortSignal, release: () => void) => {
      open.add(item.id)
      started.push(item.id)
      const how = await new Promise<'sent' | 'failed'>((resolve) => endings.set(item.id, resolve))
      if (how === 'sent') {
        settled.add(item.id)
        release()
      } else retryAt.set(item.id, Date.now() + 3_600_000)
      open.delete(item.id)
      return undefined
    }
    const finish = (id: string, how: 'sent' | 'failed' = 'sent') => endings.get(id)?.(how)
    return { source, attempt, open, started, finish }
  }
  const queueOf = (queue: string, n: number, now: number): Item[] =>
    Array.from({ length: n }, (_, i) => ({ queue, id: `${queue}${i + 1}`, dueAt: now - n + i }))

  it('keeps up to the window in flight, going on behind each as it settles', async () => {
    const queues = windowedQueues(queueOf('q', 5, Date.now()))
    const scheduler = schedule(queues, { concurrency: 10, window: () => 3 })
    await sleep(30)
    assert.deepEqual([...queues.open], ['q1', 'q2', 'q3'], 'three at once, in order')
    queues.finish('q2')
    await sleep(30)
    assert.deepEqual([...queues.open], ['q1', 'q3', 'q4'], 'one settled out of order: the next goes')
    for (const id of ['q1', 'q3', 'q4']) queues.finish(id)
    await sleep(30)
    assert.deepEqual([...queues.open], ['q5'])
    queues.finish('q5')
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'q2', 'q3', 'q4', 'q5'], 'each handed out once')
  })

  it('counts every attempt in flight against the pool, not every queue', async () => {
    const now = Date.now()
    const queues = windowedQueues([...queueOf('q', 3, now), ...queueOf('r', 3, now)])
    const scheduler = schedule(queues, { concurrency: 4, window: () => 3 })
    await sleep(30)
    assert.equal(queues.open.size, 4)
    for (const id of [...queues.open]) queues.finish(id)
    await sleep(30)
    for (const id of [...queues.open]) queues.finish(id)
    await scheduler.stop(100)
    assert.deepEqual(queues.started.toSorted(), ['q1', 'q2', 'q3', 'r1', 'r2', 'r3'])
  })

  it('hands out nothing more after a failure until its open attempts are over, then waits for the retry at the head', async () => {
    const queues = windowedQueues(queueOf('q', 5, Date.now()))
    const scheduler = schedule(queues, { concurrency: 10, window: () => 2 })
    await sleep(30)
    assert.deepEqual([...queues.open], ['q1', 'q2'])
    queues.finish('q1', 'failed')
    await sleep(30)
    assert.deepEqual([...queues.open], ['q2'], 'the failure stops the queue going on')
    queues.finish('q2')
    await sleep(50)
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'q2'], 'q1 waits for its retry, and the rest behind it')
  })

  it('gives a slot that frees to a queue waiting for one before a queue being served takes more', async () => {
    const now = Date.now()
    const queues = windowedQueues([...queueOf('q', 6, now), { queue: 'r', id: 'r1', dueAt: now + 20 }])
    const scheduler = schedule(queues, { concurrency: 2, window: () => 2 })
    await sleep(50)
    assert.deepEqual([...queues.open], ['q1', 'q2'], 'the pool is full when r1 falls due')
    queues.finish('q1')
    await sleep(30)
    assert.deepEqual([...queues.open], ['q2', 'r1'], 'r1 takes the slot q1 freed')
    queues.finish('q2')
    await sleep(30)
    assert.deepEqual([...queues.open], ['r1', 'q3'])
    for (const id of ['r1', 'q3', 'q4', 'q5', 'q6']) {
      queues.finish(id)
      await sleep(10)
    }
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'q2', 'r1', 'q3', 'q4', 'q5', 'q6'])
  })

  it('shares the pool in turn between queues with backlogs, one item each', async () => {
    const now = Date.now()
    const queues = windowedQueues([...queueOf('q', 3, now), ...queueOf('r', 3, now + 1)])
    const scheduler = schedule(queues, { concurrency: 1, window: () => 1 })
    for (let i = 0; i < 6; i++) {
      await sleep(20)
      assert.equal(queues.open.size, 1)
      queues.finish([...queues.open][0] as string)
    }
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'r1', 'q2', 'r2', 'q3', 'r3'])
  })

  it('told to serve a head now, hands out the items behind it waiting for their retries too, each once', async () => {
    const queues = windowedQueues(queueOf('q', 4, Date.now()))
    const scheduler = schedule(queues, { concurrency: 10, window: () => 3 })
    await sleep(30)
    for (const id of ['q1', 'q2', 'q3']) queues.finish(id, 'failed')
    await sleep(30)
    assert.deepEqual([...queues.open], [], 'q1 to q3 wait an hour for their retries, q4 behind them')
    scheduler.serveHeadNow('q')
    await sleep(30)
    assert.deepEqual([...queues.open], ['q1', 'q2', 'q3'])
    for (const id of ['q1', 'q2', 'q3']) queues.finish(id)
    await sleep(30)
    queues.finish('q4')
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'q2', 'q3', 'q1', 'q2', 'q3', 'q4'])
  })

  it('serves one at a time with a window of 1, as without one', async () => {
    const queues = windowedQueues(queueOf('q', 3, Date.now()))
    const scheduler = schedule(queues, { concurrency: 10, window: () => 1 })
    await sleep(30)
    assert.deepEqual([...queues.open], ['q1'])
    queues.finish('q1')
    await sleep(30)
    assert.deepEqual([...queues.open], ['q2'])
    queues.finish('q2')
    await sleep(30)
    queues.finish('q3')
    await scheduler.stop(100)
    assert.deepEqual(queues.started, ['q1', 'q2', 'q3'])
  })
})
