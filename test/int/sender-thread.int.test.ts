import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Worker } from 'node:worker_threads'
import {
  createInlineExchanger,
  type ExchangeAnswer,
  type ExchangeRequest,
  ExchangeTimeoutError,
} from '../../src/outbound/exchange.ts'
import { OutboundRequestError } from '../../src/outbound/index.ts'
import { startSenderThread } from '../../src/outbound/sender-thread.ts'
import { threadNames } from '../support/threads.ts'

/**
 * A real server on 127.0.0.1: `/ok` answers 200 with the body it got, `/headers` with header
 * lines in mixed case, one name repeated around another, and `/hang` never answers.
 */
const serve = async () => {
  let arrived = 0
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    arrived++
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.url === '/hang') return
      if (req.url === '/headers') return void res.writeHead(200, MIXED_HEADERS).end()
      res.writeHead(200, { 'x-seen': req.headers.host ?? '' }).end(Buffer.concat(chunks))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    arrived: () => arrived,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const MIXED_HEADERS = ['Set-Cookie', 'a=1', 'X-Mixed-Case', 'Yes', 'set-cookie', 'b=2']

const requestTo = (port: number, path: string, timeoutMs = 10_000): ExchangeRequest => ({
  secure: false,
  address: '127.0.0.1',
  family: 4,
  port,
  path,
  method: 'POST',
  headers: { host: `hooks.test:${port}`, 'content-type': 'text/plain' },
  rejectUnauthorized: true,
  body: 'hello',
  timeoutMs,
  maxBodyBytes: 1024,
})

describe('the HTTP sender thread', () => {
  let server: Awaited<ReturnType<typeof serve>>
  before(async () => {
    server = await serve()
  })
  after(async () => {
    await server.close()
  })

  it('performs exchanges on a thread named http-sender and answers each with its own body', async () => {
    const sender = startSenderThread({ ca: [] })
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          sender.exchange({ ...requestTo(server.port, '/ok'), body: `n${i}` }),
        ),
      )
      answers.forEach((answer: ExchangeAnswer, i) => {
        assert.equal(answer.status, 200)
        assert.equal(Buffer.from(answer.body).toString(), `n${i}`)
        assert.ok(answer.rawHeaders.includes(`hooks.test:${server.port}`))
      })
      assert.ok(threadNames().includes('http-sender'), `threads: ${threadNames().join(', ')}`)
    } finally {
      await sender.close()
    }
  })

  for (const [name, make] of [
    ['on the event loop', createInlineExchanger],
    ['on the thread', startSenderThread],
  ] as const)
    it(`answers with the header lines as received, ${name}: names in their case, a repeated name where it came`, async () => {
      const exchanger = make({ ca: [] })
      try {
        const answer = await exchanger.exchange(requestTo(server.port, '/headers'))
        assert.deepEqual(answer.rawHeaders.slice(0, MIXED_HEADERS.length), MIXED_HEADERS)
      } finally {
        await exchanger.close()
      }
    })

  it('fails the exchanges a crashed thread had taken as retriable request errors, and starts again', async () => {
    const started: Worker[] = []
    const stops: Error[] = []
    const sender = startSenderThread({
      ca: [],
      restartDelayMs: 10,
      onStarted: (worker) => started.push(worker),
      onStopped: (error) => stops.push(error),
    })
    try {
      const before = server.arrived()
      const hanging = sender.exchange(requestTo(server.port, '/hang'))
      while (server.arrived() === before) await new Promise((resolve) => setTimeout(resolve, 5))
      await started[0]?.terminate()
      await assert.rejects(hanging, (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ESENDERSTOPPED')
        return true
      })
      assert.equal(stops.length, 1)
      // Through the guard the same stop is a failed request, which a delivery retries.
      assert.ok(new OutboundRequestError('hooks.test', stops[0]).retriable)

      while (started.length < 2) await new Promise((resolve) => setTimeout(resolve, 5))
      const answer = await sender.exchange(requestTo(server.port, '/ok'))
      assert.equal(answer.status, 200)
    } finally {
      await sender.close()
    }
  })

  it('gives up at the time limit on the thread, and on the caller abort at once', async () => {
    const sender = startSenderThread({ ca: [] })
    try {
      await assert.rejects(sender.exchange(requestTo(server.port, '/hang', 100)), ExchangeTimeoutError)
      const controller = new AbortController()
      const aborted = sender.exchange(requestTo(server.port, '/hang'), controller.signal)
      const reason = new Error('stopping')
      setTimeout(() => controller.abort(reason), 50)
      await assert.rejects(aborted, (error: unknown) => error === reason)
    } finally {
      await sender.close()
    }
  })

  it('refuses exchanges once closed, and fails those still waiting', async () => {
    const sender = startSenderThread({ ca: [] })
    const hanging = sender.exchange(requestTo(server.port, '/hang'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    await sender.close()
    await assert.rejects(hanging, (error: Error & { code?: string }) => error.code === 'ESENDERSTOPPED')
    await assert.rejects(sender.exchange(requestTo(server.port, '/ok')), /closed/)
  })

  it('lets a process exit once idle, its guard never closed', async () => {
    // A process of its own: one request through a guard left open, then nothing to do.
    const script = `import { createOutboundGuard } from ${JSON.stringify(new URL('../../src/outbound/index.ts', import.meta.url).href)}
const guard = createOutboundGuard({ allowlist: ['127.0.0.1'] })
const { response } = await guard.fetch('http://127.0.0.1:${server.port}/ok', { method: 'POST', body: 'x' })
console.log(await response.text())`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let printed = ''
    child.stdout.on('data', (chunk: Buffer) => {
      printed += chunk.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
    clearTimeout(timer)
    assert.equal(printed.trim(), 'x')
    assert.equal(signal, null, 'killed after 20 s: the sender thread kept the process alive')
    assert.equal(code, 0)
  })
})
