import type { EngineEvent } from '../events/index.ts'

// Herald's request limit is 5 MiB; batches stay well under it.
export const MAX_BATCH_BYTES = 4 * 1024 * 1024
/** The longest event as JSON one request to Herald holds: its 5 MiB limit, less the batch's brackets. */
export const MAX_EVENT_BYTES = 5 * 1024 * 1024 - 2

/**
 * Gathers events into batches of at most `size` events and about MAX_BATCH_BYTES: `add` hands
 * back the batch full before the event given (which starts the next), `take` the batch so far.
 * An event longer than the bound goes alone.
 */
export const createBatcher = (size: number) => {
  let batch: EngineEvent[] = []
  let bytes = 0
  return {
    add(event: EngineEvent, eventBytes: number): EngineEvent[] | undefined {
      let full: EngineEvent[] | undefined
      if (batch.length > 0 && (batch.length >= size || bytes + eventBytes > MAX_BATCH_BYTES)) {
        full = batch
        batch = []
        bytes = 0
      }
      batch.push(event)
      bytes += eventBytes + 1
      return full
    },
    take(): EngineEvent[] | undefined {
      if (batch.length === 0) return undefined
      const taken = batch
      batch = []
      bytes = 0
      return taken
    },
    get pending(): number {
      return batch.length
    },
  }
}

/** Splits events into batches of at most `size` events and about MAX_BATCH_BYTES. */
export const toBatches = (events: readonly EngineEvent[], size: number): EngineEvent[][] => {
  const batcher = createBatcher(size)
  const batches: EngineEvent[][] = []
  for (const event of events) {
    const full = batcher.add(event, Buffer.byteLength(JSON.stringify(event)))
    if (full !== undefined) batches.push(full)
  }
  const last = batcher.take()
  if (last !== undefined) batches.push(last)
  return batches
}
