import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import {
  createProjectorHandler,
  createSwapGate,
  discardRebuild,
  finishRebuildSwap,
  type SwapGate,
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
    // Killed: its lease is given up (a kill's runs out).
    await killed.release()
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
    // What the runner does then: its own leftovers dropped, under its lease.
    assert.equal((await rebuild.discard()).dropped.length, 7)
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
    await runner.start()
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
    await runner.start()
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
    await settleRebuildLeftovers(warehouse, (_level, event) => void lines.push(event))
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
    await killed.release()
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

describe('two Herald instances rebuilding one warehouse', () => {
  let n = 0
  let opened: Warehouse | undefined
  afterEach(async () => {
    await opened?.close()
    opened = undefined
  })
  const event = (offset: number, tag: string) => {
    const encoded = encodeLogEvent({
      specversion: '1.0',
      id: `i${offset}`,
      source: '/engine',
      type: 'herald.report.tag.digest_changed',
      account: 'acme',
      time: '2026-01-01T00:00:01.000Z',
      data: { registry: 'docker.io', repository: 'acme/api', tag, digest: `sha256:${tag}` },
    } as unknown as EngineEvent)
    return {
      topic: 'engine.events',
      partition: 0,
      offset,
      key: 'acme',
      value: encoded.value,
      headers: encoded.headers ?? {},
      timestamp: 0,
    }
  }
  /** A warehouse whose history holds `count` tag events (tags t0…), projected. */
  const history = async (count: number) => {
    const warehouse = await createChdbWarehouse({ path: join(dir, `shared${n++}`) })
    opened = warehouse
    await migrate(warehouse, warehouseMigrations)
    await createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })({
      topic: 'engine.events',
      partition: 0,
      messages: Array.from({ length: count }, (_, i) => event(i, `t${i}`)),
    })
    return warehouse
  }
  const tagCount = async (warehouse: Warehouse) =>
    Number((await warehouse.query<{ n: number }>('SELECT count() AS n FROM tags_current FINAL'))[0]?.n ?? 0)

  it('refuses a second rebuild while the first runs, naming it, and the first swaps in every row', async () => {
    const warehouse = await history(30)
    const first = await startRebuild({ warehouse, logger: silentLogger, batchSize: 10 })
    await first.catchUp()
    // Another instance asks for a rebuild meanwhile: it must not make the fresh tables anew.
    await assert.rejects(startRebuild({ warehouse, logger: silentLogger }), {
      code: 'rebuild_running',
      message: /a rebuild is running on another Herald instance/,
    })
    await first.swap()
    assert.equal(await tagCount(warehouse), 30)
    // Once it is done, a rebuild may start again.
    const again = await startRebuild({ warehouse, logger: silentLogger })
    await again.swap()
    assert.equal(await tagCount(warehouse), 30)
  })

  it('starts once the lease of an instance that died during its rebuild has run out', async () => {
    const warehouse = await history(3)
    // What a Herald killed during its rebuild leaves: its claim, which runs out by itself.
    await warehouse.command(`CREATE TABLE IF NOT EXISTS projection_rebuild_lock (owner String, seq UInt64,
      expires_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (owner, seq)`)
    await warehouse.command(
      `INSERT INTO projection_rebuild_lock SELECT 'died', 1, now64(3) + toIntervalMillisecond(1500)`,
    )
    await warehouse.command('CREATE TABLE tags_current_rebuild AS tags_current')
    await assert.rejects(startRebuild({ warehouse, logger: silentLogger }), { code: 'rebuild_running' })
    const rebuild = await eventually(() => startRebuild({ warehouse, logger: silentLogger }), {
      timeoutMs: 10_000,
    })
    await rebuild.swap()
    assert.equal(await tagCount(warehouse), 3)
  })

  it('answers 409-style on the second instance and shows it the first one’s rebuild to its end', async () => {
    const warehouse = await history(20)
    let swapping!: () => void
    const held = new Promise<void>((resolve) => {
      swapping = resolve
    })
    let paused = false
    const first = createRebuildRunner({
      warehouse,
      logger: silentLogger,
      clock: Date.now,
      projector: {
        pause: async () => {
          paused = true
          await held
        },
        resume: async () => {},
      },
    })
    const second = createRebuildRunner({ warehouse, logger: silentLogger, clock: Date.now })
    await first.start()
    await eventually(() => assert.ok(paused))
    await assert.rejects(second.start(), {
      code: 'rebuild_running',
      message: /running on another Herald instance/,
    })
    assert.equal(second.status().state, 'idle')
    const seen = await second.current()
    assert.equal(seen.state, 'swapping')
    assert.equal(seen.startedAt, first.status().startedAt)
    assert.equal(seen.replayed, 20)
    swapping()
    await eventually(async () => assert.equal((await second.current()).state, 'done'), { timeoutMs: 20_000 })
    await first.stop()
    assert.deepEqual(await second.current(), first.status())
    assert.equal(await tagCount(warehouse), 20)
    // Now the second may rebuild.
    await second.start()
    await eventually(() => assert.equal(second.status().state, 'done'), { timeoutMs: 20_000 })
    await second.stop()
    assert.deepEqual(await first.current(), second.status())
  })

  it('tells the others a rebuild failed when the instance running it stopped holding its lease', async () => {
    const warehouse = await history(1)
    const runner = createRebuildRunner({ warehouse, logger: silentLogger, clock: Date.now })
    assert.equal((await runner.current()).state, 'idle')
    // A status an instance killed while catching up wrote, its lease gone.
    await warehouse.command(
      `INSERT INTO projection_rebuild_status (owner, seq, status) SELECT 'died', 1, {status:String}`,
      {
        status: JSON.stringify({
          state: 'catching_up',
          startedAt: '2026-01-01T00:00:00.000Z',
          finishedAt: null,
          replayed: 5,
          total: 10,
          percent: 50,
          etaSeconds: 3,
          error: null,
        }),
      },
    )
    const seen = await runner.current()
    assert.equal(seen.state, 'failed')
    assert.equal(seen.startedAt, '2026-01-01T00:00:00.000Z')
    assert.match(String(seen.error), /the Herald instance running it stopped/)
  })
})

describe('instances sharing a warehouse, each projecting its partitions, while one of them rebuilds', () => {
  let n = 0
  const opened: Warehouse[] = []
  const gates: SwapGate[] = []
  afterEach(async () => {
    for (const gate of gates.splice(0)) await gate.close()
    for (const warehouse of opened.splice(0)) await warehouse.close()
  })
  /** A tag event of `account` at `offset` of its partition (`acme` in 0, `beta` in 1). */
  const message = (account: 'acme' | 'beta', offset: number): LogMessage => {
    const encoded = encodeLogEvent({
      specversion: '1.0',
      id: `${account}-${offset}`,
      source: '/engine',
      type: 'herald.report.tag.digest_changed',
      account,
      time: '2026-01-01T00:00:01.000Z',
      data: { registry: 'docker.io', repository: `${account}/api`, tag: `t${offset}`, digest: 'sha256:a' },
    } as unknown as EngineEvent)
    return {
      topic: 'engine.events',
      partition: account === 'acme' ? 0 : 1,
      offset,
      key: account,
      value: encoded.value,
      headers: encoded.headers ?? {},
      timestamp: 0,
    }
  }
  const batch = (account: 'acme' | 'beta', from: number, to: number) => ({
    topic: 'engine.events',
    partition: account === 'acme' ? 0 : 1,
    messages: Array.from({ length: to - from + 1 }, (_, i) => message(account, from + i)),
  })
  /** A projector instance on `warehouse`, as a Herald sharing a ClickHouse server runs it. */
  const instance = (warehouse: Warehouse) => {
    const gate = createSwapGate({ warehouse, logger: silentLogger, pollMs: 50 })
    gates.push(gate)
    return createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger, gate })
  }
  const shared = async () => {
    const warehouse = await createChdbWarehouse({ path: join(dir, `instances${n++}`) })
    opened.push(warehouse)
    await migrate(warehouse, warehouseMigrations)
    return warehouse
  }
  const tagsOf = async (warehouse: Warehouse) =>
    (
      await warehouse.query<{ account: string; tag: string }>(
        'SELECT account, tag FROM tags_current FINAL ORDER BY account, toUInt32(substring(tag, 2))',
      )
    ).map((r) => `${r.account}/${r.tag}`)
  const all = (acme: number, beta: number) => [
    ...Array.from({ length: acme }, (_, i) => `acme/t${i}`),
    ...Array.from({ length: beta }, (_, i) => `beta/t${i}`),
  ]
  /** `warehouse`, which calls `onSwapBegins` (and waits for it) before the swap's first statement. */
  const beginning = (warehouse: Warehouse, onSwapBegins: () => Promise<void>): Warehouse => {
    let begun = false
    return {
      ...warehouse,
      command: async (sql, params) => {
        if (!begun && /^ALTER TABLE \w+_rebuild MODIFY COMMENT/.test(sql)) {
          begun = true
          await onSwapBegins()
        }
        return await warehouse.command(sql, params)
      },
    }
  }
  const settledWithin = (work: Promise<unknown>, ms: number) =>
    Promise.race([work.then(() => 'settled'), sleep(ms).then(() => 'waiting')])

  it('keeps a batch another instance projects during the swap: it waits for the swap, then goes into the new tables', async () => {
    const warehouse = await shared()
    const a = instance(warehouse)
    const b = instance(warehouse)
    await a(batch('acme', 0, 9))
    await b(batch('beta', 0, 9))
    let late: Promise<void> | undefined
    let meanwhile: string | undefined
    const rebuild = await startRebuild({
      warehouse: beginning(warehouse, async () => {
        // The last catch-up has read how far the projectors went: a batch stored in the old
        // tables from now on would be dropped with them.
        late = b(batch('beta', 10, 12))
        meanwhile = await settledWithin(late, 1_500)
      }),
      logger: silentLogger,
    })
    await rebuild.catchUp()
    // Instance a holds its own projector still for the swap; b goes on.
    await rebuild.swap()
    await late
    assert.deepEqual(await tagsOf(warehouse), all(10, 13))
    assert.equal(meanwhile, 'waiting')
    // And b goes on projecting into the new tables, from their state.
    await b(batch('beta', 13, 13))
    assert.deepEqual(await tagsOf(warehouse), all(10, 14))
  })

  it('waits before its last catch-up for a batch another instance was storing when the swap began', async () => {
    const warehouse = await shared()
    const a = instance(warehouse)
    let hold: Promise<void> | undefined
    let release!: () => void
    const b = instance({
      ...warehouse,
      insert: async (table, rows, options) => {
        if (table === 'tags_current' && hold !== undefined) await hold
        return await warehouse.insert(table, rows, options)
      },
    })
    await a(batch('acme', 0, 9))
    await b(batch('beta', 0, 9))
    const rebuild = await startRebuild({
      warehouse: beginning(warehouse, async () => {
        release()
        await settledWithin(storing, 1_500)
      }),
      logger: silentLogger,
    })
    await rebuild.catchUp()
    hold = new Promise<void>((resolve) => {
      release = resolve
    })
    const storing = b(batch('beta', 10, 12))
    // The batch is under way, its tags_current insert held back a while.
    setTimeout(() => release(), 1_500).unref()
    await rebuild.swap()
    await storing
    assert.deepEqual(await tagsOf(warehouse), all(10, 13))
  })

  it('is not held back by the pause of a rebuild whose instance died, once its lease ran out', async () => {
    const warehouse = await shared()
    const b = instance(warehouse)
    await b(batch('beta', 0, 1))
    // What an instance killed in its final catch-up leaves: its pause, and a claim running out.
    await warehouse.command(`CREATE TABLE IF NOT EXISTS projection_rebuild_lock (owner String, seq UInt64,
      expires_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY (owner, seq)`)
    await warehouse.command(
      `INSERT INTO projection_rebuild_lock SELECT 'died', 1, now64(3) + toIntervalMillisecond(3000)`,
    )
    await warehouse.command(
      "CREATE TABLE projection_rebuild_pause (owner String) ENGINE = Null COMMENT 'died'",
    )
    // b, its batches done, held still for it within a second of its looks.
    await eventually(async () =>
      assert.deepEqual(
        await warehouse.query('SELECT argMax(acked, seq) AS acked FROM projection_projectors GROUP BY owner'),
        [{ acked: 'died' }],
      ),
    )
    const began = Date.now()
    await b(batch('beta', 2, 3))
    assert.ok(Date.now() - began >= 500, 'held back while the lease ran')
    assert.deepEqual(await tagsOf(warehouse), all(0, 4))
    // The next start, or rebuild, puts it away.
    await settleRebuildLeftovers(warehouse, silentLogger)
    assert.deepEqual(
      await warehouse.query("SELECT name FROM system.tables WHERE name = 'projection_rebuild_pause'"),
      [],
    )
  })

  it('finishes a swap a dead instance began before storing a batch, which goes into the new tables', async () => {
    const warehouse = await shared()
    const b = instance(warehouse)
    await b(batch('beta', 0, 1))
    await warehouse.command(
      "INSERT INTO tags_current SELECT 'beta','docker.io','beta/api','t99','sha256:bad',1,now64(3),7",
    )
    const killed = await startRebuild({
      warehouse: interrupted(warehouse, /^EXCHANGE TABLES tags_current /),
      logger: silentLogger,
    })
    await killed.catchUp()
    await assert.rejects(killed.swap(), { code: 'rebuild_swap_unfinished' })
    await killed.release()
    await b(batch('beta', 2, 2))
    assert.deepEqual(await tagsOf(warehouse), all(0, 3))
    assert.deepEqual(
      await warehouse.query(
        "SELECT name FROM system.tables WHERE name LIKE '%_rebuild' OR name LIKE 'projection_rebuild_%' AND name NOT IN ('projection_rebuild_lock', 'projection_rebuild_status')",
      ),
      [],
    )
  })
})
