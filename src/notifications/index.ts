export { ANNOUNCEMENTS_STREAM, announcementKey } from './announcements.ts'
export {
  EventPattern as EventPatternCodec,
  isHostOrAddress,
  SigningSecret,
  TypePattern,
  Uuid,
  WebhookUrl,
} from './codecs.ts'
export {
  type AddSelector,
  type ConfigurationCommand,
  type ConfigurationEvent,
  type ConfigurationEventOf,
  ConfigurationOptions,
  type ConfigurationState,
  type CreateConfiguration,
  configurationDecider,
  type DeleteConfiguration,
  type DisableConfiguration,
  type DisableFailure,
  decide,
  decodeConfigurationEvent,
  evolve,
  foldConfiguration,
  initialState,
  isConfigurationStream,
  type RemoveSelector,
  type ResealSecrets,
  STREAM_PREFIX,
  streamName,
  type UpdateConfiguration,
  type UpdateSelector,
} from './configuration.ts'
export {
  ENDPOINT_FIELDS,
  type FieldSpec,
  isSecretField,
  secretFieldsOf,
  type Target,
  targetsOf,
} from './endpoint-fields.ts'
export {
  createEndpointRoutes,
  createEndpointStatusService,
  ENDPOINT_STREAM_PREFIX,
  type EndpointStatusService,
  endpointStatusChange,
} from './endpoints.ts'
export {
  type ConfigurationHealth,
  createDeliveryHealth,
  type DeliveryHealth,
  type HealthReport,
} from './health.ts'
export {
  type DigestSettings,
  ENDPOINT_TYPES,
  type EndpointConfiguration,
  type EndpointType,
  type EventPattern,
  emptySelectorSet,
  isEndpointType,
  type JsonValue,
  type LevelPattern,
  type NotificationsEnv,
  type Principal,
  type ReplacedSecret,
  type Role,
  type SealedSecret,
  type Selector,
  type SelectorScope,
  type SelectorSet,
  type UnannouncedDisable,
  type WebhookConfiguration,
} from './model.ts'
export {
  type CompiledSelector,
  compileSelectorBody,
  createWarehouseEvents,
  type EventNarrowing,
  explainStoredSelector,
  type PreviewLimits,
  type PreviewRequest,
  previewRequest,
  previewSelector,
  type ScanFilter,
  scanFilterOf,
  type TimeRange,
  type WarehouseEvents,
} from './preview.ts'
export { createSelectorToolsRoutes, type SelectorToolsRoutesOptions } from './preview-routes.ts'
export { createSkipCheck, type SkipCheckOptions, type SkipReason } from './replayable.ts'
export { createNotificationRoutes, type NotificationRoutesOptions } from './routes.ts'
export { keyIdsInUse, sealedValuesOf } from './sealed-keys.ts'
export {
  applyToSelectorSet,
  changedForDelivery,
  coalesce,
  loadSelectorSet,
  newlyDisabled,
  type ReadAll,
  type SelectorSetsOptions,
  selectorSets,
} from './selector-set.ts'
export {
  type ConfigurationInput,
  type ConfigurationWithSelectors,
  createNotificationConfigService,
  DEFAULT_OPTIONS,
  type NotificationConfigService,
  type NotificationConfigServiceOptions,
  newSigningSecret,
  type ResealResult,
  type SelectorInput,
  type SelectorPatch,
  undecryptableDetail,
  type Versioned,
  type WriteOptions,
} from './service.ts'
export {
  createEndpointTestRoutes,
  createTestEventRoutes,
  type EndpointTestRoutesOptions,
  type SendTest,
  TEST_EVENT_TYPE,
  type TestEventInput,
  type TestEventRoutesOptions,
  type TestSend,
  type TestSendResult,
  type TestStatus,
  testEvent,
} from './test-routes.ts'
export { configurationView, REDACTED, selectorView } from './views.ts'
