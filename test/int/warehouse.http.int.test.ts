import { randomUUID } from 'node:crypto'
import { after, before, it } from 'node:test'
import { createHttpWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { runWarehouseContract } from '../contracts/warehouse.contract.ts'

// Tests read the environment directly: they are the harness, not Herald's configuration.
const url = process.env.CLICKHOUSE_URL

if (url === undefined || url === '') {
  it('Warehouse contract: ClickHouse server over HTTP', {
    skip: 'no ClickHouse server here; set CLICKHOUSE_URL (e.g. http://default:password@localhost:8123) to run it',
  }, () => {})
} else {
  // A scratch database per run keeps the suite off real data and lets runs overlap.
  const database = `herald_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  const admin = createHttpWarehouse({ url })
  before(() => admin.command(`CREATE DATABASE ${database}`))
  after(async () => {
    await admin.command(`DROP DATABASE IF EXISTS ${database}`)
    await admin.close()
  })

  runWarehouseContract({
    name: 'ClickHouse server over HTTP',
    open: async () => createHttpWarehouse({ url, database }),
  })
}
