import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { validDataOf } from '../../schemas/fixtures.ts'
import { loadConfig } from '../../src/config/index.ts'
import { type Herald, startHerald } from '../../src/herald.ts'
import type { LogFields, Logger } from '../../src/observability/index.ts'
import { eventually } from '../support/eventually.ts'

const ADMIN_TOKEN = `admin-${randomBytes(12).toString('hex')}`
const EVENT_TYPE = 'user.image.analysis.completed'
const BASE = '/v1/notifications/endpoints/webhook/configurations'
type Json = Record<string, unknown>

interface Readiness {
  readonly status: number
  readonly checks: Record<string, { status: string; error?: string }>
}

/**
 * `/ready` of Herald as `herald start` composes it (`startHerald`), embedded throughout: the
 * SQLite log and stores, chDB, the digest buffer in `data_dir/digests.sqlite`.
 */
describe('/ready of an embedded Herald', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-readiness-'))
  const logged: { event: string; fields: LogFields }[] = []
  const logger: Logger = (_level, event, fields = {}) => {
    logged.push({ event, fields })
  }
  let herald: Herald

  const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
    const response = await fetch(`${herald.url}${path}`, {
      method,
      headers: { 'content-type': type, authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await response.text()
    return { status: response.status, text, json: (text.startsWith('{') ? JSON.parse(text) : {}) as Json }
  }
  const ready = async (): Promise<Readiness> => {
    const response = await fetch(`${herald.url}/ready`)
    const body = (await response.json()) as Pick<Readiness, 'checks'>
    return { status: response.status, checks: body.checks }
  }

  before(async () => {
    const config = loadConfig({
      env: {
        HERALD_DATA_DIR: dir,
        HERALD_LISTEN: '127.0.0.1',
        HERALD_PORT: '0',
        HERALD_ADMIN_TOKEN: ADMIN_TOKEN,
        HERALD_OUTBOUND_ALLOWLIST: '127.0.0.1',
      },
    })
    herald = await startHerald(config, { logger })
  })
  after(async () => {
    await herald?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists the digest store and both processed-id windows among its ports, ready', async () => {
    const { status, checks } = await ready()
    assert.equal(status, 200, JSON.stringify(checks))
    assert.deepEqual(Object.keys(checks).sort(), [
      'delivery_read_model',
      'delivery_store',
      'digest_store',
      'event_log',
      'event_store',
      'processed_ids',
      'projected_ids',
      'projector',
      'warehouse',
    ])
    assert.deepEqual(checks.digest_store, { status: 'ok' })
    assert.deepEqual(checks.processed_ids, { status: 'ok' })
    assert.deepEqual(checks.projected_ids, { status: 'ok' })
  })

  it('answers 503 naming the digest store and its lost write-ahead log while the router cannot make held events durable, every other port ready', async () => {
    // A digest configuration, once the router works from the snapshot that holds it.
    const swaps = logged.filter((l) => l.event === 'router.index_swapped').length
    const created = await call('POST', BASE, {
      url: 'http://127.0.0.1:9/hook',
      description: 'readiness',
      digest: true,
      // No window closes while the test runs: only the router writes to the buffer.
      digest_window_seconds: 3_600,
    })
    assert.equal(created.status, 201, created.text)
    const selector = await call('POST', `${BASE}/${String(created.json.uuid)}/selectors`, {
      scope: 'account',
      event: { level: '*', type: EVENT_TYPE, resource_type: '*' },
    })
    assert.equal(selector.status, 201, selector.text)
    await eventually(() =>
      assert.ok(logged.filter((l) => l.event === 'router.index_swapped').length > swaps, 'not swapped yet'),
    )

    // The buffer's write-ahead log is deleted before its first sync opens it: SQLite writes on
    // to the file it has open, and every sync of the log finds nothing at its path (ENOENT).
    unlinkSync(join(dir, 'digests.sqlite-wal'))
    const accepted = await call(
      'POST',
      '/v1/events',
      {
        specversion: '1.0',
        id: `held-${randomUUID()}`,
        source: '/engine/analyzer',
        type: EVENT_TYPE,
        account: 'admin',
        time: new Date().toISOString(),
        level: 'info',
        resourcetype: 'image',
        data: validDataOf(EVENT_TYPE),
      },
      'application/cloudevents+json',
    )
    assert.equal(accepted.status, 202, accepted.text)

    const { status, checks } = await eventually(async () => {
      const answer = await ready()
      assert.equal(answer.status, 503, JSON.stringify(answer.checks))
      return answer
    })
    assert.equal(checks.digest_store?.status, 'unavailable')
    // Where the data is kept only the server log says.
    assert.equal(
      checks.digest_store?.error,
      'digest store: its write-ahead log was deleted while open: commits since the last checkpoint would be lost with the process',
    )
    assert.match(
      String(
        logged.find((l) => l.event === 'http.not_ready' && l.fields.check === 'digest_store')?.fields.error,
      ),
      /^digest store: its write-ahead log \S+digests\.sqlite-wal was deleted while open/,
    )
    for (const [name, check] of Object.entries(checks))
      if (name !== 'digest_store') assert.deepEqual(check, { status: 'ok' }, name)
    assert.equal(status, 503)
    // The router said why, and hands the batch over again.
    const failed = logged.find((l) => l.event === 'router.digest_record_failed')
    assert.equal(
      failed?.fields.error,
      'digest store record: the write-ahead log could not be synced to disk (ENOENT)',
    )
    assert.equal(failed?.fields.retried, true)
  })

  it('answers 503 naming each processed-id window, the router’s and the projector’s on its thread, once its write-ahead log is deleted', async () => {
    // SQLite writes on to a log deleted under it, without an error: a crash of the process would
    // then lose what the windows recorded since their last checkpoint.
    unlinkSync(join(dir, 'processed-ids.sqlite-wal'))
    unlinkSync(join(dir, 'projected-ids.sqlite-wal'))
    const { status, checks } = await ready()
    assert.equal(status, 503)
    assert.equal(checks.processed_ids?.status, 'unavailable')
    assert.equal(
      checks.processed_ids?.error,
      'router processed-id window: its write-ahead log was deleted while open: commits since the last checkpoint would be lost with the process',
    )
    // From the projector's thread too, the answer names no path.
    assert.equal(checks.projected_ids?.status, 'unavailable')
    assert.equal(
      checks.projected_ids?.error,
      'projector processed-id window: its write-ahead log was deleted while open: commits since the last checkpoint would be lost with the process',
    )
    assert.ok(!JSON.stringify(checks).includes(dir))
    // The ports whose files were left alone are as they were.
    for (const name of [
      'event_log',
      'event_store',
      'warehouse',
      'projector',
      'delivery_store',
      'delivery_read_model',
    ])
      assert.deepEqual(checks[name], { status: 'ok' }, name)
  })
})
