import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import {
  acceptLogResets,
  createProjectorHandler,
  type LogReset,
  LogResetError,
  listLogResets,
} from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { type CloudEvent, encodeLogEvent } from '../../src/events/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { Batch, EventLog, LogMessage } from '../../src/ports/event-log.ts'
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

  it('refuses a partition whose log was reset, admits its own replays, and takes it up past the old positions once accepted', async () => {
    const topic = 'reset.events'
    const messagesOf = (prefix: string, from: number, to: number): LogMessage[] =>
      Array.from({ length: to - from + 1 }, (_, i) => ({
        ...encodeLogEvent({ ...event(from + i), id: `${prefix}-${from + i}` }),
        headers: {},
        topic,
        partition: 0,
        offset: from + i,
        timestamp: Date.UTC(2026, 10, 22, 10) + from + i,
      }))
    const batchOf = (messages: LogMessage[]): Batch => ({ topic, partition: 0, messages })
    const halts: (readonly LogReset[])[] = []
    const handlerOf = () =>
      createProjectorHandler({
        warehouse,
        clock: Date.now,
        logger: silentLogger,
        onHalted: (resets) => halts.push(resets),
      })
    const positions = async (prefix: string) =>
      (
        await warehouse.query<{ id: string; log_offset: number }>(
          `SELECT id, log_offset FROM events FINAL WHERE log_topic = {topic:String} AND startsWith(id, {prefix:String})
            ORDER BY log_offset`,
          { topic, prefix: `${prefix}-` },
        )
      ).map((row) => `${row.id}@${row.log_offset}`)

    const first = handlerOf()
    await first(batchOf(messagesOf('old', 0, 9)))
    // Replays of the same log, with other boundaries and by a new run: admitted.
    await first(batchOf(messagesOf('old', 3, 9)))
    await handlerOf()(batchOf(messagesOf('old', 0, 4)))
    assert.deepEqual(halts, [])

    // The log counts from 0 again, with other events: refused before anything is stored.
    const running = handlerOf()
    const reset = batchOf(messagesOf('new', 0, 4))
    await assert.rejects(running(reset), (error: unknown) => {
      assert.ok(error instanceof LogResetError)
      assert.equal(error.code, 'event_log_reset')
      assert.match(
        error.message,
        /^reset\.events\/0 holds event "new-0" of \/engine at offset 0, where the report tables hold event "old-0" of \/engine \(projected through position 9\)/,
      )
      return true
    })
    const found = {
      topic,
      partition: 0,
      offset: 0,
      projectedThrough: 9,
      event: '"new-0" of /engine',
      projectedEvent: '"old-0" of /engine',
    }
    assert.deepEqual(halts, [[found]])
    // Refused again, without saying so again.
    await assert.rejects(running(reset), LogResetError)
    assert.equal(halts.length, 1)
    assert.deepEqual(await positions('new'), [])
    assert.deepEqual(
      (await listLogResets(warehouse)).map(({ detectedAt: _, ...r }) => r),
      [{ ...found, state: 'pending', base: null, acceptedAt: null }],
    )

    // The old log is back (restored): admitted, and the reset found before is void.
    const restored = handlerOf()
    await restored(batchOf(messagesOf('old', 5, 9)))
    assert.deepEqual(await listLogResets(warehouse), [])

    // Reset again, then accepted: the new log's offsets count from past the old positions.
    const next = handlerOf()
    await assert.rejects(next(reset), LogResetError)
    assert.equal(halts.length, 2)
    const [accepted] = await acceptLogResets(warehouse, () => Date.UTC(2026, 10, 23))
    assert.deepEqual(accepted, {
      ...found,
      state: 'accepted',
      base: 10,
      acceptedAt: '2026-11-23T00:00:00.000Z',
      detectedAt: accepted?.detectedAt,
    })
    await next(reset)
    assert.deepEqual(halts.at(-1), [])
    await next(batchOf(messagesOf('new', 5, 6)))
    // A replay of the new log is the new log's own.
    await handlerOf()(batchOf(messagesOf('new', 4, 6)))
    assert.deepEqual(await positions('new'), [
      'new-0@10',
      'new-1@11',
      'new-2@12',
      'new-3@13',
      'new-4@14',
      'new-5@15',
      'new-6@16',
    ])
    assert.deepEqual(
      await warehouse.query(
        'SELECT last_offset FROM projection_progress FINAL WHERE topic = {topic:String}',
        { topic },
      ),
      [{ last_offset: 16 }],
    )
    assert.equal(halts.length, 3)
  })
})
