import { m0001Events } from './0001-events.ts'
import { m0002EventsReplacing } from './0002-events-replacing.ts'
import {
  m0003ReportTables,
  type ReportTable,
  reportTableDdl as reportTablesOf0003,
} from './0003-report-tables.ts'
import { m0004MetricPoints } from './0004-metric-points.ts'
import { m0005VulnerabilityProjection } from './0005-vulnerability-projection.ts'
import { m0006EventAttributes } from './0006-event-attributes.ts'
import { m0007EventsSourceKey } from './0007-events-source-key.ts'
import { m0008EventsIdIndex } from './0008-events-id-index.ts'
import {
  m0009PolicyLatestByEvaluation,
  policyEvaluationLatestTable,
} from './0009-policy-latest-by-evaluation.ts'
import { m0010LogResets } from './0010-log-resets.ts'
import type { WarehouseMigration } from './migrate.ts'

export { REPORT_TABLES, type ReportTable } from './0003-report-tables.ts'
export { vulnerabilityProjection } from './0005-vulnerability-projection.ts'
export { eventsTable } from './0007-events-source-key.ts'
export {
  acquireLease,
  expireLeases,
  type Lease,
  LeaseHeldError,
  type LeaseOptions,
  leaseHolders,
} from './lease.ts'
export {
  type MigrateOptions,
  type MigrationResult,
  migrate,
  type WarehouseMigration,
} from './migrate.ts'

/**
 * The DDL of every report table as the migrations leave it, by table name, for a given
 * physical name (rebuilds make their own): migration 3's, with the tables later ones remade.
 */
export const reportTableDdl: Readonly<Record<ReportTable, (name: string) => string>> = {
  ...reportTablesOf0003,
  policy_evaluation_latest: policyEvaluationLatestTable,
}

/** Every warehouse migration Herald knows, in version order; append, never edit or reorder. */
export const warehouseMigrations: readonly WarehouseMigration[] = [
  m0001Events,
  m0002EventsReplacing,
  m0003ReportTables,
  m0004MetricPoints,
  m0005VulnerabilityProjection,
  m0006EventAttributes,
  m0007EventsSourceKey,
  m0008EventsIdIndex,
  m0009PolicyLatestByEvaluation,
  m0010LogResets,
]
