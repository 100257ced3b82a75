import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const root = join(import.meta.dirname, '..', '..')

export interface HeraldProcess {
  readonly url: string
  readonly child: ChildProcess
  /** Every JSON log line the process wrote so far. */
  readonly lines: Record<string, unknown>[]
  /** Resolves with the exit code once the process ended. */
  readonly exited: Promise<number | null>
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Runs `herald start` as a real child process (Node 24 from node_modules, as `npm start`
 * does; `npm: true` runs `npm start` itself, whose process `child` then is), on port 0, and
 * resolves once it logged `herald.started` with its URL (or, with `until`, the first line of
 * that event, `url` then empty unless it is `herald.started`).
 */
export const startHeraldProcess = async (
  env: Record<string, string>,
  timeoutMs = 60_000,
  { npm = false, until = 'herald.started' }: { npm?: boolean; until?: string } = {},
): Promise<HeraldProcess> => {
  const [file, args] = npm
    ? ['npm', ['start', '--silent']]
    : [process.execPath, [join(root, 'src', 'cli.ts'), 'start']]
  const child = spawn(file, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HERALD_LISTEN: '127.0.0.1',
      HERALD_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Record<string, unknown>[] = []
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: it would hold its port, its data directory and this process's pipes.
      child.kill('SIGKILL')
      reject(new Error(`herald did not log ${until} within ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>
        lines.push(parsed)
        if (parsed.event === until) {
          clearTimeout(timer)
          resolve(parsed.url === undefined ? '' : String(parsed.url))
        }
      } catch {
        lines.push({ raw: line })
      }
    })
    exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`herald exited with ${code} before it started\n${stderr}\n${JSON.stringify(lines)}`))
    })
  })
  return {
    url,
    child,
    lines,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode
      child.kill(signal)
      return exited
    },
  }
}
