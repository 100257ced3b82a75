import { readdirSync, readFileSync } from 'node:fs'
import { type EventTypeEntry, envelopeSchema, eventTypes, type JsonSchema } from '../events/index.ts'
import type { ContractCoverage, SchemaDefinition, SchemaRegistry } from './schema-registry.ts'

/**
 * The subjects Herald registers, named after the configured topics (Confluent's
 * TopicNameStrategy for a topic's one value type, TopicRecordNameStrategy for the many types
 * of `engine.events`):
 *
 * | subject | schema | used by |
 * |---|---|---|
 * | `<events>-value` | the envelope, any type | structured mode, a producer with one schema for all types |
 * | `<events>-<type>` | the envelope with `type` fixed and `data` per the type | structured mode, one schema per type |
 * | `<events>-<type>-data` | the type's `data` | binary mode, whose value is `data` |
 * | `<deliveries>-value`, `<outcomes>-value`, `<metrics>-value` | `schemas/topics/` | downstream consumers |
 *
 * Every registered schema is self-contained: a `$ref` to another Herald schema by `$id` is
 * resolved by embedding that schema under `$defs`, so any registry client can compile it.
 */
export interface SubjectSchema {
  readonly subject: string
  readonly schema: SchemaDefinition
}

export interface SubjectTopics {
  readonly events: string
  readonly deliveries: string
  readonly outcomes: string
  readonly metrics: string
}

const DRAFT = 'https://json-schema.org/draft/2020-12/schema'
const topicsDir = new URL('../../schemas/topics/', import.meta.url)

const readTopicSchema = (name: string): JsonSchema =>
  JSON.parse(readFileSync(new URL(`${name}.schema.json`, topicsDir), 'utf8')) as JsonSchema

/** The downstream topics' schemas in `schemas/topics/`, by file name (the default topic name). */
export const topicSchemaFiles = (): readonly string[] =>
  readdirSync(topicsDir)
    .filter((f) => f.endsWith('.schema.json'))
    .map((f) => f.slice(0, -'.schema.json'.length))
    .sort()

const idOf = (schema: JsonSchema): string => String(schema.$id)

/** Embeds each of `known` that `schema` refers to (by `$id`) under `$defs`, once. */
const bundle = (schema: JsonSchema, known: readonly JsonSchema[]): JsonSchema => {
  const text = JSON.stringify(schema)
  const defs: Record<string, JsonSchema> = { ...((schema.$defs as Record<string, JsonSchema>) ?? {}) }
  let added = false
  for (const other of known) {
    if (other !== schema && text.includes(`"$ref":"${idOf(other)}"`)) {
      defs[`herald:${idOf(other)}`] = other
      added = true
    }
  }
  return added ? { ...schema, $defs: defs } : schema
}

const json = (schema: JsonSchema): SchemaDefinition => ({ type: 'JSON', schema: JSON.stringify(schema) })

/**
 * One structured-mode event of `entry`'s type: the envelope, `type` fixed, `data` by its
 * schema, and for a type with subtypes (`com.ibm.cloud.compliance.posture`) `subtype`
 * required and one of them, as the event contract holds it: a producer's serializer then
 * refuses what Herald would dead-letter.
 */
export const eventSchemaOf = ({
  type,
  schema: data,
  subtypes,
}: Pick<EventTypeEntry, 'type' | 'schema' | 'subtypes'>): JsonSchema => ({
  $schema: DRAFT,
  $id: `urn:herald:schema:v1:message:${type}`,
  title: `${type} event`,
  description: `A ${type} CloudEvent in structured mode.`,
  allOf: [{ $ref: idOf(envelopeSchema) }],
  properties: {
    type: { const: type },
    ...(subtypes === undefined
      ? {}
      : {
          subtype: {
            enum: subtypes.map((s) => s.subtype),
            description: `Required for ${type}: which of its events this is.`,
          },
        }),
    data: { $ref: idOf(data) },
  },
  required: subtypes === undefined ? ['data'] : ['data', 'subtype'],
  $defs: { envelope: envelopeSchema, data },
})

let coverageByText: Map<string, ContractCoverage> | undefined

/**
 * What the event contract covers of `schema` (a parsed JSON Schema) when it is one of the
 * event schemas Herald registers, compared by its JSON text; undefined for any other schema,
 * a producer's own included, whose every rule the ingress must check itself. The envelope
 * covers structured events of any type, a type's event schema structured events of that
 * type, and a type's data schema the `data` of binary events of that type.
 */
export const contractCoverageOf = (schema: unknown): ContractCoverage | undefined => {
  if (coverageByText === undefined) {
    coverageByText = new Map([[JSON.stringify(envelopeSchema), { mode: 'structured', type: undefined }]])
    for (const entry of eventTypes) {
      coverageByText.set(JSON.stringify(eventSchemaOf(entry)), {
        mode: 'structured',
        type: entry.type,
      })
      coverageByText.set(JSON.stringify(entry.schema), { mode: 'binary', type: entry.type })
    }
  }
  return typeof schema === 'object' && schema !== null
    ? coverageByText.get(JSON.stringify(schema))
    : undefined
}

export const heraldSubjects = (topics: SubjectTopics): SubjectSchema[] => {
  const subjects: SubjectSchema[] = [{ subject: `${topics.events}-value`, schema: json(envelopeSchema) }]
  for (const entry of eventTypes) {
    subjects.push({
      subject: `${topics.events}-${entry.type}`,
      schema: json(eventSchemaOf(entry)),
    })
    subjects.push({ subject: `${topics.events}-${entry.type}-data`, schema: json(entry.schema) })
  }
  const downstream: Record<string, string> = {
    'notifications.deliveries': topics.deliveries,
    'notifications.outcomes': topics.outcomes,
    'reports.metrics': topics.metrics,
  }
  for (const file of topicSchemaFiles()) {
    const topic = downstream[file] ?? file
    subjects.push({
      subject: `${topic}-value`,
      schema: json(bundle(readTopicSchema(file), [envelopeSchema])),
    })
  }
  return subjects
}

/**
 * Registers every subject, a few at a time; the same schema again is a no-op in any registry,
 * so this runs on every start. Resolves to each subject's schema id.
 */
export const registerSubjects = async (
  registry: Pick<SchemaRegistry, 'register'>,
  subjects: readonly SubjectSchema[],
  concurrency = 8,
): Promise<ReadonlyMap<string, number>> => {
  const ids = new Map<string, number>()
  let next = 0
  const worker = async () => {
    while (next < subjects.length) {
      const entry = subjects[next++] as SubjectSchema
      ids.set(entry.subject, await registry.register(entry.subject, entry.schema))
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, subjects.length) }, worker))
  return ids
}
