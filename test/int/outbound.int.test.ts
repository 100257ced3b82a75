import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { getEventListeners } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { TLSSocket } from 'node:tls'
import {
  createOutboundGuard,
  type Lookup,
  OutboundBlockedError,
  OutboundRequestError,
  OutboundTimeoutError,
} from '../../src/outbound/index.ts'
import { selfSignedCertificate } from '../support/self-signed-cert.ts'

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly body: string
  readonly servername: string | undefined
  /** The client's port: the same for requests that rode one connection. */
  readonly remotePort: number | undefined
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

/**
 * A real server on 127.0.0.1 (or `host`) that records every request it gets, and the client
 * ports of the connections that closed; routes by path.
 */
const serve = async (
  routes: Record<string, Handler>,
  tls?: { key: string; cert: string },
  host = '127.0.0.1',
): Promise<{ port: number; seen: Seen[]; closedPorts: Set<number>; close: () => Promise<void> }> => {
  const seen: Seen[] = []
  const closedPorts = new Set<number>()
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        servername: (req.socket as Partial<TLSSocket>).servername || undefined,
        remotePort: req.socket.remotePort,
      })
      const route = routes[new URL(req.url ?? '/', 'http://x').pathname] ?? routes['*']
      if (route === undefined) res.writeHead(404).end()
      else route(req, res, body)
    })
  }
  const server: Server = tls === undefined ? createServer(listener) : createTlsServer(tls, listener)
  server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    const port = socket.remotePort
    socket.on('close', () => closedPorts.add(port ?? 0))
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    closedPorts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

const lookupFrom =
  (table: Record<string, readonly string[]>): Lookup =>
  async (hostname) => {
    const found = table[hostname]
    if (found === undefined) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }

/** Waits until `check` holds, polling every 20 ms, and fails past `ms`. */
const eventually = async (check: () => boolean, ms: number, what: string) => {
  const until = performance.now() + ms
  while (!check()) {
    if (performance.now() > until) assert.fail(`${what} within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const isBlocked = (error: unknown) =>
  error instanceof OutboundBlockedError && error.code === 'outbound_blocked'

describe('SSRF corpus', () => {
  let server: Awaited<ReturnType<typeof serve>>
  let port: number

  before(async () => {
    server = await serve({
      '/redirect-metadata': (_req, res) =>
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam/' }).end(),
      '/redirect-internal': (_req, res) =>
        res.writeHead(307, { location: `http://10.0.0.5:${port}/admin` }).end(),
      '/redirect-self': (_req, res) => res.writeHead(301, { location: '/internal-only' }).end(),
      '/redirect-decimal': (_req, res) => res.writeHead(308, { location: 'http://2130706433/' }).end(),
      '*': (_req, res) => res.writeHead(200).end('reached'),
    })
    port = server.port
  })
  after(() => server.close())

  // Names the attacker controls, resolving where the attacker likes.
  const attackerDns = lookupFrom({
    'metadata.google.internal': ['169.254.169.254'],
    'internal.attacker.example': ['10.0.0.5'],
    'loopback.attacker.example': ['127.0.0.1'],
    'v6.attacker.example': ['fd00::1'],
    'mapped.attacker.example': ['::ffff:169.254.169.254'],
    'nat64.attacker.example': ['64:ff9b::7f00:1'],
    'split.attacker.example': ['93.184.215.14', '127.0.0.1'],
    'split6.attacker.example': ['2606:4700::6810:84e5', '::1'],
  })

  const corpus = () => [
    // loopback
    `http://127.0.0.1:${port}/`,
    `http://127.0.0.2:${port}/`,
    `http://localhost:${port}/`,
    `http://LOCALHOST.:${port}/`,
    `http://[::1]:${port}/`,
    `http://[0:0:0:0:0:0:0:1]:${port}/`,
    `HTTP://127.0.0.1:${port}/`,
    // cloud metadata
    'http://169.254.169.254/latest/meta-data/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://100.100.100.200/latest/meta-data/',
    'http://168.63.129.16/machine',
    // decimal, octal, hex and short IPv4 spellings
    `http://2130706433:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://0x7f.1:${port}/`,
    `http://0x7f000001:${port}/`,
    `http://017700000001:${port}/`,
    `http://127.1:${port}/`,
    `http://0x7f.0x0.0x0.0x1:${port}/`,
    `http://127.0.0.1.:${port}/`,
    `http://%31%32%37.0.0.1:${port}/`,
    `http://１２７.０.０.１:${port}/`,
    'http://0xa9fea9fe/',
    'http://2852039166/',
    'http://169.254.43518/',
    'http://0300.0250.0.1/',
    'http://012.0.0.1/',
    'http://0/',
    'http://0.0.0.0/',
    // IPv6 spellings of IPv4
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://[::ffff:7f00:1]:${port}/`,
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    `http://[::127.0.0.1]:${port}/`,
    `http://[::ffff:0:7f00:1]:${port}/`,
    `http://[64:ff9b::7f00:1]:${port}/`,
    'http://[64:ff9b::169.254.169.254]/',
    'http://[64:ff9b:1::a00:5]/',
    'http://[2002:7f00:1::]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
    'http://[::]/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://[ff02::1]/',
    // private, CGNAT, link-local, reserved, broadcast, multicast, documentation, benchmarking
    'http://10.0.0.5/',
    'http://172.16.0.1/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://169.254.1.1/',
    'http://240.0.0.1/',
    'http://255.255.255.255/',
    'http://224.0.0.1/',
    'http://192.0.2.1/',
    'http://198.18.0.1/',
    'http://[2001:db8::1]/',
    // host names resolving to forbidden addresses, or to one public and one forbidden
    'http://internal.attacker.example/',
    `http://loopback.attacker.example:${port}/`,
    'http://v6.attacker.example/',
    'http://mapped.attacker.example/',
    `http://nat64.attacker.example:${port}/`,
    `http://split.attacker.example:${port}/`,
    `http://split6.attacker.example:${port}/`,
    // credentials must not smuggle a host past the parser
    `http://hooks.example.com@127.0.0.1:${port}/`,
    `http://127.0.0.1:${port}\\@hooks.example.com/`,
    // non-http schemes
    'file:///etc/passwd',
    'ftp://example.com/',
    `gopher://127.0.0.1:${port}/_GET%20/`,
    'data:text/plain,hello',
    'javascript:alert(1)',
    `dict://127.0.0.1:${port}/info`,
    'ldap://127.0.0.1/',
    'ws://example.com/',
    'blob:http://example.com/uuid',
  ]

  it('refuses every entry, and nothing reaches the local server', async () => {
    const guard = createOutboundGuard({ lookup: attackerDns })
    const admitted: string[] = []
    const entries = corpus()
    for (const url of entries) {
      const outcome = await guard.fetch(url).then(
        () => 'admitted',
        (error: unknown) => (isBlocked(error) ? 'refused' : `failed otherwise: ${String(error)}`),
      )
      if (outcome !== 'refused') admitted.push(`${url} → ${outcome}`)
    }
    guard.close()
    console.log(`SSRF corpus: ${entries.length - admitted.length}/${entries.length} refused`)
    assert.deepEqual(admitted, [])
    assert.equal(server.seen.length, 0)
  })

  it('returns a redirect unfollowed and marked, and the guard refuses where it points', async () => {
    const guard = createOutboundGuard({ lookup: attackerDns, allowlist: ['127.0.0.1'] })
    const strict = createOutboundGuard({ lookup: attackerDns })
    const before = server.seen.length
    const cases = [
      ['/redirect-metadata', 302, 'http://169.254.169.254/latest/meta-data/iam/'],
      ['/redirect-internal', 307, `http://10.0.0.5:${port}/admin`],
      ['/redirect-decimal', 308, 'http://127.0.0.1/'],
      ['/redirect-self', 301, `http://127.0.0.1:${port}/internal-only`],
    ] as const
    for (const [path, status, location] of cases) {
      const { response, redirect } = await guard.fetch(`http://127.0.0.1:${port}${path}`)
      assert.equal(response.status, status)
      assert.deepEqual(redirect, { status, location })
      await assert.rejects(strict.checkUrl(location), isBlocked)
    }

    const withCredentials = await guard.fetch(`http://user:s3cret@127.0.0.1:${port}/redirect-self`)
    assert.equal(withCredentials.redirect?.location, `http://127.0.0.1:${port}/internal-only`)
    // One request per call: not one redirect was followed, not even to the allowlisted server.
    assert.deepEqual(
      server.seen.slice(before).map((s) => s.url),
      [...cases.map(([path]) => path), '/redirect-self'],
    )
    guard.close()
    strict.close()
  })
})

const opensslMissing = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return false
  } catch {
    return 'openssl is not installed: Node cannot create an X.509 certificate for the test server by itself'
  }
})()

// Every exchange runs on the sender thread by default (as `herald start` runs them), or on the
// event loop (`outbound.sender_thread: false`): both must behave alike.
for (const senderThread of [true, false]) {
  const mode = senderThread ? 'on the sender thread' : 'on the event loop'
  describe(`guardedFetch over HTTP, ${mode}`, () => {
    let server: Awaited<ReturnType<typeof serve>>
    let guard: ReturnType<typeof createOutboundGuard>
    let lookups: string[]
    let rebound = false

    before(async () => {
      server = await serve({
        '/echo': (req, res, body) =>
          res
            .writeHead(201, [
              ['content-type', 'application/json'],
              ['set-cookie', 'a=1'],
              ['set-cookie', 'b=2'],
              ['x-request-method', req.method ?? ''],
            ])
            .end(JSON.stringify({ body, host: req.headers.host })),
        '/empty': (_req, res) => res.writeHead(204).end(),
        '/hang': () => {},
        '/slow-body': (_req, res) => {
          res.writeHead(200)
          res.write('partial')
        },
        '/big': (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.end('x'.repeat(5 * 1024 * 1024))
        },
        '/early': (_req, res) => {
          res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
          res.writeHead(202, 'Taken For Later').end('later')
        },
        // Kept 3 s by the server: a client leaving 2 s of margin closes it after 1 s idle.
        '/short-keep-alive': (_req, res) => res.writeHead(204, { 'keep-alive': 'timeout=3' }).end(),
      })
      lookups = []
      // Answers the checked address once, then rebinds to somewhere else: the pinned connection
      // must never ask again.
      const lookup: Lookup = async (hostname) => {
        lookups.push(hostname)
        if (hostname !== 'hooks.test') throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' })
        const address = rebound ? '10.66.66.66' : '127.0.0.1'
        rebound = true
        return [{ address, family: 4 }]
      }
      guard = createOutboundGuard({ senderThread, lookup, allowlist: ['127.0.0.1'] })
    })
    after(async () => {
      guard.close()
      await server.close()
    })

    const at = (path: string) => `http://127.0.0.1:${server.port}${path}`

    it('sends method, headers and body, and returns status, every header and the body', async () => {
      const { response, redirect, truncated, durationMs } = await guard.fetch(at('/echo?x=1'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-herald-signature': 'v1,abc', host: 'evil.example' },
        body: '{"hello":"world"}',
      })
      assert.equal(response.status, 201)
      assert.equal(response.headers.get('x-request-method'), 'POST')
      assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2'])
      assert.deepEqual(await response.json(), { body: '{"hello":"world"}', host: `127.0.0.1:${server.port}` })
      assert.equal(redirect, undefined)
      assert.equal(truncated, false)
      assert.ok(durationMs >= 0)
      const seen = server.seen.at(-1)
      assert.equal(seen?.url, '/echo?x=1')
      assert.equal(seen?.headers['x-herald-signature'], 'v1,abc')
      assert.equal(seen?.headers['content-length'], '17')
    })

    it('connects to the checked address only, with the original host name in the Host header', async () => {
      const target = await guard.checkUrl(`http://hooks.test:${server.port}/echo`)
      assert.equal(target.address, '127.0.0.1')
      // The resolver now answers 10.66.66.66; the request still goes to the address that was checked.
      const { response } = await guard.guardedFetch(target, { method: 'POST', body: 'x' })
      assert.equal(response.status, 201)
      assert.equal(((await response.json()) as { host: string }).host, `hooks.test:${server.port}`)
      assert.deepEqual(lookups, ['hooks.test'])
      // Checked again, the rebound answer is refused.
      await assert.rejects(guard.checkUrl(`http://hooks.test:${server.port}/echo`), isBlocked)
    })

    it('times the exchange with the injected clock', async () => {
      const ticks = [1_000, 1_250]
      const timed = createOutboundGuard({
        senderThread,
        allowlist: ['127.0.0.1'],
        now: () => ticks.shift() ?? 0,
      })
      assert.equal((await timed.fetch(at('/empty'))).durationMs, 250)
      timed.close()
    })

    it('sends URL credentials as basic auth', async () => {
      await guard.fetch(`http://us%40er:p%3Ass@127.0.0.1:${server.port}/echo`)
      const expected = `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`
      assert.equal(server.seen.at(-1)?.headers.authorization, expected)
    })

    it('returns a bodiless status as a valid Response', async () => {
      const { response } = await guard.fetch(at('/empty'))
      assert.equal(response.status, 204)
      assert.equal(response.body, null)
    })

    it('gives up after the time limit, while waiting for headers or for the body', async () => {
      for (const path of ['/hang', '/slow-body']) {
        const started = performance.now()
        await assert.rejects(guard.fetch(at(path), { timeoutMs: 300 }), (error: unknown) => {
          assert.ok(error instanceof OutboundTimeoutError, String(error))
          assert.equal(error.code, 'outbound_timeout')
          assert.equal(error.retriable, true)
          return true
        })
        const elapsed = performance.now() - started
        assert.ok(elapsed >= 290 && elapsed < 3000, `${path} took ${elapsed} ms`)
      }
    })

    it('stops when the caller aborts, with the caller reason', async () => {
      const controller = new AbortController()
      const pending = guard.fetch(at('/hang'), { signal: controller.signal })
      setTimeout(() => controller.abort(new Error('shutting down')), 50)
      await assert.rejects(pending, /shutting down/)
    })

    it('leaves no listener on the caller signal, and refuses at once when it is aborted already', async () => {
      const controller = new AbortController()
      for (let i = 0; i < 5; i++) await guard.fetch(at('/empty'), { signal: controller.signal })
      await assert.rejects(guard.fetch(at('/hang'), { signal: AbortSignal.timeout(20) }))
      // The deliverer passes one signal to every exchange it makes: none of them stays on it.
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
      controller.abort(new Error('stopped before'))
      await assert.rejects(guard.fetch(at('/empty'), { signal: controller.signal }), /stopped before/)
    })

    it('keeps at most maxBodyBytes of the body and says it truncated', async () => {
      const { response, truncated } = await guard.fetch(at('/big'), { maxBodyBytes: 1000 })
      assert.equal(response.status, 200)
      assert.equal(truncated, true)
      assert.equal((await response.text()).length, 1000)
      const whole = await guard.fetch(at('/big'), { maxBodyBytes: 6 * 1024 * 1024 })
      assert.equal(whole.truncated, false)
      assert.equal((await whole.response.arrayBuffer()).byteLength, 5 * 1024 * 1024)
    })

    it('reads no further than maxBodyBytes, and closes that connection', async () => {
      const { truncated } = await guard.fetch(at('/big'), { maxBodyBytes: 10 })
      assert.equal(truncated, true)
      const port = server.seen.at(-1)?.remotePort ?? 0
      await eventually(() => server.closedPorts.has(port), 2_000, 'the connection closed')
    })

    it('answers with the final status after an informational one, and its reason phrase', async () => {
      const { response } = await guard.fetch(at('/early'))
      assert.equal(response.status, 202)
      assert.equal(response.statusText, 'Taken For Later')
      assert.equal(await response.text(), 'later')
    })

    it('closes a connection idle for as long as the server keeps it, and opens another when needed', async () => {
      assert.equal((await guard.fetch(at('/short-keep-alive'))).response.status, 204)
      const port = server.seen.at(-1)?.remotePort ?? 0
      await eventually(() => server.closedPorts.has(port), 2_500, 'the idle connection closed')
      assert.equal((await guard.fetch(at('/empty'))).response.status, 204)
    })

    it('connects to a checked IPv6 address, given as a literal or resolved from the host name', async () => {
      const v6 = await serve(
        { '*': (req, res) => res.writeHead(200).end(req.headers.host) },
        undefined,
        '::1',
      )
      const dns = lookupFrom({ 'v6.hooks.test': ['::1'] })
      const v6Guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['::1'] })
      try {
        for (const url of [`http://[::1]:${v6.port}/`, `http://v6.hooks.test:${v6.port}/`]) {
          const { response } = await v6Guard.fetch(url)
          assert.equal(await response.text(), new URL(url).host)
        }
        assert.equal(v6.seen.length, 2)
      } finally {
        await v6Guard.close()
        await v6.close()
      }
    })

    it('refuses a header the HTTP client will not send (expect, transfer-encoding) before sending anything', async () => {
      const before = server.seen.length
      for (const headers of [{ expect: '100-continue' }, { 'transfer-encoding': 'chunked' }])
        await assert.rejects(
          guard.fetch(at('/echo'), { method: 'POST', headers, body: 'b' }),
          (error: unknown) => {
            assert.ok(
              !(error instanceof OutboundRequestError),
              'not a failed request, which would be retried',
            )
            return true
          },
        )
      assert.equal(server.seen.length, before)
    })

    it('sends headers given as an object (names in any case), as Headers or as pairs alike', async () => {
      for (const headers of [
        { 'X-Herald-Test': 'one', 'Content-Type': 'text/plain' },
        new Headers({ 'x-herald-test': 'one', 'content-type': 'text/plain' }),
        [
          ['x-herald-test', 'one'],
          ['content-type', 'text/plain'],
        ] as [string, string][],
      ]) {
        const { response } = await guard.fetch(at('/echo'), { method: 'POST', headers, body: 'b' })
        assert.equal(response.status, 201)
        const seen = server.seen.at(-1)
        assert.equal(seen?.headers['x-herald-test'], 'one')
        assert.equal(seen?.headers['content-type'], 'text/plain')
      }
    })

    it('refuses a header value with a line break before sending anything, and not as retriable', async () => {
      const before = server.seen.length
      await assert.rejects(
        guard.fetch(at('/echo'), { method: 'POST', headers: { 'x-injected': 'a\r\nx-evil: 1' }, body: 'b' }),
        (error: unknown) => {
          assert.ok(!(error instanceof OutboundRequestError), 'not a failed request, which would be retried')
          return true
        },
      )
      assert.equal(server.seen.length, before)
    })

    it('refuses a header Fetch allows but Node will not write with Node own error, sending nothing', async () => {
      const before = server.seen.length
      await assert.rejects(
        guard.fetch(at('/echo'), { method: 'POST', headers: { 'x-control': 'a\u0001b' }, body: 'b' }),
        (error: unknown) => {
          assert.ok(!(error instanceof OutboundRequestError), 'not a failed request, which would be retried')
          assert.equal((error as { code?: unknown }).code, 'ERR_INVALID_CHAR')
          assert.equal((error as Error).name, 'TypeError')
          return true
        },
      )
      assert.equal(server.seen.length, before)
    })

    it('reports a refused connection as a retriable request failure that names no address', async () => {
      const closed = await serve({})
      const port = closed.port
      await closed.close()
      await assert.rejects(guard.fetch(`http://127.0.0.1:${port}/`), (error: unknown) => {
        assert.ok(error instanceof OutboundRequestError)
        assert.equal(error.code, 'outbound_request_failed')
        assert.equal(error.retriable, true)
        assert.equal(error.context.errorCode, 'ECONNREFUSED')
        assert.doesNotMatch(error.message, /127\.0\.0\.1|ECONNREFUSED/)
        return true
      })
    })
  })

  describe(`guardedFetch over HTTPS, ${mode}`, { skip: opensslMissing }, () => {
    let server: Awaited<ReturnType<typeof serve>>
    let cert: string
    const dns = lookupFrom({ 'herald.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] })

    before(async () => {
      const pair = selfSignedCertificate(['herald.test', '127.0.0.1'])
      cert = pair.cert
      server = await serve(
        { '*': (req, res) => res.writeHead(200).end(`hello ${req.headers.host}`) },
        { key: pair.key, cert },
      )
    })
    after(async () => {
      await server?.close()
    })

    const tlsFailure = (error: unknown) => {
      assert.ok(error instanceof OutboundRequestError, String(error))
      assert.equal(error.code, 'outbound_tls_failed')
      assert.equal(error.retriable, false)
      return true
    }

    it('verifies the certificate against the URL host name while connecting to the checked address', async () => {
      const guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['herald.test'], ca: cert })
      const { response } = await guard.fetch(`https://herald.test:${server.port}/hook`)
      assert.equal(await response.text(), `hello herald.test:${server.port}`)
      assert.equal(server.seen.at(-1)?.servername, 'herald.test')
      guard.close()
    })

    it('reuses its connections for requests in a row when an extra CA is trusted', async () => {
      const guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['herald.test'], ca: cert })
      for (let i = 0; i < 6; i++) {
        const { response } = await guard.fetch(`https://herald.test:${server.port}/hook`)
        await response.text()
      }
      // Undici gives a connection one turn of the event loop before it takes the next request
      // (a server may close it after all), so one made at once rides a second connection.
      const ports = server.seen.slice(-6).map((seen) => seen.remotePort)
      assert.ok(new Set(ports).size <= 2, `client ports ${ports.join(', ')}`)
      await guard.close()
    })

    it('gives up on a TLS handshake that never completes at the time limit, and closes its connection', async () => {
      const closed: number[] = []
      // Reads (so it sees the client close) and never answers.
      const silent = createTcpServer((socket) => {
        const port = socket.remotePort ?? 0
        socket.on('close', () => closed.push(port)).resume()
      })
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      const { port } = silent.address() as AddressInfo
      const guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['herald.test'], ca: cert })
      try {
        const started = performance.now()
        await assert.rejects(
          guard.fetch(`https://herald.test:${port}/`, { timeoutMs: 300 }),
          (error: unknown) => {
            assert.ok(error instanceof OutboundTimeoutError, String(error))
            return true
          },
        )
        const elapsed = performance.now() - started
        assert.ok(elapsed >= 290 && elapsed < 3000, `took ${elapsed} ms`)
        await eventually(() => closed.length === 1, 2_000, 'the connection closed')
      } finally {
        await guard.close()
        silent.close()
      }
    })

    it('refuses a certificate that does not name the URL host, even though the address is the same', async () => {
      const guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['other.test'], ca: cert })
      await assert.rejects(guard.fetch(`https://other.test:${server.port}/hook`), tlsFailure)
      guard.close()
    })

    it('verifies an IP-literal host against the IP addresses in the certificate', async () => {
      const guard = createOutboundGuard({ senderThread, lookup: dns, allowlist: ['127.0.0.1'], ca: cert })
      const { response } = await guard.fetch(`https://127.0.0.1:${server.port}/`)
      assert.equal(response.status, 200)
      guard.close()
    })

    it('refuses an untrusted certificate unless the call says verifyTls: false', async () => {
      const guard = createOutboundGuard({
        senderThread,
        lookup: dns,
        allowlist: ['herald.test', 'other.test'],
      })
      await assert.rejects(guard.fetch(`https://herald.test:${server.port}/`), tlsFailure)
      const { response } = await guard.fetch(`https://other.test:${server.port}/`, { verifyTls: false })
      assert.equal(await response.text(), `hello other.test:${server.port}`)
      // A verified call after an unverified one must not ride on the unverified pooled connection.
      await assert.rejects(guard.fetch(`https://other.test:${server.port}/`), tlsFailure)
      guard.close()
    })
  })
}
