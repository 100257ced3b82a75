export { type AvroRead, type AvroTypeLike, compileAvroReader } from './avro-reader.ts'
export {
  type AvroRecord,
  avroDataSchemaOf,
  avroEventSchemaOf,
  heraldAvroSubjects,
} from './avro-schemas.ts'
export {
  BATCH_MEDIA_TYPE,
  dataFromBody,
  eventFromBinary,
  HTTP_HEADER_PREFIX,
  isJsonMediaType,
  KAFKA_HEADER_PREFIX,
  type KafkaEventOptions,
  kafkaMode,
  mediaType,
  prefixedAttributes,
  STRUCTURED_MEDIA_TYPE,
  toKafkaMessage,
} from './cloudevents-binding.ts'
export { type ConfluentSchemaRegistryOptions, createConfluentSchemaRegistry } from './confluent-registry.ts'
export { decodeEvent, decodeEventBatch, type IngressEvent, isUnknownType } from './contract.ts'
export {
  DeadLetterHeaders,
  type DeadLetterInfo,
  readDeadLetter,
  reasonHeaders,
  toDeadLetter,
  withoutValue,
} from './dead-letter.ts'
export {
  createIngressDecoder,
  failure,
  type IngressDecoder,
  type IngressDecoderOptions,
  type IngressFailure,
  type IngressFailureCode,
  type IngressResult,
} from './decode.ts'
export { createEmbeddedSchemaRegistry, type EmbeddedSchemaRegistryOptions } from './embedded-registry.ts'
export { ajvIssues, type CompileOptions, compileJsonSchema } from './json-schema.ts'
export {
  createMemoryProcessedIds,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_RETENTION_MS,
  type ProcessedIds,
  type ProcessedIdWindow,
  processedKey,
} from './processed-ids.ts'
export { createSqliteProcessedIds, type SqliteProcessedIdsOptions } from './processed-ids-sqlite.ts'
export { createWarehouseProcessedIds, type WarehouseProcessedIdsOptions } from './processed-ids-warehouse.ts'
export { createSchemaDecoders, type SchemaDecoders, type SchemaLookupFailure } from './schema-decoders.ts'
export type {
  PayloadDecoder,
  PayloadFailureCode,
  PayloadResult,
  SchemaDefinition,
  SchemaRegistry,
  SchemaType,
} from './schema-registry.ts'
export {
  eventSchemaOf,
  heraldSubjects,
  registerSubjects,
  type SubjectSchema,
  type SubjectTopics,
} from './subjects.ts'
export { encodeFrame, FRAME_HEADER_BYTES, type Frame, MAGIC_BYTE, parseFrame } from './wire-format.ts'
