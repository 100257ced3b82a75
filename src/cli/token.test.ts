import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type HttpStandIn, startHttpStandIn } from '../../test/support/http-stand-in.ts'
import { textSink } from '../../test/support/text-sink.ts'
import { generateActivity } from '../generator/index.ts'
import { runGenerate } from './generate.ts'
import type { CliDeps } from './io.ts'
import { runLogReset } from './log-reset.ts'
import { runPublish } from './publish.ts'
import { runRebuild } from './rebuild.ts'

const [EVENT] = generateActivity({ seed: 1, accounts: 1, count: 1, clock: () => Date.UTC(2026, 10, 22) })

describe('a token an Authorization header cannot carry', () => {
  let server: HttpStandIn
  before(async () => {
    server = await startHttpStandIn(() => ({ status: 202, body: { accepted: 1 } }))
  })
  after(() => server.close())

  const run = async (
    command: (argv: readonly string[], deps: CliDeps) => Promise<number>,
    argv: readonly string[],
    env: Record<string, string>,
  ) => {
    const stdout = textSink()
    const stderr = textSink()
    let slept = 0
    const code = await command(argv, {
      stdin: (async function* () {
        yield `${JSON.stringify(EVENT)}\n`
      })(),
      stdout,
      stderr,
      env,
      fetch: globalThis.fetch,
      sleep: async () => {
        slept++
      },
    })
    return { code, out: stdout.text() + stderr.text(), slept }
  }

  const base = () => server.url('')
  const commands = () =>
    [
      [runPublish, ['--url', base()]],
      [runGenerate, ['--count', '1', '--publish-url', base()]],
      [runRebuild, ['--url', base()]],
      [runLogReset, ['--url', base()]],
    ] as const

  for (const [secret, said] of [
    ['s3cret-part\nsecond-half', /HERALD_TOKEN holds a line break \(code 10\) at character 12 of 23/],
    ['s3cret-part\rsecond-half', /HERALD_TOKEN holds a carriage return \(code 13\) at character 12 of 23/],
    ['s3cret-part€second-half', /HERALD_TOKEN holds U\+20AC \(code 8364\) at character 12 of 23/],
    ['s3cret-part second-half', /HERALD_TOKEN holds a space \(code 32\) at character 12 of 23/],
  ] as const) {
    it(`is refused before any request (exit 2), naming the character, never the token: ${JSON.stringify(secret)}`, async () => {
      for (const [command, argv] of commands()) {
        const before = server.requests.length
        const result = await run(command, argv, { HERALD_TOKEN: secret })
        assert.equal(result.code, 2, `${command.name}: ${result.out}`)
        assert.match(result.out, said, command.name)
        assert.match(result.out, /an Authorization header cannot carry/)
        assert.doesNotMatch(result.out, /s3cret|second-half/, command.name)
        assert.equal(result.slept, 0, 'nothing retried')
        assert.equal(server.requests.length, before, 'nothing sent')
      }
    })
  }

  it('names --token when it is the one given, and refuses an empty one', async () => {
    const given = await run(runPublish, ['--url', base(), '--token', 'a\tb'], {})
    assert.equal(given.code, 2)
    assert.match(given.out, /--token holds a tab \(code 9\) at character 2 of 3/)
    const empty = await run(runRebuild, ['--url', base(), '--token', ''], {})
    assert.equal(empty.code, 2)
    assert.match(empty.out, /--token is empty; leave it out to send no token/)
  })
})
