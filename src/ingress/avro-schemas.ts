import { type EventTypeEntry, envelopeSchema, eventTypes, type JsonSchema } from '../events/index.ts'
import type { SubjectSchema, SubjectTopics } from './subjects.ts'

/**
 * Avro schemas for Herald's events, derived from the JSON Schemas in `schemas/` (the wire
 * contract) rather than written beside them, so the two cannot drift. Avro is the Confluent
 * registry's default serialization, and decodes several times faster than JSON is parsed.
 *
 * What Avro cannot say is left to the event contract, which judges every event after
 * decoding whatever its serialization: patterns, formats, lengths, bounds and enumerations
 * become plain strings and numbers, and fields a schema does not name cannot be sent.
 *
 * The mapping, per JSON Schema property:
 * - `string` (and `const`, `enum`) → `string`; `integer` → `long`; `number` → `double`;
 *   `boolean` → `boolean`; an array → `array`; an object with `properties` → a record; an
 *   object of string values only (annotations) → `map` of `string`;
 * - required → the type; optional → `["null", type]` with `"default": null` (null: absent);
 *   required but nullable (`anyOf` with `null`) → `["null", type]` without a default (null:
 *   JSON null) — the distinction the Avro decoder keeps;
 * - `data_base64`, which the contract refuses, has no field.
 *
 * Names follow Confluent's TopicRecordNameStrategy: the event record of type `T` is `T.Event`
 * and its data record `T.Data`, so their subjects are `<topic>-T.Event` and `<topic>-T.Data`.
 */
export type AvroType = string | readonly AvroType[] | { readonly [key: string]: unknown }

export type AvroRecord = {
  readonly type: 'record'
  readonly name: string
  readonly namespace?: string
  readonly doc?: string
  readonly fields: readonly AvroField[]
}

export type AvroField = {
  readonly name: string
  readonly type: AvroType
  readonly doc?: string
  readonly default?: null
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

const pascal = (name: string): string =>
  name
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part !== '')
    .map((part) => `${part[0]?.toUpperCase()}${part.slice(1)}`)
    .join('')

const isNullSchema = (schema: JsonSchema): boolean => schema.type === 'null'

// The names of the top-level records; nested records take other names.
const EVENT = 'Event'
const DATA = 'Data'

/** Derives Avro from one JSON Schema document (with its `$defs`), naming records once each. */
const deriver = (root: JsonSchema, namespace: string) => {
  const named = new Map<JsonSchema, string>()
  const used = new Set<string>([EVENT, DATA])

  const resolve = (schema: JsonSchema): { schema: JsonSchema; def?: string } => {
    const ref = schema.$ref
    if (typeof ref !== 'string') return { schema }
    const match = /^#\/\$defs\/([^/]+)$/.exec(ref)
    const target = match
      ? (root.$defs as Record<string, JsonSchema> | undefined)?.[match[1] as string]
      : undefined
    if (match === null || target === undefined)
      throw new Error(`avro: unresolvable $ref ${ref} in ${String(root.$id)}`)
    return { schema: target, def: match[1] as string }
  }

  const nameFor = (hint: string): string => {
    const base = pascal(hint) || 'Record'
    let name = base
    for (let i = 2; used.has(name); i++) name = `${base}${i}`
    used.add(name)
    return name
  }

  /** The Avro type of a schema, and whether JSON allows null there. */
  const typeOf = (input: JsonSchema, hint: string): { type: AvroType; nullable: boolean } => {
    const { schema, def } = resolve(input)
    const anyOf = schema.anyOf as JsonSchema[] | undefined
    if (anyOf !== undefined) {
      const others = anyOf.filter((s) => !isNullSchema(resolve(s).schema))
      if (others.length !== 1 || anyOf.length !== 2)
        throw new Error(`avro: only "anyOf [T, null]" is supported (${String(root.$id)} ${hint})`)
      return { type: typeOf(others[0] as JsonSchema, hint).type, nullable: true }
    }
    if (schema.const !== undefined || schema.enum !== undefined) {
      const values = (schema.enum as unknown[] | undefined) ?? [schema.const]
      if (!values.every((v) => typeof v === 'string'))
        throw new Error(`avro: only string enumerations are supported (${hint})`)
      return { type: 'string', nullable: false }
    }
    switch (schema.type) {
      case 'string':
        return { type: 'string', nullable: false }
      case 'integer':
        return { type: 'long', nullable: false }
      case 'number':
        return { type: 'double', nullable: false }
      case 'boolean':
        return { type: 'boolean', nullable: false }
      case 'array':
        return {
          type: { type: 'array', items: typeOf(schema.items as JsonSchema, hint).type },
          nullable: false,
        }
      case 'object':
        return { type: objectType(schema, def ?? hint), nullable: false }
      default:
        throw new Error(`avro: no Avro type for ${JSON.stringify(schema)} (${String(root.$id)} ${hint})`)
    }
  }

  const objectType = (schema: JsonSchema, hint: string): AvroType => {
    const properties = schema.properties as Record<string, JsonSchema> | undefined
    if (properties === undefined) {
      const values = schema.additionalProperties as JsonSchema | undefined
      if (typeof values !== 'object' || values.type !== 'string')
        throw new Error(`avro: an object without properties must map to strings (${hint})`)
      return { type: 'map', values: 'string' }
    }
    const existing = named.get(schema)
    if (existing !== undefined) return existing
    const name = nameFor(hint)
    named.set(schema, name)
    return record(name, schema, undefined)
  }

  const record = (
    name: string,
    schema: JsonSchema,
    override: Readonly<Record<string, AvroType>> | undefined,
  ) => {
    const required = new Set((schema.required as string[] | undefined) ?? [])
    const fields: AvroField[] = []
    for (const [key, property] of Object.entries(schema.properties as Record<string, JsonSchema>)) {
      if (!AVRO_NAME.test(key)) throw new Error(`avro: ${key} is not a valid Avro field name`)
      if (typeof property.not === 'object') continue // a field the contract refuses
      const doc = typeof property.description === 'string' ? { doc: property.description } : {}
      const given = override?.[key]
      const { type, nullable } =
        given === undefined ? typeOf(property, key) : { type: given, nullable: false }
      if (required.has(key) && !nullable) fields.push({ name: key, type, ...doc })
      else if (required.has(key)) fields.push({ name: key, type: ['null', type], ...doc })
      else fields.push({ name: key, type: ['null', type], ...doc, default: null })
    }
    const doc = typeof schema.description === 'string' ? { doc: schema.description } : {}
    return { type: 'record', name, namespace, ...doc, fields } as AvroRecord
  }

  return { record }
}

const checkNamespace = (type: string): string => {
  if (!type.split('.').every((part) => AVRO_NAME.test(part)))
    throw new Error(`avro: event type ${type} is not a valid Avro namespace`)
  return type
}

/** The `data` of `entry`'s type as an Avro record, `<type>.Data`: binary mode's value. */
export const avroDataSchemaOf = (entry: EventTypeEntry): AvroRecord => {
  const namespace = checkNamespace(entry.type)
  return deriver(entry.schema, namespace).record(DATA, entry.schema, undefined)
}

/**
 * One structured-mode event of `entry`'s type as an Avro record, `<type>.Event`: the envelope's
 * attributes, and `data` as the type's record.
 */
export const avroEventSchemaOf = (entry: EventTypeEntry): AvroRecord => {
  const namespace = checkNamespace(entry.type)
  // A subtyped type's subtype is required, as the event contract and its JSON subject hold it.
  const required = [
    ...((envelopeSchema.required as string[] | undefined) ?? []),
    'data',
    ...(entry.subtypes === undefined ? [] : ['subtype']),
  ]
  const event = deriver(envelopeSchema, namespace).record(
    EVENT,
    { ...envelopeSchema, required },
    { data: avroDataSchemaOf(entry) },
  )
  return { ...event, doc: `A ${entry.type} CloudEvent in structured mode, with Herald's extensions.` }
}

/**
 * The Avro subjects of `engine.events`, two per catalog type: `<events>-<type>.Event`
 * (structured mode) and `<events>-<type>.Data` (binary mode). Registered beside the JSON
 * subjects of `heraldSubjects`, in a Confluent Schema Registry (the embedded registry holds
 * JSON Schemas only).
 */
export const heraldAvroSubjects = (topics: Pick<SubjectTopics, 'events'>): SubjectSchema[] =>
  eventTypes.flatMap((entry) => [
    {
      subject: `${topics.events}-${entry.type}.Event`,
      schema: { type: 'AVRO', schema: JSON.stringify(avroEventSchemaOf(entry)) },
    },
    {
      subject: `${topics.events}-${entry.type}.Data`,
      schema: { type: 'AVRO', schema: JSON.stringify(avroDataSchemaOf(entry)) },
    },
  ])
