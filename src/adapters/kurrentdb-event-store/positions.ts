/**
 * How the port's single `position` number maps onto KurrentDB's $all positions.
 *
 * KurrentDB orders $all by (commit, prepare), both byte offsets into its append-only log. Every
 * append made through the gRPC API is an implicit transaction in which each event is its own
 * self-committing prepare record (`PrepareFlags.IsCommitted`), and the server gives such an event
 * its own log offset as both its commit and its prepare position. So every user event has a commit
 * position of its own, greater than that of every event appended before it in any stream, and the
 * commit position alone is the port's `position`: strictly increasing per event, not consecutive
 * (bytes, not a counter), which the port allows. Only events written through the legacy TCP API's
 * explicit transactions share a commit position; Herald never writes those. An append's result
 * carries the commit position of its last event (the record that ends the transaction).
 *
 * A checkpoint `after` asks for events whose position is greater than `after`. When `after` is an
 * event's position it is also where a log record starts, and `{commit: after, prepare: after}` is a
 * valid `fromPosition`. A catch-up subscription starts *after* its fromPosition while a read starts
 * *at* it, so the adapter itself drops every event whose position is not greater than `after`,
 * whichever call it made: the event AT the checkpoint is never delivered again.
 *
 * The port accepts any number as a checkpoint (`position - 1` included), but a number that does not
 * start a record is not a valid place to read from: the server would land mid-record and refuses
 * it. `resolveStart` finds a place that is valid and not after `after`, and the adapter filters
 * from there up to `after`.
 */

/** Bytes per KurrentDB chunk file (the server's default, rarely changed). A chunk starts with a record. */
export const CHUNK_SIZE = 256 * 1024 * 1024

/** Where a read can start: the beginning of the log, or a log position that starts a record. */
export type Start = 'start' | number

/** What reading one event forward from a position found. */
export type ProbeResult =
  /** An event at or after it: the position starts a record. */
  | 'event'
  /** Nothing at or after it: the position is at or past the end of the log. */
  | 'end'
  /** The server refused to read there: it is inside a record. */
  | 'invalid'

export interface StartProbes {
  /** Positions this adapter handed out (events' positions): known to start records. */
  readonly known: (position: number) => boolean
  readonly probe: (position: number) => Promise<ProbeResult>
  /** The position of the last event in the log (system events included); undefined when empty. */
  readonly lastPosition: () => Promise<number | undefined>
}

export const chunkStartOf = (position: number): number => Math.floor(position / CHUNK_SIZE) * CHUNK_SIZE

// Past the end, a checkpoint is chased with the log's last position; appends racing that read
// may move the end again, but not forever in practice.
const END_ATTEMPTS = 3

/**
 * A valid place to start reading for events after `after`, as late as can be found cheaply:
 * `after` itself when it starts a record; the last event when `after` is past the end of the log
 * (so appends that land between here and `after` are still seen); otherwise the start of the chunk
 * holding `after`; failing all that, the start of the log. Never later than `after`.
 *
 * @example
 * const start = await resolveStart(checkpoint, { known, probe, lastPosition })
 * const fromPosition = start === 'start' ? START : { commit: BigInt(start), prepare: BigInt(start) }
 */
export const resolveStart = async (after: number | undefined, probes: StartProbes): Promise<Start> => {
  if (after === undefined || after === 0) return 'start'
  if (probes.known(after)) return after
  for (let attempt = 0; attempt < END_ATTEMPTS; attempt++) {
    const found = await probes.probe(after)
    if (found === 'event') return after
    if (found === 'invalid') break
    const last = await probes.lastPosition()
    if (last === undefined) return 'start'
    if (last <= after) return last
  }
  const chunk = chunkStartOf(after)
  if (chunk > 0 && (await probes.probe(chunk)) !== 'invalid') return chunk
  return 'start'
}

/** A bounded set that forgets its oldest members first. */
export const boundedSet = (capacity: number) => {
  const members = new Set<number>()
  return {
    has: (value: number): boolean => members.has(value),
    add: (value: number): void => {
      members.delete(value)
      members.add(value)
      if (members.size > capacity) {
        const oldest = members.values().next()
        if (!oldest.done) members.delete(oldest.value)
      }
    },
  }
}
