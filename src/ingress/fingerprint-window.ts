/**
 * An exact set of 64-bit key fingerprints in insertion order, bounded by count, in typed
 * arrays: an open-addressing table (linear probing, backward-shift deletion) over a ring that
 * remembers the order and each key's time. Adding, testing and evicting the oldest are O(1)
 * and allocate nothing, and it costs 36 bytes per key of capacity, with no garbage for the
 * collector to trace — what lets the router remember a million events in memory.
 *
 * Fingerprints come from SHA-256; two different keys share one with probability about
 * n²/2^65 for n keys in the window (3·10⁻⁸ at a million).
 */
export interface FingerprintWindow {
  /** The time `add` recorded for the fingerprint, or undefined when it is not held. */
  timeOf(hi: number, lo: number): number | undefined
  /** Adds unless held (the first time is kept); evicts the oldest when full. */
  add(hi: number, lo: number, at: number): void
  /** Evicts every fingerprint added before `time`; times are expected to grow with insertion. */
  evictBefore(time: number): void
  readonly size: number
}

export const createFingerprintWindow = (capacity: number): FingerprintWindow => {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer')
  let slots = 16
  while (slots < capacity * 2) slots *= 2
  const mask = slots - 1
  const tableHi = new Uint32Array(slots)
  const tableLo = new Uint32Array(slots)
  // Ring index + 1 of each slot's entry; 0 marks an empty slot, so a fresh table's pages stay
  // untouched (not resident) until keys land on them.
  const tableRef = new Int32Array(slots)
  const ringHi = new Uint32Array(capacity)
  const ringLo = new Uint32Array(capacity)
  const ringAt = new Float64Array(capacity)
  let head = 0
  let size = 0

  const find = (hi: number, lo: number): number => {
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      if (tableRef[i] === 0) return -1
      if (tableHi[i] === hi && tableLo[i] === lo) return i
    }
  }

  const removeSlot = (slot: number): void => {
    let hole = slot
    tableRef[hole] = 0
    for (let j = (hole + 1) & mask; tableRef[j] !== 0; j = (j + 1) & mask) {
      const home = (tableLo[j] as number) & mask
      // An entry may fill the hole only if its home is not between the hole and it (cyclically).
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j
      if (stays) continue
      tableHi[hole] = tableHi[j] as number
      tableLo[hole] = tableLo[j] as number
      tableRef[hole] = tableRef[j] as number
      tableRef[j] = 0
      hole = j
    }
  }

  const evictOldest = (): void => {
    const slot = find(ringHi[head] as number, ringLo[head] as number)
    if (slot !== -1) removeSlot(slot)
    head = (head + 1) % capacity
    size--
  }

  return {
    timeOf(hi, lo) {
      const slot = find(hi >>> 0, lo >>> 0)
      return slot === -1 ? undefined : ringAt[(tableRef[slot] as number) - 1]
    },
    add(hi, lo, at) {
      const h = hi >>> 0
      const l = lo >>> 0
      if (find(h, l) !== -1) return
      if (size === capacity) evictOldest()
      const ref = (head + size) % capacity
      ringHi[ref] = h
      ringLo[ref] = l
      ringAt[ref] = at
      let i = l & mask
      while (tableRef[i] !== 0) i = (i + 1) & mask
      tableHi[i] = h
      tableLo[i] = l
      tableRef[i] = ref + 1
      size++
    },
    evictBefore(time) {
      while (size > 0 && (ringAt[head] as number) < time) evictOldest()
    },
    get size() {
      return size
    },
  }
}
