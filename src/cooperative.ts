import { setImmediate as immediate } from 'node:timers/promises'

/**
 * Long batch work on the one event loop (a projector batch of 10,000 events is close to a
 * second of decoding, folding and serialising) hands the loop back between slices, so requests,
 * router batches and timers wait one slice rather than the whole batch.
 */

/**
 * The longest a slice of batch work runs before it lets other work in, in milliseconds. A
 * trade: shorter slices answer requests and route sooner but leave the projector a smaller
 * share of a busy loop, so reports lag more. Measured with the freshness benchmark at 10,000
 * events/s offered: whole batches stalled the loop for 280–440 ms at p99 (max 460–520) with a
 * freshness max of 1.8–2.0 s; 50 ms slices 112–120 ms (max 200–250) at 1.9–2.0 s; 10 ms
 * slices 83–95 ms, but freshness rose to 3.6–4.6 s.
 */
export const SLICE_MS = 50

/**
 * Tells a loop when the event loop's slice is spent. `due()` is cheap enough to ask for every
 * item; `pause()` lets the event loop run everything that was waiting (I/O, timers) first.
 *
 * One slice is shared by all the work that pauses: it restarts once per turn of the event loop,
 * just before the first paused work resumes, so several batches' loops paused at once (a
 * projector's inserts serialising together) take one slice per turn between them, not one each.
 *
 * @example
 * for (const event of batch) {
 *   if (loopSlice.due()) await loopSlice.pause()
 *   fold(event)
 * }
 */
export interface Slice {
  due(): boolean
  pause(): Promise<void>
}

export const createSlice = (ms = SLICE_MS, now: () => number = performance.now.bind(performance)): Slice => {
  let started = now()
  let restarting = false
  const restart = () => {
    started = now()
    restarting = false
  }
  return {
    due: () => now() - started >= ms,
    pause: () => {
      // Queued before the pauser's own resumption, so it runs first in the next turn.
      if (!restarting) {
        restarting = true
        setImmediate(restart)
      }
      return yieldToLoop()
    },
  }
}

/** The process's slice, shared by every loop that pauses. */
export const loopSlice: Slice = createSlice()

/** Resolves after the event loop has run what was waiting: I/O callbacks, then this. */
export const yieldToLoop = (): Promise<void> => immediate()

/** Runs stepwise work (a generator that yields between items) to its end, in one go. */
export const drain = <T>(steps: Generator<void, T, void>): T => {
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

/** Runs stepwise work to its end in slices of the event loop, pausing when a slice is spent. */
export const drainSliced = async <T>(steps: Generator<void, T, void>, slice = loopSlice): Promise<T> => {
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
    if (slice.due()) await slice.pause()
  }
}
