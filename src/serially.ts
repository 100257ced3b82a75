/**
 * Runs work one at a time per key, in the order it came, in this process; work under other
 * keys runs alongside. A failed piece of work does not stop the ones queued behind it.
 *
 * @example
 * const serially = createSerialQueues()
 * await serially(configurationId, () => decideAndAppend(configurationId, command))
 */
export const createSerialQueues = (): (<T>(key: string, work: () => Promise<T>) => Promise<T>) => {
  const queues = new Map<string, Promise<unknown>>()
  return <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const run = (queues.get(key) ?? Promise.resolve()).then(work, work)
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    queues.set(key, tail)
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key)
    })
    return run
  }
}
