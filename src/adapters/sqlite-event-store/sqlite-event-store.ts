import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { Observable } from 'rxjs'
import {
  ClosedError,
  ExpectedRevisionConflictError,
  isRetriable,
  ValidationError,
} from '../../errors/index.ts'
import type {
  AppendOptions,
  AppendResult,
  EventData,
  EventStore,
  ExpectedRevision,
  JsonObject,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  SubscribeOptions,
} from '../../ports/index.ts'
import { openSqliteFile } from '../sqlite-file.ts'
import { type CatchUp, startCatchUp } from './catch-up.ts'
import { type EventRow, readAllByPrefixes, SCHEMA, SQL, WAL_AUTOCHECKPOINT_PAGES } from './schema.ts'
import { translateSqliteError } from './sqlite-errors.ts'
import {
  validateAppend,
  validateAppendMany,
  validateReadAll,
  validateReadStream,
  validateSubscribe,
} from './validate.ts'

export interface SqliteEventStoreOptions {
  /** Database file, created with its folder when missing; `:memory:` for a throwaway store. */
  readonly path: string
  /** How often live subscriptions look for appends made by other processes. Default 250. */
  readonly pollIntervalMs?: number
  /** How long an append waits for another process's write lock before failing retriably. Default 5000. */
  readonly busyTimeoutMs?: number
  /** Events per catch-up read; the event loop gets a turn between pages. Default 500. */
  readonly pageSize?: number
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
}

export type { ReadAllOptions } from '../../ports/event-store.ts'

/** The embedded store offers exactly the port. */
export type SqliteEventStore = EventStore

const defaults = {
  pollIntervalMs: 250,
  busyTimeoutMs: 5000,
  pageSize: 500,
  clock: Date.now,
  groupCommit: false,
  maxGroupAppends: 1000,
} satisfies Omit<SqliteEventStoreOptions, 'path'>

interface Placement {
  readonly revision: number
  readonly position: number
}

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

const holds = (expected: ExpectedRevision, actual: number | undefined): boolean => {
  switch (expected) {
    case 'any':
      return true
    case 'no_stream':
      return actual === undefined
    case 'stream_exists':
      return actual !== undefined
    default:
      return actual === expected
  }
}

/**
 * The events were all written before, contiguously and in this order, by an append that had
 * this same expectation (it would have succeeded right where they are): that is a retry, and
 * its original result is the answer. Anything else is not a retry.
 */
const originalAppend = (
  found: readonly (Placement | undefined)[],
  expected: ExpectedRevision,
): AppendResult | undefined => {
  const first = found[0]
  const last = found[found.length - 1]
  if (first === undefined || last === undefined) return undefined
  if (!found.every((f, i) => f !== undefined && f.revision === first.revision + i)) return undefined
  const sameExpectation =
    expected === 'any' ||
    (expected === 'no_stream' && first.revision === 0) ||
    (expected === 'stream_exists' && first.revision > 0) ||
    expected === first.revision - 1
  return sameExpectation ? { nextExpectedRevision: last.revision, position: last.position } : undefined
}

type Statements = Record<keyof typeof SQL, StatementSync>

const openDatabase = (path: string, busyTimeoutMs: number): { db: DatabaseSync; statements: Statements } => {
  let db: DatabaseSync | undefined
  try {
    db = openSqliteFile(path, {
      synchronous: 'FULL',
      busyTimeoutMs,
      walAutocheckpoint: WAL_AUTOCHECKPOINT_PAGES,
    })
    db.exec(SCHEMA)
    const open = db
    const statements = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, open.prepare(sql)]),
    ) as Statements
    return { db, statements }
  } catch (error) {
    if (db?.isOpen) db.close()
    throw translateSqliteError(error, 'open')
  }
}

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
 * entries all or nothing) is one transaction for one caller's many streams either way.
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
  const { path, pollIntervalMs, busyTimeoutMs, pageSize, clock, groupCommit, maxGroupAppends } = {
    ...defaults,
    ...options,
  }
  const { db, statements } = openDatabase(path, busyTimeoutMs)

  let closed = false
  const live = new Set<CatchUp>()
  let poller: NodeJS.Timeout | undefined
  let dataVersion: unknown

  const assertOpen = (): void => {
    if (closed) throw new ClosedError('sqlite event store')
  }

  // Prepared once per number of prefixes (a handful: each read model passes a fixed list).
  const byPrefixes = new Map<number, StatementSync>()
  const readAllSync = (after: number, limit: number, prefixes?: readonly string[]): RecordedEvent[] => {
    try {
      if (prefixes === undefined)
        return (statements.readAll.all(after, limit) as unknown as EventRow[]).map(toRecorded)
      let statement = byPrefixes.get(prefixes.length)
      if (statement === undefined) {
        statement = db.prepare(readAllByPrefixes(prefixes.length))
        byPrefixes.set(prefixes.length, statement)
      }
      const rows = statement.all(after, ...prefixes.flatMap((prefix) => [prefix, prefix]), limit)
      return (rows as unknown as EventRow[]).map(toRecorded)
    } catch (error) {
      throw translateSqliteError(error, 'readAll')
    }
  }

  const poll = (): void => {
    let version: unknown
    try {
      version = statements.dataVersion.get()?.data_version
    } catch (error) {
      const translated = translateSqliteError(error, 'poll')
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

  const appendInTransaction = (
    stream: string,
    events: readonly EventData[],
    expected: ExpectedRevision,
    recordedAt: number,
  ): { readonly result: AppendResult; readonly written: boolean } => {
    const head = statements.head.get(stream) as Placement | undefined
    // A stream that does not exist yet holds none of the ids (every new delivery's request):
    // only an existing one is worth looking them up in.
    const found =
      head === undefined
        ? events.map(() => undefined)
        : events.map((e) => statements.byId.get(stream, e.id) as Placement | undefined)
    const original = originalAppend(found, expected)
    if (original !== undefined) return { result: original, written: false }

    if (!holds(expected, head?.revision)) {
      throw new ExpectedRevisionConflictError({ stream, expected, actual: head?.revision ?? 'no_stream' })
    }
    const reused = found.flatMap((f, i) =>
      f === undefined
        ? []
        : [{ path: `events[${i}].id`, message: `already appended to ${stream} at revision ${f.revision}` }],
    )
    if (reused.length > 0) {
      throw new ValidationError(
        `append to ${stream}: ${reused.length} of ${events.length} event ids are already in the stream ` +
          `(${reused.map((r) => r.path).join(', ')}); a retry must resend the same events with the same expected revision`,
        reused,
      )
    }

    let revision = head?.revision ?? -1
    let position = 0
    for (const event of events) {
      revision += 1
      const { lastInsertRowid } = statements.insert.run(
        stream,
        revision,
        event.id,
        event.type,
        JSON.stringify(event.data),
        JSON.stringify(event.metadata ?? {}),
        recordedAt,
      )
      position = Number(lastInsertRowid)
    }
    return { result: { nextExpectedRevision: revision, position }, written: true }
  }

  /** One append or appendMany waiting for the next group commit. */
  interface Queued {
    readonly operation: string
    readonly write: () => { readonly value: unknown; readonly written: boolean }
    readonly resolve: (value: never) => void
    readonly reject: (error: unknown) => void
  }
  let queue: Queued[] = []
  let flushTimer: NodeJS.Immediate | undefined

  const savepoint = {
    begin: db.prepare('SAVEPOINT herald_append'),
    release: db.prepare('RELEASE herald_append'),
    undo: db.prepare('ROLLBACK TO herald_append'),
  }

  /**
   * Writes every queued append in one transaction and one sync to disk (the group commit), then
   * answers them. Each runs in its own savepoint, so one whose expected revision does not hold
   * (or that fails any other way) is rolled back alone and the others still commit, exactly as
   * if each had been its own transaction. IMMEDIATE takes the write lock before anything is
   * read, so no other process can append between a head check and the write. Nobody is answered
   * and no subscriber is woken before COMMIT: an acknowledged append is on disk, and a crash
   * before COMMIT loses only appends that were never acknowledged.
   */
  const flush = (): void => {
    if (flushTimer !== undefined) clearImmediate(flushTimer)
    flushTimer = undefined
    const group = queue
    queue = []
    if (group.length === 0) return
    const answers: { readonly queued: Queued; readonly ok: boolean; readonly value: unknown }[] = []
    let written = false
    try {
      db.exec('BEGIN IMMEDIATE')
      for (const queued of group) {
        savepoint.begin.run()
        try {
          const outcome = queued.write()
          savepoint.release.run()
          written ||= outcome.written
          answers.push({ queued, ok: true, value: outcome.value })
        } catch (error) {
          // Some SQLite errors (a full disk, an I/O error) end the whole transaction: then none
          // of the group is written, and the catch below answers all of them with it.
          if (!db.isTransaction) throw error
          savepoint.undo.run()
          savepoint.release.run()
          answers.push({ queued, ok: false, value: translateSqliteError(error, queued.operation) })
        }
      }
      db.exec(written ? 'COMMIT' : 'ROLLBACK')
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK')
      for (const queued of group) queued.reject(translateSqliteError(error, queued.operation))
      return
    }
    if (written) for (const catchUp of live) catchUp.wake()
    for (const { queued, ok, value } of answers) {
      if (ok) queued.resolve(value as never)
      else queued.reject(value)
    }
  }

  /**
   * Queues `write` for the next group commit: at once without `groupCommit`; else at the end of
   * this turn of the event loop, or at once when `maxGroupAppends` are waiting. Appends made while others' I/O is handled (many
   * deliveries finishing in the same turn) share one sync to disk; a lone append waits for
   * no timer, only for the turn to end.
   */
  const enqueue = <T>(
    operation: string,
    write: () => { readonly value: T; readonly written: boolean },
  ): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push({ operation, write, resolve: resolve as (value: never) => void, reject })
      if (!groupCommit || queue.length >= maxGroupAppends) flush()
      else flushTimer ??= setImmediate(flush)
    })

  const append = async (
    stream: string,
    events: readonly EventData[],
    options: AppendOptions = {},
  ): Promise<AppendResult> => {
    assertOpen()
    validateAppend(stream, events, options)
    const expected = options.expectedRevision ?? 'any'
    const recordedAt = clock()
    return enqueue('append', () => {
      const { result, written } = appendInTransaction(stream, events, expected, recordedAt)
      return { value: result, written }
    })
  }

  // All or nothing: any entry's conflict or error rolls back the entries before it too.
  const appendMany = async (appends: readonly StreamAppend[]): Promise<readonly AppendResult[]> => {
    assertOpen()
    validateAppendMany(appends)
    if (appends.length === 0) return []
    const recordedAt = clock()
    return enqueue('appendMany', () => {
      let written = false
      const results = appends.map(({ stream, events, expectedRevision }) => {
        const outcome = appendInTransaction(stream, events, expectedRevision ?? 'any', recordedAt)
        written ||= outcome.written
        return outcome.result
      })
      return { value: results, written }
    })
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
      throw translateSqliteError(error, 'readStream')
    }
  }

  const readAll = async (options: ReadAllOptions = {}): Promise<readonly RecordedEvent[]> => {
    assertOpen()
    validateReadAll(options)
    return readAllSync(options.after ?? 0, options.maxCount ?? -1, options.streamPrefixes)
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
        readPage: (after, limit) => readAllSync(after, limit, options.streamPrefixes),
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

  const ping = async (): Promise<void> => {
    assertOpen()
    try {
      statements.ping.get()
    } catch (error) {
      throw translateSqliteError(error, 'ping')
    }
  }

  const close = async (): Promise<void> => {
    if (closed) return
    // Appends made before close are written, as they would have been without the group commit.
    flush()
    closed = true
    for (const catchUp of [...live]) catchUp.complete()
    if (poller !== undefined) clearInterval(poller)
    poller = undefined
    db.close()
  }

  return { append, appendMany, readStream, readAll, subscribeToAll, ping, close }
}
