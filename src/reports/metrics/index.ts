export {
  type BackfillRunner,
  BackfillRunningError,
  type BackfillState,
  type BackfillStatus,
  createBackfillRoutes,
  createBackfillRunner,
} from './backfill.ts'
export {
  type BoundaryClaim,
  type BoundaryClaimResult,
  type BoundaryClaimsOptions,
  createBoundaryClaims,
  METRIC_POINTS_LEASE,
} from './claims.ts'
export { computeMetricValues, type MetricValues } from './compute.ts'
export { METRICS, type MetricDefinition, metricDefinition } from './definitions.ts'
export { type LateNotes, openLateNotes } from './late-notes.ts'
export { type MetricDataFilter, type MetricFilter, metricData, metrics } from './queries.ts'
export {
  createMetricsRecorder,
  type MetricDataPoint,
  type MetricsRecorder,
  type MetricsRecorderOptions,
  metricPointMessage,
} from './recorder.ts'
export { createMetricsRoutes, type MetricsRoutesOptions } from './routes.ts'
export { type MetricsSchedule, type MetricsScheduleOptions, startMetricsSchedule } from './schedule.ts'
