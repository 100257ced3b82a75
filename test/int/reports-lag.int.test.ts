import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { encodeLogEvent } from '../../src/events/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { createProgressView, createProjectionLag, projectionLagSeconds } from '../../src/reports/index.ts'
import { eventually } from '../support/eventually.ts'

const GROUP = 'herald-projector'
const event = (i: number) => ({
  specversion: '1.0' as const,
  id: `lag-${i}`,
  source: '/engine',
  type: 'user.image.analysis.completed',
  account: 'acme',
  time: '2026-11-22T10:00:00.000Z',
  data: { digest: `sha256:${i}` },
})

describe('projection lag against the log head', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-lag-'))
  let now = Date.UTC(2026, 10, 22, 10, 0, 0)
  const clock = () => now
  let warehouse: Warehouse
  let log: EventLog

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 50, clock })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('shows a projector that has not consumed what is waiting, and drops back once it has', async () => {
    const lag = createProjectionLag({ warehouse, clock, positions: () => log.lag(GROUP, ['engine.events']) })
    assert.equal(await lag(), 0)
    await log.publish('engine.events', [encodeLogEvent(event(1)), encodeLogEvent(event(2))])
    now += 90_000
    // Nothing projected: the warehouse alone sees no lag; the log's head shows 90 s.
    assert.equal(await projectionLagSeconds(warehouse), 0)
    assert.equal(await lag(), 90)

    const consumer = await log.consume(
      { groupId: GROUP, topics: ['engine.events'] },
      createProjectorHandler({ warehouse, clock, logger: silentLogger }),
    )
    await eventually(async () => assert.deepEqual((await log.lag(GROUP, ['engine.events']))[0]?.committed, 2))
    await consumer.stop()
    // Caught up: the warehouse saw the batch wait 90 s, but nothing waits now, so the answers
    // are current.
    assert.equal(await projectionLagSeconds(warehouse), 90)
    assert.equal(await lag(), 0)
    // Another event waits: the larger of the two views again.
    await log.publish('engine.events', [encodeLogEvent(event(20))])
    now += 5_000
    assert.equal(await lag(), 90)
  })

  it('on a log that cannot date its messages, counts from when the backlog was first seen stuck', async () => {
    const positions = async () => (await log.lag(GROUP, ['engine.events'])).map(({ oldestAt: _, ...p }) => p)
    const lag = createProjectionLag({ warehouse, clock, positions })
    const baseline = await projectionLagSeconds(warehouse)
    await log.publish('engine.events', [encodeLogEvent(event(3))])
    assert.equal(await lag(), baseline)
    now += 30_000
    assert.equal(await lag(), Math.max(baseline, 30))
    now += 200_000
    assert.equal(await lag(), 230)
  })

  it('keeps the warehouse view until the projector says it changed, and reads it again then', async () => {
    const progress = createProgressView(warehouse)
    const before = await projectionLagSeconds(warehouse)
    assert.equal(await progress.read(), before)
    const at = (ms: number) => new Date(ms).toISOString()
    await warehouse.insert('projection_progress', [
      {
        topic: 'engine.events',
        partition: 7,
        last_offset: 10,
        first_appended_at: at(now - 400_000),
        last_appended_at: at(now - 400_000),
        projected_at: at(now),
        events: 1,
      },
    ])
    assert.equal(await projectionLagSeconds(warehouse), 400)
    // Kept: no query until the projector's next batch.
    assert.equal(await progress.read(), before)
    const lag = createProjectionLag({ warehouse, clock, positions: async () => [], projected: progress.read })
    assert.equal(await lag(), before)
    progress.changed()
    assert.equal(await progress.read(), 400)
    assert.equal(await lag(), 400)
  })

  it('answers the warehouse view when the log cannot be asked', async () => {
    const lag = createProjectionLag({
      warehouse,
      clock,
      positions: () => Promise.reject(new Error('log down')),
    })
    assert.equal(await lag(), await projectionLagSeconds(warehouse))
  })
})
