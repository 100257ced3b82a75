import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type HttpStandIn, type StandInReply, startHttpStandIn } from '../../test/support/http-stand-in.ts'
import { textSink } from '../../test/support/text-sink.ts'
import type { CliDeps } from './io.ts'
import { runLogReset } from './log-reset.ts'
import { runRebuild } from './rebuild.ts'

/** Runs an admin command against the stand-in; time passes only when the command sleeps. */
const run = async (
  command: (argv: readonly string[], deps: CliDeps) => Promise<number>,
  argv: readonly string[],
) => {
  const stdout = textSink()
  const stderr = textSink()
  let now = 0
  const sleeps: number[] = []
  const code = await command(argv, {
    stdin: (async function* () {})(),
    stdout,
    stderr,
    env: { HERALD_TOKEN: 'admin-token-for-tests' },
    fetch: globalThis.fetch,
    clock: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
  })
  return { code, stdout: stdout.text(), stderr: stderr.text(), sleeps }
}

describe('the admin commands against an HTTP server', () => {
  let server: HttpStandIn
  let answer: (path: string, method: string) => StandInReply
  before(async () => {
    server = await startHttpStandIn((request) => answer(request.path, request.method))
  })
  after(() => server.close())

  it('give up on a request not answered within --timeout, naming it', async () => {
    answer = () => ({ status: 200, body: { resets: [] } })
    server.hangNext(2)
    const started = performance.now()
    const listing = await run(runLogReset, ['--url', server.url(''), '--timeout', '200ms'])
    assert.equal(listing.code, 1)
    assert.match(
      listing.stderr,
      /^herald log-reset: cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/reports\/log-reset: no answer within 0\.2 s \(--timeout\)\n$/,
    )
    const status = await run(runRebuild, [
      ...['--url', server.url(''), '--timeout', '200ms', '--retry-for', '0', '--status'],
    ])
    assert.equal(status.code, 1)
    assert.match(status.stderr, /no answer within 0\.2 s \(--timeout\); not retried \(--retry-for 0 s\)/)
    assert.ok(performance.now() - started < 5_000)
  })

  const rebuildStatus = (state: string, replayed: number, error: string | null = null) => ({
    status: 200,
    body: { state, replayed, total: 10, percent: replayed * 10, etaSeconds: null, error },
  })

  it('rebuild-reports retries a failed poll and follows the rebuild to its end', async () => {
    const polls = [
      { status: 503, body: { detail: 'Herald is starting' }, headers: { 'retry-after': '1' } },
      rebuildStatus('catching_up', 5),
      rebuildStatus('done', 10),
    ]
    answer = (_path, method) =>
      method === 'POST'
        ? { ...rebuildStatus('catching_up', 0), status: 202 }
        : (polls.shift() ?? rebuildStatus('done', 10))
    // A proxy in front answers one poll 502.
    server.failWhen((request) => request.method === 'GET', { status: 502 }, 1)
    const result = await run(runRebuild, ['--url', server.url(''), '--poll-ms', '100'])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(result.stdout.split('\n'), [
      'catching_up: 0 of 10 events replayed (0%)',
      'catching_up: 5 of 10 events replayed (50%)',
      'done: 10 of 10 events replayed (100%)',
      '',
    ])
    assert.match(
      result.stderr,
      /GET http:\/\/127\.0\.0\.1:\d+\/v1\/reports\/rebuild: 502; retrying in 250 ms/,
    )
    assert.match(result.stderr, /503 Herald is starting; retrying in 1000 ms/)
  })

  it('rebuild-reports follows a rebuild already running (409) rather than fail', async () => {
    const polls = [rebuildStatus('swapping', 10), rebuildStatus('done', 10)]
    answer = (_path, method) =>
      method === 'POST'
        ? {
            status: 409,
            body: {
              code: 'rebuild_running',
              detail: 'a rebuild started at 2026-11-22T10:00:00.000Z is still running',
            },
          }
        : (polls.shift() ?? rebuildStatus('done', 10))
    const result = await run(runRebuild, ['--url', server.url(''), '--poll-ms', '100'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(
      result.stderr,
      /^herald rebuild-reports: a rebuild started at 2026-11-22T10:00:00\.000Z is still running; following it\n$/,
    )
    assert.deepEqual(result.stdout.split('\n'), [
      'swapping: 10 of 10 events replayed (100%)',
      'done: 10 of 10 events replayed (100%)',
      '',
    ])
  })

  it('rebuild-reports gives up polling once --retry-for has passed', async () => {
    answer = (_path, method) =>
      method === 'POST' ? { ...rebuildStatus('catching_up', 0), status: 202 } : { status: 503 }
    const result = await run(runRebuild, ['--url', server.url(''), '--poll-ms', '100', '--retry-for', '2s'])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /503; gave up after 5 attempts over 2 s \(--retry-for 2 s\)/)
  })

  it('rebuild-reports --status exits 1 when the last rebuild failed', async () => {
    answer = () => rebuildStatus('failed', 4, 'Herald is shutting down')
    const failed = await run(runRebuild, ['--url', server.url(''), '--status'])
    assert.equal(failed.code, 1)
    assert.equal(failed.stdout, 'failed: 4 of 10 events replayed (40%) (Herald is shutting down)\n')
    answer = () => rebuildStatus('done', 10)
    assert.equal((await run(runRebuild, ['--url', server.url(''), '--status'])).code, 0)
  })

  it('log-reset --accept accepts only the resets named, as the listing names them', async () => {
    const reset = {
      topic: 'engine.events',
      partition: 0,
      offset: 0,
      projectedThrough: 5,
      event: '"new-0" of /engine',
      projectedEvent: '"old-0" of /engine',
      detectedAt: '2026-11-22T10:00:00.000Z',
      state: 'pending',
      base: null,
      acceptedAt: null,
    }
    answer = (_path, method) =>
      method === 'GET'
        ? { status: 200, body: { resets: [reset] } }
        : {
            status: 200,
            body: {
              accepted: [{ ...reset, state: 'accepted', base: 6, acceptedAt: '2026-11-22T10:05:00.000Z' }],
            },
          }
    const listing = await run(runLogReset, ['--url', server.url('')])
    assert.match(listing.stdout, /accept it with herald log-reset --accept engine\.events\/0@5; otherwise/)
    const before = server.requests.length
    const accepted = await run(runLogReset, ['--url', server.url(''), '--accept', 'engine.events/0@5'])
    assert.equal(accepted.code, 0, accepted.stderr)
    const post = server.requests.at(-1)
    assert.equal(server.requests.length, before + 1)
    assert.equal(post?.method, 'POST')
    assert.deepEqual(JSON.parse(post?.body ?? ''), {
      resets: [{ topic: 'engine.events', partition: 0, projectedThrough: 5 }],
    })
    assert.match(accepted.stdout, /^accepted engine\.events\/0: its new log is projected from position 6/)

    // Every pending one, whichever they are, only when asked for in so many words.
    const all = await run(runLogReset, ['--url', server.url(''), '--accept', '--all'])
    assert.equal(all.code, 0, all.stderr)
    assert.equal(server.requests.at(-1)?.body, '')
    for (const [argv, said] of [
      [
        ['--accept'],
        /--accept needs the resets to accept as the listing names them \(engine\.events\/0@5\), or --all/,
      ],
      [['--accept', 'engine.events/0'], /"engine\.events\/0" is not a reset as the listing names it/],
      [['--accept', '--all', 'engine.events/0@5'], /the resets to accept or --all, not both/],
      [['--all'], /--all goes with --accept/],
      [['engine.events/0@5'], /unexpected argument "engine\.events\/0@5"/],
    ] as const) {
      const refused = await run(runLogReset, ['--url', server.url(''), ...argv])
      assert.equal(refused.code, 2, argv.join(' '))
      assert.match(refused.stderr, said)
    }
    assert.equal(server.requests.length, before + 2, 'nothing sent for a refused command line')
  })
})
