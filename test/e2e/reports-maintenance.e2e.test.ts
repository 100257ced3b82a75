import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { runRebuild } from '../../src/cli/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { eventually } from '../support/eventually.ts'
import { type HeraldProcess, startHeraldProcess } from '../support/herald-process.ts'

const ADMIN_TOKEN = `e2e-admin-${randomUUID()}`

const captured = () => {
  let text = ''
  return {
    output: {
      write: (chunk: string, callback?: (error?: Error | null) => void) => {
        text += chunk
        callback?.()
        return true
      },
    },
    text: () => text,
  }
}

describe('report maintenance in a running Herald: table rebuild and metric backfill', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-rebuild-e2e-'))
  let herald: HeraldProcess

  const api = async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const headers = new Headers(init.headers)
    headers.set('authorization', `Bearer ${init.token ?? ADMIN_TOKEN}`)
    if (init.json !== undefined)
      headers.set('content-type', headers.get('content-type') ?? 'application/json')
    const response = await fetch(`${herald.url}${path}`, {
      ...init,
      headers,
      ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }),
    })
    const text = await response.text()
    return {
      status: response.status,
      body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
    }
  }
  const tagsByVulnerability = async (): Promise<unknown[]> => {
    const { status, body } = await api('/v1/reports/graphql', {
      method: 'POST',
      json: {
        query: `{ tagsByVulnerability(filter: { allAccounts: true }, limit: 1000) {
          results { account vulnerability { vulnerabilityId severity fixAvailable } tagCount tags { registry repository tag digest current } } } }`,
      },
    })
    assert.equal(status, 200, JSON.stringify(body))
    const data = body?.data as { tagsByVulnerability: { results: unknown[] } }
    return data.tagsByVulnerability.results.map((r) => JSON.stringify(r)).sort()
  }

  let accounts: string[] = []
  /** Messages of the events topic the projector has not finished (committed) yet, from `/metrics`. */
  const projectorLag = async (): Promise<number> => {
    const metrics = await (await fetch(`${herald.url}/metrics`)).text()
    const lag =
      /^herald_consumer_lag_messages\{group="herald-projector",topic="engine\.events"\} (\d+)$/m.exec(metrics)
    assert.ok(lag, 'the projector lag is in /metrics')
    return Number(lag[1])
  }

  const projectedEvents = async (): Promise<number> => {
    let total = 0
    for (const account of accounts) {
      const { status, body } = await api('/v1/reports/graphql', {
        method: 'POST',
        json: {
          query:
            'query ($account: String) { events(filter: { account: $account }, limit: 1000) { pageInfo { count } } }',
          variables: { account },
        },
      })
      assert.equal(status, 200, JSON.stringify(body))
      const data = body?.data as { events: { pageInfo: { count: number } } } | undefined
      total += data?.events.pageInfo.count ?? 0
    }
    return total
  }

  before(async () => {
    herald = await startHeraldProcess({
      HERALD_DATA_DIR: dataDir,
      HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
      HERALD_LOG_LEVEL: 'info',
      // Points every 10 minutes, so a backfill over a few hours has a handful of instants.
      HERALD_REPORTS__CYCLE_TIMERS__METRICS: '600',
    })
    const events = [
      ...generateActivity({
        seed: 'rebuild-e2e',
        accounts: 3,
        count: 600,
        clock: () => Date.UTC(2026, 10, 1),
      }),
    ]
    accounts = [...new Set(events.map((event) => event.account))]
    const published = await api('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      json: events,
    })
    assert.equal(published.status, 202, JSON.stringify(published.body))
  })

  after(async () => {
    await herald?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it('refuses anyone but an administrator', async () => {
    const created = await api('/v1/auth/tokens', {
      method: 'POST',
      json: { account: 'acme', role: 'read-write' },
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    const token = String(created.body?.token)
    assert.equal((await api('/v1/reports/rebuild', { method: 'POST', token })).status, 403)
    assert.equal((await api('/v1/reports/rebuild', { token })).status, 403)
    assert.equal((await api('/v1/reports/rebuild', { method: 'POST', token: 'nobody' })).status, 401)
  })

  it('rebuilds through the CLI while reports keep answering, and answers the same afterwards', async () => {
    // Every event projected, so the report tables hold still while they are compared: its row
    // in `events` alone is not enough, since a batch's other tables may still be inserting.
    await eventually(
      async () => {
        assert.equal(await projectedEvents(), 600)
        assert.equal(await projectorLag(), 0)
      },
      { timeoutMs: 120_000 },
    )
    const before = await tagsByVulnerability()
    assert.ok(before.length > 0)
    assert.deepEqual((await api('/v1/reports/rebuild')).body?.state, 'idle')

    const stdout = captured()
    const stderr = captured()
    const code = await runRebuild(['--url', herald.url, '--token', ADMIN_TOKEN, '--poll-ms', '100'], {
      stdin: (async function* () {})(),
      stdout: stdout.output,
      stderr: stderr.output,
      env: {},
      fetch,
    })
    assert.equal(code, 0, stderr.text())
    const lines = stdout.text().trim().split('\n')
    // The count alone until the total is known, then of the total, with the share and time left.
    const counted = lines.findIndex((line) => / of \d+ events/.test(line))
    assert.ok(counted >= 0, stdout.text())
    for (const line of lines.slice(0, counted)) assert.match(line, /^catching_up: 0 events replayed$/)
    for (const line of lines.slice(counted, -1))
      assert.match(
        line,
        /^(catching_up|swapping): \d+ of \d+ events replayed \(\d+(\.\d)?%(, about .+ left)?\)$/,
      )
    const done = /^done: ([1-9]\d*) of (\d+) events replayed \(100%\)$/.exec(lines.at(-1) ?? '')
    assert.ok(done, lines.at(-1))
    assert.equal(done[1], done[2])
    assert.ok(!stdout.text().includes(ADMIN_TOKEN))

    const status = (await api('/v1/reports/rebuild')).body
    assert.equal(status?.state, 'done')
    assert.equal(status?.error, null)
    assert.deepEqual([status?.total, status?.percent, status?.etaSeconds], [status?.replayed, 100, 0])
    assert.deepEqual(await tagsByVulnerability(), before)
    // The projector resumed after the swap: new events are projected into the rebuilt tables.
    const more = [
      ...generateActivity({
        seed: 'rebuild-e2e-more',
        accounts: 3,
        count: 300,
        clock: () => Date.UTC(2026, 10, 2),
      }),
    ]
    await api('/v1/events', {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      json: more,
    })
    await eventually(async () => assert.notDeepEqual(await tagsByVulnerability(), before), {
      timeoutMs: 60_000,
    })
    assert.ok(herald.lines.some((line) => line.event === 'reports.rebuild_done'))
  })

  it('refuses a second rebuild while one runs', async () => {
    const [first, second] = await Promise.all([
      api('/v1/reports/rebuild', { method: 'POST' }),
      api('/v1/reports/rebuild', { method: 'POST' }),
    ])
    assert.deepEqual([first.status, second.status].sort(), [202, 409])
    const refused = first.status === 409 ? first : second
    assert.equal(refused.body?.code, 'rebuild_running')
    await eventually(async () => assert.equal((await api('/v1/reports/rebuild')).body?.state, 'done'), {
      timeoutMs: 60_000,
    })
  })

  it('backfills metric points from history for a past range, and refuses bad ranges', async () => {
    const created = await api('/v1/auth/tokens', {
      method: 'POST',
      json: { account: 'acme', role: 'read-write' },
    })
    const token = String(created.body?.token)
    const range = { start: '2026-11-01T00:00:00Z', end: '2026-11-01T02:00:00Z' }
    assert.equal(
      (await api('/v1/reports/metrics/backfill', { method: 'POST', json: range, token })).status,
      403,
    )
    const backwards = await api('/v1/reports/metrics/backfill', {
      method: 'POST',
      json: { start: range.end, end: range.start },
    })
    assert.equal(backwards.status, 400)
    assert.equal((backwards.body?.errors as { path: string }[] | undefined)?.[0]?.path, 'end')
    const huge = await api('/v1/reports/metrics/backfill', {
      method: 'POST',
      json: { start: '1990-01-01T00:00:00Z', end: range.end },
    })
    assert.equal(huge.status, 400)
    assert.equal(
      (await api('/v1/reports/metrics/backfill', { method: 'POST', json: { start: 'yesterday' } })).status,
      400,
    )

    const started = await api('/v1/reports/metrics/backfill', { method: 'POST', json: range })
    assert.equal(started.status, 202, JSON.stringify(started.body))
    assert.equal(started.body?.instants, 13)
    await eventually(
      async () => assert.equal((await api('/v1/reports/metrics/backfill')).body?.state, 'done'),
      {
        timeoutMs: 120_000,
      },
    )
    const points = await api(
      `/v1/reports/metrics/images.current?account=acme&start=${range.start}&end=2026-11-01T02:00:01Z&limit=100`,
    )
    assert.equal(points.status, 200, JSON.stringify(points.body))
    const list = points.body?.points as { collectedAt: string; value: number }[]
    // One point per 10-minute boundary, newest first, each the image count as of that instant.
    assert.equal(list.length, 13)
    assert.equal(list[0]?.collectedAt, '2026-11-01T02:00:00.000Z')
    assert.equal(list.at(-1)?.collectedAt, '2026-11-01T00:00:00.000Z')
    assert.ok(
      list.some((p) => p.value > 0),
      'the generated history has images by then',
    )
  })
})
