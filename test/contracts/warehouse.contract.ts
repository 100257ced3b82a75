import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { ClosedError, type HeraldError, WarehouseError } from '../../src/errors/index.ts'
import type { Migration, Warehouse } from '../../src/ports/index.ts'

/**
 * The Warehouse contract: chDB and a ClickHouse server both run this suite, which is what keeps
 * one SQL dialect and one behaviour across the two transports.
 */
export interface WarehouseContractOptions {
  readonly name: string
  /**
   * Opens a warehouse on the same data every time. Each test opens its own and closes it, so
   * an engine that allows one instance per process (chDB) can reopen the same path.
   */
  readonly open: () => Promise<Warehouse>
}

const unique = (prefix: string): string => `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`

const rejectsWith = async (
  promise: Promise<unknown>,
  type: new (...args: never[]) => HeraldError,
  message: RegExp,
): Promise<HeraldError> => {
  let caught: unknown
  await assert.rejects(promise, (error: unknown) => {
    caught = error
    return true
  })
  assert.ok(caught instanceof type, `expected ${type.name}, got ${String(caught)}`)
  assert.match(caught.message, message)
  return caught
}

export const runWarehouseContract = ({ name, open }: WarehouseContractOptions): void => {
  const withWarehouse = async (work: (warehouse: Warehouse) => Promise<void>): Promise<void> => {
    const warehouse = await open()
    try {
      await work(warehouse)
    } finally {
      await warehouse.close()
    }
  }

  /** A MergeTree table that drops a block inserted twice with the same token. */
  const createDedupTable = async (warehouse: Warehouse, table: string): Promise<void> => {
    await warehouse.command(
      `CREATE TABLE ${table} (id String, n UInt32, at DateTime64(3, 'UTC'))
       ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100`,
    )
  }

  describe(`Warehouse contract: ${name}`, () => {
    it('runs commands and queries', () =>
      withWarehouse(async (warehouse) => {
        const table = unique('roundtrip')
        await warehouse.command(`CREATE TABLE ${table} (id String, n UInt32) ENGINE = MergeTree ORDER BY id`)
        await warehouse.command(`INSERT INTO ${table} VALUES ('a', 1), ('b', 2)`)
        const rows = await warehouse.query<{ id: string; n: number }>(
          `SELECT id, n FROM ${table} ORDER BY id`,
        )
        assert.deepEqual(rows, [
          { id: 'a', n: 1 },
          { id: 'b', n: 2 },
        ])
        assert.deepEqual(await warehouse.query(`SELECT id FROM ${table} WHERE n > 5`), [])
        assert.deepEqual(await warehouse.query('SELECT 1 AS one; -- a trailing comment'), [{ one: 1 }])
        await warehouse.command(`DROP TABLE ${table}`)
      }))

    it('binds typed parameters as values, never as SQL', () =>
      withWarehouse(async (warehouse) => {
        const table = unique('params')
        await warehouse.command(`CREATE TABLE ${table} (id String) ENGINE = MergeTree ORDER BY id`)
        await warehouse.command(`INSERT INTO ${table} VALUES ('x')`)

        const tricky = `it's a \\ "quote" \n\t ✓ ' OR 1=1 --`
        const [echo] = await warehouse.query<{ s: string }>('SELECT {s:String} AS s', { s: tricky })
        assert.equal(echo?.s, tricky)

        const injected = await warehouse.query(`SELECT id FROM ${table} WHERE id = {id:String}`, {
          id: "x' OR 1=1 --",
        })
        assert.deepEqual(injected, [])
        await warehouse.command(`INSERT INTO ${table} SELECT {id:String}`, {
          id: `'); DROP TABLE ${table}; --`,
        })
        const [count] = await warehouse.query<{ n: number }>(`SELECT count() AS n FROM ${table}`)
        assert.equal(count?.n, 2)

        const [typed] = await warehouse.query<Record<string, unknown>>(
          `SELECT {u:UInt64} AS u, {f:Float64} AS f, {a:Array(String)} AS a, {m:Nullable(String)} AS m,
                  {at:DateTime64(3, 'UTC')} AS at, {b:Bool} AS b`,
          { u: 42, f: 1.5, a: ["a'b", 'c'], m: null, at: new Date('2024-01-02T03:04:05.678Z'), b: true },
        )
        assert.deepEqual(typed, {
          u: 42,
          f: 1.5,
          a: ["a'b", 'c'],
          m: null,
          at: '2024-01-02 03:04:05.678',
          b: true,
        })
        await warehouse.command(`DROP TABLE ${table}`)
      }))

    it('inserts rows and counts them', () =>
      withWarehouse(async (warehouse) => {
        const table = unique('insert')
        await warehouse.command(
          `CREATE TABLE ${table} (id String, account LowCardinality(String), at DateTime64(3, 'UTC'), big UInt64)
           ENGINE = MergeTree ORDER BY (account, id)`,
        )
        await warehouse.insert(table, [])
        await warehouse.insert(table, [
          { id: 'e1', account: 'acme', at: '2024-01-02T03:04:05.678Z', big: 1 },
          { id: 'e2', account: 'acme', at: '2024-01-02 03:04:06.000', big: 2 },
          { id: 'e3', account: 'globex', at: '2024-02-01T00:00:00Z', big: 9007199254740991 },
        ])
        const rows = await warehouse.query<{ account: string; n: number }>(
          `SELECT account, count() AS n FROM ${table} GROUP BY account ORDER BY account`,
        )
        assert.deepEqual(rows, [
          { account: 'acme', n: 2 },
          { account: 'globex', n: 1 },
        ])
        const [first] = await warehouse.query<{ at: string }>(`SELECT at FROM ${table} WHERE id = 'e1'`)
        assert.equal(first?.at, '2024-01-02 03:04:05.678')
        await rejectsWith(warehouse.insert('events; DROP TABLE x', [{ id: 1 }]), WarehouseError, /table name/)
        await warehouse.command(`DROP TABLE ${table}`)
      }))

    it('drops a second insert with the same deduplication token, not one with another token', () =>
      withWarehouse(async (warehouse) => {
        const table = unique('dedup')
        await createDedupTable(warehouse, table)
        const batch = [
          { id: 'a', n: 1, at: '2024-01-01T00:00:00Z' },
          { id: 'b', n: 2, at: '2024-01-01T00:00:01Z' },
        ]
        const count = async (): Promise<number> =>
          (await warehouse.query<{ n: number }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? -1

        await warehouse.insert(table, batch, { deduplicationToken: 'engine.events/0/0-1' })
        assert.equal(await count(), 2)
        await warehouse.insert(table, batch, { deduplicationToken: 'engine.events/0/0-1' })
        assert.equal(await count(), 2, 'the replayed batch is dropped')
        await warehouse.insert(table, batch, { deduplicationToken: 'engine.events/0/2-3' })
        assert.equal(await count(), 4, 'the same rows under another token are a new batch')

        // A token must not outlive its insert: later inserts without one still land.
        await warehouse.insert(table, [{ id: 'c', n: 3, at: '2024-01-01T00:00:02Z' }])
        await warehouse.insert(table, [{ id: 'd', n: 4, at: '2024-01-01T00:00:03Z' }])
        assert.equal(await count(), 6)

        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            warehouse.insert(
              table,
              [{ id: `p${i}`, n: i, at: '2024-01-02T00:00:00Z' }],
              i % 2 === 0 ? { deduplicationToken: `parallel-${i}` } : {},
            ),
          ),
        )
        assert.equal(await count(), 26, 'concurrent inserts keep their own tokens')
        await warehouse.command(`DROP TABLE ${table}`)
      }))

    it('surfaces rejected statements as WarehouseError with a useful message', () =>
      withWarehouse(async (warehouse) => {
        const missing = unique('missing')
        const unknown = await rejectsWith(
          warehouse.query(`SELECT * FROM ${missing}`),
          WarehouseError,
          /UNKNOWN_TABLE/,
        )
        assert.match(unknown.message, new RegExp(missing))
        assert.equal(unknown.retriable, false)
        assert.equal(unknown.code, 'warehouse_error')
        assert.ok(unknown.cause !== undefined, 'the vendor error is kept as cause')

        await rejectsWith(warehouse.command('SELEC 1'), WarehouseError, /SYNTAX_ERROR/)
        // A server runs one statement per request; chDB would run both, so both transports refuse.
        await rejectsWith(warehouse.command('SELECT 1; SELECT 2'), WarehouseError, /one SQL statement/)
        await rejectsWith(warehouse.query("SELECT ';' AS s; SELECT 2"), WarehouseError, /one SQL statement/)
        await rejectsWith(warehouse.insert(missing, [{ id: 'x' }]), WarehouseError, new RegExp(missing))
        const table = unique('strict')
        await warehouse.command(`CREATE TABLE ${table} (id String, n UInt8) ENGINE = MergeTree ORDER BY id`)
        await rejectsWith(warehouse.insert(table, [{ id: 'x', nn: 1 }]), WarehouseError, /nn/)
        await rejectsWith(warehouse.insert(table, [{ id: 'x', n: 'abc' }]), WarehouseError, /INPUT|parse/i)
        await warehouse.command(`DROP TABLE ${table}`)
        await rejectsWith(warehouse.query('SELECT {n:UInt8} AS n', { n: 'abc' }), WarehouseError, /n/)
        await rejectsWith(warehouse.query('SELECT {s:String} AS s', {}), WarehouseError, /s/)
        await rejectsWith(
          warehouse.query('SELECT {n:UInt64} AS n', { n: 2 ** 60 }),
          WarehouseError,
          /beyond 2\^53.*bigint/,
        )
        // The warehouse is still usable after errors.
        assert.deepEqual(await warehouse.query('SELECT 1 AS one'), [{ one: 1 }])
      }))

    it('stores every value exactly as given, whatever the rows hold', () =>
      withWarehouse(async (warehouse) => {
        const flat = unique('values')
        await warehouse.command(
          `CREATE TABLE ${flat} (id String, s String, m Nullable(String), at DateTime64(3, 'UTC'),
             big UInt64, f Nullable(Float64), b Bool, u UInt8, e Enum8('low' = 1, 'high' = 2))
           ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100`,
        )
        const awkward = 'tab\there\nnew line\\back\rslash \' " ✓ \\N'
        const rows = [
          {
            id: 'a',
            s: awkward,
            m: null,
            at: '2024-01-02T03:04:05.678Z',
            big: 9007199254740991,
            f: 0.1,
            b: true,
            u: 1,
            e: 'high',
          },
          {
            id: 'b',
            s: '\\N',
            m: '',
            at: '2024-01-02 03:04:05.001',
            big: 0,
            f: null,
            b: false,
            u: 0,
            e: 'low',
          },
          {
            id: 'c',
            s: '',
            m: 'x',
            at: new Date('2024-01-02T03:04:05.002Z'),
            big: 2n ** 63n,
            f: -1e-7,
            b: true,
            u: 255,
            e: 'low',
          },
        ]
        await warehouse.insert(flat, rows, { deduplicationToken: "it's/a\\token" })
        await warehouse.insert(flat, rows, { deduplicationToken: "it's/a\\token" })
        assert.deepEqual(
          await warehouse.query(
            `SELECT id, s, m, toString(at) AS at, toString(big) AS big, f, b, u, e FROM ${flat} ORDER BY id`,
          ),
          [
            {
              id: 'a',
              s: awkward,
              m: null,
              at: '2024-01-02 03:04:05.678',
              big: '9007199254740991',
              f: 0.1,
              b: true,
              u: 1,
              e: 'high',
            },
            {
              id: 'b',
              s: '\\N',
              m: '',
              at: '2024-01-02 03:04:05.001',
              big: '0',
              f: null,
              b: false,
              u: 0,
              e: 'low',
            },
            {
              id: 'c',
              s: '',
              m: 'x',
              at: '2024-01-02 03:04:05.002',
              big: '9223372036854775808',
              f: -1e-7,
              b: true,
              u: 255,
              e: 'low',
            },
          ],
          'the replayed insert is dropped and every value survives',
        )

        // Nested values and rows naming different columns take the port's JSON meaning.
        const nested = unique('nested')
        await warehouse.command(
          `CREATE TABLE ${nested} (id String, n UInt32 DEFAULT 7,
             reasons Array(Tuple(gate String, message String)))
           ENGINE = MergeTree ORDER BY id`,
        )
        await warehouse.insert(nested, [
          { id: 'a', n: 1, reasons: [{ gate: 'vulns', message: "it's\tbad" }] },
          { id: 'b', reasons: [] },
        ])
        assert.deepEqual(await warehouse.query(`SELECT id, n, reasons FROM ${nested} ORDER BY id`), [
          { id: 'a', n: 1, reasons: [{ gate: 'vulns', message: "it's\tbad" }] },
          { id: 'b', n: 7, reasons: [] },
        ])
        await warehouse.command(`DROP TABLE ${flat}`)
        await warehouse.command(`DROP TABLE ${nested}`)
      }))

    it('returns 64-bit integers as numbers', () =>
      withWarehouse(async (warehouse) => {
        const [row] = await warehouse.query<Record<string, unknown>>(
          `SELECT toUInt64(9007199254740991) AS u, toInt64(-42) AS i, count() AS c, sum(number) AS s,
                  {big:UInt64} AS p
           FROM numbers(10)`,
          { big: 9007199254740991n },
        )
        assert.deepEqual(row, { u: 9007199254740991, i: -42, c: 10, s: 45, p: 9007199254740991 })
      }))

    it('runs every statement with its settings in effect, whether sent per request or set once', () =>
      withWarehouse(async (warehouse) => {
        const [row] = await warehouse.query<Record<string, unknown>>(
          `SELECT getSetting('date_time_input_format') AS dates,
                  toUInt8(getSetting('input_format_skip_unknown_fields')) AS skip_unknown,
                  toUInt8(getSetting('output_format_json_quote_64bit_integers')) AS quote_64`,
        )
        assert.deepEqual(row, { dates: 'best_effort', skip_unknown: 0, quote_64: 0 })
      }))

    it('pins every setting its statements and readers rely on, whatever the server’s profile says', () =>
      withWarehouse(async (warehouse) => {
        // What a server's settings profile (or a newer engine's defaults: async_insert is on by
        // default in chDB 26) may set otherwise, each changing what Herald stores or reads.
        const expected: Record<string, string> = {
          async_insert: '0',
          insert_deduplicate: '1',
          date_time_output_format: 'simple',
          output_format_json_named_tuples_as_objects: '1',
          output_format_json_array_of_rows: '0',
          input_format_defaults_for_omitted_fields: '1',
          input_format_null_as_default: '1',
          join_use_nulls: '0',
          join_default_strictness: 'ALL',
          aggregate_functions_null_for_empty: '0',
          read_overflow_mode: 'throw',
          result_overflow_mode: 'throw',
          group_by_overflow_mode: 'throw',
          timeout_overflow_mode: 'throw',
          distinct_overflow_mode: 'throw',
          join_overflow_mode: 'throw',
          set_overflow_mode: 'throw',
          sort_overflow_mode: 'throw',
          transfer_overflow_mode: 'throw',
        }
        const rows = await warehouse.query<{ name: string; value: string }>(
          'SELECT name, value FROM system.settings WHERE name IN {names:Array(String)} ORDER BY name',
          { names: Object.keys(expected) },
        )
        assert.deepEqual(
          Object.fromEntries(rows.map((r) => [r.name, r.value])),
          Object.fromEntries(Object.entries(expected).sort(([a], [b]) => a.localeCompare(b))),
        )
      }))

    it('applies migrations once each, in version order, and resumes after a failed one', () =>
      withWarehouse(async (warehouse) => {
        const history = unique('migrations')
        const table = unique('migrated')
        const events: string[] = []
        const log = (event: string, fields: Readonly<Record<string, unknown>>) =>
          events.push(`${event}:${String(fields.version)}`)
        const clock = () => new Date('2024-05-06T07:08:09.123Z')
        const v1: Migration = {
          version: 1,
          name: 'create',
          statements: [`CREATE TABLE IF NOT EXISTS ${table} (id String) ENGINE = MergeTree ORDER BY id`],
        }
        const v2: Migration = {
          version: 2,
          name: 'add column',
          statements: [`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS n UInt32`],
        }
        // Out of order on purpose: version 2 needs the table version 1 creates.
        const first = await migrate(warehouse, [v2, v1], { table: history, log, clock })
        assert.deepEqual(first, { applied: [1, 2], version: 2 })
        assert.deepEqual(events, [
          'migrations.applying:1',
          'migrations.applied:1',
          'migrations.applying:2',
          'migrations.applied:2',
          'migrations.done:2',
        ])

        const again = await migrate(warehouse, [v1, v2], { table: history })
        assert.deepEqual(again, { applied: [], version: 2 })
        const recorded = await warehouse.query(
          `SELECT version, name, applied_at FROM ${history} ORDER BY version`,
        )
        assert.deepEqual(recorded, [
          { version: 1, name: 'create', applied_at: '2024-05-06 07:08:09.123' },
          { version: 2, name: 'add column', applied_at: '2024-05-06 07:08:09.123' },
        ])

        // A crash half-way through version 3: its first statement ran, it was not recorded.
        const third = unique('third')
        const create3 = `CREATE TABLE IF NOT EXISTS ${third} (id String) ENGINE = MergeTree ORDER BY id`
        await rejectsWith(
          migrate(
            warehouse,
            [v1, v2, { version: 3, name: 'third', statements: [create3, 'SELECT throwIf(1)'] }],
            {
              table: history,
            },
          ),
          WarehouseError,
          /FUNCTION_THROW_IF_VALUE_IS_NON_ZERO|throwIf/,
        )
        const resumed = await migrate(
          warehouse,
          [v1, v2, { version: 3, name: 'third', statements: [create3] }],
          {
            table: history,
          },
        )
        assert.deepEqual(resumed, { applied: [3], version: 3 })
        await warehouse.command(`DROP TABLE ${table}`)
        await warehouse.command(`DROP TABLE ${third}`)
        await warehouse.command(`DROP TABLE ${history}`)
      }))

    it("creates Herald's events table with its migrations", () =>
      withWarehouse(async (warehouse) => {
        const history = unique('migrations')
        const first = await migrate(warehouse, warehouseMigrations, { table: history })
        assert.equal(first.version, warehouseMigrations.at(-1)?.version)
        assert.deepEqual((await migrate(warehouse, warehouseMigrations, { table: history })).applied, [])

        const [events] = await warehouse.query<Record<string, string>>(
          `SELECT engine, partition_key, sorting_key, create_table_query FROM system.tables
           WHERE database = currentDatabase() AND name = 'events'`,
        )
        // Replacing: an event stored again under another token (a retried batch with other
        // boundaries) is the same row once collapsed.
        assert.equal(events?.engine, 'ReplacingMergeTree')
        assert.equal(events?.partition_key, 'toYYYYMM(time)')
        assert.equal(events?.sorting_key, 'account, time, id, source')
        assert.match(events?.create_table_query ?? '', /non_replicated_deduplication_window = \d+/)

        const account = unique('acct')
        const row = (id: string, offset: number) => ({
          id,
          source: 'urn:engine',
          type: 'user.image.analysis.completed',
          subject: 'docker.io/library/alpine:3.20',
          account,
          level: 'info',
          resource_type: 'image_digest',
          subtype: '',
          time: '2024-03-31T23:59:59.999Z',
          data: JSON.stringify({ digest: 'sha256:abc', quote: "it's" }),
          ingested_at: '2024-04-01T00:00:00.000Z',
          log_topic: 'engine.events',
          log_partition: 0,
          log_offset: offset,
        })
        const token = `engine.events/0/${account}`
        await warehouse.insert('events', [row('e1', 1), { ...row('e2', 2), time: '2024-04-01T00:00:00Z' }], {
          deduplicationToken: token,
        })
        await warehouse.insert('events', [row('e1', 1), { ...row('e2', 2), time: '2024-04-01T00:00:00Z' }], {
          deduplicationToken: token,
        })
        const stored = await warehouse.query<{
          id: string
          time: string
          log_offset: number
          months: number
        }>(
          `SELECT id, time, log_offset, toYYYYMM(time) AS months FROM events WHERE account = {account:String} ORDER BY id`,
          { account },
        )
        assert.deepEqual(stored, [
          { id: 'e1', time: '2024-03-31 23:59:59.999', log_offset: 1, months: 202403 },
          { id: 'e2', time: '2024-04-01 00:00:00.000', log_offset: 2, months: 202404 },
        ])
        await warehouse.insert('events', [row('e1', 1)], { deduplicationToken: `${token}/retried` })
        assert.deepEqual(
          await warehouse.query(`SELECT id FROM events FINAL WHERE account = {account:String} ORDER BY id`, {
            account,
          }),
          [{ id: 'e1' }, { id: 'e2' }],
        )
        await warehouse.command(`DROP TABLE ${history}`)
      }))

    it('refuses a database whose schema is newer than the code', () =>
      withWarehouse(async (warehouse) => {
        const history = unique('migrations')
        const m = (version: number): Migration => ({ version, name: `m${version}`, statements: ['SELECT 1'] })
        await migrate(warehouse, [m(1), m(3)], { table: history })
        const newer = await rejectsWith(
          migrate(warehouse, [m(1)], { table: history }),
          WarehouseError,
          /version 3 \(m3\), newer than the 1 this Herald knows/,
        )
        assert.equal(newer.retriable, false)
        assert.deepEqual(newer.context, { table: history, databaseVersion: 3, knownVersion: 1 })
        await rejectsWith(
          migrate(warehouse, [m(1), m(2), m(3)], { table: history }),
          WarehouseError,
          /migration 2 \(m2\) is not applied but 3 is/,
        )
        await rejectsWith(migrate(warehouse, [m(1), m(1)], { table: history }), WarehouseError, /used twice/)
        await warehouse.command(`DROP TABLE ${history}`)
      }))

    it('answers ping', () =>
      withWarehouse(async (warehouse) => {
        await warehouse.ping()
      }))

    it('fails clearly when used after close', async () => {
      const warehouse = await open()
      await warehouse.close()
      await rejectsWith(warehouse.query('SELECT 1'), ClosedError, /closed/)
      await rejectsWith(warehouse.command('SELECT 1'), ClosedError, /closed/)
      await rejectsWith(warehouse.insert('t', [{ a: 1 }]), ClosedError, /closed/)
      await rejectsWith(warehouse.ping(), ClosedError, /closed/)
      await warehouse.close()
    })
  })
}
