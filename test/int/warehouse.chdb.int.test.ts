import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { migrate } from '../../projections/migrations/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { WarehouseError } from '../../src/errors/index.ts'
import { runWarehouseContract } from '../contracts/warehouse.contract.ts'
import { eventually } from '../support/eventually.ts'

// chDB runs one engine per process, so every test reopens this one directory.
const dir = mkdtempSync(join(tmpdir(), 'herald-warehouse-'))
const path = join(dir, 'warehouse')
after(() => rmSync(dir, { recursive: true, force: true }))

runWarehouseContract({
  name: 'embedded chDB',
  open: () => createChdbWarehouse({ path }),
})

describe('chDB warehouse', () => {
  it('keeps data across close and reopen', async () => {
    const first = await createChdbWarehouse({ path })
    await first.command('CREATE TABLE IF NOT EXISTS kept (id String) ENGINE = MergeTree ORDER BY id')
    await first.insert('kept', [{ id: 'x' }])
    await first.close()
    const second = await createChdbWarehouse({ path })
    assert.deepEqual(await second.query('SELECT id FROM kept'), [{ id: 'x' }])
    await second.command('DROP TABLE kept')
    await second.close()
  })

  it('syncs every insert’s part and its directory to disk before the insert resolves', async () => {
    // The projector commits a batch's offsets once its inserts resolve: a part still in the page
    // cache at a power cut would be lost while the commit survives, and never projected again.
    const warehouse = await createChdbWarehouse({ path })
    try {
      await warehouse.command(
        'CREATE TABLE IF NOT EXISTS synced (id String) ENGINE = ReplacingMergeTree ORDER BY id',
      )
      const settings = await warehouse.query<{ name: string; value: string }>(
        `SELECT name, value FROM system.merge_tree_settings
          WHERE name IN ('fsync_after_insert', 'fsync_part_directory') ORDER BY name`,
      )
      assert.deepEqual(settings, [
        { name: 'fsync_after_insert', value: '1' },
        { name: 'fsync_part_directory', value: '1' },
      ])
      await warehouse.insert('synced', [{ id: 'a' }])
      assert.deepEqual(await warehouse.query('SELECT id FROM synced'), [{ id: 'a' }])
    } finally {
      await warehouse.command('DROP TABLE IF EXISTS synced')
      await warehouse.close()
    }
  })

  it('refuses a second data directory while one is open, and allows it once closed', async () => {
    const other = join(dir, 'other')
    const open = await createChdbWarehouse({ path })
    try {
      await assert.rejects(createChdbWarehouse({ path: other }), (error: unknown) => {
        assert.ok(error instanceof WarehouseError)
        assert.match(error.message, /one active data directory per process/)
        assert.ok(error.message.includes(other))
        return true
      })
    } finally {
      await open.close()
    }
    const released = await createChdbWarehouse({ path: other })
    await released.ping()
    await released.close()
  })

  it('fails ping while the last insert failed for want of storage, also one made through another connection, until one succeeds', async () => {
    const first = await createChdbWarehouse({ path })
    // Another connection to the same engine, as the projector thread's is.
    const second = await createChdbWarehouse({ path })
    try {
      // A table that wants more free disk than any has: the engine refuses its inserts with
      // NOT_ENOUGH_SPACE, as on a full disk.
      await first.command(
        'CREATE TABLE capped (id String) ENGINE = MergeTree ORDER BY id SETTINGS min_free_disk_bytes_to_perform_insert = 1000000000000000000',
      )
      await first.ping()
      await assert.rejects(first.insert('capped', [{ id: 'a' }]), /NOT_ENOUGH_SPACE/)
      await assert.rejects(
        first.ping(),
        /^UnavailableError: warehouse: the last write failed with NOT_ENOUGH_SPACE/,
      )
      await eventually(() => assert.rejects(second.ping(), /the last write failed with NOT_ENOUGH_SPACE/))

      // Room again: an insert through the other connection succeeds, and both are ready.
      await first.command('ALTER TABLE capped MODIFY SETTING min_free_disk_bytes_to_perform_insert = 0')
      await second.insert('capped', [{ id: 'b' }])
      await second.ping()
      await eventually(() => first.ping())
    } finally {
      await first.command('DROP TABLE IF EXISTS capped')
      await second.close()
      await first.close()
    }
  })

  it('fails ping once its tables’ data or its data directory is deleted while open', async () => {
    const deleted = join(dir, 'deleted')
    const warehouse = await createChdbWarehouse({ path: deleted })
    try {
      await migrate(warehouse, [{ version: 1, name: 'nothing', statements: [] }])
      await warehouse.ping()
      // The folder stays, the tables' files go: a `SELECT 1` would still answer.
      rmSync(join(deleted, 'store'), { recursive: true, force: true })
      await assert.rejects(warehouse.ping(), /FILE_DOESNT_EXIST/)
      rmSync(deleted, { recursive: true, force: true })
      await assert.rejects(warehouse.ping(), /warehouse: \S+deleted was deleted while open/)
    } finally {
      await warehouse.close()
    }
  })
})
