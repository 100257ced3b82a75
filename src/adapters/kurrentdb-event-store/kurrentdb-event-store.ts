import { connect } from 'node:net'
import {
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  BACKWARDS,
  END,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  KurrentDBClient,
  type ReadPosition,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  streamNameFilter,
} from '@kurrent/kurrentdb-client'
import { Observable } from 'rxjs'
import { kurrentConnectionStringIssue } from '../../config/index.ts'
import {
  ClosedError,
  ConfigError,
  ExpectedRevisionConflictError,
  HeraldError,
  isExpectedRevisionConflict,
  isHeraldError,
  UnavailableError,
} from '../../errors/index.ts'
import type {
  AppendOptions,
  AppendResult,
  EventData,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  StreamDelete,
  StreamDeleteOutcome,
  SubscribeOptions,
} from '../../ports/index.ts'
// The port's input rules are the same for every adapter; they live with the embedded one for now.
import {
  validateAppend,
  validateAppendMany,
  validateDeleteStreams,
  validateReadAll,
  validateReadStream,
  validateSubscribe,
} from '../sqlite-event-store/validate.ts'
import {
  givesNoReason,
  type KurrentErrorContext,
  refusesPosition,
  translateKurrentError,
} from './kurrentdb-errors.ts'
import {
  decodeEvent,
  isSystemEvent,
  toSafeNumber,
  toStreamState,
  vendorEventId,
  vendorMetadata,
} from './mapping.ts'
import { boundedSet, type ProbeResult, resolveStart, type Start } from './positions.ts'

export interface KurrentDbEventStoreOptions {
  /** `kurrentdb://host:2113?tls=false`, or any form the KurrentDB client accepts; may hold credentials. */
  readonly connectionString: string
  /** Events per server read when `readAll` pages through $all. Default 500. */
  readonly pageSize?: number
  /** How long `ping` waits for the server. Default 5000. */
  readonly pingTimeoutMs?: number
}

export type KurrentDbEventStore = EventStore

const defaults = { pageSize: 500, pingTimeoutMs: 5000 } satisfies Omit<
  KurrentDbEventStoreOptions,
  'connectionString'
>

const STORE = 'kurrentdb event store'

const at = (position: number): ReadPosition => ({ commit: BigInt(position), prepare: BigInt(position) })
const fromStart = (start: Start): ReadPosition => (start === 'start' ? START : at(start))

const CONNECTION_STRING = 'event_store.kurrentdb.connection_string'

const openClient = (connectionString: string): KurrentDBClient => {
  // The client only warns of an option it does not know, on stderr and quoting the whole string,
  // password included: no such string may reach it. Configuration refuses one too; this holds
  // for any caller.
  const issue = kurrentConnectionStringIssue(connectionString)
  if (issue !== undefined) throw new ConfigError([{ path: CONNECTION_STRING, message: issue }])
  let client: KurrentDBClient
  try {
    client = KurrentDBClient.connectionString(connectionString)
  } catch {
    // The parser's message quotes the offending part, which may be a password: say only what is expected.
    throw new ConfigError([
      {
        path: CONNECTION_STRING,
        message: 'is not a KurrentDB connection string (expected e.g. kurrentdb://host:2113?tls=false)',
      },
    ])
  }
  // With it, the client answers an append whose expected revision does not hold as if it had
  // worked (`success: false`), where Herald decides on the refusal: the option is not Herald's.
  // The client's getter for it is protected in its types, public at runtime.
  if ((client as unknown as { readonly throwOnAppendFailure: boolean }).throwOnAppendFailure === false) {
    void client.dispose().catch(() => undefined)
    throw new ConfigError([
      {
        path: CONNECTION_STRING,
        message:
          'sets throwOnAppendFailure=false, which Herald does not support: a conflicting append must fail (leave the option out)',
      },
    ])
  }
  return client
}

/** The servers a connection string names, read as the client reads them; never its user-info. */
const serversOf = (connectionString: string): { readonly host: string; readonly port: number }[] => {
  const afterScheme = connectionString.trim().replace(/^[^:]+:\/\//, '')
  const afterUserInfo = afterScheme.replace(/^[^:]+:[^@]+@/, '')
  const hosts = /^(?:[^$+!?*'(),;[\]{}|"%~#<>=&]+[,/]?)*/.exec(afterUserInfo)?.[0] ?? ''
  return hosts
    .split(/[,/]/)
    .filter((h) => h.trim() !== '')
    .map((h) => {
      const [host = '', port = '2113'] = h.trim().split(':')
      return { host, port: Number.parseInt(port, 10) }
    })
}

const REACH_TIMEOUT_MS = 1_000

/**
 * What a TCP connection to `server` meets: the socket's error (`connect ECONNREFUSED
 * 10.0.0.5:2113`, `getaddrinfo ENOTFOUND db`), or that it connects, so that the client's
 * failure lies past the socket.
 */
const reach = (server: { readonly host: string; readonly port: number }): Promise<string> =>
  new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port })
    const done = (reason: string) => {
      socket.destroy()
      resolve(reason)
    }
    socket.setTimeout(REACH_TIMEOUT_MS, () =>
      done(`no TCP connection to ${server.host}:${server.port} within ${REACH_TIMEOUT_MS} ms`),
    )
    socket.once('error', (error) => done(error.message))
    socket.once('connect', () =>
      done(
        `${server.host}:${server.port} takes TCP connections, yet the client gives no reason (is tls in the connection string what the server expects?)`,
      ),
    )
  })

/**
 * An EventStore on KurrentDB (or EventStoreDB 22.6+) through its Node gRPC client: the distributed
 * adapter. Behaves as the embedded one does, as the shared contract suite checks, with these
 * differences that the store imposes:
 *
 * - Positions are log byte offsets: increasing, never consecutive (see positions.ts).
 * - Event ids that are not lower-case UUIDs are stored as a name-based UUID of (stream, id), the
 *   original id kept in metadata under `$herald.id` and given back on reads.
 * - Idempotency of retried appends is the server's: exact for an expected revision or `no_stream`,
 *   best effort (a bounded in-memory cache) for `any` and `stream_exists`.
 * - System events (`$`-prefixed types or streams) never appear in `readAll` or `subscribeToAll`,
 *   nor do events other applications wrote that are not JSON objects.
 * - `appendMany` is not atomic: it appends entry by entry, a round trip each, and a failure
 *   leaves the entries before it written (retrying the call completes it).
 *
 * @example
 * const store = createKurrentDbEventStore({ connectionString: 'kurrentdb://localhost:2113?tls=false' })
 * await store.append('selector-1', [{ id: randomUUID(), type: 'SelectorCreated', data: {} }], {
 *   expectedRevision: 'no_stream',
 * })
 * store.subscribeToAll({ after: checkpoint }).subscribe((event) => index.apply(event))
 * await store.close()
 */
export const createKurrentDbEventStore = (options: KurrentDbEventStoreOptions): KurrentDbEventStore => {
  const { connectionString, pingTimeoutMs } = { ...defaults, ...options }
  const pageSize = Math.max(1, Math.floor(options.pageSize ?? defaults.pageSize))
  const client = openClient(connectionString)
  const servers = serversOf(connectionString)
  const target = `${servers.map((s) => `${s.host}:${s.port}`).join(', ')}${/^[^:]*\+discover:/.test(connectionString.trim()) ? ' (discovery)' : ''}`
  const translate = (error: unknown, context: KurrentErrorContext): Error =>
    translateKurrentError(error, { ...context, target })
  /** `translate`, with the reason a connection attempt finds where the client gives none. */
  const failure = async (error: unknown, context: KurrentErrorContext): Promise<Error> => {
    const first = servers[0]
    if (first === undefined || !givesNoReason(error)) return translate(error, context)
    return translateKurrentError(error, { ...context, target, reason: await reach(first) })
  }
  // Every position handed out starts a log record, so a checkpoint made of one needs no probe.
  const boundaries = boundedSet(4096)
  const live = new Set<{ complete(): void }>()
  let closed = false

  const assertOpen = (): void => {
    if (closed) throw new ClosedError(STORE)
  }

  const handOut = (event: RecordedEvent): RecordedEvent => {
    boundaries.add(event.position)
    return event
  }

  /**
   * Filtered on the server: by stream name prefix when the caller names streams (none of
   * Herald's prefixes selects a `$` system stream), else everything but system events.
   */
  const filterFor = (prefixes: readonly string[] | undefined) =>
    prefixes === undefined ? excludeSystemEvents() : streamNameFilter({ prefixes: [...prefixes] })

  /** One full server read of $all (never abandoned half-way: the client cannot cancel those). */
  const readAllPage = async (
    from: ReadPosition,
    maxCount: number,
    prefixes: readonly string[] | undefined,
  ): Promise<AllStreamResolvedEvent[]> => {
    const page: AllStreamResolvedEvent[] = []
    try {
      for await (const resolved of client.readAll({
        fromPosition: from,
        maxCount,
        direction: FORWARDS,
        filter: filterFor(prefixes),
      })) {
        page.push(resolved)
      }
    } catch (error) {
      throw await failure(error, { operation: 'readAll' })
    }
    return page
  }

  // Both read one event and drain the call, so no server read is ever left half-consumed.
  const probe = async (position: number): Promise<ProbeResult> => {
    let found = false
    try {
      for await (const _ of client.readAll({
        fromPosition: at(position),
        maxCount: 1,
        direction: FORWARDS,
      })) {
        found = true
      }
    } catch (error) {
      if (refusesPosition(error)) return 'invalid'
      throw await failure(error, { operation: 'readAll' })
    }
    return found ? 'event' : 'end'
  }

  const lastPosition = async (): Promise<number | undefined> => {
    let commit: bigint | undefined
    try {
      for await (const resolved of client.readAll({ fromPosition: END, maxCount: 1, direction: BACKWARDS })) {
        commit = resolved.event?.position.commit ?? resolved.commitPosition
      }
    } catch (error) {
      throw await failure(error, { operation: 'readAll' })
    }
    return commit === undefined ? undefined : toSafeNumber(commit, 'position')
  }

  /** The port's `lastPosition`: the last of Herald's events, never a system event's. */
  const lastPositionOf = async (
    options: Pick<ReadAllOptions, 'streamPrefixes'> = {},
  ): Promise<number | undefined> => {
    assertOpen()
    validateReadAll(options)
    let commit: bigint | undefined
    try {
      for await (const resolved of client.readAll({
        fromPosition: END,
        maxCount: 1,
        direction: BACKWARDS,
        filter: filterFor(options.streamPrefixes),
      })) {
        commit = resolved.event?.position.commit ?? resolved.commitPosition
      }
    } catch (error) {
      throw await failure(error, { operation: 'lastPosition' })
    }
    return commit === undefined ? undefined : toSafeNumber(commit, 'position')
  }

  const startFor = (after: number | undefined): Promise<Start> =>
    resolveStart(after, { known: boundaries.has, probe, lastPosition })

  /** Herald's events only: system events and foreign shapes are not the port's to carry. */
  const decodeFromAll = (resolved: AllStreamResolvedEvent): RecordedEvent | undefined => {
    const { event } = resolved
    if (event === undefined || isSystemEvent(event)) return undefined
    const decoded = decodeEvent(event, resolved.commitPosition)
    return decoded.ok ? decoded.event : undefined
  }

  /** One append, its arguments already checked. */
  const appendChecked = async (
    stream: string,
    events: readonly EventData[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> => {
    const proposed = events.map((event) => {
      const metadata = vendorMetadata(event.id, event.metadata)
      return jsonEvent({
        id: vendorEventId(stream, event.id),
        type: event.type,
        data: event.data as Record<string, unknown>,
        ...(metadata === undefined ? {} : { metadata: metadata as Record<string, unknown> }),
      })
    })
    let result: Awaited<ReturnType<typeof client.appendToStream>>
    try {
      result = await client.appendToStream(stream, proposed, { streamState: toStreamState(expected) })
    } catch (error) {
      throw translate(error, { operation: 'append', stream, expected })
    }
    // Only a client told not to throw (refused in `openClient`) answers a conflict so; its
    // revision then is not the stream's (one of the client's paths reports a boolean there).
    if (!result.success) throw new ExpectedRevisionConflictError({ stream, expected, actual: 'not reported' })
    const nextExpectedRevision = toSafeNumber(result.nextExpectedRevision, 'revision')
    const commit = result.position?.commit
    // A retry the server recognised may come back without a position: look the event up.
    const position =
      commit !== undefined && commit >= 0n
        ? toSafeNumber(commit, 'position')
        : (await readStream(stream, { fromRevision: nextExpectedRevision, maxCount: 1 }))[0]?.position
    if (position === undefined) {
      throw new UnavailableError(
        `event store append: ${stream}@${nextExpectedRevision} is not readable yet`,
        {
          context: { operation: 'append', stream },
        },
      )
    }
    boundaries.add(position)
    return { nextExpectedRevision, position }
  }

  const append = async (
    stream: string,
    events: readonly EventData[],
    options: AppendOptions = {},
  ): Promise<AppendResult> => {
    assertOpen()
    validateAppend(stream, events, options)
    return appendChecked(stream, events, options.expectedRevision ?? 'any')
  }

  /*
   * Entry by entry, in order, each its own server append. The client's multiStreamAppend would be
   * atomic but cannot carry the port: it needs KurrentDB 25.1+, takes only string-valued metadata
   * with no `$` keys (Herald keeps `$herald.id` there), answers one position for the whole call and
   * does not promise the order of streams in $all. Retrying the call finishes what a failure left.
   */
  const appendMany = async (appends: readonly StreamAppend[]): Promise<readonly AppendResult[]> => {
    assertOpen()
    validateAppendMany(appends)
    const results: AppendResult[] = []
    for (const { stream, events, expectedRevision } of appends) {
      assertOpen()
      results.push(await appendChecked(stream, events, expectedRevision ?? 'any'))
    }
    return results
  }

  /*
   * Entry by entry, each a soft delete guarded by its revision. A stream the server no longer
   * has, or one deleted before (its revision then no longer matches either), is `absent`; one at
   * another revision is `changed`, which a read of it tells apart from the first.
   */
  const deleteStreams = async (deletes: readonly StreamDelete[]): Promise<readonly StreamDeleteOutcome[]> => {
    assertOpen()
    validateDeleteStreams(deletes)
    const outcomes: StreamDeleteOutcome[] = []
    for (const { stream, expectedRevision } of deletes) {
      assertOpen()
      try {
        await client.deleteStream(stream, { expectedRevision: BigInt(expectedRevision) })
        outcomes.push('deleted')
      } catch (error) {
        if (error instanceof StreamNotFoundError) {
          outcomes.push('absent')
          continue
        }
        const translated = translate(error, {
          operation: 'deleteStreams',
          stream,
          expected: expectedRevision,
        })
        if (isHeraldError(translated) && translated.code === 'stream_deleted') outcomes.push('absent')
        else if (isExpectedRevisionConflict(translated))
          outcomes.push((await readStream(stream, { maxCount: 1 })).length === 0 ? 'absent' : 'changed')
        else throw translated
      }
    }
    return outcomes
  }

  const readStream = async (
    stream: string,
    options: ReadStreamOptions = {},
  ): Promise<readonly RecordedEvent[]> => {
    assertOpen()
    validateReadStream(stream, options)
    if (options.maxCount === 0) return []
    const events: RecordedEvent[] = []
    try {
      for await (const resolved of client.readStream(stream, {
        fromRevision: BigInt(options.fromRevision ?? 0),
        direction: FORWARDS,
        ...(options.maxCount === undefined ? {} : { maxCount: options.maxCount }),
      })) {
        if (resolved.event === undefined) continue
        const decoded = decodeEvent(resolved.event, resolved.commitPosition)
        if (!decoded.ok) {
          throw new HeraldError('event_undecodable', `event store readStream: ${decoded.reason}`, {
            context: { operation: 'readStream', stream },
          })
        }
        events.push(handOut(decoded.event))
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError || error instanceof StreamDeletedError) return []
      throw await failure(error, { operation: 'readStream', stream })
    }
    return events
  }

  const readAll = async (options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> => {
    assertOpen()
    validateReadAll(options)
    const { after, maxCount } = options
    if (maxCount === 0) return []
    const events: RecordedEvent[] = []
    let checkpoint = after ?? -1
    let from = fromStart(await startFor(after))
    for (;;) {
      // One more than needed: every page after the first starts AT the last event already seen.
      const want = Math.min(pageSize, (maxCount ?? Number.POSITIVE_INFINITY) - events.length) + 1
      const page = await readAllPage(from, want, options.streamPrefixes)
      for (const resolved of page) {
        const commit = resolved.event?.position.commit ?? resolved.commitPosition
        if (commit !== undefined) from = at(toSafeNumber(commit, 'position'))
        const event = decodeFromAll(resolved)
        if (event === undefined || event.position <= checkpoint) continue
        checkpoint = event.position
        events.push(handOut(event))
      }
      // The server reads on until it has `want` matching events or reaches the end of $all.
      if (page.length < want || (maxCount !== undefined && events.length >= maxCount)) {
        return maxCount === undefined ? events : events.slice(0, maxCount)
      }
    }
  }

  const subscribeToAll = (options: SubscribeOptions = {}): Observable<RecordedEvent> =>
    new Observable<RecordedEvent>((subscriber) => {
      if (closed) {
        subscriber.error(new ClosedError(STORE))
        return undefined
      }
      validateSubscribe(options)
      let checkpoint = options.after ?? -1
      let vendor: AllStreamSubscription | undefined
      let stopped = false

      const stop = (): void => {
        if (stopped) return
        stopped = true
        live.delete(entry)
        // Cancels the gRPC call; the client then reports nothing more.
        vendor?.unsubscribe().catch(() => undefined)
      }
      const fail = (error: unknown): void => {
        if (stopped) return
        stop()
        subscriber.error(error)
      }
      const entry = {
        complete: () => {
          if (stopped) return
          stop()
          subscriber.complete()
        },
      }
      live.add(entry)

      startFor(options.after).then((start) => {
        if (stopped) return
        try {
          vendor = client.subscribeToAll({
            fromPosition: fromStart(start),
            filter: filterFor(options.streamPrefixes),
          })
        } catch (error) {
          fail(translate(error, { operation: 'subscribeToAll' }))
          return
        }
        vendor.on('data', (resolved: AllStreamResolvedEvent) => {
          if (stopped) return
          let event: RecordedEvent | undefined
          try {
            event = decodeFromAll(resolved)
          } catch (error) {
            fail(error)
            return
          }
          // Also drops what precedes the checkpoint when the start had to be earlier than it.
          if (event === undefined || event.position <= checkpoint) return
          checkpoint = event.position
          subscriber.next(handOut(event))
        })
        vendor.on('error', (error: unknown) => fail(translate(error, { operation: 'subscribeToAll' })))
        // A catch-up subscription to $all never ends by itself; the consumer resubscribes from its checkpoint.
        vendor.on('end', () =>
          fail(new UnavailableError('event store subscribeToAll: the server ended the subscription')),
        )
      }, fail)

      return stop
    })

  const ping = async (): Promise<void> => {
    assertOpen()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new UnavailableError(
              `event store ping: KurrentDB at ${target}: no answer within ${pingTimeoutMs} ms`,
            ),
          ),
        pingTimeoutMs,
      )
    })
    try {
      await Promise.race([lastPosition(), timedOut])
    } finally {
      clearTimeout(timer)
    }
  }

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const subscription of [...live]) subscription.complete()
    await client.dispose()
  }

  return {
    append,
    appendMany,
    deleteStreams,
    readStream,
    readAll,
    lastPosition: lastPositionOf,
    subscribeToAll,
    ping,
    close,
  }
}
