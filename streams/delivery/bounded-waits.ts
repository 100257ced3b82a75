import type { DeliveryReadModel, StoredDelivery } from '../../src/deliveries/index.ts'
import type { QueueSource } from './scheduler.ts'

export interface BoundedWaitsOptions {
  /** The longest wait before a retry the policy gives (`longestRetryWait`). */
  readonly maxWaitMs: number
  /** Wall-clock milliseconds, as the due times are recorded. */
  readonly clock: () => number
  /** Milliseconds of a clock that never steps: how long a delivery has been seen waiting. */
  readonly monotonic: () => number
}

// Far-off heads read at a time, and how often (monotonic ms) they are read while there are any:
// where none are (nearly always) every look reads, and finds nothing, at once.
const FAR_PAGE = 500
const FAR_SCAN_MS = 1_000
const NONE: ReadonlySet<string> = new Set()

/** A delivery seen waiting further off than the longest wait, and until when it waits at most. */
interface Held {
  readonly configurationId: string
  /** The attempts it had: one made since settles this wait. */
  readonly attempts: number
  /** By the monotonic clock. */
  readonly until: number
  /** Seen as its queue's head (else behind one, its queue sending several at once). */
  readonly head: boolean
}

/**
 * The delivery queues of `view` with no retry waiting longer than the policy's longest wait. A
 * retry's time is its recording's clock plus at most that wait: one further off was recorded by
 * a wall clock that has stepped back since (or by another instance's, ahead of this one's), and
 * waiting for it would stall its queue for the size of the step. It falls due `maxWaitMs` after
 * it was first seen so, at the latest, and a backward step holds a queue no longer than the
 * schedule itself would. (A delivery never tried is due at once whatever its time: the read
 * model's `dueHeads`.)
 *
 * @example
 * startQueueScheduler({ source: boundWaits(view, { maxWaitMs: longestRetryWait(policy), clock, monotonic }), … })
 */
export const boundWaits = (
  view: Pick<DeliveryReadModel, 'dueHeads' | 'nextDueAt' | 'headOf' | 'nextBehind' | 'headsDueAfter'>,
  { maxWaitMs, clock, monotonic }: BoundedWaitsOptions,
): QueueSource<StoredDelivery> => {
  // By delivery id. Few: deliveries seen waiting past the longest wait.
  const held = new Map<string, Held>()

  /** Until when (monotonic) `delivery`, seen now (`tick`) waiting past the longest wait, waits. */
  const hold = (delivery: StoredDelivery, tick: number, head: boolean): number => {
    const known = held.get(delivery.deliveryId)
    if (known !== undefined && known.attempts === delivery.attempts) return known.until
    const until = tick + maxWaitMs
    held.set(delivery.deliveryId, {
      configurationId: delivery.configurationId,
      attempts: delivery.attempts,
      until,
      head,
    })
    return until
  }

  /** Forgets the deliveries seen behind a head whose bound ran out long since (settled, or served). */
  const prune = (tick: number): void => {
    for (const [deliveryId, entry] of held)
      if (!entry.head && entry.until + maxWaitMs < tick) held.delete(deliveryId)
  }

  // Far-off heads are read a page at a time, every queue's whatever the slots free or the queues
  // excluded, so each one's bound starts when it is first read, not once earlier ones are served.
  // A pass goes on from the due time the page before ended at (`cursor`) until a page comes back
  // short; the ids it read, to forget at its end those it no longer found whose queue moved on.
  let cursor: number | undefined
  let scannedAt = Number.NEGATIVE_INFINITY
  let foundFar = false
  const seen = new Set<string>()

  /** Reads the next page of far-off heads, if due to (`tick`), noting each one first read. */
  const scan = (now: number, tick: number): void => {
    if (foundFar && tick - scannedAt < FAR_SCAN_MS) return
    scannedAt = tick
    const page = view.headsDueAfter(Math.max(cursor ?? 0, now + maxWaitMs), NONE, FAR_PAGE)
    for (const far of page) {
      hold(far, tick, true)
      seen.add(far.deliveryId)
    }
    foundFar = page.length > 0 || cursor !== undefined
    if (page.length >= FAR_PAGE) {
      // From just before the page's last due time, so heads due at that very time after the
      // page are read too; a page all of one time goes on after it.
      const last = page.at(-1)?.nextAttemptAt ?? now + maxWaitMs
      cursor = last - 1 > (cursor ?? Number.NEGATIVE_INFINITY) ? last - 1 : last
      return
    }
    // A pass is over: a head no longer far off whose queue moved on (attempted, settled,
    // replayed, elsewhere too) is forgotten.
    for (const [deliveryId, entry] of held)
      if (entry.head && !seen.has(deliveryId)) {
        const head = view.headOf(entry.configurationId)
        if (head === undefined || head.deliveryId !== deliveryId || head.attempts !== entry.attempts)
          held.delete(deliveryId)
      }
    seen.clear()
    cursor = undefined
  }

  return {
    dueHeads: (now, exclude, limit) => {
      const due = [...view.dueHeads(now, exclude, limit)]
      if (due.length >= limit) return due
      const tick = monotonic()
      scan(now, tick)
      if (held.size === 0) return due
      const taken = new Set(due.map((d) => d.configurationId))
      for (const [deliveryId, entry] of held) {
        if (due.length >= limit) break
        if (!entry.head || entry.until > tick) continue
        if (exclude.has(entry.configurationId) || taken.has(entry.configurationId)) continue
        const head = view.headOf(entry.configurationId)
        // Its queue moved on (it was attempted, settled or replayed): nothing to bound any more.
        if (head === undefined || head.deliveryId !== deliveryId || head.attempts !== entry.attempts) {
          held.delete(deliveryId)
          continue
        }
        due.push(head)
        taken.add(entry.configurationId)
      }
      return due
    },
    nextDueAt: (exclude) => {
      let next = view.nextDueAt(exclude)
      if (held.size === 0 && !foundFar) return next
      const now = clock()
      const tick = monotonic()
      // Far-off heads seen: the next page, or the next pass for those recorded since.
      if (foundFar) {
        const at = now + Math.max(0, scannedAt + FAR_SCAN_MS - tick)
        if (next === undefined || at < next) next = at
      }
      for (const entry of held.values())
        if (entry.head && !exclude.has(entry.configurationId)) {
          const at = now + Math.max(0, entry.until - tick)
          if (next === undefined || at < next) next = at
        }
      return next
    },
    headOf: (queue) => view.headOf(queue),
    nextBehind: (after, now, open) => {
      const next = view.nextBehind(after, now, open)
      if (next === undefined || !('dueAt' in next) || next.dueAt - now <= maxWaitMs) return next
      const tick = monotonic()
      if (held.size > 1_000) prune(tick)
      const until = hold(next.waiting, tick, false)
      return until <= tick ? { due: next.waiting } : { dueAt: now + (until - tick), waiting: next.waiting }
    },
  }
}
