const SEED = 0x9747b28c
const M = 0x5bd1e995

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`), so the embedded log puts a key in the
 * same partition Kafka would and a deployment can move between the two without reordering.
 */
export const murmur2 = (data: Uint8Array): number => {
  const length = data.length
  let h = SEED ^ length
  const blocks = length >> 2
  for (let i = 0; i < blocks; i++) {
    const j = i << 2
    let k =
      (data[j] ?? 0) | ((data[j + 1] ?? 0) << 8) | ((data[j + 2] ?? 0) << 16) | ((data[j + 3] ?? 0) << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  const tail = blocks << 2
  const rest = length & 3
  if (rest === 3) h ^= (data[tail + 2] ?? 0) << 16
  if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8
  if (rest >= 1) {
    h ^= data[tail] ?? 0
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

const utf8 = new TextEncoder()

/** The partition Kafka's default partitioner chooses for a key (of one, without hashing it). */
export const partitionForKey = (key: string, partitions: number): number =>
  partitions === 1 ? 0 : (murmur2(utf8.encode(key)) & 0x7fffffff) % partitions

/**
 * `partitionForKey` that remembers up to `limit` keys per partition count: for callers that ask
 * about the same keys again and again (configuration ids, accounts), without hashing each time.
 */
export const rememberingPartitioner = (limit = 10_000): ((key: string, partitions: number) => number) => {
  const byCount = new Map<number, Map<string, number>>()
  return (key, partitions) => {
    let byKey = byCount.get(partitions)
    if (byKey === undefined) {
      byKey = new Map()
      byCount.set(partitions, byKey)
    }
    let partition = byKey.get(key)
    if (partition === undefined) {
      partition = partitionForKey(key, partitions)
      if (byKey.size >= limit) byKey.clear()
      byKey.set(key, partition)
    }
    return partition
  }
}
