/**
 * Outbound requests through the SSRF guard (issue 6): `node test/bench/outbound.bench.ts
 * [--requests N] [--concurrency C] [--rounds R]`. N signed-webhook-sized POSTs (800 B JSON),
 * C at a time, to a loopback server in its own process that answers 204, over HTTP and over
 * HTTPS (a self-signed certificate trusted as an extra CA), each with the exchanges on the
 * `http-sender` thread and on the event loop, the four cases interleaved R times. Prints
 * requests/s and the CPU per request of this process's event loop and of the whole process.
 * Figures are printed, never asserted.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { opensslMissing, selfSignedCertificate } from '../support/self-signed-cert.ts'
import { positiveWholeNumber } from './args.ts'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
  },
})
const requests = positiveWholeNumber('--requests', values.requests)
const concurrency = positiveWholeNumber('--concurrency', values.concurrency)
const rounds = positiveWholeNumber('--rounds', values.rounds)

const out = (line: string) => process.stdout.write(`${line}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

/** A loopback server answering 204 in a child process, over TLS when given a key pair; its port. */
const startServer = async (tls?: { key: string; cert: string }) => {
  const code = `import { createServer } from 'node:${tls === undefined ? 'http' : 'https'}'
const server = createServer(${tls === undefined ? '' : '{ key: process.env.KEY, cert: process.env.CERT }, '}(req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(204).end())
})
server.listen(0, '127.0.0.1', () => console.log(server.address().port))
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...process.env, KEY: tls?.key ?? '', CERT: tls?.cert ?? '' },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  process.once('exit', () => child.kill('SIGKILL'))
  const port = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve),
  )
  return {
    port,
    stop: async () => {
      child.stdin?.end()
      await once(child, 'exit')
    },
  }
}

const body = JSON.stringify({ type: 'image.analysis.completed', data: 'x'.repeat(780) })
const pair = opensslMissing === false ? selfSignedCertificate(['127.0.0.1']) : undefined
if (pair === undefined) out(`HTTPS cases skipped: ${opensslMissing}`)
const plain = await startServer()
const secure = pair === undefined ? undefined : await startServer(pair)

out(
  `\n## Outbound requests through the guard: ${fmt(requests)} POSTs, ${concurrency} at a time, to a loopback server answering 204\n\n| round | protocol | exchanges on | requests/s | CPU µs per request: event loop / whole process |\n|---|---|---|---|---|`,
)
for (let round = 1; round <= rounds; round++) {
  for (const server of [plain, secure]) {
    if (server === undefined) continue
    const https = server === secure
    for (const senderThread of [true, false]) {
      const guard = createOutboundGuard({
        allowlist: ['127.0.0.1'],
        senderThread,
        ...(https && pair !== undefined ? { ca: pair.cert } : {}),
      })
      const url = `${https ? 'https' : 'http'}://127.0.0.1:${server.port}/hook`
      let sent = 0
      const sender = async (total: number) => {
        while (sent < total) {
          sent++
          const { response } = await guard.fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            maxBodyBytes: 4096,
          })
          await response.body?.cancel()
        }
      }
      // Connections opened (and, over TLS, handshakes done) before the measured part.
      await Promise.all(Array.from({ length: concurrency }, () => sender(concurrency * 2)))
      sent = 0
      const loop = process.threadCpuUsage()
      const all = process.cpuUsage()
      const started = performance.now()
      await Promise.all(Array.from({ length: concurrency }, () => sender(requests)))
      const seconds = (performance.now() - started) / 1_000
      const loopUsed = process.threadCpuUsage(loop)
      const allUsed = process.cpuUsage(all)
      out(
        `| ${round} | ${https ? 'HTTPS' : 'HTTP'} | ${senderThread ? 'the http-sender thread' : 'the event loop'} | ${fmt(requests / seconds)} | ${fmt((loopUsed.user + loopUsed.system) / requests)} / ${fmt((allUsed.user + allUsed.system) / requests)} |`,
      )
      await guard.close()
    }
  }
}
await plain.stop()
await secure?.stop()
