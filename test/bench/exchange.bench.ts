/**
 * One exchanger's CPU per request, nothing else around it: `npx node test/bench/exchange.bench.ts
 * [--requests N] [--concurrency C] [--rounds R] [--exchangers inline,thread] [--https] [--port P]`
 * (N 20,000, C 64, R 3, both exchangers, plain HTTP, any free port).
 *
 * N POSTs shaped like a signed Standard Webhooks request (a 1 KB JSON body; host, content-type,
 * content-length, user-agent, webhook-id, webhook-timestamp, webhook-signature), C at a time,
 * over keep-alive connections, to a loopback server in a child process answering 204, so the
 * server's CPU is not counted. `inline` makes them straight on this thread
 * (`createInlineExchanger`, no guard); `thread` hands them to the `http-sender` thread
 * (`startSenderThread`), which makes them with the same code, so the difference is the cost of
 * handing them over. Over HTTPS the server's self-signed certificate is trusted as an extra CA and
 * verified against the SNI name. Each round runs every exchanger once, their order turning
 * round by round; each is warmed with 15,000 requests before the measured part. Prints the CPU
 * of this process (all threads, `process.cpuUsage`) per request and requests/s. Figures are
 * printed, never asserted.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { createInlineExchanger, type ExchangeRequest, type Exchanger } from '../../src/outbound/exchange.ts'
import { startSenderThread } from '../../src/outbound/sender-thread.ts'
import { opensslMissing, selfSignedCertificate } from '../support/self-signed-cert.ts'
import { positiveWholeNumber } from './args.ts'

const exchangers: Record<string, (ca: readonly string[]) => Exchanger> = {
  inline: (ca) => createInlineExchanger({ ca }),
  thread: (ca) => startSenderThread({ ca }),
}

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    exchangers: { type: 'string', default: Object.keys(exchangers).join(',') },
    https: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
  },
})
const requests = positiveWholeNumber('--requests', values.requests)
const concurrency = positiveWholeNumber('--concurrency', values.concurrency)
const rounds = positiveWholeNumber('--rounds', values.rounds)
const names = values.exchangers.split(',')
for (const name of names)
  if (exchangers[name] === undefined)
    throw new Error(`--exchangers: no exchanger ${name} (${Object.keys(exchangers).join(', ')})`)
if (values.https && opensslMissing !== false) throw new Error(`--https: ${opensslMissing}`)

const out = (line: string) => process.stdout.write(`${line}\n`)
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** A loopback server answering 204 in a child process, over TLS when given a key pair; its port. */
const startServer = async (port: string, tls?: { key: string; cert: string }) => {
  const code = `import { createServer } from 'node:${tls === undefined ? 'http' : 'https'}'
const server = createServer(${tls === undefined ? '' : '{ key: process.env.KEY, cert: process.env.CERT }, '}(req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(204).end())
})
server.keepAliveTimeout = 60_000
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log(server.address().port))
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, KEY: tls?.key ?? '', CERT: tls?.cert ?? '', PORT: port },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  process.once('exit', () => child.kill('SIGKILL'))
  const listening = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve),
  )
  return {
    port: Number(listening),
    stop: async () => {
      child.stdin?.end()
      await once(child, 'exit')
    },
  }
}

const HOST = 'hooks.example.test'
const pair = values.https ? selfSignedCertificate([HOST]) : undefined
const server = await startServer(values.port, pair)
const body = JSON.stringify({
  type: 'image.analysis.completed',
  id: '0b7e3b9e-5f53-4a53-9d7c-3f1f0c0f9a61',
  timestamp: '2026-11-24T04:00:00.000Z',
  data: { image: 'registry.example.test/team/service@sha256:'.padEnd(110, '0'), summary: 'x'.repeat(820) },
})
const headers = {
  host: `${HOST}:${server.port}`,
  'content-type': 'application/json',
  'content-length': String(Buffer.byteLength(body)),
  'user-agent': 'Herald-Webhooks/1',
  'webhook-timestamp': '1795492800',
  'webhook-signature': 'v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=',
}
const WARM_REQUESTS = 15_000

/** The requests of one run, made before it is measured: only the exchanges are. */
const requestsOf = (count: number, run: string): ExchangeRequest[] =>
  Array.from({ length: count }, (_, i) => ({
    secure: values.https,
    address: '127.0.0.1',
    family: 4,
    port: server.port,
    path: '/hook',
    method: 'POST',
    headers: { ...headers, 'webhook-id': `msg_${run}_${i}` },
    ...(values.https ? { servername: HOST } : {}),
    rejectUnauthorized: true,
    body,
    timeoutMs: 15_000,
    maxBodyBytes: 4096,
  }))

/** Sends `list`, `concurrency` at a time; an exchange that fails or answers other than 204 ends the bench. */
const send = async (exchanger: Exchanger, list: readonly ExchangeRequest[]) => {
  let next = 0
  const lane = async () => {
    while (next < list.length) {
      const request = list[next++] as ExchangeRequest
      const answer = await exchanger.exchange(request)
      if (answer.status !== 204) throw new Error(`answered ${answer.status}`)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
}

out(
  `\n## Exchanges alone: ${fmt(requests)} POSTs of ${fmt(Buffer.byteLength(body))} B, ${concurrency} at a time, over ${values.https ? 'HTTPS' : 'HTTP'} keep-alive, to a server in a child process answering 204\n`,
)
out('| round | exchanger | requests/s | CPU µs per request |\n|---|---|---|---|')
const figures = new Map<string, number[]>(names.map((name) => [name, []]))
for (let round = 1; round <= rounds; round++) {
  const order = names.map((_, i) => names[(i + round - 1) % names.length] as string)
  for (const name of order) {
    const exchanger = (exchangers[name] as (ca: readonly string[]) => Exchanger)(
      pair === undefined ? [] : [pair.cert],
    )
    // Connections opened, TLS handshakes done and code warmed before the measured part. A thread
    // is a new isolate that compiles undici again: its CPU per request settles only after some
    // 12,000 requests (1,280 left it 10-15 µs above what it spends from then on).
    await send(exchanger, requestsOf(WARM_REQUESTS, `warm${round}`))
    const list = requestsOf(requests, `${name}${round}`)
    const cpu = process.cpuUsage()
    const started = performance.now()
    await send(exchanger, list)
    const seconds = (performance.now() - started) / 1_000
    const used = process.cpuUsage(cpu)
    const perRequest = (used.user + used.system) / requests
    figures.get(name)?.push(perRequest)
    out(`| ${round} | ${name} | ${fmt(requests / seconds)} | ${fmt(perRequest, 1)} |`)
    await exchanger.close()
  }
}
out('')
for (const [name, runs] of figures) out(`${name}: ${runs.map((n) => fmt(n, 1)).join(' / ')} µs per request`)
await server.stop()
