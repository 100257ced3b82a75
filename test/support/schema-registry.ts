import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { compileJsonSchema } from '../../src/ingress/index.ts'

/**
 * A stand-in for Confluent Schema Registry: the REST endpoints its clients call, with its
 * status codes, `error_code`s and media type, kept in memory. No registry server can be
 * installed on the development machines (see DESIGN.md), so the Confluent adapter is tested
 * against this. Ids are global and shared by identical schemas across subjects, as in the
 * real registry; compatibility levels are stored but not enforced.
 *
 * @example
 * const registry = await startSchemaRegistry()
 * const client = createConfluentSchemaRegistry({ url: registry.url })
 * registry.requests.filter((r) => r.path.startsWith('/schemas/ids/')).length // fetches made
 * await registry.close()
 */
export interface SchemaRegistryStandIn {
  readonly url: string
  /** Every request received, in order. */
  readonly requests: readonly { readonly method: string; readonly path: string }[]
  /** The most requests it was answering at one time. */
  readonly mostInFlight: number
  /** Registers directly, as another producer would have. */
  register(subject: string, schema: string, schemaType?: 'JSON' | 'AVRO' | 'PROTOBUF'): number
  /** Makes the next `count` requests fail with `status` (default 503), as an overloaded registry does. */
  failNext(count: number, status?: number): void
  close(): Promise<void>
}

export interface SchemaRegistryOptions {
  /** Basic-auth credentials every request must carry. */
  readonly auth?: { readonly username: string; readonly password: string }
  /** How long each answer takes, in ms (default 0), as a remote registry's does. */
  readonly latencyMs?: number
}

const MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json'

interface Stored {
  readonly id: number
  readonly schema: string
  readonly schemaType: 'JSON' | 'AVRO' | 'PROTOBUF'
  readonly references: readonly unknown[]
}

class RegistryError extends Error {
  readonly status: number
  readonly errorCode: number
  constructor(status: number, errorCode: number, message: string) {
    super(message)
    this.status = status
    this.errorCode = errorCode
  }
}

const subjectNotFound = (subject: string) => new RegistryError(404, 40401, `Subject '${subject}' not found.`)

const readBody = async (request: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  if (text === '') return {}
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new RegistryError(400, 400, `Unrecognized JSON: ${(error as Error).message}`)
  }
}

/** Confluent compares schemas after normalising JSON whitespace; Protobuf text is compared as is. */
const canonical = (schema: string, schemaType: Stored['schemaType']): string => {
  if (schemaType === 'PROTOBUF') return schema
  try {
    return JSON.stringify(JSON.parse(schema))
  } catch (error) {
    throw new RegistryError(422, 42201, `Invalid schema: ${(error as Error).message}`)
  }
}

const validateSchema = (schema: string, schemaType: Stored['schemaType']): void => {
  if (schemaType === 'JSON') {
    try {
      compileJsonSchema(schema, { checkSchema: true })
    } catch (error) {
      throw new RegistryError(
        422,
        42201,
        `Invalid schema ${schema.slice(0, 80)}: ${(error as Error).message}`,
      )
    }
  } else if (schemaType === 'AVRO') {
    const parsed: unknown = JSON.parse(schema)
    const valid =
      typeof parsed === 'string' ||
      Array.isArray(parsed) ||
      (typeof parsed === 'object' && parsed !== null && 'type' in parsed)
    if (!valid) throw new RegistryError(422, 42201, 'Invalid schema: an Avro schema needs a type')
  }
}

export const startSchemaRegistry = async (
  options: SchemaRegistryOptions = {},
): Promise<SchemaRegistryStandIn> => {
  const schemas: Stored[] = []
  const byCanonical = new Map<string, Stored>()
  const subjects = new Map<string, number[]>()
  const configs = new Map<string, string>()
  const requests: { method: string; path: string }[] = []
  let globalCompatibility = 'BACKWARD'
  let failures: { remaining: number; status: number } = { remaining: 0, status: 503 }
  let inFlight = 0
  let mostInFlight = 0

  const store = (
    subject: string,
    schema: string,
    schemaType: Stored['schemaType'],
    references: unknown[],
  ) => {
    validateSchema(schema, schemaType)
    const key = `${schemaType}\u0000${canonical(schema, schemaType)}\u0000${JSON.stringify(references)}`
    let stored = byCanonical.get(key)
    if (stored === undefined) {
      stored = { id: schemas.length + 1, schema, schemaType, references }
      schemas.push(stored)
      byCanonical.set(key, stored)
    }
    const versions = subjects.get(subject) ?? []
    if (!versions.includes(stored.id)) versions.push(stored.id)
    subjects.set(subject, versions)
    return stored
  }

  const schemaTypeOf = (value: unknown): Stored['schemaType'] => {
    if (value === undefined || value === null || value === 'AVRO') return 'AVRO'
    if (value === 'JSON' || value === 'PROTOBUF') return value
    throw new RegistryError(422, 42201, `Invalid schema type ${String(value)}`)
  }

  const versionOf = (subject: string, version: string): { version: number; stored: Stored } => {
    const versions = subjects.get(subject)
    if (versions === undefined) throw subjectNotFound(subject)
    const n = version === 'latest' || version === '-1' ? versions.length : Number(version)
    const id = Number.isInteger(n) ? versions[n - 1] : undefined
    if (!Number.isInteger(n) || n < 1)
      throw new RegistryError(422, 42202, `The specified version '${version}' is not a valid version id.`)
    const stored = id === undefined ? undefined : schemas[id - 1]
    if (stored === undefined) throw new RegistryError(404, 40402, `Version ${version} not found.`)
    return { version: n, stored }
  }

  const describe = (subject: string, version: number, stored: Stored) => ({
    subject,
    version,
    id: stored.id,
    ...(stored.schemaType === 'AVRO' ? {} : { schemaType: stored.schemaType }),
    ...(stored.references.length === 0 ? {} : { references: stored.references }),
    schema: stored.schema,
  })

  const route = async (method: string, parts: string[], request: IncomingMessage): Promise<unknown> => {
    const [head, a, b, c, d] = parts
    if (head === 'schemas' && a === 'types' && b === undefined && method === 'GET')
      return ['JSON', 'PROTOBUF', 'AVRO']
    if (head === 'schemas' && a === 'ids' && b !== undefined && method === 'GET') {
      const stored = schemas[Number(b) - 1]
      if (stored === undefined || !/^\d+$/.test(b))
        throw new RegistryError(404, 40403, `Schema ${b} not found`)
      if (c === 'schema') return JSON.parse(stored.schema)
      return {
        ...(stored.schemaType === 'AVRO' ? {} : { schemaType: stored.schemaType }),
        ...(stored.references.length === 0 ? {} : { references: stored.references }),
        schema: stored.schema,
      }
    }
    if (head === 'subjects' && a === undefined && method === 'GET') return [...subjects.keys()]
    if (head === 'subjects' && a !== undefined) {
      const subject = decodeURIComponent(a)
      if (b === undefined && method === 'POST') {
        const body = (await readBody(request)) as Record<string, unknown>
        const versions = subjects.get(subject)
        if (versions === undefined) throw subjectNotFound(subject)
        const schemaType = schemaTypeOf(body.schemaType)
        const key = `${schemaType}\u0000${canonical(String(body.schema ?? ''), schemaType)}\u0000${JSON.stringify(body.references ?? [])}`
        const stored = byCanonical.get(key)
        const index = stored === undefined ? -1 : versions.indexOf(stored.id)
        if (stored === undefined || index < 0) throw new RegistryError(404, 40403, 'Schema not found')
        return describe(subject, index + 1, stored)
      }
      if (b === undefined && method === 'DELETE') {
        const versions = subjects.get(subject)
        if (versions === undefined) throw subjectNotFound(subject)
        subjects.delete(subject)
        return versions.map((_, i) => i + 1)
      }
      if (b === 'versions' && c === undefined && method === 'GET') {
        const versions = subjects.get(subject)
        if (versions === undefined) throw subjectNotFound(subject)
        return versions.map((_, i) => i + 1)
      }
      if (b === 'versions' && c === undefined && method === 'POST') {
        const body = (await readBody(request)) as Record<string, unknown>
        if (typeof body.schema !== 'string')
          throw new RegistryError(422, 42201, 'Invalid schema: schema is required')
        const references = Array.isArray(body.references) ? body.references : []
        return { id: store(subject, body.schema, schemaTypeOf(body.schemaType), references).id }
      }
      if (b === 'versions' && c !== undefined && method === 'GET') {
        const { version, stored } = versionOf(subject, c)
        if (d === 'schema') return JSON.parse(stored.schema)
        return describe(subject, version, stored)
      }
    }
    if (head === 'config') {
      if (a === undefined && method === 'GET') return { compatibilityLevel: globalCompatibility }
      if (a === undefined && method === 'PUT') {
        const body = (await readBody(request)) as Record<string, unknown>
        globalCompatibility = String(body.compatibility)
        return { compatibility: globalCompatibility }
      }
      const subject = decodeURIComponent(a ?? '')
      if (method === 'GET') {
        const level = configs.get(subject)
        if (level === undefined)
          throw new RegistryError(
            404,
            40408,
            `Subject '${subject}' does not have subject-level compatibility configured`,
          )
        return { compatibilityLevel: level }
      }
      if (method === 'PUT') {
        const body = (await readBody(request)) as Record<string, unknown>
        const level = String(body.compatibility ?? '')
        const levels = [
          'BACKWARD',
          'BACKWARD_TRANSITIVE',
          'FORWARD',
          'FORWARD_TRANSITIVE',
          'FULL',
          'FULL_TRANSITIVE',
          'NONE',
        ]
        if (!levels.includes(level)) throw new RegistryError(422, 42203, 'Invalid compatibility level')
        configs.set(subject, level)
        return { compatibility: level }
      }
    }
    throw new RegistryError(404, 404, 'HTTP 404 Not Found')
  }

  const authorized = (request: IncomingMessage): boolean => {
    if (options.auth === undefined) return true
    const expected = `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`
    return request.headers.authorization === expected
  }

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://registry')
    const method = request.method ?? 'GET'
    requests.push({ method, path: url.pathname })
    inFlight++
    mostInFlight = Math.max(mostInFlight, inFlight)
    const send = (status: number, body: unknown) => {
      inFlight--
      response.writeHead(status, { 'content-type': MEDIA_TYPE })
      response.end(JSON.stringify(body))
    }
    if (options.latencyMs !== undefined)
      await new Promise((resolve) => setTimeout(resolve, options.latencyMs))
    try {
      if (failures.remaining > 0) {
        failures = { ...failures, remaining: failures.remaining - 1 }
        throw new RegistryError(
          failures.status,
          failures.status * 100 + 3,
          'Error while forwarding the request to the leader',
        )
      }
      if (!authorized(request)) throw new RegistryError(401, 401, 'Unauthorized')
      const parts = url.pathname.split('/').filter((p) => p !== '')
      send(200, await route(method, parts, request))
    } catch (error) {
      if (error instanceof RegistryError)
        send(error.status, { error_code: error.errorCode, message: error.message })
      else send(500, { error_code: 50001, message: `Error in the backend data store: ${String(error)}` })
    }
  }

  const server = createServer((request, response) => {
    void handle(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get mostInFlight() {
      return mostInFlight
    },
    register: (subject, schema, schemaType = 'JSON') => store(subject, schema, schemaType, []).id,
    failNext: (count, status = 503) => {
      failures = { remaining: count, status }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeAllConnections()
      }),
  }
}
