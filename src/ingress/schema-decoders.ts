import { isHeraldError, NotFoundError, UnavailableError } from '../errors/index.ts'
import type { PayloadDecoder, SchemaRegistry } from './schema-registry.ts'

/** Why a schema id cannot decode anything: the registry never issued it, or its type is unsupported. */
export interface SchemaLookupFailure {
  readonly code: 'schema_not_found' | 'schema_unsupported'
  readonly message: string
}

export interface SchemaDecoders {
  /**
   * Resolves every id not known yet, at most one registry request per id however many
   * messages name it, and at most `maxLookupsInFlight` requests at once. Rejects only when the
   * registry cannot answer, and then starts no other request: the batch is retried, and what
   * was answered by then is kept for it. An id the registry does not know is remembered as a
   * failure, not thrown.
   */
  prepare(ids: Iterable<number>): Promise<void>
  /** What `prepare` found for `id`; undefined when it was never prepared. */
  lookup(id: number): PayloadDecoder | SchemaLookupFailure | undefined
}

export interface SchemaDecodersOptions {
  /** How long an unknown id stays unknown before the registry is asked again (default 60 s). */
  readonly notFoundTtlMs?: number
  /** Most unknown ids remembered; the oldest are forgotten first (default 10 000). */
  readonly maxNotFound?: number
  /**
   * Most registry requests in flight at once, over every caller (default 8): a batch naming
   * thousands of unknown ids (poison pills with random ones) must not become thousands of
   * requests at once, which a registry answers with errors that fail the whole batch.
   */
  readonly maxLookupsInFlight?: number
  readonly clock?: () => number
}

const isDecoder = (entry: PayloadDecoder | SchemaLookupFailure): entry is PayloadDecoder => 'decode' in entry

export const isLookupFailure = (
  entry: PayloadDecoder | SchemaLookupFailure | undefined,
): entry is SchemaLookupFailure => entry !== undefined && !isDecoder(entry)

/**
 * A cache of decoders by schema id in front of a registry. Found decoders are kept for the
 * process's life — a schema id never changes meaning. Unknown ids are remembered for a while
 * so a flood of poison pills with random ids does not become a flood of registry requests,
 * yet a schema registered late is still found.
 *
 * @example
 * const decoders = createSchemaDecoders(registry)
 * await decoders.prepare([7, 8])
 * decoders.lookup(7) // a PayloadDecoder
 */
export const createSchemaDecoders = (
  registry: Pick<SchemaRegistry, 'decoderFor'>,
  options: SchemaDecodersOptions = {},
): SchemaDecoders => {
  const clock = options.clock ?? Date.now
  const notFoundTtlMs = options.notFoundTtlMs ?? 60_000
  const maxNotFound = options.maxNotFound ?? 10_000
  const maxLookups = options.maxLookupsInFlight ?? 8
  const found = new Map<number, PayloadDecoder>()
  const notFound = new Map<number, { failure: SchemaLookupFailure; until: number }>()
  const inFlight = new Map<number, Promise<void>>()
  // Requests in flight, and those waiting for one to end: the router's and the projector's
  // batches, from several partitions at once, share one registry.
  let lookups = 0
  const waiting: (() => void)[] = []

  const ask = async (id: number): Promise<PayloadDecoder> => {
    if (lookups < maxLookups) lookups++
    else await new Promise<void>((start) => waiting.push(start))
    try {
      return await registry.decoderFor(id)
    } finally {
      // The place goes to the next waiting request, if any.
      const next = waiting.shift()
      if (next === undefined) lookups--
      else next()
    }
  }

  const remember = (id: number, failure: SchemaLookupFailure): void => {
    notFound.delete(id)
    notFound.set(id, { failure, until: clock() + notFoundTtlMs })
    if (notFound.size > maxNotFound) {
      const oldest = notFound.keys().next()
      if (oldest.done !== true) notFound.delete(oldest.value)
    }
  }

  const resolve = (id: number): Promise<void> => {
    const pending = inFlight.get(id)
    if (pending !== undefined) return pending
    const request = ask(id)
      .then(
        (decoder) => {
          found.set(id, decoder)
          notFound.delete(id)
        },
        (error: unknown) => {
          if (error instanceof NotFoundError) {
            remember(id, { code: 'schema_not_found', message: `schema id ${id} is not registered` })
            return
          }
          if (isHeraldError(error) && error.code === 'validation_failed') {
            remember(id, { code: 'schema_unsupported', message: `schema id ${id}: ${error.message}` })
            return
          }
          throw isHeraldError(error) && error.retriable
            ? error
            : new UnavailableError(`schema registry: looking up schema id ${id} failed`, {
                cause: error,
                context: { schemaId: id },
              })
        },
      )
      .finally(() => inFlight.delete(id))
    inFlight.set(id, request)
    return request
  }

  const lookup = (id: number): PayloadDecoder | SchemaLookupFailure | undefined => {
    const decoder = found.get(id)
    if (decoder !== undefined) return decoder
    const failure = notFound.get(id)
    if (failure === undefined) return undefined
    if (failure.until > clock()) return failure.failure
    notFound.delete(id)
    return undefined
  }

  return {
    async prepare(ids) {
      const missing = [...ids].filter((id) => lookup(id) === undefined)
      let failed: { readonly error: unknown } | undefined
      let next = 0
      const worker = async () => {
        while (failed === undefined && next < missing.length) {
          const id = missing[next++] as number
          await resolve(id).catch((error: unknown) => {
            failed ??= { error }
          })
        }
      }
      await Promise.all(Array.from({ length: Math.min(maxLookups, missing.length) }, worker))
      if (failed !== undefined) throw failed.error
    },
    lookup,
  }
}
