import type { ValidateFunction } from 'ajv'
import { ClosedError, NotFoundError, ValidationError } from '../errors/index.ts'
import { ajvIssues, compileJsonSchema } from './json-schema.ts'
import { jsonPayloadDecoder } from './payload-decoders.ts'
import type { PayloadDecoder, SchemaDefinition, SchemaRegistry } from './schema-registry.ts'
import { contractCoverageOf } from './subjects.ts'
import { encodeFrame } from './wire-format.ts'

export interface EmbeddedSchemaRegistryOptions {
  /** Registered in this order at creation, so ids are the same on every start with the same schemas. */
  readonly subjects?: readonly { readonly subject: string; readonly schema: SchemaDefinition }[]
}

const encoder = new TextEncoder()

/**
 * The embedded SchemaRegistry: JSON Schemas held in memory, ids issued from 1 in
 * registration order, the same schema text under any subject sharing one id (as Confluent's
 * registry does). For one process with no registry server; it speaks JSON Schema only.
 *
 * @example
 * const registry = createEmbeddedSchemaRegistry({ subjects: [{ subject: 'engine.events-value', schema }] })
 * const bytes = await registry.encode(await registry.latestId('engine.events-value'), event)
 */
export const createEmbeddedSchemaRegistry = (options: EmbeddedSchemaRegistryOptions = {}): SchemaRegistry => {
  const schemas = new Map<number, { readonly text: string; validate?: ValidateFunction }>()
  const idByText = new Map<string, number>()
  const versions = new Map<string, number[]>()
  let closed = false

  const assertOpen = () => {
    if (closed) throw new ClosedError('embedded schema registry')
  }

  const validatorOf = (id: number): ValidateFunction => {
    const entry = schemas.get(id)
    if (entry === undefined) throw new NotFoundError(`schema id ${id} is not registered`, { schemaId: id })
    entry.validate ??= compileJsonSchema(entry.text)
    return entry.validate
  }

  // Herald's own schemas are compiled on first use; a schema registered later is checked at once.
  const registerNow = (subject: string, definition: SchemaDefinition, check: boolean): number => {
    if (definition.type !== 'JSON')
      throw new ValidationError('the embedded registry holds JSON Schemas only', [
        { path: 'schemaType', message: `must be JSON, got ${definition.type}` },
      ])
    let validate: ValidateFunction | undefined
    if (check) {
      try {
        validate = compileJsonSchema(definition.schema, { checkSchema: true })
      } catch (error) {
        throw new ValidationError(`subject ${subject}: not a valid JSON Schema`, [
          { path: 'schema', message: (error as Error).message },
        ])
      }
    }
    let id = idByText.get(definition.schema)
    if (id === undefined) {
      id = schemas.size + 1
      schemas.set(
        id,
        validate === undefined ? { text: definition.schema } : { text: definition.schema, validate },
      )
      idByText.set(definition.schema, id)
    }
    const list = versions.get(subject) ?? []
    if (!list.includes(id)) list.push(id)
    versions.set(subject, list)
    return id
  }

  for (const { subject, schema } of options.subjects ?? []) registerNow(subject, schema, false)

  return {
    async decoderFor(id): Promise<PayloadDecoder> {
      assertOpen()
      const validate = validatorOf(id)
      return jsonPayloadDecoder(
        id,
        (value) => (validate(value) ? undefined : ajvIssues(validate.errors, value)),
        contractCoverageOf(validate.schema),
      )
    },
    async register(subject, schema) {
      assertOpen()
      return registerNow(subject, schema, true)
    },
    async latestId(subject) {
      assertOpen()
      const id = versions.get(subject)?.at(-1)
      if (id === undefined) throw new NotFoundError(`subject ${subject} is not registered`, { subject })
      return id
    },
    async encode(id, value) {
      assertOpen()
      const validate = validatorOf(id)
      if (!validate(value))
        throw new ValidationError(
          `the value does not match schema id ${id}`,
          ajvIssues(validate.errors, value),
        )
      return encodeFrame(id, encoder.encode(JSON.stringify(value)))
    },
    async close() {
      closed = true
    },
  }
}
