export type * from './event-log.ts'
export type * from './event-store.ts'
export type * from './warehouse.ts'
