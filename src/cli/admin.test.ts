import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type HttpStandIn, type StandInReply, startHttpStandIn } from '../../test/support/http-stand-in.ts'
import type { CliDeps, Output } from './io.ts'
import { runLogReset } from './log-reset.ts'
import { runRebuild } from './rebuild.ts'

const sink = (): Output & { text: () => string } => {
  const chunks: string[] = []
  return {
    text: () => chunks.join(''),
    write(chunk, callback) {
      chunks.push(chunk)
      callback?.()
      return true
    },
  }
}

/** Runs an admin command against the stand-in; time passes only when the command sleeps. */
const run = async (
  command: (argv: readonly string[], deps: CliDeps) => Promise<number>,
  argv: readonly string[],
) => {
  const stdout = sink()
  const stderr = sink()
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
    const status = await run(runRebuild, ['--url', server.url(''), '--timeout', '200ms', '--status'])
    assert.equal(status.code, 1)
    assert.match(status.stderr, /no answer within 0\.2 s \(--timeout\)/)
    assert.ok(performance.now() - started < 5_000)
  })
})
