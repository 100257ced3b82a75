export {
  type EntityRows,
  type EntityState,
  type FindingOp,
  type FindingRows,
  type FindingState,
  findingKey,
  foldEntities,
  foldFindings,
  imageKey,
  type Positioned,
  type StateNeeds,
  stateNeeds,
  tagKey,
} from './fold.ts'
export {
  createProjectorHandler,
  openProjectedIds,
  openSharedProjectedIds,
  type ProjectorOptions,
} from './handler.ts'
export {
  acceptLogResets,
  createLogGuard,
  isLogReset,
  LOG_RESET_REMEDY,
  type LogGuard,
  type LogReset,
  LogResetError,
  type LogResetKey,
  LogResetsNotPendingError,
  listLogResets,
  type RecordedLogReset,
} from './log-guard.ts'
export {
  discardRebuild,
  finishRebuildSwap,
  REBUILD_LEASE,
  type Rebuild,
  RebuildElsewhereError,
  type RebuildLeftovers,
  type RebuildOptions,
  RebuildPauseUnacknowledgedError,
  type RebuildProgress,
  RebuildSwapUnfinishedError,
  rebuildLeaseHolders,
  rebuildProgress,
  startRebuild,
} from './rebuild.ts'
export {
  deduplicationToken,
  type EventRow,
  fromClickHouseTime,
  type StoredEnvelope,
  storedEvent,
  toClickHouseTime,
  toEventRow,
} from './rows.ts'
export { DEFAULT_TABLES, loadEntityState, loadFindingState, type ProjectionTables } from './state.ts'
export { createSwapGate, type SwapGate, type SwapGateOptions, type SwapPass } from './swap-gate.ts'
export type * from './tables.ts'
export { type ProjectorThread, type ProjectorThreadOptions, startProjectorThread } from './thread.ts'
