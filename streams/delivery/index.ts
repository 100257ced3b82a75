export {
  type AttemptRunner,
  type AttemptRunnerOptions,
  type ConfigurationFailure,
  channelDelivery,
  createAttemptRunner,
  type DeliverableConfiguration,
} from './attempt.ts'
export { type BoundedWaitsOptions, boundWaits } from './bounded-waits.ts'
export * from './channels/index.ts'
export {
  type WebhookRequestInput,
  webhookBody,
  webhookChannelPayload,
  webhookHeaders,
} from './channels/webhook.ts'
export {
  type ConfigurationSnapshot,
  type DeliveryEngine,
  type DeliveryEngineOptions,
  startDeliveryEngine,
} from './engine.ts'
export {
  createRateLimiter,
  DEFAULT_RATE_LIMITS,
  type RateLimiter,
  type RateLimits,
  rateLimitTarget,
} from './rate-limit.ts'
export {
  DEFAULT_RETRY_POLICY,
  DEFAULT_RETRY_SCHEDULE_MS,
  longestRetryWait,
  type RetryPolicy,
  retryDelay,
} from './retry-policy.ts'
export {
  type AttemptAnswer,
  ownedAfterHandover,
  type QueueScheduler,
  type QueueSchedulerOptions,
  type QueueSource,
  startQueueScheduler,
} from './scheduler.ts'
export {
  type SignatureHeaderInput,
  type SignWebhookInput,
  signatureHeader,
  signWebhook,
  type VerifyWebhookInput,
  verifyWebhook,
} from './signing.ts'
export {
  CONFIGURATION_DISABLED_TYPE,
  configurationDisabledEvent,
  type DisableAnnouncer,
  type DisableAnnouncerOptions,
  disabledEventId,
  startDisableAnnouncer,
} from './system-event.ts'
