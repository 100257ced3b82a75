export type { KurrentDbEventStore, KurrentDbEventStoreOptions } from './kurrentdb-event-store.ts'
export { createKurrentDbEventStore } from './kurrentdb-event-store.ts'
