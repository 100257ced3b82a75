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

/** `url` without its user-info, query or fragment: where the registry is, for the log. */
const addressOf = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`
  } catch {
    return 'the configured URL'
  }
}

/**
 * The client's failure as Herald's. The client (mappersmith beneath it) reports a request that
 * got no HTTP answer at all (refused, unresolvable, reset) as a response of status 400 whose
 * text is the socket's error, `<clientId> - Error, status 400: connect ECONNREFUSED …`: said
 * here as what it is, no answer, where the 400 read as the registry's.
 */
const fromClientError = (
  error: unknown,
  what: string,
  context: Record<string, unknown>,
  { address, clientId }: { readonly address: string; readonly clientId: string },
): Error => {
  const status = statusOf(error)
  const text = errorText(error)
  const detail = text.startsWith(`${clientId} - `) ? text.slice(clientId.length + 3) : text
  if (status === 404) return new NotFoundError(`schema registry: ${what}: ${text}`, context)
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
    return new ValidationError(`schema registry refused ${what}`, [{ path: 'schema', message: text }], {
      cause: error,
      context,
    })
  const noAnswer = status === 400 && detail.startsWith('Error, status 400: ')
  // The registry's address and the socket's words are for the log; a client is told it failed.
  const shown = `schema registry: ${what} failed: the schema registry is unavailable; try again later (the server log has the details)`
  return new UnavailableError(
    noAnswer
      ? `schema registry at ${address}: ${what}: no answer (${detail.slice('Error, status 400: '.length)})`
      : `schema registry at ${address}: ${what} failed: ${status === undefined ? '' : `HTTP ${status}: `}${detail}`,
    { cause: error, context, shown },
  )
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
  const clientId = options.clientId ?? 'herald'
  const where = { address: addressOf(options.url), clientId }
  // The client's option types name ajv's default export; the factory has the two methods it calls.
  const clientOptions = {
    [ConfluentSchemaType.JSON]: { ajvInstance: freshAjvPerSchema() },
  } as unknown as ConstructorParameters<typeof ConfluentClient>[1]
  const client = new ConfluentClient(
    {
      host: options.url.replace(/\/+$/, ''),
      clientId,
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
        throw fromClientError(error, `schema id ${id}`, { schemaId: id }, where)
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
        throw fromClientError(error, `registering subject ${subject}`, { subject }, where)
      }
    },

    async latestId(subject) {
      assertOpen()
      try {
        return await client.getLatestSchemaId(subject)
      } catch (error) {
        throw fromClientError(error, `latest version of subject ${subject}`, { subject }, where)
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
        throw fromClientError(error, `encoding with schema id ${id}`, { schemaId: id }, where)
      }
    },

    async close() {
      closed = true
    },
  }
}
