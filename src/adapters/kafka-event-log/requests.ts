import type { OutgoingMessage } from '../../ports/event-log.ts'

/**
 * What a produce request costs besides its records, at most: the request header with its client
 * id (counted apart), the transactional id, acks, timeout and array lengths, and the topic's name
 * (at most 249 bytes).
 */
export const REQUEST_FRAMING = 512
/**
 * What each partition of a request costs besides its records, at most: the record batch's header
 * (61 bytes) with the partition's index and the records' length.
 */
export const PARTITION_FRAMING = 80

/**
 * Splits messages, in their order, into runs that each fit one produce request of `budget` bytes
 * besides its request framing: a run holds whole messages (`sizes[i]` bytes each) and the framing
 * of each partition they may go to, one per key and one per keyless message, which can go
 * anywhere. Returns where each run ends (exclusive); a message larger than `budget` alone makes a
 * run of its own, for the caller to refuse beforehand.
 *
 * @example
 * runEnds([{ key: 'a', ... }, { key: 'a', ... }, { key: 'b', ... }], [400, 400, 400], 1_000) // [2, 3]
 */
export const runEnds = (
  messages: readonly Pick<OutgoingMessage, 'key'>[],
  sizes: readonly number[],
  budget: number,
): number[] => {
  const ends: number[] = []
  let used = 0
  const keys = new Set<string>()
  messages.forEach(({ key }, i) => {
    const bytes = sizes[i] ?? 0
    let cost = bytes + (key !== null && keys.has(key) ? 0 : PARTITION_FRAMING)
    if (used > 0 && used + cost > budget) {
      ends.push(i)
      used = 0
      keys.clear()
      cost = bytes + PARTITION_FRAMING
    }
    used += cost
    if (key !== null) keys.add(key)
  })
  if (messages.length > 0) ends.push(messages.length)
  return ends
}
