export {
  type AttemptDetails,
  type DeliveryCommand,
  type DeliveryState,
  DeliveryStateError,
  decide,
  evolve,
  initialState,
  type NewDeliveryEvent,
  type Resolution,
} from './delivery.ts'
export {
  ATTEMPT_OUTCOMES,
  type AttemptOutcome,
  DELIVERY_STATUSES,
  DELIVERY_STREAM_PREFIX,
  DeliveryEvent,
  type DeliveryEventOf,
  type DeliveryRequestedData,
  type DeliveryStatus,
  decodeDeliveryEvent,
  deliveryStream,
  isDeliveryStatus,
  isDeliveryStream,
  isSettled,
  MAX_DELIVERY_COMMAND_BYTES,
} from './events.ts'
export { createDeliveryLog, type DeliveryLog, type DeliveryLogOptions, type RecordedAttempt } from './log.ts'
export {
  type DeliveryOutcomeRecord,
  encodeOutcome,
  type OutcomePublisher,
  type OutcomePublisherOptions,
  outcomeRecord,
  startOutcomePublisher,
} from './outcomes.ts'
export {
  type AttemptRow,
  createDeliveryReadModel,
  type DeliveryPage,
  type DeliveryQuery,
  type DeliveryReadModel,
  type DeliveryReadModelOptions,
  type DeliveryRow,
  type ReadModelUpgradeListener,
  type StoredDelivery,
} from './read-model.ts'
export {
  createThreadedDeliveryReadModel,
  type ThreadedDeliveryReadModelOptions,
} from './read-model-thread.ts'
export {
  type DeliveryRetention,
  type DeliveryRetentionOptions,
  type RetentionPass,
  startDeliveryRetention,
} from './retention.ts'
export {
  attemptView,
  createDeliveryRoutes,
  type DeliveryRoutesOptions,
  deliveryView,
  ReplayRefusedError,
} from './routes.ts'
