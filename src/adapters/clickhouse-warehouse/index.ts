export { type ChdbWarehouseOptions, createChdbWarehouse } from './chdb.ts'
export { createHttpWarehouse, type HttpWarehouseOptions } from './http.ts'
export { type ClickHouseWarehouseOptions, createClickHouseWarehouse } from './warehouse.ts'
