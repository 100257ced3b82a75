export { EventPattern as EventPatternCodec, SigningSecret, TypePattern, WebhookUrl } from './codecs.ts'
export {
  type AddSelector,
  type ConfigurationCommand,
  type ConfigurationEvent,
  type ConfigurationState,
  type CreateWebhookConfiguration,
  configurationDecider,
  decide,
  decodeConfigurationEvent,
  evolve,
  initialState,
  isConfigurationStream,
  type SelectorAdded,
  STREAM_PREFIX,
  streamName,
  type WebhookConfigurationCreated,
} from './configuration.ts'
export {
  createEndpointRoutes,
  createEndpointStatusService,
  ENDPOINT_TYPES,
  type EndpointStatusService,
  type EndpointType,
  isEndpointType,
} from './endpoints.ts'
export {
  type EventPattern,
  emptySelectorSet,
  type LevelPattern,
  type NotificationsEnv,
  type Principal,
  type Role,
  type Selector,
  type SelectorScope,
  type SelectorSet,
  type WebhookConfiguration,
  type WebhookConfigurationView,
  withoutSecret,
} from './model.ts'
export {
  CreateSelectorBody,
  CreateWebhookConfigurationBody,
  createNotificationRoutes,
  type NotificationRoutesOptions,
} from './routes.ts'
export {
  applyToSelectorSet,
  coalesce,
  loadSelectorSet,
  type ReadAll,
  type SelectorSetsOptions,
  selectorSets,
} from './selector-set.ts'
export {
  createNotificationConfigService,
  type NotificationConfigService,
  type NotificationConfigServiceOptions,
  newSigningSecret,
  type SelectorInput,
  type WebhookConfigurationInput,
} from './service.ts'
