import type { Offsets } from 'kafkajs'

/** Sends one OffsetCommit for the given positions (the next offset to read, per partition). */
export type SendCommit = (offsets: Offsets) => Promise<void>

export interface Committer {
  /** Remembers that `partition` of `topic` is handled up to (not including) `next`. */
  mark(topic: string, partition: number, next: string): void
  /**
   * Commits everything marked, in as few requests as possible: positions marked while a
   * commit is in flight go together in the next one. Resolves once every position marked
   * before the call is committed; rejects if its request failed (the positions stay marked).
   */
  flush(): Promise<void>
  /** Whether the interval since the last commit has passed. */
  due(): boolean
  /** Forgets marked positions of partitions this member no longer owns. */
  retain(assigned: ReadonlyMap<string, readonly number[]>): void
}

interface Position {
  readonly topic: string
  readonly partition: number
  readonly next: string
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`

/**
 * Coalesces offset commits. kafkajs spends a request, its encoding and its bookkeeping on
 * every commit, which costs more than handling a small batch; committing the positions of
 * several batches (and partitions) in one request keeps at-least-once — a position is marked
 * only after its batch's handler resolved — while paying once.
 *
 * @example
 * const committer = createCommitter(() => payload.commitOffsetsIfNecessary, { intervalMs: 0, clock: Date.now })
 * committer.mark('engine.events', 3, '1042')
 * await committer.flush()
 */
export const createCommitter = (
  sender: () => SendCommit | undefined,
  options: { readonly intervalMs: number; readonly clock: () => number },
): Committer => {
  let marked = new Map<string, Position>()
  let inFlight: Promise<void> | undefined
  let lastCommit = options.clock()

  const send = async (positions: Map<string, Position>): Promise<void> => {
    const commit = sender()
    if (commit === undefined) throw new Error('no consumer run to commit offsets through')
    const byTopic = new Map<string, { partition: number; offset: string }[]>()
    for (const { topic, partition, next } of positions.values()) {
      const list = byTopic.get(topic) ?? []
      list.push({ partition, offset: next })
      byTopic.set(topic, list)
    }
    await commit({ topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })) })
    lastCommit = options.clock()
  }

  return {
    mark(topic, partition, next) {
      marked.set(keyOf(topic, partition), { topic, partition, next })
    },

    async flush() {
      // Whatever this caller marked is in `marked` or in the request in flight.
      while (inFlight !== undefined) await inFlight
      if (marked.size === 0) return
      const positions = marked
      marked = new Map()
      const request = send(positions).catch((error: unknown) => {
        // Positions marked meanwhile are newer; the failed ones go back only where there are none.
        for (const [key, position] of positions) if (!marked.has(key)) marked.set(key, position)
        throw error
      })
      // Settles either way, so the callers waiting on it go on to send what they marked.
      inFlight = request.then(
        () => {
          inFlight = undefined
        },
        () => {
          inFlight = undefined
        },
      )
      await request
    },

    due: () => options.clock() - lastCommit >= options.intervalMs,

    retain(assigned) {
      for (const [key, { topic, partition }] of marked)
        if (!(assigned.get(topic) ?? []).includes(partition)) marked.delete(key)
    },
  }
}
