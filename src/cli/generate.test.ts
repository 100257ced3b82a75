import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { textSink } from '../../test/support/text-sink.ts'
import { decodeEngineEvent } from '../events/index.ts'
import { generateActivity, SimulatedTimeError } from '../generator/index.ts'
import { runGenerate } from './generate.ts'
import { type CliDeps, type Output, parseDuration } from './io.ts'

const START = '2026-11-22T10:00:00Z'

const setup = (options: { fetch?: typeof fetch; stdout?: Output } = {}) => {
  const stdout = textSink()
  const stderr = textSink()
  let now = Date.parse('2030-01-01T00:00:00Z')
  const sleeps: number[] = []
  const deps: CliDeps = {
    stdin: (async function* () {})(),
    stdout: options.stdout ?? stdout,
    stderr,
    env: {},
    fetch:
      options.fetch ??
      (async () => {
        throw new Error('no network in this test')
      }),
    clock: () => now,
    // Time passes only when the command sleeps.
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
  }
  return { deps, stdout, stderr, sleeps }
}

const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { id: string; time: string; account: string; type: string })

describe('runGenerate', () => {
  it('prints the same NDJSON for the same seed and start, all of it valid', async () => {
    const first = setup()
    assert.equal(await runGenerate(['--seed', 'x', '--count', '300', '--start', START], first.deps), 0)
    const second = setup()
    await runGenerate(['--seed', 'x', '--count', '300', '--start', START], second.deps)
    assert.equal(first.stdout.text(), second.stdout.text())
    const events = lines(first.stdout.text())
    assert.equal(events.length, 300)
    assert.equal(events[0]?.time.slice(0, 13), '2026-11-22T10')
    for (const event of events) assert.ok(decodeEngineEvent(event).ok)
  })

  it('makes new ids for each run of one seed without --start, which Herald would drop as repeats', async () => {
    const first = setup()
    assert.equal(await runGenerate(['--seed', 'x', '--count', '50'], first.deps), 0)
    const later = setup()
    const deps = { ...later.deps, clock: () => Date.parse('2030-01-01T01:00:00Z') }
    assert.equal(await runGenerate(['--seed', 'x', '--count', '50'], deps), 0)
    const ids = new Set(lines(first.stdout.text()).map((e) => e.id))
    assert.ok(lines(later.stdout.text()).every((e) => !ids.has(e.id)))
    assert.match(
      first.stderr.text(),
      /^herald generate: --seed x --start 2030-01-01T00:00:00\.000Z makes these events again\n$/,
    )
  })

  it('without --seed draws one, and prints it with the start so the run can be repeated', async () => {
    const first = setup()
    assert.equal(await runGenerate(['--count', '50'], first.deps), 0)
    const second = setup()
    assert.equal(await runGenerate(['--count', '50'], second.deps), 0)
    assert.notEqual(first.stdout.text(), second.stdout.text())
    const again = /--seed (\S+) --start (\S+) makes these events again/.exec(first.stderr.text())
    assert.ok(again, first.stderr.text())
    const repeat = setup()
    assert.equal(
      await runGenerate(
        ['--count', '50', '--seed', again[1] as string, '--start', again[2] as string],
        repeat.deps,
      ),
      0,
    )
    assert.equal(repeat.stdout.text(), first.stdout.text())
    assert.equal(repeat.stderr.text(), '', 'nothing to say when both are given')
  })

  it('takes account names, a duration and a rate', async () => {
    const run = setup()
    const argv = [
      '--accounts',
      'red,blue',
      '--no-system',
      '--rate',
      '100',
      '--duration',
      '30s',
      '--start',
      START,
    ]
    assert.equal(await runGenerate(argv, run.deps), 0)
    const events = lines(run.stdout.text())
    assert.ok(events.length > 2_700 && events.length < 3_300, `${events.length}`)
    assert.deepEqual([...new Set(events.map((e) => e.account))].sort(), ['blue', 'red'])
    assert.ok(events.every((e) => Date.parse(e.time) <= Date.parse(START) + 30_000))
  })

  it('in real time, emits each event when its time comes', async () => {
    const run = setup()
    assert.equal(
      await runGenerate(['--count', '20', '--rate', '10', '--realtime', '--start', START], run.deps),
      0,
    )
    const events = lines(run.stdout.text())
    const simulated = Date.parse(events.at(-1)?.time as string) - Date.parse(START)
    const slept = run.sleeps.reduce((a, b) => a + b, 0)
    assert.ok(Math.abs(slept - simulated) < 5, `slept ${slept} ms for ${simulated} ms of events`)
    assert.equal(run.stdout.writes, 20, 'one write per event')
  })

  it('posts batches to Herald with --publish-url, at /v1/events under its path', async () => {
    const batches: number[] = []
    const urls = new Set<string>()
    const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const events = JSON.parse(String(init?.body)) as unknown[]
      batches.push(events.length)
      urls.add(String(url))
      return new Response(JSON.stringify({ accepted: events.length }), { status: 202 })
    }) as typeof globalThis.fetch
    const run = setup({ fetch })
    const argv = ['--count', '1100', '--publish-url', 'http://h:1/herald', '--token', 't', '--start', START]
    assert.equal(await runGenerate(argv, run.deps), 0, run.stderr.text())
    assert.deepEqual(batches, [500, 500, 100])
    assert.deepEqual([...urls], ['http://h:1/herald/v1/events'])
    assert.equal(run.stdout.text(), '')
    assert.match(run.stderr.text(), /1100 events published in 3 batches/)
  })

  it('with --publish-url keeps each request under 4 MiB, as publish does, however large --batch-size', async () => {
    const sizes: number[] = []
    let events = 0
    // Herald refuses a body over 5 MiB.
    const fetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      const body = String(init?.body)
      sizes.push(Buffer.byteLength(body))
      if (Buffer.byteLength(body) > 5 * 1024 * 1024)
        return new Response(JSON.stringify({ detail: 'the body exceeds 5242880 bytes' }), { status: 413 })
      const batch = JSON.parse(body) as unknown[]
      events += batch.length
      return new Response(JSON.stringify({ accepted: batch.length }), { status: 202 })
    }) as typeof globalThis.fetch
    const run = setup({ fetch })
    const argv = ['--count', '4000', '--batch-size', '4000', '--publish-url', 'http://h:1', '--start', START]
    assert.equal(await runGenerate(argv, run.deps), 0, run.stderr.text())
    assert.equal(events, 4_000)
    assert.ok(sizes.length > 1 && sizes.every((size) => size <= 4 * 1024 * 1024 + 2), `${sizes}`)
  })

  it('takes HERALD_TOKEN for --publish-url, and an empty one as none rather than sending a bare "Bearer "', async () => {
    const sent: (string | null)[] = []
    const fetch = (async (_url: string | URL | Request, init?: RequestInit) => {
      sent.push(new Headers(init?.headers).get('authorization'))
      const events = JSON.parse(String(init?.body)) as unknown[]
      return new Response(JSON.stringify({ accepted: events.length }), { status: 202 })
    }) as typeof globalThis.fetch
    const argv = ['--count', '1', '--publish-url', 'http://h:1', '--start', START]
    for (const token of ['from-env', '']) {
      const run = setup({ fetch })
      assert.equal(
        await runGenerate(argv, { ...run.deps, env: { HERALD_TOKEN: token } }),
        0,
        run.stderr.text(),
      )
    }
    assert.deepEqual(sent, ['Bearer from-env', null])
  })

  it('in real time, does not hold a batch while it waits for the next event', async () => {
    const sentAt: number[] = []
    let run: ReturnType<typeof setup> | undefined
    const fetch = (async () => {
      sentAt.push((run as ReturnType<typeof setup>).deps.clock?.() ?? 0)
      return new Response('{"accepted":1}', { status: 202 })
    }) as typeof globalThis.fetch
    run = setup({ fetch })
    // One event every 5 s on average: each must leave long before the next one is due.
    const argv = [
      '--seed',
      '1',
      '--count',
      '5',
      '--rate',
      '0.2',
      '--realtime',
      '--publish-url',
      'http://h:1',
      '--start',
      START,
    ]
    assert.equal(await runGenerate(argv, run.deps), 0, run.stderr.text())
    assert.ok(sentAt.length >= 4, `${sentAt.length} requests`)
  })

  it('stops quietly when stdout is closed', async () => {
    let writes = 0
    const closed: Output = {
      write(_chunk, callback) {
        writes++
        callback?.(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
        return false
      },
    }
    const run = setup({ stdout: closed })
    assert.equal(await runGenerate(['--count', '100000'], run.deps), 0)
    assert.equal(writes, 1)
  })

  it('prints help and refuses a bad command line', async () => {
    const help = setup()
    assert.equal(await runGenerate(['-h'], help.deps), 0)
    assert.match(help.stdout.text(), /usage: herald generate/)
    for (const argv of [
      ['--rate', '0'],
      ['--duration', 'forever'],
      ['--count', '-1'],
      ['--start', 'yesterday'],
      ['--accounts', ','],
      ['--accounts', 'acme,.hidden'],
      ['--publish-url', 'nope'],
    ]) {
      const run = setup()
      assert.equal(await runGenerate(argv, run.deps), 2, argv.join(' '))
      assert.match(run.stderr.text(), /usage: herald generate/)
    }
  })
})

describe('runGenerate keeps simulated time within what an event can carry', () => {
  it('refuses a run that would pass 9999-12-31T23:59:59.999Z, naming why, before printing anything', async () => {
    for (const [argv, said] of [
      [['--rate', '1e-12', '--count', '20'], /--count 20 at --rate 1e-12 spans about 633762 years/],
      [
        ['--start', '9999-12-31T23:59:59Z', '--count', '100'],
        /--start 9999-12-31T23:59:59Z and about 2 s of simulated time/,
      ],
      [['--start', '9999-12-31T23:00:00Z', '--duration', '2h'], /--duration 2h/],
    ] as const) {
      const run = setup()
      assert.equal(await runGenerate(argv, run.deps), 2, argv.join(' '))
      assert.match(
        run.stderr.text(),
        /would pass 9999-12-31T23:59:59\.999Z, the last instant an event's time can name/,
      )
      assert.match(run.stderr.text(), said)
      assert.equal(run.stdout.text(), '')
    }
  })

  it('takes a run that ends in time, every time valid', async () => {
    const run = setup()
    const argv = ['--seed', '1', '--start', '9999-12-31T23:00:00Z', '--count', '100', '--rate', '1']
    assert.equal(await runGenerate(argv, run.deps), 0, run.stderr.text())
    for (const event of lines(run.stdout.text())) assert.ok(decodeEngineEvent(event).ok, event.time)
  })

  it('stops with a clear error when the draws carry time past the end anyway', () => {
    const last = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
    assert.throws(
      () => [...generateActivity({ seed: 1, accounts: 1, rate: 1, count: 100, clock: () => last - 10_000 })],
      (error: unknown) =>
        error instanceof SimulatedTimeError &&
        /^simulated time passed 9999-12-31T23:59:59\.999Z after \d+ events$/.test(error.message),
    )
  })
})

describe('parseDuration', () => {
  it('reads units, a bare number as seconds', () => {
    assert.equal(parseDuration('250ms'), 250)
    assert.equal(parseDuration('90'), 90_000)
    assert.equal(parseDuration('1.5m'), 90_000)
    assert.equal(parseDuration('1h'), 3_600_000)
  })
})

describe('CliDeps', () => {
  it("is what src/cli.ts has at hand: the process's streams, environment and fetch", () => {
    const deps: CliDeps = {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      fetch: globalThis.fetch,
    }
    assert.equal(typeof deps.stdout.write, 'function')
  })
})
