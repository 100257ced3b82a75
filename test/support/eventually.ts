import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `probe` until it stops throwing, then returns its value; rethrows the last failure
 * after `timeoutMs`. Tests of asynchronous pipelines wait on an observable effect this way
 * instead of sleeping for a guessed duration.
 */
export const eventually = async <T>(
  probe: () => T | Promise<T>,
  { timeoutMs = 20_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await probe()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(intervalMs)
    }
  }
}
