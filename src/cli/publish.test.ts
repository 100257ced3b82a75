import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { type StandInRequest, startHttpStandIn } from '../../test/support/http-stand-in.ts'
import { textSink } from '../../test/support/text-sink.ts'
import { createKafkaEventLog, type KafkaEventLogOptions } from '../adapters/kafka-event-log/index.ts'
import type { EngineEvent } from '../events/index.ts'
import { generateActivity } from '../generator/index.ts'
import { toBatches } from './batches.ts'
import { parseEventInput } from './input.ts'
import type { CliDeps } from './io.ts'
import { createJsonValueScanner } from './json-values.ts'
import { runPublish } from './publish.ts'

interface Recorded {
  readonly url: string
  readonly headers: Headers
  readonly events: { id: string; account: string }[]
}

/**
 * Herald's ingest endpoint as the CLI sees it: answers with the statuses given, in order,
 * then 202 with the batch's count.
 */
const herald = (
  statuses: { status: number; body?: unknown; headers?: Record<string, string> }[] = [],
  // What GET /v1/auth/whoami answers: by default 404, as a Herald without it.
  whoami: { status: number; body?: unknown } = { status: 404 },
) => {
  const requests: Recorded[] = []
  const asked: string[] = []
  const fetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (init?.method === 'GET') {
      asked.push(String(input))
      return new Response(JSON.stringify(whoami.body ?? {}), { status: whoami.status })
    }
    const events = JSON.parse(String(init?.body)) as Recorded['events']
    requests.push({ url: String(input), headers: new Headers(init?.headers), events })
    const scripted = statuses.shift()
    if (scripted !== undefined) {
      return new Response(JSON.stringify(scripted.body ?? {}), {
        status: scripted.status,
        headers: scripted.headers ?? {},
      })
    }
    return new Response(JSON.stringify({ accepted: events.length, ids: events.map((e) => e.id) }), {
      status: 202,
    })
  }) as typeof globalThis.fetch
  return { fetch, requests, asked }
}

/** The stand-in's requests that send events, not the token's check before them. */
const posts = (request: StandInRequest) => request.method === 'POST'

const events = (count: number, seed = 1): EngineEvent[] => [
  ...generateActivity({ seed, accounts: 2, count, clock: () => Date.UTC(2026, 10, 22) }),
]
const ndjson = (list: readonly unknown[]) => list.map((e) => `${JSON.stringify(e)}\n`).join('')

const deps = (input: string, fetch: typeof globalThis.fetch, env: Record<string, string> = {}) => {
  const stdout = textSink()
  const stderr = textSink()
  const sleeps: number[] = []
  // Time passes only when the command sleeps.
  let now = Date.UTC(2026, 10, 22)
  const value: CliDeps = {
    stdin: (async function* () {
      yield new TextEncoder().encode(input)
    })(),
    stdout,
    stderr,
    env,
    fetch,
    clock: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
    readFile: (path) =>
      (async function* () {
        if (path !== 'events.json') throw new Error(`ENOENT: no such file, open '${path}'`)
        yield input
      })(),
  }
  return { deps: value, stdout, stderr, sleeps }
}

describe('parseEventInput', () => {
  const [a, b] = events(2)
  it('reads NDJSON, a JSON array, and one (pretty-printed) object', () => {
    assert.deepEqual(
      parseEventInput(`${JSON.stringify(a)}\n\n${JSON.stringify(b)}\n`).records.map((r) => r.where),
      ['line 1', 'line 3'],
    )
    assert.deepEqual(
      parseEventInput(JSON.stringify([a, b], null, 2)).records.map((r) => r.where),
      ['[0]', '[1]'],
    )
    assert.deepEqual(parseEventInput(JSON.stringify(a, null, 2)).records, [{ where: 'line 1', value: a }])
    assert.deepEqual(parseEventInput('  \n').records, [])
  })

  it('reads NDJSON that starts with a byte-order mark from its first line', () => {
    const parsed = parseEventInput(`\uFEFF${JSON.stringify(a)}\n${JSON.stringify(b)}\n`)
    assert.deepEqual(parsed.problems, [])
    assert.deepEqual(
      parsed.records.map((r) => r.where),
      ['line 1', 'line 2'],
    )
    assert.deepEqual(parseEventInput(`\uFEFF${JSON.stringify([a])}`).records, [{ where: '[0]', value: a }])
  })

  it('reads events one after another, each pretty-printed (jq . output), naming the line each begins on', () => {
    const [c] = events(3).slice(2)
    const text = [a, b, c].map((e) => `${JSON.stringify(e, null, 2)}\n`).join('')
    const parsed = parseEventInput(text)
    assert.deepEqual(parsed.problems, [])
    const lines = JSON.stringify(a, null, 2).split('\n').length
    assert.deepEqual(
      parsed.records.map((r) => r.where),
      ['line 1', `line ${lines + 1}`, `line ${lines + 1 + JSON.stringify(b, null, 2).split('\n').length}`],
    )
    assert.deepEqual(
      parsed.records.map((r) => r.value),
      [a, b, c],
    )
    // Also with nothing between them, or on one line.
    assert.equal(parseEventInput(`${JSON.stringify(a)}${JSON.stringify(b)}`).records.length, 2)
  })

  it('reads the same values whatever the chunks the text comes in', () => {
    const text = `${JSON.stringify({ ...a, subject: 'a "quoted" {brace} [and] \\ back' }, null, 2)}\n${JSON.stringify(b)}\n`
    const whole = parseEventInput(text)
    for (let cut = 0; cut <= text.length; cut += 7) {
      const scanner = createJsonValueScanner()
      const read = [...scanner.push(text.slice(0, cut)), ...scanner.push(text.slice(cut)), ...scanner.end()]
      assert.deepEqual(
        read.map((r) => ('value' in r ? r.value : r)),
        whole.records.map((r) => r.value),
        `cut at ${cut}`,
      )
    }
  })

  it('names a value left open, text after an array, and an array not closed', () => {
    assert.deepEqual(
      parseEventInput(`{"id": "a",\n  "x": 1\n${JSON.stringify(a)}\n`).problems.map((p) => [
        p.where,
        p.issues[0]?.message,
      ]),
      [['line 1', 'not JSON: it ends at line 2 without closing all its brackets']],
    )
    assert.deepEqual(
      parseEventInput(`{"id": "a\n${JSON.stringify(a)}\n`).problems.map((p) => [
        p.where,
        p.issues[0]?.message,
      ]),
      [['line 1', 'not JSON: line 1 ends inside a string']],
    )
    assert.deepEqual(
      parseEventInput(`[${JSON.stringify(a)}]\n{}`).problems.map((p) => [p.where, p.issues[0]?.message]),
      [['line 2', 'text after the JSON array that holds the events']],
    )
    const open = parseEventInput(`[${JSON.stringify(a)},\n${JSON.stringify(b)}\n`)
    assert.equal(open.records.length, 2)
    assert.deepEqual(
      open.problems.map((p) => [p.where, p.issues[0]?.message]),
      [['line 3', 'the JSON array is not closed']],
    )
    assert.deepEqual(
      parseEventInput(`[${JSON.stringify(a)}, {oops}]`).problems.map((p) => p.where),
      ['[1]'],
    )
  })

  it('names the lines that are not JSON', () => {
    const parsed = parseEventInput(`${JSON.stringify(a)}\n{oops\n${JSON.stringify(b)}\n`)
    assert.equal(parsed.records.length, 2)
    assert.equal(parsed.problems[0]?.where, 'line 2')
  })
})

describe('toBatches', () => {
  it('cuts by count', () => {
    assert.deepEqual(
      toBatches(events(7), 3).map((b) => b.length),
      [3, 3, 1],
    )
  })
})

describe('runPublish over HTTP', () => {
  it('sends every event in batches, with the token, and reports the count', async () => {
    const list = events(1_200)
    const server = herald()
    const run = deps(ndjson(list), server.fetch, { HERALD_TOKEN: 'secret' })
    const status = await runPublish(['--url', 'http://herald.test:8228'], run.deps)
    assert.equal(status, 0, run.stderr.text())
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [500, 500, 200],
    )
    assert.equal(server.requests[0]?.url, 'http://herald.test:8228/v1/events')
    assert.equal(server.requests[0]?.headers.get('authorization'), 'Bearer secret')
    assert.equal(server.requests[0]?.headers.get('content-type'), 'application/cloudevents-batch+json')
    assert.deepEqual(
      server.requests.flatMap((r) => r.events.map((e) => e.id)),
      list.map((e) => e.id),
    )
    assert.match(run.stderr.text(), /1200 events published in 3 batches/)
  })

  it('reads a file, takes HERALD_URL, and --token over HERALD_TOKEN', async () => {
    const server = herald()
    const run = deps(JSON.stringify(events(3)), server.fetch, {
      HERALD_URL: 'http://h:1/v1/events',
      HERALD_TOKEN: 'env',
    })
    assert.equal(
      await runPublish(['--file', 'events.json', '--token', 'flag', '--batch-size', '2'], run.deps),
      0,
    )
    assert.equal(server.requests.length, 2)
    assert.equal(server.requests[0]?.url, 'http://h:1/v1/events')
    assert.equal(server.requests[0]?.headers.get('authorization'), 'Bearer flag')
  })

  it('posts to /v1/events under the path of a base URL behind a path prefix', async () => {
    const server = herald()
    const run = deps(ndjson(events(1)), server.fetch)
    assert.equal(await runPublish(['--url', 'https://gateway.test/herald'], run.deps), 0, run.stderr.text())
    assert.deepEqual(
      server.requests.map((r) => r.url),
      ['https://gateway.test/herald/v1/events'],
    )
  })

  it('sends events pretty-printed one after another (jq . output), each as it is', async () => {
    const list = events(3)
    const server = herald()
    const run = deps(list.map((e) => `${JSON.stringify(e, null, 2)}\n`).join(''), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 0, run.stderr.text())
    assert.deepEqual(
      server.requests.flatMap((r) => r.events),
      list,
    )
    assert.match(run.stderr.text(), /3 events published in 1 batches/)
  })

  it('sends nothing when any event is invalid, naming each problem by line', async () => {
    const [a, b, c] = events(3)
    const input = ndjson([
      a,
      { ...b, level: 'loud', data: { ...(b?.data as object), digest: 42 } },
      { ...c, type: 'x.y' },
    ])
    const server = herald()
    const run = deps(`${input}not json\n`, server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 1)
    assert.equal(server.requests.length, 0)
    const report = run.stderr.text()
    assert.match(report, /3 of 4 events are invalid/)
    assert.match(report, /line 2: level: must be one of info, warning, error/)
    assert.match(report, /line 3: type: unknown event type "x\.y"/)
    assert.match(report, /line 4: \(line\): not JSON/)
    assert.match(report, /nothing was sent; --skip-invalid sends the 1 valid events/)
  })

  it('sends nothing when an event is larger than a request Herald takes (5 MiB), naming it', async () => {
    const [a, b, c] = events(3)
    const big = { ...b, subject: 'x'.repeat(5 * 1024 * 1024) }
    const server = herald()
    const run = deps(ndjson([a, big, c]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--batch-size', '1'], run.deps), 1)
    assert.equal(server.requests.length, 0)
    const size = Buffer.byteLength(JSON.stringify(big))
    assert.match(
      run.stderr.text(),
      new RegExp(
        `1 of 3 events are invalid:\\n  line 2: \\(event\\): is ${size} bytes as JSON, more than one request to Herald holds \\(5242880 bytes\\)`,
      ),
    )
    assert.match(run.stderr.text(), /nothing was sent; --skip-invalid sends the 2 valid events/)
  })

  it('says what a token for another account finds only as it sends: how many were published', async () => {
    const [a, b, c] = events(3)
    const problem = {
      detail: 'this token may publish events for its own account only',
      errors: [{ path: '[0].account', message: 'must be acme' }],
    }
    const server = herald([
      { status: 202, body: { accepted: 1 } },
      { status: 403, body: problem },
    ])
    const run = deps(ndjson([a, { ...b, account: 'globex' }, c]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--batch-size', '1'], run.deps), 1)
    assert.match(
      run.stderr.text(),
      /batch 2 of 3 failed: Herald answered 403: this token may publish events for its own account only/,
    )
    assert.match(run.stderr.text(), /1 events were published before it; the rest were not sent/)
  })

  it("checks the token before it sends: one that may not send every event's account sends nothing", async () => {
    const [a, b, c] = events(3)
    const input = ndjson([
      { ...a, account: 'acme' },
      { ...b, account: 'globex' },
      { ...c, account: 'globex' },
    ])
    const readWrite = herald([], {
      status: 200,
      body: { account: 'acme', role: 'read-write', token_id: 'x' },
    })
    const refused = deps(input, readWrite.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1/', '--token', 'hrld_t'], refused.deps), 1)
    assert.deepEqual(readWrite.asked, ['http://h:1/v1/auth/whoami'])
    assert.equal(readWrite.requests.length, 0)
    assert.match(
      refused.stderr.text(),
      /the token is acme's read-write token, which may publish only acme's events; 2 events are of other accounts: globex \(2\)\nnothing was sent/,
    )

    const readOnly = herald([], { status: 200, body: { account: 'acme', role: 'read-only', token_id: 'x' } })
    const reader = deps(ndjson([{ ...a, account: 'acme' }]), readOnly.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--token', 'hrld_t'], reader.deps), 1)
    assert.equal(readOnly.requests.length, 0)
    assert.match(reader.stderr.text(), /the token is acme's read-only token, which may not publish events/)

    const unknown = herald([], { status: 401, body: { detail: 'invalid or revoked token' } })
    const stranger = deps(input, unknown.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--token', 'hrld_t'], stranger.deps), 1)
    assert.equal(unknown.requests.length, 0)
    assert.match(
      stranger.stderr.text(),
      /the token is refused: Herald answered 401: invalid or revoked token/,
    )
    assert.ok(!stranger.stderr.text().includes('hrld_t'))

    // An admin token, or one whose account every event is of, sends them.
    const admin = herald([], {
      status: 200,
      body: { account: 'admin', role: 'admin', token_id: 'admin_token' },
    })
    assert.equal(await runPublish(['--url', 'http://h:1'], deps(input, admin.fetch).deps), 0)
    assert.equal(admin.requests.flatMap((r) => r.events).length, 3)
    const own = herald([], { status: 200, body: { account: 'globex', role: 'read-write', token_id: 'x' } })
    const mine = ndjson([b, c].map((e) => ({ ...e, account: 'globex' })))
    assert.equal(await runPublish(['--url', 'http://h:1'], deps(mine, own.fetch).deps), 0)
    assert.equal(own.requests.flatMap((r) => r.events).length, 2)
  })

  it('with --skip-invalid sends the valid ones and still fails', async () => {
    const [a, b] = events(2)
    const server = herald()
    const run = deps(JSON.stringify([a, { ...b, account: '' }]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--skip-invalid'], run.deps), 1)
    assert.deepEqual(
      server.requests.flatMap((r) => r.events.map((e) => e.id)),
      [a?.id],
    )
    assert.match(run.stderr.text(), /\[1\]: account: must be an account name: 1-128 ASCII letters/)
  })

  it('flags a repeated id, which Herald would refuse in one batch', async () => {
    const [a] = events(1)
    const run = deps(ndjson([a, a]), herald().fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 1)
    assert.match(run.stderr.text(), /line 2: id: repeats the account, source and id of line 1/)
  })

  it('sends events of one source and id for two accounts, which Herald tells apart', async () => {
    const [a] = events(1)
    assert.ok(a !== undefined)
    const other = { ...a, account: a.account === 'globex' ? 'acme' : 'globex' }
    const server = herald()
    const run = deps(ndjson([a, other]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 0, run.stderr.text())
    assert.deepEqual(
      server.requests.flatMap((r) => r.events.map((e) => e.account)),
      [a.account, other.account],
    )
  })

  it('retries overload with back-off, honouring Retry-After', async () => {
    const server = herald([{ status: 503 }, { status: 429, headers: { 'retry-after': '2' } }])
    const run = deps(ndjson(events(5)), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 0, run.stderr.text())
    assert.equal(server.requests.length, 3)
    assert.deepEqual(run.sleeps, [250, 2_000])
  })

  it("stops at a refused batch and shows Herald's problem details", async () => {
    const problem = {
      detail: 'the request holds invalid events',
      errors: [{ path: '[0].account', message: 'must be acme' }],
    }
    const server = herald([
      { status: 202, body: { accepted: 2 } },
      { status: 400, body: problem },
    ])
    const run = deps(ndjson(events(6)), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--batch-size', '2'], run.deps), 1)
    assert.equal(server.requests.length, 2)
    const report = run.stderr.text()
    assert.match(report, /batch 2 of 3 failed: Herald answered 400: the request holds invalid events/)
    assert.match(report, /\[0\]\.account: must be acme/)
    assert.match(report, /2 events were published before it/)
  })

  it('gives up on an unreachable Herald after its attempts', async () => {
    const fetch = (async () => {
      throw new TypeError('fetch failed')
    }) as typeof globalThis.fetch
    const run = deps(ndjson(events(1)), fetch)
    assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 1)
    assert.match(
      run.stderr.text(),
      /cannot reach http:\/\/h:1\/v1\/events: fetch failed; gave up after 17 attempts over 60 s \(--retry-for 60 s\)/,
    )
  })

  it('rides out a Herald restarting: retries 503s for --retry-for (default 60 s), a line for each', async () => {
    const server = await startHttpStandIn((request) =>
      posts(request)
        ? { status: 202, body: { accepted: (JSON.parse(request.body) as unknown[]).length } }
        : { status: 404 },
    )
    try {
      server.failNext({ status: 503, body: { detail: 'starting' } }, 8, posts)
      const run = deps(ndjson(events(3)), globalThis.fetch)
      assert.equal(await runPublish(['--url', server.url('')], run.deps), 0, run.stderr.text())
      assert.equal(server.requests.filter(posts).length, 9)
      assert.deepEqual(run.sleeps, [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000, 5_000])
      const retries = run.stderr
        .text()
        .match(/Herald answered 503; retrying in \d+ ms \(for up to [\d.]+ s more\)/g)
      assert.equal(retries?.length, 8)
      assert.match(run.stderr.text(), /retrying in 250 ms \(for up to 59\.8 s more\)/)
      assert.match(run.stderr.text(), /3 events published in 1 batches/)
    } finally {
      await server.close()
    }
  })

  it('gives up on an unreachable Herald once --retry-for has passed, saying after how long', async () => {
    const server = await startHttpStandIn(() => ({ status: 202 }))
    await server.close()
    const run = deps(ndjson(events(1)), globalThis.fetch)
    assert.equal(await runPublish(['--url', server.url(''), '--retry-for', '10s'], run.deps), 1)
    assert.deepEqual(run.sleeps, [250, 500, 1_000, 2_000, 4_000, 2_250])
    assert.match(
      run.stderr.text(),
      /batch 1 of 1 failed: cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/events: fetch failed; gave up after 7 attempts over 10 s \(--retry-for 10 s\)/,
    )
  })

  it('abandons a request Herald does not answer within --timeout, and retries it', async () => {
    const server = await startHttpStandIn((request) =>
      posts(request)
        ? { status: 202, body: { accepted: (JSON.parse(request.body) as unknown[]).length } }
        : { status: 404 },
    )
    try {
      server.hangNext(1, posts)
      const run = deps(ndjson(events(2)), globalThis.fetch)
      const started = performance.now()
      assert.equal(
        await runPublish(['--url', server.url(''), '--timeout', '200ms'], run.deps),
        0,
        run.stderr.text(),
      )
      assert.ok(performance.now() - started < 5_000)
      assert.equal(server.requests.filter(posts).length, 2)
      assert.match(
        run.stderr.text(),
        /cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/events: no answer within 0\.2 s \(--timeout\); retrying in 250 ms/,
      )
      server.hangNext(1, posts)
      const once = deps(ndjson(events(2)), globalThis.fetch)
      assert.equal(
        await runPublish(['--url', server.url(''), '--timeout', '200ms', '--retry-for', '0'], once.deps),
        1,
      )
      assert.match(
        once.stderr.text(),
        /no answer within 0\.2 s \(--timeout\); not retried \(--retry-for 0 s\)/,
      )
    } finally {
      await server.close()
    }
  })

  it('refuses input that holds no event, exit 1, rather than report 0 events published', async () => {
    for (const input of ['', '  \n\n', '[]', ' [ ]\n', '\uFEFF']) {
      const server = herald()
      const run = deps(input, server.fetch)
      assert.equal(await runPublish(['--url', 'http://h:1'], run.deps), 1, JSON.stringify(input))
      assert.equal(server.requests.length, 0)
      assert.match(run.stderr.text(), /^herald publish: no events in stdin: nothing was sent\n$/)
    }
    const dry = deps('[]', herald().fetch)
    assert.equal(await runPublish(['--dry-run', '--file', 'events.json'], dry.deps), 1)
    assert.match(dry.stderr.text(), /no events in events\.json/)
  })

  it('checks only, with --dry-run', async () => {
    const server = herald()
    // An empty HERALD_URL is as good as unset, which --dry-run does not need.
    const run = deps(ndjson(events(4)), server.fetch, { HERALD_URL: '' })
    assert.equal(await runPublish(['--dry-run'], run.deps), 0)
    assert.equal(server.requests.length, 0)
    assert.match(run.stderr.text(), /4 valid events; --dry-run, nothing sent/)
  })
})

describe('runPublish of a long input', () => {
  it('reads a file twice, checking it whole, then sending as it reads: no more than a batch held', async () => {
    const list = events(6)
    const log: string[] = []
    let opens = 0
    const server = herald()
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      log.push(init?.method === 'GET' ? 'whoami' : 'request')
      return server.fetch(input, init)
    }) as typeof globalThis.fetch
    const run = deps('', fetch)
    const status = await runPublish(['--url', 'http://h:1', '--file', 'big.ndjson', '--batch-size', '2'], {
      ...run.deps,
      readFile: () => {
        opens++
        return (async function* () {
          for (const event of list) {
            log.push('read')
            yield Buffer.from(`${JSON.stringify(event)}\n`)
          }
        })()
      },
    })
    assert.equal(status, 0, run.stderr.text())
    assert.equal(opens, 2)
    assert.deepEqual(log, [
      ...['read', 'read', 'read', 'read', 'read', 'read', 'whoami'],
      ...['read', 'read', 'read', 'request', 'read', 'read', 'request', 'read', 'request'],
    ])
    assert.deepEqual(
      server.requests.flatMap((r) => r.events),
      list,
    )
    assert.match(run.stderr.text(), /6 events published in 3 batches/)
  })

  it('stops when the file read to be sent is not the one checked', async () => {
    const list = events(4)
    let opens = 0
    const server = herald()
    const run = deps('', server.fetch)
    const status = await runPublish(['--url', 'http://h:1', '--file', 'f.ndjson', '--batch-size', '1'], {
      ...run.deps,
      readFile: () => {
        opens++
        const now = opens === 1 ? list : [...list.slice(0, 2), { ...list[2], type: 'x.y' }]
        return (async function* () {
          yield ndjson(now)
        })()
      },
    })
    assert.equal(status, 1)
    assert.match(
      run.stderr.text(),
      /f\.ndjson changed after it was checked; stopped\n1 events were published before it/,
    )
  })

  it('says every 10 s how many events were published, of how many', async () => {
    const server = herald()
    let now = 0
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      now += 4_000
      return server.fetch(input, init)
    }) as typeof globalThis.fetch
    const run = deps(ndjson(events(10)), fetch)
    const status = await runPublish(['--url', 'http://h:1', '--batch-size', '1'], {
      ...run.deps,
      clock: () => now,
    })
    assert.equal(status, 0, run.stderr.text())
    assert.deepEqual(run.stderr.text().match(/\d+ of 10 events published \(\d+%\)/g), [
      '3 of 10 events published (30%)',
      '6 of 10 events published (60%)',
      '9 of 10 events published (90%)',
    ])
  })
})

describe('runPublish --stream', () => {
  /** Stdin that yields `first`, waits (at most 3 s) for a request, then yields `rest` and ends. */
  const slowStdin = (first: readonly unknown[], rest: readonly unknown[], requested: () => boolean) => {
    const seen = { whileOpen: false }
    const stdin = (async function* () {
      yield ndjson(first)
      const until = Date.now() + 3_000
      while (!requested() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
      seen.whileOpen = requested()
      if (rest.length > 0) yield ndjson(rest)
    })()
    return { stdin, seen }
  }

  it('sends a batch once it is full, while stdin is still open', async () => {
    const list = events(3)
    const server = herald()
    const input = slowStdin(list.slice(0, 2), list.slice(2), () => server.requests.length > 0)
    const run = deps('', server.fetch)
    const status = await runPublish(['--url', 'http://h:1', '--stream', '--batch-size', '2'], {
      ...run.deps,
      stdin: input.stdin,
    })
    assert.equal(status, 0, run.stderr.text())
    assert.ok(input.seen.whileOpen, 'the first batch left before stdin ended')
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [2, 1],
    )
    assert.match(run.stderr.text(), /3 events published in 2 batches/)
  })

  it('sends a batch a second after its first event, however slowly more come', async () => {
    const list = events(2)
    const server = herald()
    const input = slowStdin(list.slice(0, 1), list.slice(1), () => server.requests.length > 0)
    const run = deps('', server.fetch)
    assert.equal(
      await runPublish(['--url', 'http://h:1', '--stream'], {
        ...run.deps,
        stdin: input.stdin,
        clock: Date.now,
      }),
      0,
    )
    assert.ok(input.seen.whileOpen, 'the batch left before stdin ended')
    assert.deepEqual(
      server.requests.map((r) => r.events.length),
      [1, 1],
    )
  })

  it('stops at an invalid event once the events before it are sent, saying how many', async () => {
    const [a, b, c, d] = events(4)
    const server = herald()
    const run = deps(ndjson([a, b, { ...c, type: 'x.y' }, d]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream'], run.deps), 1)
    assert.deepEqual(
      server.requests.flatMap((r) => r.events.map((e) => e.id)),
      [a?.id, b?.id],
    )
    assert.equal(
      run.stderr.text(),
      'herald publish: line 3 is invalid:\n  line 3: type: unknown event type "x.y"\n' +
        '2 events were published before it; nothing after it was sent\n',
    )
  })

  it('with --skip-invalid lists and skips an invalid event, and still fails', async () => {
    const [a, b, c] = events(3)
    const server = herald()
    const run = deps(ndjson([a, { ...b, type: 'x.y' }, c]), server.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream', '--skip-invalid'], run.deps), 1)
    assert.deepEqual(
      server.requests.flatMap((r) => r.events.map((e) => e.id)),
      [a?.id, c?.id],
    )
    assert.match(
      run.stderr.text(),
      /line 2 is invalid:\n {2}line 2: type: unknown event type "x\.y"; skipped \(--skip-invalid\)/,
    )
    assert.match(run.stderr.text(), /2 events published in 1 batches/)
  })

  it('checks the token before it reads: one Herald refuses, or a read-only one, sends nothing', async () => {
    const [a] = events(1)
    for (const [whoami, said] of [
      [
        { status: 401, body: { detail: 'invalid or revoked token' } },
        /the token is refused: Herald answered 401/,
      ],
      [
        { status: 200, body: { account: 'acme', role: 'read-only', token_id: 'x' } },
        /the token is acme's read-only token, which may not publish events/,
      ],
    ] as const) {
      const server = herald([], whoami)
      const run = deps(ndjson([{ ...a, account: 'acme' }]), server.fetch)
      assert.equal(await runPublish(['--url', 'http://h:1', '--stream'], run.deps), 1)
      assert.equal(server.requests.length, 0)
      assert.match(run.stderr.text(), said)
      assert.match(run.stderr.text(), /nothing was sent\n$/)
    }
  })

  it("takes an event of another account than the token's as invalid, as Herald would refuse its batch", async () => {
    const [a, b, c] = events(3)
    const input = ndjson([
      { ...a, account: 'acme' },
      { ...b, account: 'globex' },
      { ...c, account: 'acme' },
    ])
    const whoami = { status: 200, body: { account: 'acme', role: 'read-write', token_id: 'x' } }
    const stopping = herald([], whoami)
    const stopped = deps(input, stopping.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream'], stopped.deps), 1)
    assert.deepEqual(
      stopping.requests.flatMap((r) => r.events.map((e) => e.id)),
      [a?.id],
    )
    assert.equal(
      stopped.stderr.text(),
      "herald publish: line 2 is invalid:\n  line 2: account: is globex: the token is acme's read-write token, which may publish only acme's events\n" +
        '1 events were published before it; nothing after it was sent\n',
    )
    const skipping = herald([], whoami)
    const skipped = deps(input, skipping.fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream', '--skip-invalid'], skipped.deps), 1)
    assert.deepEqual(
      skipping.requests.flatMap((r) => r.events.map((e) => e.id)),
      [a?.id, c?.id],
    )
    // An admin's token sends every account's events.
    const admin = herald([], { status: 200, body: { account: 'admin', role: 'admin', token_id: 'y' } })
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream'], deps(input, admin.fetch).deps), 0)
    assert.equal(admin.requests.flatMap((r) => r.events).length, 3)
  })

  it('refuses stdin that holds no event', async () => {
    const run = deps('\n', herald().fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--stream'], run.deps), 1)
    assert.match(run.stderr.text(), /no events in stdin: nothing was sent/)
  })
})

describe('runPublish input that is not UTF-8', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-publish-utf8-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const [a, b] = events(2)
  // "é" in Latin-1 (0xe9) inside the second line's subject: a lenient decoder makes it U+FFFD.
  const text = ndjson([a, { ...b, subject: 'café' }])
  const bytes = Buffer.from(text, 'latin1')
  const bad = text.indexOf('café') + 3

  it('is refused from stdin, naming the byte, its offset and line, and nothing is sent', async () => {
    const server = herald()
    const run = deps('', server.fetch)
    const status = await runPublish(['--url', 'http://h:1'], {
      ...run.deps,
      stdin: (async function* () {
        // Split inside the line, as a pipe may deliver it.
        yield bytes.subarray(0, bad - 1)
        yield bytes.subarray(bad - 1)
      })(),
    })
    assert.equal(status, 1)
    assert.equal(server.requests.length, 0)
    assert.match(
      run.stderr.text(),
      new RegExp(
        `cannot read stdin: byte 0xe9 at offset ${bad} \\(line 2\\) is not UTF-8: the input is not UTF-8 text`,
      ),
    )
    assert.match(run.stderr.text(), /nothing was sent/)
  })

  it('is refused from a file, and a character cut off by the end of the input too', async () => {
    const path = join(dir, 'latin1.ndjson')
    writeFileSync(path, bytes)
    const server = herald()
    const run = deps('', server.fetch)
    assert.equal(
      await runPublish(['--url', 'http://h:1', '--file', path], { ...run.deps, readFile: undefined }),
      1,
    )
    assert.equal(server.requests.length, 0)
    assert.match(run.stderr.text(), new RegExp(`byte 0xe9 at offset ${bad} \\(line 2\\) is not UTF-8`))
    const cut = join(dir, 'cut.json')
    writeFileSync(cut, Buffer.concat([Buffer.from(text), Buffer.from([0xe2, 0x82])]))
    const again = deps('', server.fetch)
    assert.equal(
      await runPublish(['--url', 'http://h:1', '--file', cut], { ...again.deps, readFile: undefined }),
      1,
    )
    assert.match(
      again.stderr.text(),
      new RegExp(
        `the character begun by byte 0xe2 at offset ${Buffer.byteLength(text)} \\(line 3\\) is cut off by the end of the input`,
      ),
    )
    assert.equal(server.requests.length, 0)
  })

  it('is read as it is when it is UTF-8, a character split across chunks too', async () => {
    const good = Buffer.from(ndjson([a, { ...b, subject: 'café €' }]))
    const at = good.indexOf('€') + 1
    const server = herald()
    const run = deps('', server.fetch)
    const status = await runPublish(['--url', 'http://h:1'], {
      ...run.deps,
      stdin: (async function* () {
        yield good.subarray(0, at)
        yield good.subarray(at)
      })(),
    })
    assert.equal(status, 0, run.stderr.text())
    assert.equal((server.requests[0]?.events[1] as { subject?: string } | undefined)?.subject, 'café €')
  })
})

describe('runPublish command line', () => {
  it('prints help', async () => {
    const run = deps('', herald().fetch)
    assert.equal(await runPublish(['--help'], run.deps), 0)
    assert.match(run.stdout.text(), /usage: herald publish/)
  })

  it('refuses a command line it cannot act on', async () => {
    for (const argv of [
      [],
      ['--url', 'http://h:1', '--kafka', 'k:9092'],
      ['--kafka', 'localhost'],
      ['--kafka', 'k:9092,k2:0'],
      ['--kafka', '::1:9092'],
      ['--url', 'not a url'],
      ['--url', 'http://h:1', '--batch-size', '0'],
      ['--url', 'http://h:1', '--timeout', '0'],
      ['--url', 'http://h:1', '--timeout', 'soon'],
      ['--url', 'http://h:1', '--retry-for', '-1s'],
      ['--url', 'http://h:1', 'extra'],
      ['--bogus'],
    ]) {
      const run = deps('', herald().fetch)
      assert.equal(await runPublish(argv, run.deps), 2, argv.join(' '))
      assert.match(run.stderr.text(), /usage: herald publish/)
    }
  })

  it('names a broker without a port before connecting to anything', async () => {
    const run = deps('', herald().fetch)
    assert.equal(await runPublish(['--kafka', 'kafka-1:9092, localhost'], run.deps), 2)
    assert.match(run.stderr.text(), /--kafka: "localhost" is not host:port/)
  })

  it('reaches Kafka with the TLS and SASL of Herald’s configuration', async () => {
    // A broker that only notes the first bytes a client sends, then hangs up.
    const firstBytes: Buffer[] = []
    const broker = createServer((socket) => {
      socket.once('data', (chunk) => {
        firstBytes.push(chunk)
        socket.destroy()
      })
    })
    broker.listen(0, '127.0.0.1')
    await once(broker, 'listening')
    const { port } = broker.address() as AddressInfo
    const run = deps(ndjson(events(1)), herald().fetch, {
      HERALD_EVENT_LOG__KAFKA__SSL: 'true',
      HERALD_EVENT_LOG__KAFKA__SASL__MECHANISM: 'scram-sha-256',
      HERALD_EVENT_LOG__KAFKA__SASL__USERNAME: 'publisher',
      HERALD_EVENT_LOG__KAFKA__SASL__PASSWORD: 'publisher-pass',
    })
    const opened: KafkaEventLogOptions[] = []
    try {
      const status = await runPublish(['--kafka', `127.0.0.1:${port}`, '--no-idempotent'], {
        ...run.deps,
        createKafkaLog: (options) => {
          opened.push(options)
          return createKafkaEventLog(options)
        },
      })
      assert.equal(status, 1, run.stderr.text())
    } finally {
      broker.close()
    }
    assert.deepEqual(
      { ssl: opened[0]?.ssl, sasl: opened[0]?.sasl },
      { ssl: true, sasl: { mechanism: 'scram-sha-256', username: 'publisher', password: 'publisher-pass' } },
    )
    // 0x16: a TLS handshake record, where a plain Kafka request begins with its length.
    assert.equal(firstBytes[0]?.[0], 0x16)
    assert.doesNotMatch(run.stderr.text(), /publisher-pass/)
  })

  it('refuses --kafka when Herald’s configuration cannot be read, saying why', async () => {
    const run = deps(ndjson(events(1)), herald().fetch, { HERALD_EVENT_LOG__KAFKA__SSL: 'maybe' })
    assert.equal(await runPublish(['--kafka', 'k:9092'], run.deps), 2)
    assert.match(
      run.stderr.text(),
      /--kafka connects with TLS and SASL as Herald's configuration says .*event_log\.kafka\.ssl/,
    )
  })

  it('reports a file it cannot read', async () => {
    const run = deps('', herald().fetch)
    assert.equal(await runPublish(['--url', 'http://h:1', '--file', 'missing.json'], run.deps), 1)
    assert.match(run.stderr.text(), /cannot read missing\.json: ENOENT/)
  })
})
