export {
  dataSchemaFile,
  type EventData,
  type EventSubtype,
  type EventType,
  type EventTypeEntry,
  envelopeSchema,
  eventCatalog,
  eventTypes,
  isEventType,
  type JsonSchema,
  lookupEventType,
} from './catalog.ts'
export { type Finding, SEVERITIES, type Severity } from './data.ts'
export { decodeEngineEvent, type EngineEvent, isUnknownTypeIssue } from './decode.ts'
export { instantOf, isTimestamp, NOT_A_TIMESTAMP } from './formats.ts'
