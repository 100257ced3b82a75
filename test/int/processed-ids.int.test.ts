import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { WarehouseError } from '../../src/errors/index.ts'
import { createSqliteProcessedIds, createWarehouseProcessedIds } from '../../src/ingress/index.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { runProcessedIdsContract } from '../contracts/processed-ids.contract.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-processed-'))
let warehouse: Warehouse
before(async () => {
  warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
})
after(async () => {
  await warehouse?.close()
  rmSync(dir, { recursive: true, force: true })
})

let files = 0
let lastFile = ''
runProcessedIdsContract({
  name: 'SQLite file',
  open: async (options) => {
    lastFile = join(dir, `window-${files++}.sqlite`)
    return createSqliteProcessedIds({ path: lastFile, ...options })
  },
  reopen: async (options) => createSqliteProcessedIds({ path: lastFile, ...options }),
  boundedByCount: true,
})

let tables = 0
let lastTable = ''
runProcessedIdsContract({
  name: 'ClickHouse table (chDB)',
  open: async ({ clock, retentionMs }) => {
    lastTable = `processed_${tables++}`
    return createWarehouseProcessedIds(warehouse, { table: lastTable, clock, retentionMs })
  },
  reopen: async ({ clock, retentionMs }) =>
    createWarehouseProcessedIds(warehouse, { table: lastTable, clock, retentionMs }),
  boundedByCount: false,
})

describe('ClickHouse processed-id window: a projector-sized lookup', () => {
  it('answers for thousands of keys at once, over several queries', async () => {
    const window = await createWarehouseProcessedIds(warehouse, { table: `processed_many_${tables++}` })
    try {
      const keys = Array.from({ length: 4_500 }, (_, i) => `acme\u0000/s\u0000id-${i}`)
      await window.record(keys.filter((_, i) => i % 3 === 0))
      const seen = await window.seen(keys)
      assert.equal(seen.size, 1_500)
      for (const [i, key] of keys.entries()) assert.equal(seen.has(key), i % 3 === 0, key)
    } finally {
      await window.close()
    }
  })
})

describe('ClickHouse processed-id window: readiness (ping)', () => {
  it('reads its table through the warehouse: fails once the table is gone, while the warehouse answers', async () => {
    const table = `processed_ping_${tables++}`
    const window = await createWarehouseProcessedIds(warehouse, { table })
    try {
      await window.ping()
      await warehouse.command(`DROP TABLE ${table}`)
      await warehouse.ping()
      await assert.rejects(window.ping(), (error: unknown) => {
        assert.ok(error instanceof WarehouseError, String(error))
        assert.match(error.message, new RegExp(`UNKNOWN_TABLE \\(60\\).*${table}`))
        assert.equal(error.context.type, 'UNKNOWN_TABLE')
        return true
      })
    } finally {
      await window.close()
    }
  })
})
