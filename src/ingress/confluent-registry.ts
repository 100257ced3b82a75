import {
  SchemaRegistry as ConfluentClient,
  SchemaType as ConfluentSchemaType,
} from '@kafkajs/confluent-schema-registry'
import type { AnySchemaObject, ValidateFunction } from 'ajv'
import {
  ClosedError,
  errorText,
  type FieldIssue,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../errors/index.ts'
import { ajvIssues, createAjv, pointerToPath } from './json-schema.ts'
import { avroPayloadDecoder, jsonPayloadDecoder } from './payload-decoders.ts'
import type { PayloadDecoder, SchemaRegistry } from './schema-registry.ts'
import { contractCoverageOf } from './subjects.ts'

export interface ConfluentSchemaRegistryOptions {
  /** Base URL, e.g. `http://schema-registry:8081`. */
  readonly url: string
  readonly username?: string
  readonly password?: string
  readonly clientId?: string
  /** Retries of failed requests (5xx, network); the client's defaults when omitted. */
  readonly retry?: {
    readonly retries?: number
    readonly initialRetryTimeMs?: number
    readonly maxRetryTimeMs?: number
  }
}

/** The client reports HTTP failures as errors with a `status`; a network failure has none or 400. */
const statusOf = (error: unknown): number | undefined =>
  typeof error === 'object' && error !== null && 'status' in error && typeof error.status === 'number'
    ? error.status
    : undefined

const fromClientError = (error: unknown, what: string, context: Record<string, unknown>): Error => {
  const status = statusOf(error)
  const detail = errorText(error)
  if (status === 404) return new NotFoundError(`schema registry: ${what}: ${detail}`, context)
  // The client compiles a schema before it sends it, and refuses one that does not compile.
  const name = error instanceof Error ? error.name : ''
  if (name === 'ConfluentSchemaRegistryArgumentError' || name === 'ConfluentSchemaRegistryInvalidSchemaError')
    return new ValidationError(
      `schema registry: ${what}: not a valid schema`,
      [{ path: 'schema', message: detail }],
      {
        cause: error,
        context,
      },
    )
  if (status === 409 || status === 422)
    return new ValidationError(`schema registry refused ${what}`, [{ path: 'schema', message: detail }], {
      cause: error,
      context,
    })
  return new UnavailableError(`schema registry: ${what} failed: ${detail}`, { cause: error, context })
}

/**
 * The client compiles each JSON Schema it fetches with the ajv instance it is given. One
 * shared instance would refuse a second schema with the same `$id` (two versions of one
 * subject), so every compilation gets a fresh instance, fitted to the schema's draft.
 */
const freshAjvPerSchema = () => {
  let references: [AnySchemaObject, string | undefined][] = []
  const factory = {
    addSchema(schema: AnySchemaObject, key?: string) {
      references.push([schema, key])
      return factory
    },
    compile(schema: AnySchemaObject) {
      const ajv = createAjv(schema)
      for (const [reference, key] of references) ajv.addSchema(reference, key)
      references = []
      return ajv.compile(schema)
    },
  }
  return factory
}

/**
 * The SchemaRegistry on a Confluent Schema Registry through `@kafkajs/confluent-schema-registry`.
 * JSON Schema and Avro are read; Protobuf ids are refused as unsupported. The client caches
 * each schema it fetched, and the ingress caches the decoder built from it, so a schema is
 * fetched and compiled once per process.
 *
 * @example
 * const registry = createConfluentSchemaRegistry({ url: 'http://schema-registry:8081' })
 * const id = await registry.register('engine.events-value', { type: 'JSON', schema })
 */
export const createConfluentSchemaRegistry = (options: ConfluentSchemaRegistryOptions): SchemaRegistry => {
  const retry = options.retry
  // The client's option types name ajv's default export; the factory has the two methods it calls.
  const clientOptions = {
    [ConfluentSchemaType.JSON]: { ajvInstance: freshAjvPerSchema() },
  } as unknown as ConstructorParameters<typeof ConfluentClient>[1]
  const client = new ConfluentClient(
    {
      host: options.url.replace(/\/+$/, ''),
      clientId: options.clientId ?? 'herald',
      ...(options.username !== undefined && options.password !== undefined
        ? { auth: { username: options.username, password: options.password } }
        : {}),
      ...(retry === undefined
        ? {}
        : {
            retry: {
              ...(retry.retries === undefined ? {} : { retries: retry.retries }),
              ...(retry.initialRetryTimeMs === undefined
                ? {}
                : { initialRetryTimeInSecs: retry.initialRetryTimeMs / 1000 }),
              ...(retry.maxRetryTimeMs === undefined
                ? {}
                : { maxRetryTimeInSecs: retry.maxRetryTimeMs / 1000 }),
            },
          }),
    },
    clientOptions,
  )
  let closed = false
  const assertOpen = () => {
    if (closed) throw new ClosedError('confluent schema registry')
  }

  const jsonDecoder = (
    id: number,
    schema: Awaited<ReturnType<ConfluentClient['getSchema']>>,
  ): PayloadDecoder => {
    // The client's JSON schema keeps the function compiled by `freshAjvPerSchema`; calling it
    // directly gives ajv's errors whole (the missing property of a `required` failure, which
    // the client's error hook drops). Should a client version hide it, the hook still works.
    const compiled: unknown = Reflect.get(schema, 'validate')
    if (typeof compiled === 'function') {
      const validate = compiled as ValidateFunction
      return jsonPayloadDecoder(
        id,
        (value) => (validate(value) ? undefined : ajvIssues(validate.errors, value)),
        contractCoverageOf(validate.schema),
      )
    }
    let issues: FieldIssue[] = []
    const errorHook = (path: string[], message: unknown) => {
      issues.push({ path: pointerToPath(path[0] ?? ''), message: String(message) })
    }
    return jsonPayloadDecoder(id, (value) => {
      issues = []
      // isValid reports a failure only to an errorHook; without one it answers true.
      return schema.isValid(value as object, { errorHook }) ? undefined : issues
    })
  }

  return {
    async decoderFor(id) {
      assertOpen()
      let schema: Awaited<ReturnType<ConfluentClient['getSchema']>>
      try {
        schema = await client.getSchema(id)
      } catch (error) {
        throw fromClientError(error, `schema id ${id}`, { schemaId: id })
      }
      const type = client.cache.getSchema(id)?.type
      if (type === ConfluentSchemaType.JSON) return jsonDecoder(id, schema)
      if (type === ConfluentSchemaType.AVRO) return avroPayloadDecoder(id, schema)
      throw new ValidationError(`schema id ${id} is of type ${String(type)}, which Herald does not read`, [
        { path: 'schemaType', message: 'must be JSON or AVRO' },
      ])
    },

    async register(subject, definition) {
      assertOpen()
      try {
        const { id } =
          definition.type === 'JSON'
            ? await client.register(
                { type: ConfluentSchemaType.JSON, schema: definition.schema },
                { subject },
              )
            : await client.register(
                { type: ConfluentSchemaType.AVRO, schema: definition.schema },
                { subject },
              )
        return id
      } catch (error) {
        throw fromClientError(error, `registering subject ${subject}`, { subject })
      }
    },

    async latestId(subject) {
      assertOpen()
      try {
        return await client.getLatestSchemaId(subject)
      } catch (error) {
        throw fromClientError(error, `latest version of subject ${subject}`, { subject })
      }
    },

    async encode(id, value) {
      assertOpen()
      try {
        return await client.encode(id, value)
      } catch (error) {
        if (error instanceof Error && error.name === 'ConfluentSchemaRegistryValidationError') {
          const paths = (error as Error & { paths?: unknown[] }).paths ?? []
          throw new ValidationError(
            `the value does not match schema id ${id}`,
            paths.map((p) => ({
              path: Array.isArray(p) ? pointerToPath(String(p[0] ?? '')) : String(p),
              message: 'is invalid',
            })),
          )
        }
        throw fromClientError(error, `encoding with schema id ${id}`, { schemaId: id })
      }
    },

    async close() {
      closed = true
    },
  }
}
