export type { ReadAllOptions, SqliteEventStore, SqliteEventStoreOptions } from './sqlite-event-store.ts'
export { createSqliteEventStore } from './sqlite-event-store.ts'
