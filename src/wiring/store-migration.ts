import type { SqliteEventStoreOptions } from '../adapters/sqlite-event-store/index.ts'
import type { ReadModelUpgradeListener } from '../deliveries/index.ts'
import type { Logger } from '../observability/index.ts'

/**
 * Logs an embedded store file's migration as it opens (`event_store.migrating`, then
 * `event_store.migrated`), so a start that copies a large file's events says why it waits.
 */
export const logStoreMigration =
  (logger: Logger, path: string): NonNullable<SqliteEventStoreOptions['onMigration']> =>
  (progress) =>
    progress.stage === 'started'
      ? logger('info', 'event_store.migrating', {
          path,
          events: progress.events,
          message: 'numbering the streams of a file written by an older version; every event is copied once',
        })
      : logger('info', 'event_store.migrated', { path, events: progress.events, ms: progress.ms })

/**
 * Logs the delivery read model's upgrade as its file opens (`delivery_read_model.upgrading`, then
 * `delivery_read_model.upgraded`), where it copies the file's rows.
 */
export const logReadModelUpgrade =
  (logger: Logger, path: string): ReadModelUpgradeListener =>
  ({ stage, ...progress }) =>
    stage === 'started'
      ? logger('info', 'delivery_read_model.upgrading', {
          path,
          ...progress,
          message: 'bringing a file written by an older version up to date; its rows are copied once',
        })
      : logger('info', 'delivery_read_model.upgraded', { path, ...progress })
