export { DEFAULT_SLA_DAYS, findingAging, type Sla, slaBreaches } from './aging.ts'
export { lagOf, type ReportContext } from './context.ts'
export { type DiffFilter, vulnerabilityDiff } from './diff.ts'
export { createReportGraphqlRoutes, isGraphiqlPageRequest, type ReportGraphqlOptions } from './graphql.ts'
export {
  createProgressView,
  createProjectionLag,
  type ProjectionLagOptions,
  projectionLagSeconds,
} from './lag.ts'
export { DEFAULT_QUERY_LIMITS, NESTED_LIST_SIZE, type QueryLimits, queryLimitRules } from './limits.ts'
export { createLogResetRoutes, type LogResetRoutesOptions, NoLogResetError } from './log-reset.ts'
export {
  type BackfillRunner,
  BackfillRunningError,
  type BackfillStatus,
  computeMetricValues,
  createBackfillRoutes,
  createBackfillRunner,
  createBoundaryClaims,
  createMetricsRecorder,
  createMetricsRoutes,
  type LateNotes,
  METRIC_POINTS_LEASE,
  METRICS,
  type MetricDataPoint,
  type MetricDefinition,
  type MetricsRecorder,
  type MetricsRecorderOptions,
  type MetricsRoutesOptions,
  type MetricsSchedule,
  type MetricsScheduleOptions,
  metricDefinition,
  metricPointMessage,
  openLateNotes,
  startMetricsSchedule,
} from './metrics/index.ts'
export { DEFAULT_LIMIT, MAX_LIMIT } from './paging.ts'
export { type PolicyEvaluationFilter, policyEvaluationsByTag } from './policy.ts'
export {
  createRebuildRoutes,
  createRebuildRunner,
  type PausableProjector,
  type RebuildRunner,
  RebuildRunningError,
  type RebuildState,
  type RebuildStatus,
  settleRebuildLeftovers,
} from './rebuild.ts'
export { events, type ReportPrincipal, rootValue } from './resolvers.ts'
export { reportSchema } from './schema.ts'
export {
  artifactsByVulnerability,
  imagesByVulnerability,
  tagsByVulnerability,
  type VulnerabilityFilter,
  vulnerabilityBreakdown,
} from './vulnerabilities.ts'
