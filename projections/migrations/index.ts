import type { Migration } from '../../src/ports/index.ts'
import { m0001Events } from './0001-events.ts'

export { type MigrateOptions, type MigrationResult, migrate } from './migrate.ts'

/** Every warehouse migration Herald knows, in version order; append, never edit or reorder. */
export const warehouseMigrations: readonly Migration[] = [m0001Events]
