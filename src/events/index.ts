export {
  dataSchemaFile,
  decodeEngineEvent,
  type EngineEvent,
  type EventData,
  type EventSubtype,
  type EventType,
  type EventTypeEntry,
  envelopeSchema,
  eventCatalog,
  eventTypes,
  type Finding,
  instantOf,
  isEventType,
  isTimestamp,
  isUnknownTypeIssue,
  type JsonSchema,
  lookupEventType,
  NOT_A_TIMESTAMP,
  SEVERITIES,
  type Severity,
} from './catalog/index.ts'
export {
  AccountName,
  CloudEvent,
  type Decoded,
  decodeBatch,
  decodeCloudEvent,
  decodeCloudEventBatch,
  type EventText,
  eventKey,
  Level,
  RecordedCloudEvent,
} from './cloudevent.ts'
export {
  DELIVERER_SOURCE,
  HERALD_SOURCE,
  HERALD_TYPE_PREFIX,
  heraldClaims,
  notAsHeraldEmits,
  TEST_EVENT_SOURCE,
} from './herald-events.ts'
export { contextPath, toFieldIssues, withMessage } from './io-ts-issues.ts'
export { decodeLogEvent, encodeLogEvent } from './wire.ts'
