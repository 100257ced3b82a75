import type { StatementSync } from 'node:sqlite'
import { Observable } from 'rxjs'
import { ClosedError, isRetriable, ValidationError } from '../../errors/index.ts'
import { MAX_APPEND_BYTES } from '../../ports/event-store.ts'
import type {
  AppendOptions,
  AppendResult,
  EventData,
  EventStore,
  JsonObject,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  StreamDelete,
  StreamDeleteOutcome,
  SubscribeOptions,
} from '../../ports/index.ts'
import { translateSqliteError } from '../sqlite-errors.ts'
import { watchStorage } from '../storage-health.ts'
import { type CatchUp, startCatchUp } from './catch-up.ts'
import { type EventRow, lastPositionByPrefixes, readAllByPrefixes } from './schema.ts'
import {
  validateAppend,
  validateAppendMany,
  validateDeleteStreams,
  validateReadAll,
  validateReadStream,
  validateSubscribe,
} from './validate.ts'
import { startWriterThread, type WriterThread } from './writer-thread.ts'
import {
  appendSizeIssues,
  createGroupWriter,
  DELETE_OUTCOMES,
  type EncodedEvent,
  encodeEvents,
  type MigrationListener,
  openDatabase,
  type WriteAnswer,
  type WriteRequest,
} from './writing.ts'

export interface SqliteEventStoreOptions {
  /** Database file, created with its folder when missing; `:memory:` for a throwaway store. */
  readonly path: string
  /** How often live subscriptions look for appends made by other processes. Default 250. */
  readonly pollIntervalMs?: number
  /** How long an append waits for another process's write lock before failing retriably. Default 5000. */
  readonly busyTimeoutMs?: number
  /** Events per catch-up read; the event loop gets a turn between pages. Default 500. */
  readonly pageSize?: number
  /**
   * About the most characters of data and metadata a catch-up read holds: a page ends at the
   * event that reaches it (so it holds one event at least) even before `pageSize`. Default 4 MiB.
   */
  readonly pageBytes?: number
  /** Milliseconds since the epoch, stamped on events as `recordedAt`. Default `Date.now`. */
  readonly clock?: () => number
  /**
   * Group commit (default off): appends made in the same turn of the event loop are written in
   * one transaction, one sync to disk, at the end of the turn. For a store with many concurrent
   * writers of distinct streams (the delivery log). Off, each append is written within its call,
   * so a reader that decides and appends straight after (a configuration change) never sees a
   * write of the same turn still pending.
   */
  readonly groupCommit?: boolean
  /** With `groupCommit`, appends waiting for a group that make it start at once rather than at the end of the turn. Default 1000. */
  readonly maxGroupAppends?: number
  /**
   * A writer thread (default off; a file only, not `:memory:`): appends are written by a worker
   * thread with its own connection, which group-commits all that arrived while it wrote the
   * previous group. The writing and the sync to disk leave the event loop; an append still
   * resolves only once its transaction is committed, and subscribers see it at once. Implies
   * the group commit's semantics (an append is not yet written when its call returns), so it
   * suits the same stores: many concurrent writers of distinct streams (the delivery log).
   */
  readonly writerThread?: boolean
  /**
   * The writer thread stopped unexpectedly: the appends it had not answered failed (retriable),
   * and it is started again. For the operator's log; `ping` fails until it answers again.
   */
  readonly onWriterStopped?: (error: Error) => void
  /**
   * Bytes one append (each `appendMany` entry) may hold, its events' types, data and metadata
   * (JSON) together; a larger one is refused as invalid. Default `MAX_APPEND_BYTES`, KurrentDB's,
   * so what one store takes the other does.
   */
  readonly maxAppendBytes?: number
  /** Pages the file may hold at most; past it appends fail with SQLITE_FULL (see `openSqliteFile`). */
  readonly maxPageCount?: number
  /**
   * Told when the file, written before streams were numbered, is migrated as the store opens
   * (before `createSqliteEventStore` returns): it copies every event once, which for a large
   * file takes a while. For the operator's log.
   */
  readonly onMigration?: MigrationListener
}

export type { ReadAllOptions } from '../../ports/event-store.ts'

/** The embedded store offers exactly the port. */
/** The EventStore on one SQLite file, and what only a file shared by threads needs. */
export interface SqliteEventStore extends EventStore {
  /**
   * Calls `listener` after each commit of this store's own appends, in the commit's turn; the
   * returned function stops that. For a reader on another connection (another thread) that
   * should look at once rather than at its next poll.
   */
  onCommitted(listener: () => void): () => void
  /** Looks for appends made through other connections now, instead of at the next poll. */
  checkNow(): void
}

const defaults = {
  pollIntervalMs: 250,
  busyTimeoutMs: 5000,
  pageSize: 500,
  pageBytes: 4 * 1_048_576,
  clock: Date.now,
  groupCommit: false,
  maxGroupAppends: 1000,
  writerThread: false,
  maxAppendBytes: MAX_APPEND_BYTES,
} satisfies Omit<SqliteEventStoreOptions, 'path'>

const toRecorded = (row: EventRow): RecordedEvent => ({
  stream: row.stream,
  id: row.id,
  type: row.type,
  data: JSON.parse(row.data) as JsonObject,
  metadata: JSON.parse(row.metadata) as JsonObject,
  revision: row.revision,
  position: row.position,
  recordedAt: row.recorded_at,
})

/**
 * An EventStore in one SQLite file through `node:sqlite`: the embedded default. Several
 * processes may share the file; each sees the others' appends in its subscriptions within
 * `pollIntervalMs`, and its own at once.
 *
 * Calls run synchronously on the event loop (node:sqlite has no async API); an append that
 * waits for another process's write lock blocks this process for up to `busyTimeoutMs`.
 * With `groupCommit`, appends are group-committed: those made in the same turn of the event
 * loop are written in one transaction and one sync to disk at the end of the turn, each in its
 * own savepoint (so each still succeeds or fails on its own, and resolves only once that
 * transaction committed). Many concurrent callers therefore share the cost of a sync. Without
 * it, each append is its own transaction, written within the call. `appendMany` (all its
 * entries all or nothing) is one transaction for one caller's many streams either way. With
 * `writerThread`, the group commit runs on a worker thread with its own connection (the
 * appends of one turn go to it together; what arrives while it writes joins the next group),
 * so neither the writing nor the sync to disk holds up the event loop; reads stay on this
 * thread's connection.
 *
 * Why opt-in: a configuration change reads its stream, decides and appends with an expected
 * revision. Written within the call, concurrent changes to one configuration never interleave;
 * deferred to the end of the turn, every request of the turn would read the same revision and
 * all but one would conflict (and, past its retries, fail with 412).
 *
 * @example
 * const store = createSqliteEventStore({ path: 'data/events.sqlite' })
 * await store.append('selector-1', [{ id: randomUUID(), type: 'SelectorCreated', data: {} }], {
 *   expectedRevision: 'no_stream',
 * })
 * store.subscribeToAll({ after: checkpoint }).subscribe((event) => index.apply(event))
 * await store.close()
 */
export const createSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore => {
  const {
    path,
    pollIntervalMs,
    busyTimeoutMs,
    pageSize,
    clock,
    groupCommit,
    maxGroupAppends,
    maxAppendBytes,
    pageBytes,
  } = {
    ...defaults,
    ...options,
  }

  /** `events` encoded, refused when more than one append takes (`appendSizeIssues`). */
  const encodeWithin = (events: readonly EventData[], path: string, what: string): EncodedEvent[] => {
    const encoded = encodeEvents(events)
    const issues = appendSizeIssues(encoded, path, maxAppendBytes)
    if (issues.length > 0) throw ValidationError.of(what, issues)
    return encoded
  }
  const { db, statements } = openDatabase(path, busyTimeoutMs, options.maxPageCount, options.onMigration)
  // What `ping` reports besides a connection that answers: see `watchStorage`. Its write-ahead
  // log too (opening in WAL mode made it): appends acknowledged since the last checkpoint live
  // only there, and SQLite writes on to a log deleted under it without an error.
  const health = watchStorage(path, 'event store', { wal: true })

  let closed = false
  const live = new Set<CatchUp>()
  let poller: NodeJS.Timeout | undefined
  let dataVersion: unknown

  const assertOpen = (): void => {
    if (closed) throw new ClosedError('sqlite event store')
  }

  // Prepared once per number of prefixes (a handful: each read model passes a fixed list).
  const byPrefixes = new Map<number, StatementSync>()
  const readAllStatement = (prefixes?: readonly string[]): StatementSync => {
    if (prefixes === undefined) return statements.readAll
    let statement = byPrefixes.get(prefixes.length)
    if (statement === undefined) {
      statement = db.prepare(readAllByPrefixes(prefixes.length))
      byPrefixes.set(prefixes.length, statement)
    }
    return statement
  }
  const readAllArguments = (after: number, limit: number, prefixes?: readonly string[]) =>
    prefixes === undefined
      ? [after, limit]
      : [after, ...prefixes.flatMap((prefix) => [prefix, prefix]), limit]

  const readAllSync = (after: number, limit: number, prefixes?: readonly string[]): RecordedEvent[] => {
    try {
      const rows = readAllStatement(prefixes).all(...readAllArguments(after, limit, prefixes))
      return (rows as unknown as EventRow[]).map(toRecorded)
    } catch (error) {
      throw translateSqliteError(error, 'event store', 'readAll')
    }
  }

  /**
   * A catch-up page: at most `limit` events and, past the first, no more than about
   * `pageBytes` of their data and metadata, so that a page of large events (each up to an
   * append's limit) does not hold hundreds of MiB at once. `full` when either bound cut it.
   */
  const readPageSync = (
    after: number,
    limit: number,
    prefixes?: readonly string[],
  ): { readonly events: RecordedEvent[]; readonly full: boolean } => {
    const events: RecordedEvent[] = []
    let bytes = 0
    try {
      for (const row of readAllStatement(prefixes).iterate(...readAllArguments(after, limit, prefixes))) {
        const event = row as unknown as EventRow
        events.push(toRecorded(event))
        bytes += event.data.length + event.metadata.length
        // Leaving the loop resets the statement.
        if (bytes >= pageBytes) return { events, full: true }
      }
    } catch (error) {
      throw translateSqliteError(error, 'event store', 'readAll')
    }
    return { events, full: events.length === limit }
  }

  const poll = (): void => {
    let version: unknown
    try {
      version = statements.dataVersion.get()?.data_version
    } catch (error) {
      const translated = translateSqliteError(error, 'event store', 'poll')
      if (isRetriable(translated)) return
      for (const catchUp of [...live]) catchUp.fail(translated)
      return
    }
    if (version === dataVersion) return
    dataVersion = version
    for (const catchUp of live) catchUp.wake()
  }

  // One timer for all subscriptions, running only while there are some, so an idle store
  // keeps no handle open and lets the process exit.
  const updatePoller = (): void => {
    if (live.size > 0 && poller === undefined && !closed) {
      // Unknown until the first tick, which therefore wakes everyone: harmless, and it covers
      // writes by others between a subscription's first read and the first tick.
      dataVersion = undefined
      poller = setInterval(poll, pollIntervalMs)
    } else if (live.size === 0 && poller !== undefined) {
      clearInterval(poller)
      poller = undefined
    }
  }

  /** One append or appendMany waiting for the next group commit on this thread. */
  interface Queued {
    readonly request: WriteRequest
    readonly resolve: (answer: WriteAnswer) => void
  }
  let queue: Queued[] = []
  let flushTimer: NodeJS.Immediate | undefined
  const writer = createGroupWriter(db, statements)

  const commitListeners = new Set<() => void>()
  /** This store's own appends were committed: its subscribers and listeners learn it at once. */
  const committed = (): void => {
    for (const catchUp of live) catchUp.wake()
    for (const listener of commitListeners) listener()
  }

  /** Writes every queued append in one transaction (`GroupWriter.write`), then wakes subscribers and answers. */
  const flush = (): void => {
    if (flushTimer !== undefined) clearImmediate(flushTimer)
    flushTimer = undefined
    const group = queue
    queue = []
    if (group.length === 0) return
    // Every append of the group is answered whatever happens here: a throw would leave them
    // waiting for good, and escape from the end of the turn (`setImmediate`) as uncaught.
    let outcome: ReturnType<typeof writer.write>
    try {
      outcome = writer.write(group.map((queued) => queued.request))
    } catch (error) {
      outcome = { answers: group.map(() => ({ ok: false, error })), written: false }
    }
    try {
      if (outcome.written) committed()
    } finally {
      group.forEach((queued, i) => {
        queued.resolve(outcome.answers[i] ?? { ok: false, error: new Error('no answer') })
      })
    }
  }

  // A file gets the writer thread when asked for; `:memory:` is this connection's alone.
  const thread: WriterThread | undefined =
    options.writerThread === true && path !== ':memory:'
      ? startWriterThread({
          path,
          busyTimeoutMs,
          ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
          onCommitted: () => committed(),
          ...(options.onWriterStopped === undefined ? {} : { onStopped: options.onWriterStopped }),
        })
      : undefined

  /**
   * Writes `request`: by the writer thread when there is one; else at the end of this turn of
   * the event loop with `groupCommit` (at once when `maxGroupAppends` are waiting), so appends
   * made while others' I/O is handled share one sync to disk; else at once.
   */
  const write = async (request: WriteRequest): Promise<readonly AppendResult[]> => {
    const answer =
      thread === undefined
        ? await new Promise<WriteAnswer>((resolve) => {
            queue.push({ request, resolve })
            if (!groupCommit || queue.length >= maxGroupAppends) flush()
            else flushTimer ??= setImmediate(flush)
          })
        : await thread.write(request)
    // The writer thread's SQLite errors come back with their codes: a failed write is known here either way.
    health.wrote(answer.ok ? undefined : answer.error)
    if (!answer.ok) throw translateSqliteError(answer.error, 'event store', request.operation)
    return answer.results
  }

  const append = async (
    stream: string,
    events: readonly EventData[],
    options: AppendOptions = {},
  ): Promise<AppendResult> => {
    assertOpen()
    validateAppend(stream, events, options)
    const [result] = await write({
      operation: 'append',
      appends: [
        {
          stream,
          events: encodeWithin(events, 'events', 'append'),
          expected: options.expectedRevision ?? 'any',
        },
      ],
      recordedAt: clock(),
    })
    if (result === undefined) throw new Error('the event store answered an append without its result')
    return result
  }

  // All or nothing: any entry's conflict or error rolls back the entries before it too.
  const appendMany = async (appends: readonly StreamAppend[]): Promise<readonly AppendResult[]> => {
    assertOpen()
    validateAppendMany(appends)
    if (appends.length === 0) return []
    return write({
      operation: 'appendMany',
      appends: appends.map(({ stream, events, expectedRevision }, i) => ({
        stream,
        events: encodeWithin(events, `appends[${i}].events`, 'appendMany'),
        expected: expectedRevision ?? 'any',
      })),
      recordedAt: clock(),
    })
  }

  // Written in turn with the appends, by the connection that writes them (see `WriteRequest`).
  const deleteStreams = async (deletes: readonly StreamDelete[]): Promise<readonly StreamDeleteOutcome[]> => {
    assertOpen()
    validateDeleteStreams(deletes)
    if (deletes.length === 0) return []
    const results = await write({
      operation: 'deleteStreams',
      appends: deletes.map(({ stream, expectedRevision }) => ({
        stream,
        events: [],
        expected: expectedRevision,
      })),
      recordedAt: clock(),
    })
    return results.map(({ nextExpectedRevision }) => DELETE_OUTCOMES[nextExpectedRevision] ?? 'changed')
  }

  const readStream = async (
    stream: string,
    options: ReadStreamOptions = {},
  ): Promise<readonly RecordedEvent[]> => {
    assertOpen()
    validateReadStream(stream, options)
    try {
      const rows = statements.readStream.all(stream, options.fromRevision ?? 0, options.maxCount ?? -1)
      return (rows as unknown as EventRow[]).map(toRecorded)
    } catch (error) {
      throw translateSqliteError(error, 'event store', 'readStream')
    }
  }

  const readAll = async (options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> => {
    assertOpen()
    validateReadAll(options)
    return readAllSync(options.after ?? 0, options.maxCount ?? -1, options.streamPrefixes)
  }

  const lastByPrefixes = new Map<number, StatementSync>()
  const lastPosition = async (
    options: Pick<ReadAllOptions, 'streamPrefixes'> = {},
  ): Promise<number | undefined> => {
    assertOpen()
    validateReadAll(options)
    const prefixes = options.streamPrefixes ?? []
    let statement = lastByPrefixes.get(prefixes.length)
    if (statement === undefined) {
      statement = db.prepare(lastPositionByPrefixes(prefixes.length))
      lastByPrefixes.set(prefixes.length, statement)
    }
    try {
      const row = statement.get(...prefixes.flatMap((prefix) => [prefix, prefix])) as
        | { position: number }
        | undefined
      return row?.position
    } catch (error) {
      throw translateSqliteError(error, 'event store', 'lastPosition')
    }
  }

  const subscribeToAll = (options: SubscribeOptions = {}): Observable<RecordedEvent> =>
    new Observable<RecordedEvent>((subscriber) => {
      if (closed) {
        subscriber.error(new ClosedError('sqlite event store'))
        return undefined
      }
      validateSubscribe(options)
      const catchUp = startCatchUp({
        subscriber,
        after: options.after ?? 0,
        pageSize,
        readPage: (after, limit) => readPageSync(after, limit, options.streamPrefixes),
        onStop: () => {
          live.delete(catchUp)
          updatePoller()
        },
      })
      live.add(catchUp)
      updatePoller()
      catchUp.wake()
      return catchUp.stop
    })

  // With a writer thread, ready means it answers too: appends go nowhere else. Ready also
  // means the storage takes writes (`watchStorage`), which a query alone does not tell.
  const ping = async (): Promise<void> => {
    assertOpen()
    health.check()
    try {
      statements.ping.get()
      await thread?.ping()
    } catch (error) {
      throw translateSqliteError(error, 'event store', 'ping')
    }
  }

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    // Appends made before close are written, as they would have been without the group commit.
    flush()
    await thread?.close()
    for (const catchUp of [...live]) catchUp.complete()
    if (poller !== undefined) clearInterval(poller)
    poller = undefined
    db.close()
  }

  return {
    append,
    appendMany,
    deleteStreams,
    readStream,
    readAll,
    lastPosition,
    subscribeToAll,
    ping,
    close,
    onCommitted: (listener) => {
      commitListeners.add(listener)
      return () => commitListeners.delete(listener)
    },
    checkNow: () => {
      if (!closed && live.size > 0) poll()
    },
  }
}
