import type { Warehouse } from '../../src/ports/warehouse.ts'

const unused = () => Promise.reject(new Error('not used'))

/**
 * A warehouse for tests of parts that take one but never reach it here (ingest, the router,
 * the notification routes): every call fails, so a test that did reach it would say so.
 */
export const unusedWarehouse: Warehouse = {
  command: unused,
  query: unused,
  insert: unused,
  ping: unused,
  close: unused,
}
