import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  migrate,
  REPORT_TABLES,
  reportTableDdl,
  vulnerabilityProjection,
  warehouseMigrations,
} from '../../projections/migrations/index.ts'
import {
  createProjectorHandler,
  DEFAULT_TABLES,
  type ProjectionTables,
  startProjectorThread,
} from '../../projections/projector/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { UnavailableError } from '../../src/errors/index.ts'
import { encodeLogEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { createMemoryProcessedIds } from '../../src/ingress/index.ts'
import type { LogFields, Logger } from '../../src/observability/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { Batch, LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { openWarehouse } from '../../src/wiring/warehouse.ts'
import { eventually } from '../support/eventually.ts'

const T0 = Date.UTC(2026, 10, 22, 10)
const TOPIC = 'engine.events'

/** The generator's events as the log would hand them over, from `first` on. */
const messagesOf = (events: readonly unknown[], first = 0): LogMessage[] =>
  events.map((event, i) => ({
    ...encodeLogEvent(event as Parameters<typeof encodeLogEvent>[0]),
    headers: {},
    topic: TOPIC,
    partition: 0,
    offset: first + i,
    timestamp: T0 + first + i,
  }))

const batchOf = (messages: readonly LogMessage[]): Batch => ({ topic: TOPIC, partition: 0, messages })

describe('the projector on a thread of its own (real chDB, shared with the event loop)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-projector-thread-'))
  const config = loadConfig({ env: { HERALD_DATA_DIR: dir }, cwd: dir })
  let warehouse: Warehouse
  const lines: { event: string; fields?: LogFields }[] = []
  const logger: Logger = (_level, event, fields) =>
    lines.push({ event, ...(fields === undefined ? {} : { fields }) })
  let projected = 0
  let invalid = 0
  let thread: ReturnType<typeof startProjectorThread>

  const rowsOf = async (table: string): Promise<string[]> =>
    (await warehouse.query<Record<string, unknown>>(`SELECT * FROM ${table} FINAL`))
      .map((row) => JSON.stringify(row))
      .sort()
  const count = async (table: string): Promise<number> =>
    Number((await warehouse.query<{ n: string }>(`SELECT count() AS n FROM ${table} FINAL`))[0]?.n ?? -1)

  before(async () => {
    warehouse = await openWarehouse(config)
    await migrate(warehouse, warehouseMigrations)
    thread = startProjectorThread({
      config,
      logger,
      onProjected: (n) => {
        projected += n
      },
      onInvalid: (n) => {
        invalid += n
      },
    })
  })
  after(async () => {
    await thread.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('writes the rows the projector writes on the event loop, and counts what it projected and skipped', async () => {
    const events = [...generateActivity({ seed: 11, accounts: 3, count: 900, clock: () => T0 })]
    const messages = [
      ...messagesOf(events),
      { ...messagesOf([{}], events.length)[0], value: Buffer.from('{not json') } as LogMessage,
    ]
    const handle = thread.handler()
    for (let i = 0; i < messages.length; i += 300) await handle(batchOf(messages.slice(i, i + 300)))

    // The same batches through createProjectorHandler on this thread, into tables of their own.
    const suffix = '_on_loop'
    const tables = Object.fromEntries(
      Object.entries(DEFAULT_TABLES).map(([name, table]) => [name, `${table}${suffix}`]),
    ) as unknown as ProjectionTables
    for (const table of REPORT_TABLES) {
      await warehouse.command(reportTableDdl[table](`${table}${suffix}`))
      if (table === 'image_vulnerabilities')
        for (const statement of vulnerabilityProjection(`${table}${suffix}`))
          await warehouse.command(statement)
    }
    await warehouse.command(`CREATE TABLE events${suffix} AS events`)
    const onLoop = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      tables,
      processed: createMemoryProcessedIds(),
    })
    for (let i = 0; i < messages.length; i += 300) await onLoop(batchOf(messages.slice(i, i + 300)))

    assert.equal(await count('events'), events.length)
    let compared = 0
    for (const table of REPORT_TABLES) {
      if (table === 'projection_progress') continue
      const rows = await rowsOf(table)
      assert.deepEqual(rows, await rowsOf(`${table}${suffix}`), table)
      compared += rows.length
    }
    assert.ok(compared > 1_000, `${compared} report rows compared`)
    assert.deepEqual(await warehouse.query('SELECT partition, last_offset FROM projection_progress FINAL'), [
      { partition: 0, last_offset: events.length },
    ])
    assert.equal(projected, events.length)
    assert.equal(invalid, 1)
  })

  it('rejects a batch it could not store with the warehouse’s error, and stores it once when delivered again', async () => {
    const events = [...generateActivity({ seed: 12, accounts: 2, count: 200, clock: () => T0 + 3_600_000 })]
    const batch = batchOf(messagesOf(events, 10_000))
    const before = await count('events')
    await warehouse.command('RENAME TABLE tags_current TO tags_current_away')
    try {
      await assert.rejects(thread.handler()(batch), /tags_current/)
    } finally {
      await warehouse.command('RENAME TABLE tags_current_away TO tags_current')
    }
    await thread.handler()(batch)
    await thread.handler()(batch)
    assert.equal(await count('events'), before + events.length)
  })

  it('makes the event loop’s warehouse unready while its inserts fail for want of storage, and ready once one succeeds', async () => {
    const events = [...generateActivity({ seed: 14, accounts: 2, count: 100, clock: () => T0 + 10_800_000 })]
    const batch = batchOf(messagesOf(events, 40_000))
    await warehouse.ping()
    // The raw events' table wants more free disk than any has: its inserts fail with
    // NOT_ENOUGH_SPACE, as on a full disk.
    await warehouse.command(
      'ALTER TABLE events MODIFY SETTING min_free_disk_bytes_to_perform_insert = 1000000000000000000',
    )
    try {
      await assert.rejects(thread.handler()(batch), /NOT_ENOUGH_SPACE/)
      await eventually(() =>
        assert.rejects(warehouse.ping(), /warehouse: the last write failed with NOT_ENOUGH_SPACE/),
      )
    } finally {
      await warehouse.command('ALTER TABLE events MODIFY SETTING min_free_disk_bytes_to_perform_insert = 0')
    }
    await thread.handler()(batch)
    await eventually(() => warehouse.ping())
  })

  it('sends its log lines to the event loop’s logger', async () => {
    // A report event of the first test again at a later position: a repeat, projected once and logged.
    const events = [...generateActivity({ seed: 11, accounts: 3, count: 900, clock: () => T0 })]
    const report = messagesOf(events).find((_, i) => events[i]?.type.startsWith('herald.report.'))
    assert.ok(report !== undefined)
    await thread.handler()(batchOf([{ ...report, offset: 20_000 }]))
    const repeated = lines.find((line) => line.event === 'projector.events_repeated')
    assert.deepEqual(repeated?.fields, { topic: TOPIC, partition: 0, offsets: [20_000], count: 1 })
  })

  it('answers a ping with its processed-id window’s, and its error, naming the window, once the window cannot keep what it records', async () => {
    await thread.ping()
    // SQLite writes on to a write-ahead log deleted under it, without an error: only the
    // window's ping, on the thread that has it open, can tell.
    unlinkSync(join(dir, 'projected-ids.sqlite-wal'))
    await assert.rejects(thread.ping(), (error: unknown) => {
      assert.ok(error instanceof UnavailableError, String(error))
      assert.equal(error.retriable, true)
      assert.match(
        error.message,
        /^projector processed-id window: its write-ahead log \S+projected-ids\.sqlite-wal was deleted while open/,
      )
      assert.equal(error.context.path, join(dir, 'projected-ids.sqlite-wal'))
      return true
    })
  })

  it('refuses every batch once its thread stopped, and says so once', async () => {
    // chDB holds one data directory per process: a thread told of another cannot open it.
    const elsewhere = mkdtempSync(join(tmpdir(), 'herald-projector-thread-elsewhere-'))
    const stopped: Error[] = []
    const broken = startProjectorThread({
      config: loadConfig({ env: { HERALD_DATA_DIR: elsewhere }, cwd: elsewhere }),
      logger,
      onStopped: (error) => stopped.push(error),
    })
    try {
      while (stopped.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      assert.match(stopped[0]?.message ?? '', /the projector thread stopped \(exit code 1\)/)
      const failed = lines.find((line) => line.event === 'projector.thread_open_failed')
      assert.match(String(failed?.fields?.error), /chDB|warehouse/i)
      const events = [...generateActivity({ seed: 13, accounts: 2, count: 50, clock: () => T0 + 7_200_000 })]
      for (const handle of [broken.handler(), broken.handler()])
        await assert.rejects(
          handle(batchOf(messagesOf(events, 30_000))),
          (error: Error & { code?: string }) => {
            assert.equal(error.code, 'EPROJECTORSTOPPED')
            return true
          },
        )
      await assert.rejects(broken.ping(), { code: 'EPROJECTORSTOPPED' })
      assert.equal(stopped.length, 1)
    } finally {
      await broken.close()
      rmSync(elsewhere, { recursive: true, force: true })
    }
  })
})
