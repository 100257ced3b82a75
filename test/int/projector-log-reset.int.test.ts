import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { runLogReset } from '../../src/cli/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { type Herald, startHerald } from '../../src/herald.ts'
import type { LogFields, Logger } from '../../src/observability/index.ts'
import { eventually } from '../support/eventually.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const ACCOUNT = 'acme'
const T0 = Date.UTC(2026, 10, 22, 10)
const DIGEST_A = `sha256:${'a'.repeat(64)}`
const DIGEST_B = `sha256:${'b'.repeat(64)}`
const TAG = { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }

const envelope = (id: string, minute: number) => ({
  specversion: '1.0',
  id,
  source: '/engine',
  account: ACCOUNT,
  time: new Date(T0 + minute * 60_000).toISOString(),
})
const analyzed = (id: string, minute: number, digest: string, cve: string) => ({
  ...envelope(id, minute),
  type: 'herald.report.image.analyzed',
  data: {
    digest,
    registry: TAG.registry,
    repository: TAG.repository,
    distro: { name: 'debian', version: '12' },
    package_count: 1,
    findings: [
      {
        id: cve,
        severity: 'high',
        package: 'openssl',
        version: '1',
        type: 'deb',
        fix_version: null,
        kev: false,
      },
    ],
  },
})
const tagged = (id: string, minute: number, digest: string, previous: string | null) => ({
  ...envelope(id, minute),
  type: 'herald.report.tag.digest_changed',
  data: { ...TAG, digest, previous_digest: previous },
})
const filler = (id: string, minute: number) => ({
  ...envelope(id, minute),
  type: 'user.image.analysis.completed',
  data: { digest: DIGEST_A },
})

/**
 * An embedded Herald (`startHerald`: the SQLite event log, chDB, the projector on its thread or
 * on the event loop) whose event log file is removed while its data directory, and so the
 * warehouse, stays: the new log counts offsets from 0 again, at positions the report tables
 * already hold.
 */
for (const thread of [true, false])
  describe(`an embedded Herald whose event log was reset under its reports (projector ${thread ? 'on its thread' : 'on the event loop'})`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-log-reset-'))
    const config = loadConfig({
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_LISTEN: '127.0.0.1',
        HERALD_PORT: '0',
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_REPORTS__CYCLE_TIMERS__LOAD: '0.05',
        HERALD_REPORTS__PROJECTOR_THREAD: String(thread),
      },
    })
    const logged: { level: string; event: string; fields: LogFields }[] = []
    const logger: Logger = (level, event, fields = {}) => {
      logged.push({ level, event, fields })
    }
    let herald: Herald | undefined
    after(async () => {
      await herald?.stop()
      rmSync(dir, { recursive: true, force: true })
    })

    const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
      const response = await fetch(`${herald?.url}${path}`, {
        method,
        headers: { 'content-type': type, authorization: `Bearer ${ADMIN_TOKEN}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await response.text()
      return { status: response.status, text, json: (text.startsWith('{') ? JSON.parse(text) : {}) as never }
    }
    const publish = async (events: readonly unknown[]) => {
      const { status, text } = await call('POST', '/v1/events', events, 'application/cloudevents-batch+json')
      assert.equal(status, 202, text)
    }
    /** Messages of the events topic the projector has not committed yet, from `/metrics`. */
    const projectorLag = async (): Promise<number> => {
      const metrics = await (await fetch(`${herald?.url}/metrics`)).text()
      const lag =
        /^herald_consumer_lag_messages\{group="herald-projector",topic="engine\.events"\} (\d+)$/m.exec(
          metrics,
        )
      return Number(lag?.[1] ?? Number.NaN)
    }
    /** Batches the projector was handed so far, failed ones included, from `/metrics`. */
    const projectorBatches = async (): Promise<number> => {
      const metrics = await (await fetch(`${herald?.url}/metrics`)).text()
      const count = /^herald_batch_duration_seconds_count\{consumer="projector"\} (\d+)$/m.exec(metrics)
      return Number(count?.[1] ?? Number.NaN)
    }
    /** Each vulnerability with the tags whose current image has it, as the report API answers. */
    const tagsByVulnerability = async (): Promise<Record<string, string[]>> => {
      const { status, text, json } = await call('POST', '/v1/reports/graphql', {
        query: `{ tagsByVulnerability(filter: { account: "${ACCOUNT}" }) {
        results { vulnerability { vulnerabilityId } tags { tag digest } } } }`,
      })
      assert.equal(status, 200, text)
      const results = (
        json as {
          data: {
            tagsByVulnerability: {
              results: {
                vulnerability: { vulnerabilityId: string }
                tags: { tag: string; digest: string }[]
              }[]
            }
          }
        }
      ).data.tagsByVulnerability.results
      return Object.fromEntries(
        results.map((r) => [
          r.vulnerability.vulnerabilityId,
          r.tags.map((t) => `${t.tag}@${t.digest}`).sort(),
        ]),
      )
    }

    const ready = async () => {
      const response = await fetch(`${herald?.url}/ready`)
      const body = (await response.json()) as { checks: Record<string, { status: string; error?: string }> }
      return { status: response.status, checks: body.checks }
    }
    const projectedEvents = async (): Promise<number> => {
      const { status, text, json } = await call('POST', '/v1/reports/graphql', {
        query: `{ events(filter: { account: "${ACCOUNT}" }, limit: 1000) { pageInfo { count } } }`,
      })
      assert.equal(status, 200, text)
      return (json as { data: { events: { pageInfo: { count: number } } } }).data.events.pageInfo.count
    }
    const restart = async () => {
      await herald?.stop()
      herald = await startHerald(config, { logger })
    }
    /** `herald log-reset …args` against this Herald, the token in HERALD_TOKEN. */
    const cli = async (...args: string[]) => {
      let stdout = ''
      let stderr = ''
      const sink = (append: (chunk: string) => void) => ({
        write: (chunk: string, callback?: (error?: Error | null) => void) => {
          append(chunk)
          callback?.()
          return true
        },
      })
      const code = await runLogReset(['--url', herald?.url ?? '', ...args], {
        stdin: (async function* () {})(),
        stdout: sink((chunk) => {
          stdout += chunk
        }),
        stderr: sink((chunk) => {
          stderr += chunk
        }),
        env: { HERALD_TOKEN: ADMIN_TOKEN },
        fetch,
      })
      assert.ok(!(stdout + stderr).includes(ADMIN_TOKEN))
      return { code, stdout, stderr }
    }

    it('refuses to project the new log over the old one’s reports, says why and what to do, and is unready', async () => {
      herald = await startHerald(config, { logger })
      // The old log: the tag's move to image A lands at offset 5.
      await publish([
        filler('old-0', 0),
        filler('old-1', 1),
        filler('old-2', 2),
        filler('old-3', 3),
        analyzed('old-4', 4, DIGEST_A, 'CVE-2026-0001'),
        tagged('old-5', 5, DIGEST_A, null),
      ])
      await eventually(async () => assert.equal(await projectorLag(), 0), { timeoutMs: 60_000 })
      assert.deepEqual(await tagsByVulnerability(), { 'CVE-2026-0001': [`latest@${DIGEST_A}`] })
      await herald.stop()

      for (const file of ['eventlog.sqlite', 'eventlog.sqlite-wal', 'eventlog.sqlite-shm'])
        rmSync(join(dir, file), { force: true })
      herald = await startHerald(config, { logger })
      // The new log: image B at offset 0, the tag's move to it at offset 1.
      await publish([
        analyzed('new-0', 10, DIGEST_B, 'CVE-2026-0002'),
        tagged('new-1', 11, DIGEST_B, DIGEST_A),
      ])

      const { checks } = await eventually(
        async () => {
          const answer = await ready()
          assert.equal(answer.status, 503, JSON.stringify(answer.checks))
          assert.equal(answer.checks.projector?.status, 'unavailable', JSON.stringify(answer.checks))
          return answer
        },
        { timeoutMs: 60_000 },
      )
      assert.match(
        checks.projector?.error ?? '',
        /^engine\.events\/0 holds event "new-0" of \/engine at offset 0, where the report tables hold event "old-0" of \/engine \(projected through position 5\): the log was reset under them, and the projector leaves the partition alone; if the log was reset on purpose .* POST \/v1\/reports\/log-reset \(admin\) projects the new log after what the report tables hold/,
      )
      for (const [name, check] of Object.entries(checks))
        if (name !== 'projector') assert.deepEqual(check, { status: 'ok' }, name)
      const found = logged.filter((line) => line.event === 'projector.log_reset')
      assert.equal(found.length, 1)
      assert.equal(found[0]?.level, 'error')
      assert.deepEqual(
        { ...found[0]?.fields, remedy: undefined },
        {
          topic: 'engine.events',
          partition: 0,
          offset: 0,
          projected_through: 5,
          found_event: '"new-0" of /engine',
          projected_event: '"old-0" of /engine',
          remedy: undefined,
        },
      )

      // Refused batch after batch, the partition is said to be refused once (projector.log_reset),
      // not again at each try as a failed batch.
      const tried = await projectorBatches()
      await eventually(async () => assert.ok((await projectorBatches()) >= tried + 3), { timeoutMs: 30_000 })
      assert.deepEqual(
        logged.filter(
          ({ event, fields }) => event === 'eventlog.handler_failed' && fields.group === 'herald-projector',
        ),
        [],
      )
      assert.equal(logged.filter((line) => line.event === 'projector.log_reset').length, 1)

      // Nothing of the new log was stored, nor committed: the reports are the old log's.
      assert.equal(await projectorLag(), 2)
      assert.equal(await projectedEvents(), 6)
      assert.deepEqual(await tagsByVulnerability(), { 'CVE-2026-0001': [`latest@${DIGEST_A}`] })
      const listed = await call('GET', '/v1/reports/log-reset')
      assert.equal(listed.status, 200, listed.text)
      assert.deepEqual(
        (listed.json as { resets: Record<string, unknown>[] }).resets.map(
          ({ detectedAt: _, ...reset }) => reset,
        ),
        [
          {
            topic: 'engine.events',
            partition: 0,
            offset: 0,
            projectedThrough: 5,
            event: '"new-0" of /engine',
            projectedEvent: '"old-0" of /engine',
            state: 'pending',
            base: null,
            acceptedAt: null,
          },
        ],
      )

      // The command line lists it, and says what to do.
      const detectedAt = (listed.json as { resets: { detectedAt: string }[] }).resets[0]?.detectedAt
      const listing = await cli()
      assert.equal(listing.code, 0, listing.stderr)
      const [line, advice, ...rest] = listing.stdout.split('\n')
      assert.equal(
        line,
        `engine.events/0: pending since ${detectedAt}: offset 0 holds event "new-0" of /engine, where the report tables hold event "old-0" of /engine (projected through position 5)`,
      )
      assert.match(
        advice ?? '',
        /^1 pending: .* accept it with herald log-reset --accept engine\.events\/0@5; otherwise restore the log/,
      )
      assert.deepEqual(rest, [''])

      // A restart finds it again, and says so again.
      await restart()
      await eventually(async () => assert.equal((await ready()).checks.projector?.status, 'unavailable'), {
        timeoutMs: 60_000,
      })
      assert.equal(await projectedEvents(), 6)
    })

    it('accepting the reset projects the new log after the old one, which a rebuild and a restart keep', async () => {
      // A reset other than the one listed (found since, or mistyped) is not accepted, nor is any other.
      const other = await cli('--accept', 'engine.events/0@4')
      assert.deepEqual([other.code, other.stdout], [1, ''])
      assert.match(
        other.stderr,
        /^herald log-reset: nothing was accepted: no log reset waits at engine\.events\/0@4 \(accepted already, or the log was restored\); list them again\n$/,
      )
      assert.equal(
        ((await call('GET', '/v1/reports/log-reset')).json as { resets: { state: string }[] }).resets[0]
          ?.state,
        'pending',
      )
      const malformed = await call('POST', '/v1/reports/log-reset', {
        resets: [{ topic: 'engine.events', partition: -1 }],
      })
      assert.equal(malformed.status, 400, malformed.text)
      assert.match(malformed.text, /resets\[0\]\.partition.*resets\[0\]\.projectedThrough/)
      const accepted = await cli('--accept', 'engine.events/0@5')
      assert.equal(accepted.code, 0, accepted.stderr)
      // Past every position the old log left.
      assert.equal(
        accepted.stdout,
        'accepted engine.events/0: its new log is projected from position 6, after everything the report tables hold\n' +
          'the projector takes the partition up again at its next try, within a few seconds\n',
      )
      const [reset] = (
        (await call('GET', '/v1/reports/log-reset')).json as { resets: { state: string; base: number }[] }
      ).resets
      assert.deepEqual([reset?.state, reset?.base], ['accepted', 6])
      const again = await cli('--accept', '--all')
      assert.deepEqual([again.code, again.stdout], [1, ''])
      assert.match(again.stderr, /^herald log-reset: no log reset is waiting to be accepted/)
      const twice = await cli('--accept', 'engine.events/0@5')
      assert.match(twice.stderr, /nothing was accepted: no log reset waits at engine\.events\/0@5/)
      assert.equal((await call('POST', '/v1/reports/log-reset')).status, 409)
      assert.match(
        (await cli()).stdout,
        /^engine\.events\/0: accepted at .*: its new log is projected from position 6 /,
      )

      await eventually(
        async () => {
          assert.equal(await projectorLag(), 0)
          assert.equal((await ready()).status, 200)
        },
        { timeoutMs: 60_000 },
      )
      const now = { 'CVE-2026-0002': [`latest@${DIGEST_B}`] }
      assert.equal(await projectedEvents(), 8)
      assert.deepEqual(await tagsByVulnerability(), now)
      assert.ok(logged.some((line) => line.event === 'projector.log_reset_accepted'))

      // A rebuild replays the old log's events, then the new one's.
      const started = await call('POST', '/v1/reports/rebuild')
      assert.equal(started.status, 202, started.text)
      await eventually(async () => {
        const { json } = await call('GET', '/v1/reports/rebuild')
        assert.equal((json as { state: string }).state, 'done')
      })
      assert.deepEqual(await tagsByVulnerability(), now)

      // The new log goes on after a restart, where it left off.
      await restart()
      await publish([tagged('new-2', 12, DIGEST_A, DIGEST_B)])
      await eventually(async () => assert.equal(await projectorLag(), 0), { timeoutMs: 60_000 })
      assert.equal(await projectedEvents(), 9)
      assert.deepEqual(await tagsByVulnerability(), { 'CVE-2026-0001': [`latest@${DIGEST_A}`] })
      assert.equal((await ready()).status, 200)
      assert.equal(logged.filter((line) => line.event === 'projector.log_reset').length, 2)
    })

    it('puts the log reset accepted, the rebuild and a metrics backfill in the audit and their log lines, naming who asked and with which token', async () => {
      const backfill = await call('POST', '/v1/reports/metrics/backfill', {
        start: '2026-11-22T09:00:00Z',
        end: '2026-11-22T10:00:00Z',
      })
      assert.equal(backfill.status, 202, backfill.text)
      const actor = { by: 'admin/admin', token_id: 'admin_token' }
      for (const event of [
        'reports.log_reset_accepted',
        'reports.rebuild_started',
        'reports.metrics_backfill_started',
      ]) {
        const line = logged.find((l) => l.event === event)
        assert.deepEqual([line?.fields.by, line?.fields.token_id], [actor.by, actor.token_id], event)
      }
      const audit = async (type: string) => {
        const { status, text, json } = await call('GET', `/v1/audit?aggregate_type=${type}`)
        assert.equal(status, 200, text)
        return (
          json as {
            items: { event: string; by: string; account: string | null; changes: Record<string, unknown> }[]
          }
        ).items
      }
      const tables = await audit('report_tables')
      assert.deepEqual(
        tables.map((e) => [e.event, e.by, e.account, e.changes.token_id]),
        [
          ['LogResetAccepted', actor.by, null, actor.token_id],
          ['ReportRebuildStarted', actor.by, null, actor.token_id],
        ],
      )
      assert.deepEqual(
        [tables[0]?.changes.topic, tables[0]?.changes.partition, tables[0]?.changes.base],
        ['engine.events', 0, 6],
      )
      const metrics = await audit('report_metrics')
      assert.deepEqual(
        metrics.map((e) => [e.event, e.by, e.changes.start, e.changes.end]),
        [['MetricsBackfillStarted', actor.by, '2026-11-22T09:00:00.000Z', '2026-11-22T10:00:00.000Z']],
      )
      assert.ok(!JSON.stringify([tables, metrics, logged]).includes(ADMIN_TOKEN))
    })
  })
