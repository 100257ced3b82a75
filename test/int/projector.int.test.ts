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
import { type CloudEvent, encodeLogEvent } from '../../src/events/index.ts'
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

  it('skips and counts an event whose account is not an account name, projecting the rest of its batch', async () => {
    const topic = 'misnamed.events'
    await log.createTopics([{ topic, partitions: 2 }])
    const misnamed = ['acme\u0000', 'a'.repeat(5_000), 'acmé', '.acme', '']
    let invalid = 0
    const handler = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onInvalid: (n) => {
        invalid += n
      },
    })
    // Each bad one between two valid ones.
    const valid = misnamed.flatMap((_, i) => [event(100 + 2 * i), event(101 + 2 * i)])
    await log.publish(
      topic,
      misnamed.flatMap((account, i) => [
        encodeLogEvent(valid[2 * i] as CloudEvent),
        encodeLogEvent({ ...event(200 + i), account }),
        encodeLogEvent(valid[2 * i + 1] as CloudEvent),
      ]),
    )
    let failed = 0
    const consumer = await log.consume({ groupId: `p-${randomUUID()}`, topics: [topic] }, async (b) => {
      try {
        await handler(b)
      } catch (error) {
        failed++
        throw error
      }
    })
    const projected = async () =>
      (
        await warehouse.query<{ id: string; account: string }>(
          "SELECT id, account FROM events WHERE id LIKE 'evt-1__' OR id LIKE 'evt-2__' ORDER BY id",
        )
      ).map((r) => `${r.id} ${r.account}`)
    const expected = valid.map((e) => `${e.id} ${e.account}`).sort()
    await eventually(async () => assert.deepEqual(await projected(), expected))
    await consumer.stop()
    assert.equal(failed, 0, 'no batch failed')
    assert.equal(invalid, misnamed.length)
  })
})
