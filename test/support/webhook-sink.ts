import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'

/** A webhook stand-in in its own process; see `spawnWebhookSink`. */
export interface WebhookSink {
  /** Where configurations point their webhooks. */
  readonly url: string
  /** Requests answered so far. */
  received(): Promise<number>
  /**
   * When each answered request arrived (ms since the epoch), by its `webhook-id` header, for
   * latency figures. Requests to a path ending in `/hang` are never answered and not listed.
   */
  arrivals(): Promise<Record<string, number>>
  /** The sink process's CPU time so far (user + system, µs): its share of a shared machine. */
  cpu(): Promise<number>
  stop(): Promise<void>
}

/**
 * A loopback HTTP server in a child process that answers every webhook with 204 and only
 * counts them (`GET /count`), for benchmarks whose deliveries must go somewhere without
 * taking the measuring process's time. It exits when its stdin closes.
 *
 * @example
 * const sink = await spawnWebhookSink()
 * await api.createWebhook(sink.url)
 * await sink.received() // 1234
 */
export const spawnWebhookSink = async (): Promise<WebhookSink> => {
  const child = spawn(process.execPath, [import.meta.filename], { stdio: ['pipe', 'pipe', 'inherit'] })
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const exited = once(child, 'exit').then(() => process.removeListener('exit', killOnExit))
  const base = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve)
    void exited.then(() => reject(new Error('webhook sink exited before it listened')))
  })
  let stopping: Promise<void> | undefined
  return {
    url: `${base}/hook`,
    received: async () => Number(await (await fetch(`${base}/count`)).text()),
    arrivals: async () => (await (await fetch(`${base}/arrivals`)).json()) as Record<string, number>,
    cpu: async () => Number(await (await fetch(`${base}/cpu`)).text()),
    stop: () => {
      stopping ??= (async () => {
        child.stdin?.end()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
        await exited
        clearTimeout(timer)
      })()
      return stopping
    },
  }
}

if (import.meta.main) {
  let count = 0
  const arrivals: Record<string, number> = {}
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/count') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(String(count))
      return
    }
    if (req.method === 'GET' && req.url === '/cpu') {
      const { user, system } = process.cpuUsage()
      res.writeHead(200, { 'content-type': 'text/plain' }).end(String(user + system))
      return
    }
    if (req.method === 'GET' && req.url === '/arrivals') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(arrivals))
      return
    }
    const at = Date.now()
    req.resume()
    if (req.url?.endsWith('/hang') === true) return
    req.on('end', () => {
      count++
      const id = req.headers['webhook-id']
      if (typeof id === 'string') arrivals[id] = at
      res.writeHead(204).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  process.stdout.write(`http://127.0.0.1:${port}\n`)
  process.stdin.resume()
  process.stdin.on('end', () => process.exit(0))
}
