import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import {
  createProjectorHandler,
  discardRebuild,
  finishRebuildSwap,
  startRebuild,
  toEventRow,
} from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { type EngineEvent, encodeLogEvent } from '../../src/events/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { createRebuildRunner, settleRebuildLeftovers } from '../../src/reports/index.ts'
import { eventually } from '../support/eventually.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-rebuild-swap-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/**
 * The warehouse, where statements matching `failing` fail (as a kill between two statements
 * would stop them) while `faulty()` says so: by default, the first one only.
 */
const interrupted = (warehouse: Warehouse, failing: RegExp, faulty?: () => boolean): Warehouse => {
  let failed = 0
  return {
    command: async (sql, params) => {
      if (failing.test(sql) && (faulty?.() ?? failed === 0)) {
        failed++
        throw new Error(`stopped before: ${sql}`)
      }
      return await warehouse.command(sql, params)
    },
    query: (sql, params) => warehouse.query(sql, params),
    insert: (table, rows, options) => warehouse.insert(table, rows, options),
    ...(warehouse.insertNative === undefined
      ? {}
      : {
          insertNative: (table, block, options) =>
            warehouse.insertNative?.(table, block, options) as Promise<void>,
        }),
    ping: () => warehouse.ping(),
    close: () => warehouse.close(),
  }
}

describe('a rebuild swap that stops midway', () => {
  let n = 0
  /**
   * A warehouse whose live report tables hold one event's projection plus rows a projection
   * bug left (`bogus`), which a rebuild repairs: tag_history and tags_current, exchanged
   * second and third of the seven.
   */
  const projected = async () => {
    const warehouse = await createChdbWarehouse({ path: join(dir, `w${n++}`) })
    await migrate(warehouse, warehouseMigrations)
    const event = {
      specversion: '1.0',
      id: 'm1',
      source: '/engine',
      type: 'herald.report.tag.digest_changed',
      account: 'acme',
      time: '2026-01-01T00:00:01.000Z',
      data: { registry: 'docker.io', repository: 'acme/api', tag: 'latest', digest: 'sha256:aaa' },
    } as unknown as EngineEvent
    const message = encodeLogEvent(event)
    await createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })({
      topic: 'engine.events',
      partition: 0,
      messages: [
        {
          topic: 'engine.events',
          partition: 0,
          offset: 0,
          key: 'acme',
          value: message.value,
          headers: message.headers ?? {},
          timestamp: 0,
        },
      ],
    })
    await warehouse.command(
      "INSERT INTO tag_history SELECT 'acme','docker.io','acme/api','bogus',7,'sha256:bad',now64(3),0,NULL,'',7",
    )
    await warehouse.command(
      "INSERT INTO tags_current SELECT 'acme','docker.io','acme/api','bogus','sha256:bad',1,now64(3),7",
    )
    return warehouse
  }
  const tags = async (warehouse: Warehouse) => ({
    tag_history: (
      await warehouse.query<{ tag: string }>('SELECT tag FROM tag_history FINAL ORDER BY tag')
    ).map((r) => r.tag),
    tags_current: (
      await warehouse.query<{ tag: string }>('SELECT tag FROM tags_current FINAL ORDER BY tag')
    ).map((r) => r.tag),
  })
  const OLD = { tag_history: ['bogus', 'latest'], tags_current: ['bogus', 'latest'] }
  const REBUILT = { tag_history: ['latest'], tags_current: ['latest'] }
  const leftovers = async (warehouse: Warehouse) =>
    (
      await warehouse.query<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = currentDatabase()
          AND (name LIKE '%_rebuild' OR name = 'projection_rebuild_swap') ORDER BY name`,
      )
    ).map((t) => t.name)

  it('is finished at the next start, the tables it had not exchanged yet exchanged, not dropped', async () => {
    const warehouse = await projected()
    const killed = await startRebuild({
      warehouse: interrupted(warehouse, /^EXCHANGE TABLES tags_current /),
      logger: silentLogger,
    })
    await killed.catchUp()
    await assert.rejects(killed.swap(), { code: 'rebuild_swap_unfinished', retriable: true })
    // Partly rebuilt: tag_history is the new one, tags_current the old.
    assert.deepEqual(await tags(warehouse), {
      tag_history: REBUILT.tag_history,
      tags_current: OLD.tags_current,
    })

    // What an embedded Herald does at its start, before its projector runs.
    const left = await discardRebuild(warehouse)
    assert.deepEqual(left.exchanged, [
      'tags_current',
      'image_vulnerabilities',
      'finding_lifecycle',
      'policy_evaluations',
      'policy_evaluation_latest',
    ])
    assert.deepEqual(await tags(warehouse), REBUILT)
    assert.deepEqual(await leftovers(warehouse), [])
    // Nothing left to do the next time.
    assert.deepEqual(await discardRebuild(warehouse), { exchanged: [], dropped: [] })
    assert.deepEqual(await tags(warehouse), REBUILT)
    await warehouse.close()
  })

  it('leaves the live tables as they were when it fails before it began (a fresh table gone)', async () => {
    const warehouse = await projected()
    const rebuild = await startRebuild({ warehouse, logger: silentLogger })
    await rebuild.catchUp()
    await warehouse.command('DROP TABLE tags_current_rebuild')
    await assert.rejects(
      rebuild.swap(),
      (error: Error & { code?: string }) => error.code !== 'rebuild_swap_unfinished',
    )
    assert.deepEqual(await tags(warehouse), OLD)
    assert.deepEqual((await discardRebuild(warehouse)).exchanged, [])
    assert.deepEqual(await tags(warehouse), OLD)
    assert.deepEqual(await leftovers(warehouse), [])
    await warehouse.close()
  })

  it('is finished by the running rebuild, the projector held still until it is, and the rebuild is done', async () => {
    const warehouse = await projected()
    const calls: string[] = []
    const lines: string[] = []
    const runner = createRebuildRunner({
      warehouse: interrupted(warehouse, /^EXCHANGE TABLES tags_current /),
      logger: (_level, event) => void lines.push(event),
      clock: Date.now,
      projector: {
        pause: async () => void calls.push('pause'),
        resume: async () => {
          const now = await tags(warehouse)
          calls.push(
            `resume ${JSON.stringify(now) === JSON.stringify(REBUILT) ? 'rebuilt' : JSON.stringify(now)}`,
          )
        },
      },
    })
    runner.start()
    await eventually(() => assert.match(runner.status().state, /done|failed/), { timeoutMs: 30_000 })
    assert.equal(runner.status().state, 'done', String(runner.status().error))
    assert.equal(runner.status().error, null)
    assert.deepEqual(calls, ['pause', 'resume rebuilt'])
    assert.deepEqual(await tags(warehouse), REBUILT)
    assert.deepEqual(await leftovers(warehouse), [])
    assert.ok(lines.includes('reports.rebuild_swap_retrying'))
    assert.ok(lines.includes('reports.rebuild_swap_finished'))
    await warehouse.close()
  })

  it('when Herald stops before it could be finished, says the tables are partly rebuilt and holds the projector; the next start finishes it', async () => {
    const warehouse = await projected()
    let broken = true
    const calls: string[] = []
    const runner = createRebuildRunner({
      warehouse: interrupted(warehouse, /^EXCHANGE TABLES tags_current /, () => broken),
      logger: silentLogger,
      clock: Date.now,
      swapRetry: { min: 20, max: 20 },
      projector: {
        pause: async () => void calls.push('pause'),
        resume: async () => void calls.push('resume'),
      },
    })
    runner.start()
    await eventually(() => assert.match(String(runner.status().error), /finishing the swap, try 3/), {
      timeoutMs: 30_000,
    })
    assert.equal(runner.status().state, 'swapping')
    await runner.stop()
    const status = runner.status()
    assert.equal(status.state, 'failed')
    assert.match(
      String(status.error),
      /partly rebuilt until it is finished: Herald tries again, and at its next start/,
    )
    assert.deepEqual(calls, ['pause'])
    assert.deepEqual(await tags(warehouse), {
      tag_history: REBUILT.tag_history,
      tags_current: OLD.tags_current,
    })

    broken = false
    const lines: string[] = []
    await settleRebuildLeftovers(warehouse, (_level, event) => void lines.push(event), { discard: false })
    assert.deepEqual(await tags(warehouse), REBUILT)
    assert.deepEqual(await leftovers(warehouse), [])
    assert.deepEqual(lines, ['reports.rebuild_swap_finished'])
    await warehouse.close()
  })

  it('cannot be finished once a fresh table it had to exchange is gone: a new rebuild starts over and puts every table right', async () => {
    const warehouse = await projected()
    const killed = await startRebuild({
      warehouse: interrupted(warehouse, /^EXCHANGE TABLES tags_current /),
      logger: silentLogger,
    })
    await killed.catchUp()
    await assert.rejects(killed.swap(), { code: 'rebuild_swap_unfinished' })
    await warehouse.command('DROP TABLE tags_current_rebuild')
    await assert.rejects(finishRebuildSwap(warehouse), {
      code: 'rebuild_swap_unfinished',
      retriable: false,
      message:
        /tags_current_rebuild, the rebuilt tags_current not exchanged yet, is gone.*only a new rebuild/,
    })
    assert.deepEqual(await tags(warehouse), {
      tag_history: REBUILT.tag_history,
      tags_current: OLD.tags_current,
    })

    const rebuild = await startRebuild({ warehouse, logger: silentLogger })
    await rebuild.catchUp()
    await rebuild.swap()
    assert.deepEqual(await tags(warehouse), REBUILT)
    assert.deepEqual(await leftovers(warehouse), [])
    await warehouse.close()
  })
})

describe('a rebuild catching up while the projector stores events', () => {
  const tagPointed = (offset: number, tag: string, time: string) => {
    const event = {
      specversion: '1.0',
      id: `e${offset}`,
      source: '/engine',
      type: 'herald.report.tag.digest_changed',
      account: 'acme',
      time,
      data: { registry: 'docker.io', repository: 'acme/api', tag, digest: `sha256:${tag}` },
    } as unknown as EngineEvent
    const encoded = encodeLogEvent(event)
    const message: LogMessage = {
      topic: 'engine.events',
      partition: 0,
      offset,
      key: 'acme',
      value: encoded.value,
      headers: encoded.headers ?? {},
      timestamp: Date.parse(time),
    }
    return { event, message }
  }
  const batch = (...pointed: ReturnType<typeof tagPointed>[]) => ({
    topic: 'engine.events',
    partition: 0,
    messages: pointed.map((p) => p.message),
  })

  it('replays an event whose row appears after rows at later positions (a batch stored in parts)', async () => {
    const warehouse = await createChdbWarehouse({ path: join(dir, 'parts') })
    await migrate(warehouse, warehouseMigrations)
    const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    await project(batch(tagPointed(0, 'latest', '2026-01-01T00:00:00.000Z')))
    // The next batch spans two months, so its insert writes one part per month, and it failed
    // midway: February's part (position 2) is stored, January's (position 1) not, and nothing
    // is projected. Its retry comes while the rebuild catches up.
    const january = tagPointed(1, 'v1', '2026-01-31T00:00:00.000Z')
    const february = tagPointed(2, 'v2', '2026-02-01T00:00:00.000Z')
    await warehouse.insert('events', [toEventRow(february.event, february.message, Date.now())])
    const rebuild = await startRebuild({ warehouse, logger: silentLogger })
    await rebuild.catchUp()
    await project(batch(january, february))
    await rebuild.swap()
    const tags = await warehouse.query<{ tag: string }>('SELECT tag FROM tags_current FINAL ORDER BY tag')
    assert.deepEqual(
      tags.map((t) => t.tag),
      ['latest', 'v1', 'v2'],
    )
    await warehouse.close()
  })
})
