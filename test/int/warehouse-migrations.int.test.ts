import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  acquireLease,
  expireLeases,
  migrate,
  warehouseMigrations,
} from '../../projections/migrations/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-migrations-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('two Herald instances migrating one warehouse at once', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'shared') })
  })
  after(async () => {
    await warehouse.close()
  })

  const count = async (table: string) =>
    Number((await warehouse.query<{ n: number }>(`SELECT count() AS n FROM ${table}`))[0]?.n)
  const tables = async () =>
    (
      await warehouse.query<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = currentDatabase()
          AND (name LIKE 'events%' OR name LIKE 'policy_evaluation_latest%') ORDER BY name`,
      )
    ).map((t) => t.name)

  it('lets one run a migration while the other waits, then finds it applied: every row kept', async () => {
    await migrate(
      warehouse,
      warehouseMigrations.filter((m) => m.version <= 6),
    )
    // 12 months of events, 2,000 a month: migration 7 copies them a month at a time.
    await warehouse.command(`INSERT INTO events (id, source, type, subject, account, level, resource_type, subtype,
        time, data, ingested_at, log_topic, log_partition, log_offset)
      SELECT toString(number), '/s', 't', '', 'acme', 'info', '', '', toDateTime64('2024-01-01 00:00:00', 3, 'UTC')
             + toIntervalDay(intDiv(number, 2000) * 31) + toIntervalSecond(number % 2000), '{}', now64(3), 'engine.events', 0, number
        FROM numbers(24000)`)
    assert.equal(await count('events'), 24_000)

    // The second starts while the first is copying its first months.
    const logs: string[] = []
    let second: Promise<Awaited<ReturnType<typeof migrate>>> | undefined
    const startSecond = () =>
      migrate(warehouse, warehouseMigrations, {
        log: (event, fields) => {
          if (event === 'migrations.waiting' || event === 'migrations.applying')
            logs.push(`B ${event} ${fields.version ?? ''}`)
        },
      })
    const first = migrate(warehouse, warehouseMigrations, {
      log: (event, fields) => {
        if (event === 'migrations.progress' && fields.partitions === '2/12') second ??= startSecond()
      },
    })
    const [a, b] = await Promise.allSettled([first, first.finally(() => second)])
    assert.equal(a.status, 'fulfilled', String(a.status === 'rejected' && a.reason))
    assert.equal(b.status, 'fulfilled', String(b.status === 'rejected' && b.reason))
    assert.ok(second !== undefined)
    assert.deepEqual((await first).applied, [7, 8, 9, 10])
    assert.deepEqual((await second).applied, [])
    assert.equal((await second).version, 10)
    assert.deepEqual(logs, ['B migrations.waiting '])

    assert.equal(await count('events'), 24_000)
    assert.deepEqual(await tables(), ['events', 'policy_evaluation_latest'])
    const [key] = await warehouse.query<{ sorting_key: string }>(
      `SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'`,
    )
    assert.equal(key?.sorting_key, 'account, time, id, source')
  })
})

describe('the warehouse lease', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'lease') })
  })
  after(async () => {
    await warehouse.close()
  })

  it('waits for the claim of a holder that died to run out, then migrates', async () => {
    await warehouse.command(`CREATE TABLE IF NOT EXISTS died_lock (owner String, seq UInt64, expires_at DateTime64(3, 'UTC'))
      ENGINE = MergeTree ORDER BY (owner, seq)`)
    await warehouse.command(`INSERT INTO died_lock SELECT 'died', 1, now64(3) + toIntervalMillisecond(1500)`)
    const waiting: unknown[] = []
    const started = performance.now()
    const { applied } = await migrate(warehouse, warehouseMigrations.slice(0, 1), {
      table: 'died',
      lease: { pollMs: 50 },
      log: (event, fields) => {
        if (event === 'migrations.waiting') waiting.push(fields.holder)
      },
    })
    assert.deepEqual(applied, [1])
    assert.deepEqual(waiting, ['died'])
    assert.ok(performance.now() - started > 1_000)
  })

  it('lets one claimant at a time hold it, however many try at once', async () => {
    let inside = 0
    const seen: number[] = []
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const lease = await acquireLease(warehouse, { table: 'contended_lock', pollMs: 20 })
        inside++
        seen.push(inside)
        await warehouse.query('SELECT 1')
        lease.assertHeld()
        inside--
        await lease.release()
      }),
    )
    assert.deepEqual(seen, [1, 1, 1, 1, 1])
  })

  it('stops counting itself the holder once its renewals stop, before another can take it', async () => {
    const first = await acquireLease(warehouse, { table: 'stalled_lock', leaseMs: 300 })
    first.assertHeld()
    // The process stalls: no renewal runs.
    const until = performance.now() + 400
    while (performance.now() < until) {}
    assert.throws(() => first.assertHeld(), /lost the lease of stalled_lock/)
    const second = await acquireLease(warehouse, { table: 'stalled_lock', leaseMs: 300, pollMs: 20 })
    second.assertHeld()
    assert.throws(() => first.assertHeld(), /lost the lease/)
    await second.release()
    await first.release()
  })

  it('refuses at once, naming the holder, when asked not to wait; takes it once free', async () => {
    const first = await acquireLease(warehouse, { table: 'unwaited_lock' })
    await assert.rejects(acquireLease(warehouse, { table: 'unwaited_lock', wait: false }), {
      name: 'LeaseHeldError',
      holder: first.owner,
      message: new RegExp(`held by ${first.owner} for \\d+ ms more`),
    })
    await first.release()
    const second = await acquireLease(warehouse, { table: 'unwaited_lock', wait: false })
    second.assertHeld()
    await second.release()
    // Many at once, none waiting: at most one holds it, and the others are refused.
    const tries = await Promise.allSettled(
      Array.from({ length: 3 }, () => acquireLease(warehouse, { table: 'raced_lock', wait: false })),
    )
    const held = tries.filter((t) => t.status === 'fulfilled')
    assert.equal(held.length, 1)
    for (const t of tries) if (t.status === 'fulfilled') await t.value.release()
  })

  it('ends the claims a killed holder left running, for a warehouse no one else uses, so the lease is free at once', async () => {
    // A lease table not created yet holds no claim, and is not created.
    assert.deepEqual(await expireLeases(warehouse, ['killed_lock']), new Map())
    const made = async () =>
      (await warehouse.query<{ name: string }>("SELECT name FROM system.tables WHERE name = 'killed_lock'"))
        .length
    assert.equal(await made(), 0)
    // A claim released ends by itself: nothing to expire.
    await (await acquireLease(warehouse, { table: 'killed_lock', wait: false })).release()
    assert.deepEqual(await expireLeases(warehouse, ['killed_lock']), new Map())
    // A holder killed without releasing: its claim runs a minute more, renewed by no one.
    await warehouse.command(
      `INSERT INTO killed_lock SELECT 'killed', 3, now64(3) + toIntervalMillisecond(60000)`,
    )
    await assert.rejects(acquireLease(warehouse, { table: 'killed_lock', wait: false }), {
      name: 'LeaseHeldError',
      holder: 'killed',
    })
    assert.deepEqual(
      await expireLeases(warehouse, ['killed_lock', 'never_made_lock']),
      new Map([['killed_lock', 1]]),
    )
    const taken = await acquireLease(warehouse, { table: 'killed_lock', wait: false })
    taken.assertHeld()
    await taken.release()
  })

  it('keeps a live holder’s lease by renewing it, so no one else takes it', async () => {
    const first = await acquireLease(warehouse, { table: 'renewed_lock', leaseMs: 800 })
    const waiting: string[] = []
    const abort = new AbortController()
    const second = acquireLease(warehouse, {
      table: 'renewed_lock',
      leaseMs: 800,
      pollMs: 20,
      signal: abort.signal,
      onWaiting: (holder) => waiting.push(holder),
    })
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    first.assertHeld()
    assert.deepEqual(waiting, [first.owner])
    abort.abort()
    await assert.rejects(second, { name: 'AbortError' })
    await first.release()
  })
})
