import assert from 'node:assert/strict'
import { it } from 'node:test'
import type { DeliveryReadModel, StoredDelivery } from '../../src/deliveries/index.ts'
import { boundWaits } from './bounded-waits.ts'

const NOW = Date.parse('2026-11-22T10:00:00Z')
const DAY = 86_400_000

/** A queue's delivery as far as the bound reads it: waiting for its retry at `dueAt`. */
const delivery = (deliveryId: string, configurationId: string, dueAt: number, attempts = 1) =>
  ({ deliveryId, configurationId, attempts, nextAttemptAt: dueAt, seq: 0 }) as unknown as StoredDelivery

/** A read model of one queue per configuration, its head first, due by `nextAttemptAt`. */
const queuesOf = (queues: Record<string, StoredDelivery[]>) => {
  const heads = (exclude: ReadonlySet<string>) =>
    Object.entries(queues)
      .filter(([id, q]) => q.length > 0 && !exclude.has(id))
      .map(([, q]) => q[0] as StoredDelivery)
      .sort((a, b) => (a.nextAttemptAt ?? 0) - (b.nextAttemptAt ?? 0))
  const view: Pick<DeliveryReadModel, 'dueHeads' | 'nextDueAt' | 'headOf' | 'nextBehind' | 'headsDueAfter'> =
    {
      dueHeads: (now, exclude, limit) =>
        heads(exclude)
          .filter((h) => (h.nextAttemptAt ?? 0) <= now)
          .slice(0, limit),
      headsDueAfter: (after, exclude, limit) =>
        heads(exclude)
          .filter((h) => (h.nextAttemptAt ?? 0) > after)
          .slice(0, limit),
      nextDueAt: (exclude) => heads(exclude)[0]?.nextAttemptAt ?? undefined,
      headOf: (configurationId) => queues[configurationId]?.[0],
      nextBehind: (after, now) => {
        const queue = queues[after.configurationId] ?? []
        const next = queue[queue.indexOf(after as StoredDelivery) + 1]
        if (next === undefined) return undefined
        const at = next.nextAttemptAt ?? 0
        return at <= now ? { due: next } : { dueAt: at, waiting: next }
      },
    }
  return view
}

it('holds a retry recorded further off than the longest wait no longer than that wait from when it was first seen', () => {
  let tick = 0
  const queues = {
    far: [delivery('d-far', 'far', NOW + DAY)],
    near: [delivery('d-near', 'near', NOW + 500)],
  }
  const source = boundWaits(queuesOf(queues), { maxWaitMs: 1_000, clock: () => NOW, monotonic: () => tick })
  const due = () => source.dueHeads(NOW, new Set(), 10).map((d) => d.deliveryId)
  assert.deepEqual(due(), [])
  assert.equal(source.nextDueAt(new Set()), NOW + 500, 'the near one first')
  tick = 600
  assert.deepEqual(due(), [])
  assert.equal(source.nextDueAt(new Set(['near'])), NOW + 400, 'the far one by its bound')
  tick = 1_000
  assert.deepEqual(due(), ['d-far'])
  assert.deepEqual(source.dueHeads(NOW, new Set(['far']), 10), [], 'not while its queue is busy')
  // Attempted and failed again: its new time is its own (within the longest wait).
  queues.far = [delivery('d-far', 'far', NOW + 800, 2)]
  assert.deepEqual(due(), [])
  assert.equal(source.nextDueAt(new Set(['near'])), NOW + 800)
})

it('bounds a delivery waiting behind one handed out too, where a queue sends several at once', () => {
  let tick = 0
  const head = delivery('d-1', 'q', NOW - 1)
  const behind = delivery('d-2', 'q', NOW + DAY)
  const source = boundWaits(queuesOf({ q: [head, behind] }), {
    maxWaitMs: 1_000,
    clock: () => NOW,
    monotonic: () => tick,
  })
  assert.deepEqual(source.nextBehind?.(head, NOW, new Set()), { dueAt: NOW + 1_000, waiting: behind })
  tick = 700
  assert.deepEqual(source.nextBehind?.(head, NOW, new Set()), { dueAt: NOW + 300, waiting: behind })
  tick = 1_000
  assert.deepEqual(source.nextBehind?.(head, NOW, new Set()), { due: behind })
  // One within the longest wait keeps its own time.
  const first = delivery('d-3', 'r', NOW - 1)
  const near = delivery('d-4', 'r', NOW + 900)
  const nearSource = boundWaits(queuesOf({ r: [first, near] }), {
    maxWaitMs: 1_000,
    clock: () => NOW,
    monotonic: () => tick,
  })
  assert.deepEqual(nearSource.nextBehind?.(first, NOW, new Set()), { dueAt: NOW + 900, waiting: near })
})

it('bounds every far-off head from when it was first seen, however few slots are free at each look', () => {
  let tick = 0
  const queues: Record<string, StoredDelivery[]> = {}
  for (let i = 0; i < 6; i++) queues[`q${i}`] = [delivery(`d${i}`, `q${i}`, NOW + DAY + i)]
  const source = boundWaits(queuesOf(queues), { maxWaitMs: 1_000, clock: () => NOW, monotonic: () => tick })
  // A look every 100 ms, with two slots free at each.
  const servedAt: Record<string, number> = {}
  for (tick = 0; tick <= 5_000; tick += 100)
    for (const d of source.dueHeads(NOW, new Set(), 2)) {
      servedAt[d.deliveryId] ??= tick
      // Attempted and failed again: its new time is its own, within the longest wait.
      queues[d.configurationId] = [delivery(d.deliveryId, d.configurationId, NOW + 500, d.attempts + 1)]
    }
  // Two at each look from the bound on: 1 000, 1 000, 1 100, 1 100, 1 200, 1 200.
  assert.deepEqual(Object.values(servedAt).toSorted(), [1_000, 1_000, 1_100, 1_100, 1_200, 1_200])
})

it('reads far-off heads a page at a time, going on where the page before ended', () => {
  let tick = 0
  const queues: Record<string, StoredDelivery[]> = {}
  // More than a page (500), many sharing a due time across the page's end.
  for (let i = 0; i < 1_200; i++)
    queues[`q${i}`] = [delivery(`d${i}`, `q${i}`, NOW + DAY + Math.floor(i / 300))]
  const source = boundWaits(queuesOf(queues), { maxWaitMs: 10_000, clock: () => NOW, monotonic: () => tick })
  for (tick = 0; tick <= 3_000; tick += 1_000) source.dueHeads(NOW, new Set(), 1)
  tick = 13_000
  const served = new Set<string>()
  for (let look = 0; look < 1_300; look++)
    for (const d of source.dueHeads(NOW, new Set(), 1)) {
      served.add(d.deliveryId)
      queues[d.configurationId] = []
    }
  assert.equal(served.size, 1_200, 'each one bounded from one of the first passes')
})
