import type { DatabaseSync, StatementSync } from 'node:sqlite'
import { ExpectedRevisionConflictError, type FieldIssue, ValidationError } from '../../errors/index.ts'
import type { AppendResult, EventData, ExpectedRevision } from '../../ports/index.ts'
import { translateSqliteError } from '../sqlite-errors.ts'
import { columnsOf, openSqliteFile, runTransaction } from '../sqlite-file.ts'
import { MIGRATE_FROM_NAMED_STREAMS, SCHEMA, SQL, WAL_AUTOCHECKPOINT_PAGES } from './schema.ts'

/**
 * How appends are written: the same code whether the store writes on the caller's thread or
 * hands its appends to a writer thread (`writer-thread.ts`), which is why what it takes and
 * returns is plain data (events already encoded, errors left untranslated).
 */

/** An event as it is stored: `data` and `metadata` as JSON text. */
export interface EncodedEvent {
  readonly id: string
  readonly type: string
  readonly data: string
  readonly metadata: string
}

/** One stream's part of a write. */
export interface EncodedAppend {
  readonly stream: string
  readonly events: readonly EncodedEvent[]
  readonly expected: ExpectedRevision
}

/**
 * One `append` (a single entry) or `appendMany`: all its entries are written, or none.
 * `deleteStreams` travels the same way, so that it is written by the same connection (the
 * writer thread's, when there is one) in turn with the appends: each entry a stream, no events,
 * and the revision it must still be at; its results' `nextExpectedRevision` say the outcome
 * (`DELETE_OUTCOMES`).
 */
export interface WriteRequest {
  readonly operation: 'append' | 'appendMany' | 'deleteStreams'
  readonly appends: readonly EncodedAppend[]
  readonly recordedAt: number
}

/** A `deleteStreams` entry's outcome, by its index here, as its result's `nextExpectedRevision`. */
export const DELETE_OUTCOMES = ['deleted', 'absent', 'changed'] as const

/** A request's result, one per entry, or why it failed (untranslated: `translateSqliteError` at the caller's edge). */
export type WriteAnswer =
  | { readonly ok: true; readonly results: readonly AppendResult[] }
  | { readonly ok: false; readonly error: unknown }

export const encodeEvents = (events: readonly EventData[]): EncodedEvent[] =>
  events.map((event) => ({
    id: event.id,
    type: event.type,
    data: JSON.stringify(event.data),
    metadata: JSON.stringify(event.metadata ?? {}),
  }))

/** An event's bytes as KurrentDB counts them against its append limit: type, data and metadata. */
const eventBytes = (event: EncodedEvent): number =>
  Buffer.byteLength(event.type) + Buffer.byteLength(event.data) + Buffer.byteLength(event.metadata)

/**
 * Why `events` (the encoded events of one append, or of one `appendMany` entry, at `path`) are
 * more than one append takes: the event that alone is, or all of them together.
 */
export const appendSizeIssues = (
  events: readonly EncodedEvent[],
  path: string,
  limit: number,
): FieldIssue[] => {
  const sizes = events.map(eventBytes)
  const alone = sizes.findIndex((bytes) => bytes > limit)
  if (alone >= 0)
    return [
      {
        path: `${path}[${alone}]`,
        message: `is ${sizes[alone]} bytes, over the ${limit} the event store takes in one append`,
      },
    ]
  const total = sizes.reduce((sum, bytes) => sum + bytes, 0)
  return total > limit
    ? [{ path, message: `hold ${total} bytes, over the ${limit} the event store takes in one append` }]
    : []
}

export type Statements = Record<keyof typeof SQL, StatementSync>

/** Whether `db` holds the current schema: `events` with its stream numbers, and `streams`. */
const current = (db: DatabaseSync): boolean =>
  columnsOf(db, 'events').includes('sid') && columnsOf(db, 'streams').length > 0

/**
 * Creates the schema in a new file, or migrates a file written before streams were numbered.
 * Under the write lock, and only when needed: the connections of a process (its writer and
 * reading threads) open the file at once and only one may migrate it, while an open of a file
 * already current must not wait for another connection's write.
 */
const ensureSchema = (db: DatabaseSync, onMigration?: MigrationListener): void => {
  if (current(db)) return
  runTransaction(db, () => {
    if (current(db)) return
    if (columnsOf(db, 'events').length === 0) {
      db.exec(SCHEMA)
      return
    }
    const { events } = db.prepare('SELECT count(*) AS events FROM events').get() as { events: number }
    const started = performance.now()
    onMigration?.({ stage: 'started', events })
    db.exec(MIGRATE_FROM_NAMED_STREAMS)
    onMigration?.({ stage: 'finished', events, ms: Math.round(performance.now() - started) })
  })
}

/** Told when a file written before streams were numbered is migrated as it opens: it copies every event once. */
export type MigrationListener = (
  progress:
    | { readonly stage: 'started'; readonly events: number }
    | { readonly stage: 'finished'; readonly events: number; readonly ms: number },
) => void

export const openDatabase = (
  path: string,
  busyTimeoutMs: number,
  maxPageCount?: number,
  onMigration?: MigrationListener,
): { db: DatabaseSync; statements: Statements } => {
  let db: DatabaseSync | undefined
  try {
    db = openSqliteFile(path, {
      synchronous: 'FULL',
      busyTimeoutMs,
      walAutocheckpoint: WAL_AUTOCHECKPOINT_PAGES,
      ...(maxPageCount === undefined ? {} : { maxPageCount }),
    })
    const open = db
    ensureSchema(open, onMigration)
    const statements = Object.fromEntries(
      Object.entries(SQL).map(([name, sql]) => [name, open.prepare(sql)]),
    ) as Statements
    return { db, statements }
  } catch (error) {
    if (db?.isOpen) db.close()
    throw translateSqliteError(error, 'event store', 'open')
  }
}

interface Placement {
  readonly revision: number
  readonly position: number
}

/** A stream's number and where its last event is. */
interface Head extends Placement {
  readonly sid: number
}

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

export interface GroupWriter {
  /**
   * Writes the requests in one transaction and one sync to disk (the group commit), each in
   * its own savepoint, so one whose expected revision does not hold (or that fails any other
   * way) is rolled back alone and the others still commit, exactly as if each had been its own
   * transaction. IMMEDIATE takes the write lock before anything is read, so no other process
   * can append between a head check and the write. Returns once COMMIT returned: an answer
   * given after it is on disk, and a crash before it loses only appends nobody was told of.
   */
  write(group: readonly WriteRequest[]): {
    readonly answers: readonly WriteAnswer[]
    readonly written: boolean
  }
}

export const createGroupWriter = (db: DatabaseSync, statements: Statements): GroupWriter => {
  const appendInTransaction = (
    { stream, events, expected }: EncodedAppend,
    recordedAt: number,
  ): { readonly result: AppendResult; readonly written: boolean } => {
    const head = statements.head.get(stream) as Head | undefined
    // A stream that does not exist yet holds none of the ids (every new delivery's request):
    // only an existing one is worth looking them up in.
    const found =
      head === undefined
        ? events.map(() => undefined)
        : events.map((e) => statements.byId.get(head.sid, e.id) as Placement | undefined)
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

    const sid = head?.sid ?? Number(statements.newStream.run(stream).lastInsertRowid)
    let revision = head?.revision ?? -1
    let position = 0
    for (const event of events) {
      revision += 1
      const { lastInsertRowid } = statements.insert.run(
        sid,
        stream,
        revision,
        event.id,
        event.type,
        event.data,
        event.metadata,
        recordedAt,
      )
      position = Number(lastInsertRowid)
    }
    return { result: { nextExpectedRevision: revision, position }, written: true }
  }

  const deleteInTransaction = ({ stream, expected }: EncodedAppend): (typeof DELETE_OUTCOMES)[number] => {
    const head = statements.head.get(stream) as Head | undefined
    if (head === undefined) return 'absent'
    if (head.revision !== expected) return 'changed'
    statements.deleteEvents.run(head.sid)
    statements.deleteStream.run(head.sid)
    return 'deleted'
  }

  // All or nothing: any entry's conflict or error rolls back the entries before it too.
  const writeRequest = (request: WriteRequest): { results: AppendResult[]; written: boolean } => {
    if (request.operation === 'deleteStreams') {
      const outcomes = request.appends.map(deleteInTransaction)
      return {
        results: outcomes.map((outcome) => ({
          nextExpectedRevision: DELETE_OUTCOMES.indexOf(outcome),
          position: 0,
        })),
        written: outcomes.includes('deleted'),
      }
    }
    let written = false
    const results = request.appends.map((entry) => {
      const outcome = appendInTransaction(entry, request.recordedAt)
      written ||= outcome.written
      return outcome.result
    })
    return { results, written }
  }

  const savepoint = {
    begin: db.prepare('SAVEPOINT herald_append'),
    release: db.prepare('RELEASE herald_append'),
    undo: db.prepare('ROLLBACK TO herald_append'),
  }

  /**
   * Ends the transaction a failure left open. A ROLLBACK can fail too (an I/O error): the
   * transaction then stays open, the next write tries again before it begins, and meanwhile
   * every write fails, answered, never thrown (a throw would leave the group unanswered).
   */
  const rollBack = (): void => {
    if (!db.isTransaction) return
    try {
      db.exec('ROLLBACK')
    } catch {
      // Still open: the caller answers with the error that needed the rollback.
    }
  }

  return {
    write: (group) => {
      const answers: WriteAnswer[] = []
      let written = false
      try {
        rollBack()
        db.exec('BEGIN IMMEDIATE')
        for (const request of group) {
          savepoint.begin.run()
          try {
            const outcome = writeRequest(request)
            savepoint.release.run()
            written ||= outcome.written
            answers.push({ ok: true, results: outcome.results })
          } catch (error) {
            // Some SQLite errors (a full disk, an I/O error) end the whole transaction: then none
            // of the group is written, and the catch below answers all of them with it.
            if (!db.isTransaction) throw error
            savepoint.undo.run()
            savepoint.release.run()
            answers.push({ ok: false, error })
          }
        }
        db.exec(written ? 'COMMIT' : 'ROLLBACK')
      } catch (error) {
        rollBack()
        return { answers: group.map(() => ({ ok: false, error })), written: false }
      }
      return { answers, written }
    },
  }
}
