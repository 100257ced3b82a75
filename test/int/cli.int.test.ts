import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli.ts')

describe('herald command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  /**
   * Runs `herald …args` in an empty directory, with only PATH and HOME from this environment
   * (and `env` added).
   */
  const heraldWith = (env: Record<string, string>, ...args: string[]) => {
    const run = spawnSync(process.execPath, [cli, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HERALD_DATA_DIR: dir, ...env },
      encoding: 'utf8',
      timeout: 30_000,
    })
    return { status: run.status, stdout: run.stdout, stderr: run.stderr }
  }
  const herald = (...args: string[]) => heraldWith({}, ...args)

  it('refuses an option it does not take with a one-line error and its usage, exit code 2', () => {
    const run = herald('start', '--config', 'herald.yaml')
    assert.equal(run.status, 2)
    assert.match(run.stderr, /^herald: Unknown option '--config'/)
    assert.match(run.stderr, /usage: herald <command>/)
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace')
  })

  it('refuses an argument start or config does not take, exit code 2, before starting or reading anything', () => {
    for (const args of [
      ['start', 'foo'],
      ['config', 'foo', 'bar'],
    ]) {
      const run = herald(...args)
      assert.equal(run.status, 2, args.join(' '))
      assert.match(
        run.stderr,
        new RegExp(`^herald: ${args[0]} takes no argument, got "foo"\n\nusage: herald <command>`),
      )
      assert.equal(run.stdout, '')
    }
    assert.deepEqual(readdirSync(dir), [], 'no data directory written')
  })

  it('refuses no command or an unknown one, exit code 2, and prints its usage on --help', () => {
    const unknown = herald('check-config')
    assert.equal(unknown.status, 2)
    assert.match(unknown.stderr, /^herald: unknown command "check-config"/)
    // A mistyped command is named before the configuration is read, however broken that is.
    const typo = heraldWith({ HERALD_PORT: 'abc' }, 'strat')
    assert.equal(typo.status, 2)
    assert.match(typo.stderr, /^herald: unknown command "strat"/)
    // Bare, it starts nothing: usage, exit code 2, and no data directory written.
    const bare = herald()
    assert.equal(bare.status, 2)
    assert.match(bare.stderr, /^herald: no command given\n\nusage: herald <command>/)
    assert.deepEqual(readdirSync(dir), [])
    const help = herald('--help')
    assert.equal(help.status, 0)
    assert.match(help.stdout, /^usage: herald <command>/)
  })

  it("reads its configuration with the client commands' HERALD_URL and HERALD_TOKEN exported", () => {
    const run = heraldWith({ HERALD_URL: 'http://localhost:8228', HERALD_TOKEN: 'x' }, 'config')
    assert.equal(run.status, 0, run.stderr)
    assert.equal(JSON.parse(run.stdout).port, 8228)
  })

  it('refuses a client URL with credentials or a scheme fetch cannot use, exit 2 at once, never echoing them', () => {
    const withCredentials = 'http://user:PUBPW@localhost:8350'
    const runs = [
      herald('publish', '--file', 'x.ndjson', '--url', withCredentials, '--token', 't'),
      heraldWith({ HERALD_URL: 'http:/user:PUBPW@localhost:8350' }, 'publish', '--file', 'x.ndjson'),
      herald('generate', '--count', '1', '--publish-url', withCredentials),
      herald('rebuild-reports', '--url', withCredentials),
      heraldWith({ HERALD_URL: withCredentials }, 'rebuild-reports'),
      herald('publish', '--url', 'http://localhost:8350', withCredentials),
      herald('log-reset', '--accept', '--url', withCredentials),
    ]
    for (const run of runs) {
      assert.equal(run.status, 2, run.stderr)
      assert.doesNotMatch(run.stderr + run.stdout, /PUBPW/)
      assert.doesNotMatch(run.stderr, /retrying|cannot reach/)
    }
    assert.match(runs[0]?.stderr ?? '', /^herald publish: --url must not hold credentials \(user:password@\)/)
    assert.match(runs[1]?.stderr ?? '', /^herald publish: HERALD_URL must not hold credentials/)
    assert.match(runs[2]?.stderr ?? '', /^herald generate: --publish-url must not hold credentials/)
    assert.match(runs[3]?.stderr ?? '', /^herald rebuild-reports: --url must not hold credentials/)
    assert.match(runs[5]?.stderr ?? '', /unexpected argument "http:\/\/\[redacted\]@localhost:8350"/)
    assert.match(runs[6]?.stderr ?? '', /^herald log-reset: --url must not hold credentials/)

    const ftp = herald('publish', '--file', 'x.ndjson', '--url', 'ftp://x')
    assert.equal(ftp.status, 2, ftp.stderr)
    assert.match(ftp.stderr, /^herald publish: --url must be an http:\/\/ or https:\/\/ URL, not ftp:/)
  })
})
