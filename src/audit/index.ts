export {
  type AggregateType,
  type AuditEntry,
  type AuditPage,
  type AuditQuery,
  readAudit,
  toAuditEntry,
  visibleTo,
} from './audit.ts'
export { ACTIONS_STREAM, createActionRecorder } from './recorded-actions.ts'
export { createAuditRoutes } from './routes.ts'
