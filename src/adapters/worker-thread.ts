import { Worker } from 'node:worker_threads'

const workerFlags = (flags: readonly string[]): string[] => {
  const out: string[] = []
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i] ?? ''
    if (flag === '--input-type') i++
    else if (!flag.startsWith('--input-type=')) out.push(flag)
  }
  return out
}

/**
 * A worker thread running the module at `url` (TypeScript, as the process runs it), with the
 * process's flags (the default) but not one only a main script takes (`node -e`'s
 * `--input-type`, which a worker refuses). It does not keep the process alive: `ref()` it
 * while something waits for it. `name` becomes the thread's name (at most 15 characters
 * show), as `top -H`, `ps -L` and `/proc/<pid>/task/<tid>/comm` list it.
 *
 * @example
 * const worker = startWorkerThread(new URL('./writer-worker.ts', import.meta.url), 'store-writer', { path })
 */
export const startWorkerThread = (url: URL, name: string, workerData: unknown): Worker => {
  const worker = new Worker(url, {
    name,
    workerData,
    ...(process.execArgv.some((flag) => flag.startsWith('--input-type'))
      ? { execArgv: workerFlags(process.execArgv) }
      : {}),
  })
  worker.unref()
  return worker
}
