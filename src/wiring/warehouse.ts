import { join } from 'node:path'
import { createChdbWarehouse, createHttpWarehouse } from '../adapters/clickhouse-warehouse/index.ts'
import type { Config } from '../config/index.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/**
 * The warehouse `config` names: chDB in `data_dir/warehouse` (embedded), or a ClickHouse
 * server. The projector's thread opens its own the same way; chDB shares one engine between
 * every connection to its directory in the process.
 */
export const openWarehouse = async (config: Config): Promise<Warehouse> => {
  if (config.warehouse.kind === 'embedded')
    return createChdbWarehouse({ path: join(config.data_dir, 'warehouse') })
  const { clickhouse } = config.warehouse
  return createHttpWarehouse({
    url: clickhouse.url ?? '',
    // Each unset key leaves what the URL says (`http://user:password@host:8123/database`).
    ...(clickhouse.username === null ? {} : { username: clickhouse.username }),
    ...(clickhouse.password === null ? {} : { password: clickhouse.password }),
    ...(clickhouse.database === null ? {} : { database: clickhouse.database }),
  })
}
