import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
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
import type { Batch, EventLog } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { eventually } from '../support/eventually.ts'

const event = (i: number) => ({
  specversion: '1.0' as const,
  id: `evt-${i}`,
  source: '/engine',
  type: 'user.image.analysis.completed',
  account: i % 2 === 0 ? 'acme' : 'globex',
  time: `2026-11-22T10:00:${String(i % 60).padStart(2, '0')}.250Z`,
  data: { digest: `sha256:${i}`, n: i },
})

describe('projector on chDB and the embedded log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-projector-'))
  let warehouse: Warehouse
  let log: EventLog
  const count = async () =>
    (await warehouse.query<{ n: number }>('SELECT count() AS n FROM events'))[0]?.n ?? -1

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 50 })
    await log.createTopics([{ topic: 'engine.events', partitions: 2 }])
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('projects every event once, keeps time and payload, and skips undecodable messages', async () => {
    const batches: Batch[] = []
    const handler = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    await log.publish('engine.events', [
      ...Array.from({ length: 50 }, (_, i) => encodeLogEvent(event(i))),
      { key: 'acme', value: new TextEncoder().encode('{not json') },
    ])
    const consumer = await log.consume(
      { groupId: `p-${randomUUID()}`, topics: ['engine.events'] },
      async (b) => {
        batches.push(b)
        await handler(b)
      },
    )
    await eventually(async () => assert.equal(await count(), 50))
    await consumer.stop()

    const [row] = await warehouse.query<{ account: string; time: string; data: string }>(
      "SELECT account, toString(time) AS time, data FROM events WHERE id = 'evt-7'",
    )
    assert.deepEqual(row, {
      account: 'globex',
      time: '2026-11-22 10:00:07.250',
      data: '{"digest":"sha256:7","n":7}',
    })

    // A crash between insert and commit redelivers the same batches: nothing counts twice.
    for (const batch of batches) await handler(batch)
    assert.equal(await count(), 50)
  })
})
