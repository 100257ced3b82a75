import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { type AddressInfo, connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'

const ADMIN_TOKEN = 'lifecycle-admin-token-0123456789'

/** Herald's start-up, signals and shutdown, on real `herald start` processes. */
describe('herald start: start-up and shutdown of the process', () => {
  const dirs: string[] = []
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-lifecycle-'))
    dirs.push(dir)
    return dir
  }
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('a client still sending a request body does not hold up the shutdown: its connection is dropped after the grace, the consumers stop and Herald exits 0', async () => {
    const herald = await startHeraldProcess({
      HERALD_DATA_DIR: dataDir(),
      HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
      // Grace for requests in flight: a quarter of it, 2 s.
      HERALD_SHUTDOWN_TIMEOUT_MS: '8000',
    })
    const { hostname, port } = new URL(herald.url)
    const socket = connect(Number(port), hostname)
    await once(socket, 'connect')
    socket.on('error', () => {})
    socket.write(
      'POST /v1/events HTTP/1.1\r\nHost: herald\r\n' +
        `Authorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/cloudevents+json\r\n` +
        'Content-Length: 100000\r\n\r\n{',
    )
    const drip = setInterval(() => socket.write(' '), 200)
    const closed = once(socket, 'close')
    try {
      await new Promise((resolve) => setTimeout(resolve, 300))
      const sent = Date.now()
      const code = await herald.stop('SIGTERM')
      const took = Date.now() - sent
      const events = herald.lines.map((line) => line.event)
      assert.equal(code, 0, JSON.stringify(events))
      assert.ok(took < 7000, `stopped after ${took} ms`)
      const dropped = herald.lines.find((line) => line.event === 'http.connections_dropped')
      assert.deepEqual(
        { connections: dropped?.connections, grace_ms: dropped?.grace_ms },
        { connections: 1, grace_ms: 2000 },
      )
      assert.ok(events.includes('herald.stopped'))
      assert.ok(!events.includes('herald.shutdown_timeout'))
      await closed
    } finally {
      clearInterval(drip)
      socket.destroy()
    }
  })

  it('SIGTERM to `npm start` reaches Herald, which stops gracefully, leaving no process behind', async () => {
    const dir = dataDir()
    const herald = await startHeraldProcess(
      { HERALD_DATA_DIR: dir, HERALD_ADMIN_TOKEN: ADMIN_TOKEN },
      60_000,
      { npm: true },
    )
    const pid = Number(readFileSync(join(dir, 'herald.pid'), 'utf8'))
    assert.notEqual(pid, herald.child.pid, 'npm runs Herald as a process of its own')
    try {
      await herald.stop('SIGTERM')
      await eventually(() => assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }), {
        timeoutMs: 10_000,
      })
      const events = herald.lines.map((line) => line.event)
      assert.ok(events.includes('herald.signal'), JSON.stringify(events))
      assert.ok(events.includes('herald.stopped'), JSON.stringify(events))
    } finally {
      // An orphan would keep the port, the data directory's lock and this test's output pipe.
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  })

  it('a signal during start-up is logged, stops what had started and exits 0, leaving the data directory free', async () => {
    const dir = dataDir()
    const herald = await startHeraldProcess(
      { HERALD_DATA_DIR: dir, HERALD_ADMIN_TOKEN: ADMIN_TOKEN },
      60_000,
      {
        until: 'warehouse.migrations.applying',
      },
    )
    const code = await herald.stop('SIGTERM')
    const events = herald.lines.map((line) => line.event)
    assert.equal(code, 0, JSON.stringify(events))
    const signal = herald.lines.find((line) => line.event === 'herald.signal')
    assert.deepEqual([signal?.signal, signal?.during], ['SIGTERM', 'start-up'])
    assert.ok(events.includes('herald.start_abandoned'), JSON.stringify(events))
    assert.ok(!events.includes('herald.started'))
    assert.ok(!existsSync(join(dir, 'herald.pid')), 'the data directory’s lock is released')
  })

  for (const [signal, kind] of [
    ['SIGUSR2', 'unhandled_rejection'],
    ['SIGHUP', 'uncaught_exception'],
  ] as const) {
    it(`a failure nothing caught (${kind}) is one structured fatal line, free of secrets, then Herald stops and exits 1`, async () => {
      const dir = dataDir()
      // Loaded into Herald's own process: fails as asked, naming the admin token and a URL's password.
      const failing = join(dir, 'fail-on-signal.mjs')
      writeFileSync(
        failing,
        `const text = 'broke talking to http://user:url-pass@host:1 with ' + process.env.HERALD_ADMIN_TOKEN
process.on('SIGUSR2', () => { Promise.reject(new Error(text)) })
process.on('SIGHUP', () => { throw new Error(text) })
`,
      )
      const herald = await startHeraldProcess({
        HERALD_DATA_DIR: dir,
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        NODE_OPTIONS: `--import=${failing}`,
      })
      let stderr = ''
      herald.child.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      const code = await herald.stop(signal)
      assert.equal(code, 1)
      const crashed = herald.lines.filter((line) => line.event === 'herald.crashed')
      assert.deepEqual(
        crashed.map((line) => ({ level: line.level, kind: line.kind, error: line.error })),
        [{ level: 'fatal', kind, error: 'broke talking to http://[redacted]@host:1 with [redacted]' }],
      )
      // Then stopped as on a signal: the consumers committed, the ports closed.
      const events = herald.lines.map((line) => line.event)
      assert.ok(events.indexOf('herald.stopped') > events.indexOf('herald.crashed'), JSON.stringify(events))
      assert.doesNotMatch(JSON.stringify(herald.lines) + stderr, new RegExp(`${ADMIN_TOKEN}|url-pass`))
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace')
    })
  }

  describe('with a chDB statement running on another thread, which nothing interrupts', () => {
    /**
     * Starts Herald with a module loaded into its process that, on SIGUSR2, runs a statement
     * of about 5 minutes on a worker thread of its own, through the warehouse's engine (the
     * projector's thread under load), and resolves once it runs.
     */
    const startBusy = async (env: Record<string, string>) => {
      const dir = dataDir()
      const busy = join(dir, 'busy-chdb.mjs')
      writeFileSync(
        busy,
        `import { writeSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
const thread = \`
const { parentPort, workerData } = require('node:worker_threads')
const { Session } = require(workerData.chdb)
const session = new Session(workerData.path)
parentPort.postMessage('running')
session.queryAsync('SELECT sleepEachRow(0.5) FROM numbers(600) SETTINGS max_block_size = 1')
\`
process.on('SIGUSR2', () => {
  const worker = new Worker(thread, { eval: true, workerData: ${JSON.stringify({
    chdb: createRequire(import.meta.url).resolve('chdb'),
    path: join(dir, 'warehouse'),
  })} })
  worker.on('message', () => writeSync(1, '{"event":"test.chdb_statement_running"}\\n'))
})
`,
      )
      const herald = await startHeraldProcess({
        HERALD_DATA_DIR: dir,
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        NODE_OPTIONS: `--import=${busy}`,
        ...env,
      })
      herald.child.kill('SIGUSR2')
      await eventually(() =>
        assert.ok(herald.lines.some((line) => line.event === 'test.chdb_statement_running')),
      )
      return herald
    }
    /** How `herald` ended, or `undefined` if it still ran `withinMs` from now (then it is killed). */
    const endOf = async (herald: HeraldProcess, withinMs: number) => {
      let timer: NodeJS.Timeout | undefined
      const ended = await Promise.race([
        // Once its output is read to the end, the last line included.
        once(herald.child, 'close').then(() => ({
          code: herald.child.exitCode,
          signal: herald.child.signalCode,
        })),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), withinMs)
        }),
      ])
      clearTimeout(timer)
      if (ended === undefined) herald.child.kill('SIGKILL')
      return ended
    }

    it('a second signal ends Herald at once, killed (SIGKILL, exit status 137), its forced_exit line written', async () => {
      const herald = await startBusy({})
      herald.child.kill('SIGTERM')
      await eventually(() => assert.ok(herald.lines.some((line) => line.event === 'herald.signal')))
      const sent = Date.now()
      herald.child.kill('SIGINT')
      const ended = await endOf(herald, 10_000)
      const events = herald.lines.map((line) => line.event)
      assert.deepEqual(ended, { code: null, signal: 'SIGKILL' }, JSON.stringify(events))
      assert.ok(Date.now() - sent < 5_000, `ended after ${Date.now() - sent} ms`)
      assert.equal(events.at(-1), 'herald.forced_exit', JSON.stringify(events))
    })

    it('a shutdown past shutdown_timeout_ms ends Herald when its time is up, killed, its shutdown_timeout line written', async () => {
      const herald = await startBusy({ HERALD_SHUTDOWN_TIMEOUT_MS: '3000' })
      const sent = Date.now()
      herald.child.kill('SIGTERM')
      const ended = await endOf(herald, 13_000)
      const took = Date.now() - sent
      const events = herald.lines.map((line) => line.event)
      assert.deepEqual(ended, { code: null, signal: 'SIGKILL' }, JSON.stringify(events))
      assert.ok(took >= 3_000 && took < 8_000, `ended after ${took} ms`)
      assert.equal(events.at(-1), 'herald.shutdown_timeout', JSON.stringify(events))
    })
  })

  it('a start-up failure whose error quotes a configured secret is logged and told without it', async () => {
    const dir = dataDir()
    // Loaded into Herald's own process: its port refuses to listen, naming the admin token.
    const failing = join(dir, 'fail-listen.mjs')
    writeFileSync(
      failing,
      `import { Server } from 'node:net'
Server.prototype.listen = function () {
  process.nextTick(() => this.emit('error', new Error('cannot listen for http://user:url-pass@host:1 with ' + process.env.HERALD_ADMIN_TOKEN)))
  return this
}
`,
    )
    const herald = await startHeraldProcess(
      { HERALD_DATA_DIR: dir, HERALD_ADMIN_TOKEN: ADMIN_TOKEN, NODE_OPTIONS: `--import=${failing}` },
      60_000,
      { until: 'herald.start_failed' },
    )
    let stderr = ''
    herald.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    assert.equal(await herald.exited, 1)
    assert.equal(
      herald.lines.find((line) => line.event === 'herald.start_failed')?.error,
      'cannot listen for http://[redacted]@host:1 with [redacted]',
    )
    assert.doesNotMatch(JSON.stringify(herald.lines) + stderr, new RegExp(`${ADMIN_TOKEN}|url-pass`))
  })

  it('a port in use fails the start-up before migrations run or consumers start', async () => {
    const taken = createServer()
    taken.listen(0, '127.0.0.1')
    await once(taken, 'listening')
    try {
      const { port } = taken.address() as AddressInfo
      const herald = await startHeraldProcess(
        { HERALD_DATA_DIR: dataDir(), HERALD_ADMIN_TOKEN: ADMIN_TOKEN, HERALD_PORT: String(port) },
        60_000,
        { until: 'herald.start_failed' },
      )
      assert.equal(await herald.exited, 1)
      const events = herald.lines.map((line) => line.event)
      assert.match(String(herald.lines.at(-1)?.error), /EADDRINUSE/)
      for (const later of [
        'warehouse.migrations.applying',
        'router.processed_ids_opened',
        'reports.metrics_recorded',
      ])
        assert.ok(
          !events.includes(later),
          `${later} before the port was found taken: ${JSON.stringify(events)}`,
        )
    } finally {
      taken.close()
    }
  })

  it('answers on its port while it starts: alive, not ready, and 503 with Retry-After to the API', async () => {
    const free = createServer()
    free.listen(0, '127.0.0.1')
    await once(free, 'listening')
    const { port } = free.address() as AddressInfo
    free.close()
    await once(free, 'close')
    // Start-up waits on a Kafka broker that is not there, so it is still starting when asked.
    const herald = await startHeraldProcess(
      {
        HERALD_DATA_DIR: dataDir(),
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_PORT: String(port),
        HERALD_EVENT_LOG__KIND: 'kafka',
        HERALD_EVENT_LOG__KAFKA__BROKERS: `127.0.0.1:${port}`,
      },
      60_000,
      { until: 'warehouse.migrations.done' },
    )
    try {
      const url = `http://127.0.0.1:${port}`
      const ready = await fetch(`${url}/ready`)
      assert.deepEqual([ready.status, await ready.json()], [503, { status: 'starting', checks: {} }])
      const health = await fetch(`${url}/health`)
      assert.deepEqual([health.status, await health.json()], [200, { status: 'starting' }])
      const events = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
      assert.equal(events.status, 503)
      assert.equal(events.headers.get('retry-after'), '1')
      assert.equal(((await events.json()) as { code?: string }).code, 'starting')
    } finally {
      assert.equal(await herald.stop('SIGTERM'), 0)
    }
  })

  for (const [content, issue] of [
    ['', 'too short: must be at least 16 characters'],
    ['short\n', 'too short: must be at least 16 characters'],
    ['two words of a token\n', 'must not contain whitespace'],
  ] as const) {
    it(`refuses to start with ${JSON.stringify(content)} in data_dir/admin-token, naming the file, as it refuses such a HERALD_ADMIN_TOKEN`, async () => {
      const dir = dataDir()
      const file = join(dir, 'admin-token')
      writeFileSync(file, content, { mode: 0o600 })
      const herald = await startHeraldProcess({ HERALD_DATA_DIR: dir }, 60_000, {
        until: 'herald.start_failed',
      })
      assert.equal(await herald.exited, 1)
      const failed = String(herald.lines.at(-1)?.error)
      assert.ok(failed.includes(`${file}: the admin token in this file ${issue}`), failed)
      const events = herald.lines.map((line) => line.event)
      assert.ok(!events.includes('warehouse.migrations.applying'), JSON.stringify(events))
    })
  }

  it('with require_auth false, warns at start that anonymous requests act as the admin, naming the address it listens on', async () => {
    const herald = await startHeraldProcess({ HERALD_DATA_DIR: dataDir(), HERALD_REQUIRE_AUTH: 'false' })
    try {
      const warning = herald.lines.find((line) => line.event === 'auth.not_required')
      assert.equal(warning?.level, 'warn', JSON.stringify(herald.lines.map((line) => line.event)))
      assert.equal(warning?.url, herald.url)
      assert.equal(warning?.listen, '127.0.0.1')
      assert.match(String(warning?.hint), /without a token .* as the admin/)
      const anonymous = await fetch(`${herald.url}/v1/audit`)
      assert.equal(anonymous.status, 200)
    } finally {
      assert.equal(await herald.stop('SIGTERM'), 0)
    }
    // Required (the default): no such line.
    const required = await startHeraldProcess({ HERALD_DATA_DIR: dataDir(), HERALD_ADMIN_TOKEN: ADMIN_TOKEN })
    try {
      assert.ok(!required.lines.some((line) => line.event === 'auth.not_required'))
    } finally {
      assert.equal(await required.stop('SIGTERM'), 0)
    }
  })

  it('creates its data directory and files for its own user only, and warns of a key or token file others can read, naming it and its mode', async () => {
    const fresh = join(dataDir(), 'new', 'data')
    const first = await startHeraldProcess({ HERALD_DATA_DIR: fresh })
    try {
      assert.ok(!first.lines.some((line) => line.event === 'herald.file_mode_too_open'))
    } finally {
      assert.equal(await first.stop('SIGTERM'), 0)
    }
    assert.equal(statSync(fresh).mode & 0o777, 0o700)
    for (const name of [
      'eventstore.sqlite',
      'eventlog.sqlite',
      'deliveries.sqlite',
      'secret.key',
      'admin-token',
    ])
      assert.equal(
        statSync(join(fresh, name)).mode & 0o077,
        0,
        `${name} is ${(statSync(join(fresh, name)).mode & 0o777).toString(8)}`,
      )

    // Restored from a backup as 0644 (and 0640): used, with a warning each.
    const dir = dataDir()
    writeFileSync(join(dir, 'secret.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o644 })
    writeFileSync(join(dir, 'admin-token'), `${ADMIN_TOKEN}\n`, { mode: 0o640 })
    chmodSync(join(dir, 'secret.key'), 0o644)
    chmodSync(join(dir, 'admin-token'), 0o640)
    const herald = await startHeraldProcess({ HERALD_DATA_DIR: dir })
    try {
      const warnings = herald.lines.filter((line) => line.event === 'herald.file_mode_too_open')
      assert.deepEqual(warnings.map((line) => [line.level, line.file, line.mode]).sort(), [
        ['warn', join(dir, 'admin-token'), '0640'],
        ['warn', join(dir, 'secret.key'), '0644'],
      ])
      assert.match(String(warnings[0]?.hint), /chmod 600/)
      const audit = await fetch(`${herald.url}/v1/audit`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
      assert.equal(audit.status, 200)
    } finally {
      assert.equal(await herald.stop('SIGTERM'), 0)
    }
  })

  it('log_level reaches kafkajs: at debug its own debug lines are logged', async () => {
    const free = createServer()
    free.listen(0, '127.0.0.1')
    await once(free, 'listening')
    const { port } = free.address() as AddressInfo
    free.close()
    await once(free, 'close')
    const herald = await startHeraldProcess(
      {
        HERALD_DATA_DIR: dataDir(),
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_LOG_LEVEL: 'debug',
        HERALD_EVENT_LOG__KIND: 'kafka',
        HERALD_EVENT_LOG__KAFKA__BROKERS: `127.0.0.1:${port}`,
      },
      60_000,
      // kafkajs's first error: it has tried to connect by then.
      { until: 'kafka_event_log.client' },
    )
    try {
      await eventually(() =>
        assert.ok(
          herald.lines.some((line) => line.event === 'kafka_event_log.client' && line.level === 'debug'),
          JSON.stringify(herald.lines.filter((line) => line.event === 'kafka_event_log.client')),
        ),
      )
    } finally {
      await herald.stop('SIGKILL')
    }
  })
})
