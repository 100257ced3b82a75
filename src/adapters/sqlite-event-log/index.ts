import { EventEmitter } from 'node:events'
import type { StatementSync } from 'node:sqlite'
import { type Backoff, backoffDelay } from '../../backoff.ts'
import { yieldToLoop } from '../../cooperative.ts'
import {
  ClosedError,
  type FieldIssue,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from '../../errors/index.ts'
import type {
  Batch,
  BatchHandler,
  ConsumeOptions,
  Consumer,
  EventLog,
  Headers,
  LogMessage,
  OutgoingMessage,
  PublishedPosition,
  TopicSpec,
} from '../../ports/event-log.ts'
import { partitionForKey, rememberingPartitioner } from '../murmur2.ts'
import { checkpointingOf } from '../sqlite-checkpointer.ts'
import { translateSqliteError } from '../sqlite-errors.ts'
import { openSqliteFile, runTransaction } from '../sqlite-file.ts'
import { createWalSync, type SyncFile, walSyncError } from '../sqlite-wal-sync.ts'
import { type StorageFailure, storageFailureOf, watchStorage } from '../storage-health.ts'

export interface SqliteEventLogOptions {
  /** Database file; `:memory:` for a throw-away log. */
  readonly path: string
  /** How long an idle consumer sleeps before looking again, in ms (default 500). */
  readonly idlePollMs?: number
  /**
   * Back-off of a partition after its handler, read or commit failed: doubles from `min` up to
   * `max` ms (default 100 → 5000) with each failure of that partition in a row; the member's
   * other partitions go on meanwhile.
   */
  readonly retryBackoffMs?: Backoff
  readonly clock?: () => number
  /** Receives handler failures; the batch is retried after a back-off either way. */
  readonly onHandlerError?: (error: unknown, batch: Batch, groupId: string) => void
  /**
   * Receives failures to commit a batch's offset (a SQLite error translated: `UnavailableError`
   * for a full disk, with `context.sqliteCode`); the batch is handed over again after the
   * handlers' back-off, and the consumer goes on.
   */
  readonly onCommitError?: (error: unknown, batch: Batch, groupId: string) => void
  /**
   * Receives failures to read a partition's next batch (a SQLite error translated: an I/O error
   * or a damaged file, with `context.sqliteCode`); it is read again after the handlers' back-off,
   * and the consumer goes on. Meanwhile `ping` fails, naming the partition and the code.
   */
  readonly onReadError?: (
    error: unknown,
    at: { readonly topic: string; readonly partition: number },
    groupId: string,
  ) => void
  /**
   * How often the process's checkpoint thread checkpoints the file's WAL (default 200 ms), so no publish
   * on the event loop copies the WAL into the file and syncs it; 0 leaves that to the
   * publishes (every 1,000 pages, SQLite's default). A log in memory has no WAL.
   */
  readonly checkpointIntervalMs?: number
  /**
   * Messages older than this (ms since their publish) are deleted, oldest first, as Kafka's
   * time-based retention deletes them: consumed or not. Undefined or 0: every message is kept.
   */
  readonly retentionMs?: number
  /** How often retention looks for messages to delete, in ms (default 60 000). */
  readonly retentionCheckMs?: number
  /**
   * Each partition's deletion: how many messages, through which offset, and the groups that
   * had not consumed all of them (with how many of theirs went).
   */
  readonly onRetention?: (deletion: RetentionDeletion) => void
  /** A retention pass failed (it is tried again at the next check). */
  readonly onRetentionError?: (error: unknown) => void
  /** Syncs the write-ahead log to disk (default `fs.fdatasync`); see `createWalSync`. */
  readonly syncFile?: SyncFile
  /**
   * Bytes of values each partition keeps in memory of what was published last (default
   * 16 MiB; 0: none). A consumer reading within them is handed the published messages
   * themselves rather than rows read back from the file: every group gets the same objects,
   * so a decoder can recognise a value it has seen (`IngressDecoder`).
   */
  readonly tailBytes?: number
  /** Pages the file may hold at most; past it writes fail with SQLITE_FULL (see `openSqliteFile`). */
  readonly maxPageCount?: number
}

export interface RetentionDeletion {
  readonly topic: string
  readonly partition: number
  readonly deleted: number
  /** The last offset deleted; the partition now starts after it. */
  readonly throughOffset: number
  readonly unconsumed: readonly { readonly group: string; readonly messages: number }[]
}

/** The embedded log, with what only it has: retention applied on demand. */
export interface SqliteEventLog extends EventLog {
  /** Deletes what retention says is due now (also done every `retentionCheckMs`); resolves with how many went. */
  applyRetention(): Promise<number>
}

const DEFAULT_MAX_BATCH = 500
/**
 * The bytes of values a batch holds at most by default. A consumer holds about 12-18 times its
 * batch's bytes while handling it (the projector, measured on image reports: 371 MB for a batch
 * of 20.7 MB, 995 MB for 82.8 MB); by count alone, 20,000 events of up to 5 MiB each would not
 * fit any memory. 32 MiB keeps whole the 20,000-event batches of the generator's mix (about
 * 1.4 KB an event).
 */
const DEFAULT_MAX_BATCH_BYTES = 32 * 1024 * 1024
const DEFAULT_TAIL_BYTES = 16 * 1024 * 1024
const NO_HEADERS: Headers = Object.freeze({})
// Messages one retention transaction deletes at most: the event loop is held for one chunk at a time.
const RETENTION_CHUNK = 5_000
/**
 * Rows per multi-row INSERT: each statement run is a native call that costs more than the row
 * it writes, so a publish writes its messages in groups of this many and the rest one by one.
 */
const INSERT_GROUP = 32

interface Member {
  readonly id: number
  readonly topics: readonly string[]
  /** Per topic, the partitions this member reads and since when; see `holdsSince`. */
  readonly held: Map<string, Map<number, number>>
}

/**
 * A partition's newest messages as published, `messages[i]` at offset `first + i`, through the
 * partition's head; `bytes` of values in all.
 */
interface Tail {
  first: number
  messages: LogMessage[]
  bytes: number
}

/** A partition whose last batch read failed for want of storage, and the member that read it. */
interface ReadFailure extends StorageFailure {
  readonly member: number
  readonly groupId: string
  readonly topic: string
  readonly partition: number
}

interface Group {
  readonly members: Member[]
  /** Serialises batches per partition while ownership moves between members. */
  readonly partitionLocks: Map<string, Promise<void>>
}

/**
 * The embedded EventLog: Kafka's model (topics, murmur2 partitions, consumer groups,
 * committed offsets) in one SQLite file, for a single Herald process. A publish is durable
 * when it resolves: its transaction is written at synchronous=NORMAL and the write-ahead log is
 * then synced off the event loop, one sync shared by the publishes that came meanwhile (group
 * commit, `createWalSync`); consumers are woken once it is on disk. Offsets are committed in
 * the same file after the handler resolved, so delivery is at-least-once across crashes.
 *
 * An offset commit alone does not wait for the disk: a crash of the process loses none, and a
 * power cut may lose the last few, whose batches are then read again, which at-least-once
 * delivery already allows (Kafka commits at an interval for the same reason). Waiting for the
 * disk took about 0.8 ms of the event loop per batch under load, against 25 µs without.
 *
 * @example
 * const log = createSqliteEventLog({ path: 'data/eventlog.sqlite' })
 * await log.createTopics([{ topic: 'engine.events', partitions: 3 }])
 */
export const createSqliteEventLog = (options: SqliteEventLogOptions): SqliteEventLog => {
  const clock = options.clock ?? Date.now
  const idlePollMs = options.idlePollMs ?? 500
  const backoff = options.retryBackoffMs ?? { min: 100, max: 5_000 }
  const checkpointing = checkpointingOf(options.path, options.checkpointIntervalMs)
  const db = openSqliteFile(options.path, {
    synchronous: 'NORMAL',
    ...checkpointing.pragmas,
    ...(options.maxPageCount === undefined ? {} : { maxPageCount: options.maxPageCount }),
  })
  const wal = createWalSync(db, options.syncFile)
  const checkpoints = checkpointing.start()
  // `messages` is an ordinary (rowid) table with its key in an index of its own: in a WITHOUT
  // ROWID table a row lives in the key's b-tree, which keeps at most about 1,000 bytes of a
  // row on its page and puts the rest on an overflow page of its own, so every event of 1 KB or
  // more took a whole extra page (3.4 times the disk, a third of the insert rate). Files made
  // before keep their WITHOUT ROWID table, which the same statements read and write.
  db.exec(`
    CREATE TABLE IF NOT EXISTS topics (
      name TEXT PRIMARY KEY,
      partitions INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS partition_heads (
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      next_offset INTEGER NOT NULL,
      PRIMARY KEY (topic, partition)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS messages (
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      offset INTEGER NOT NULL,
      key TEXT,
      value BLOB NOT NULL,
      headers TEXT NOT NULL,
      timestamp INTEGER NOT NULL,
      PRIMARY KEY (topic, partition, offset)
    );
    CREATE TABLE IF NOT EXISTS group_offsets (
      group_id TEXT NOT NULL,
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      next_offset INTEGER NOT NULL,
      PRIMARY KEY (group_id, topic, partition)
    ) WITHOUT ROWID;
  `)
  // Recorded once the file and its write-ahead log exist (a new file's log is made by its first
  // write, above): what `ping` compares the paths with. The syncs open the log by its path only
  // once, so after the first they no longer see it go.
  const health = watchStorage(options.path, 'event log', { wal: true })

  const statements = {
    topic: db.prepare('SELECT partitions FROM topics WHERE name = ?'),
    insertTopic: db.prepare('INSERT OR IGNORE INTO topics (name, partitions) VALUES (?, ?)'),
    insertHead: db.prepare(
      'INSERT OR IGNORE INTO partition_heads (topic, partition, next_offset) VALUES (?, ?, 0)',
    ),
    head: db.prepare('SELECT next_offset FROM partition_heads WHERE topic = ? AND partition = ?'),
    advanceHead: db.prepare('UPDATE partition_heads SET next_offset = ? WHERE topic = ? AND partition = ?'),
    insertMessage: db.prepare(
      'INSERT INTO messages (topic, partition, offset, key, value, headers, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    insertMessages: db.prepare(
      `INSERT INTO messages (topic, partition, offset, key, value, headers, timestamp) VALUES ${Array.from(
        { length: INSERT_GROUP },
        () => '(?, ?, ?, ?, ?, ?, ?)',
      ).join(', ')}`,
    ),
    fetch: db.prepare(
      'SELECT offset, key, value, headers, timestamp FROM messages WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?',
    ),
    committed: db.prepare(
      'SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ? AND partition = ?',
    ),
    // Where the group stands: its committed offset, or, when retention has deleted past it
    // (or it never committed), the first offset still readable — what it reads next.
    lag: db.prepare(
      `SELECT x.partition, x.end, x.committed,
              (SELECT m.timestamp FROM messages m
                WHERE m.topic = x.topic AND m.partition = x.partition AND m.offset >= x.committed
                ORDER BY m.offset LIMIT 1) AS oldest_at
         FROM (SELECT h.topic, h.partition AS partition, h.next_offset AS end,
                      max(COALESCE(o.next_offset, 0),
                          COALESCE((SELECT min(m.offset) FROM messages m
                                     WHERE m.topic = h.topic AND m.partition = h.partition), h.next_offset)) AS committed
                 FROM partition_heads h
                 LEFT JOIN group_offsets o ON o.group_id = ? AND o.topic = h.topic AND o.partition = h.partition
                WHERE h.topic = ?) x
        ORDER BY x.partition`,
    ),
    commit: db.prepare(
      `INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
    ),
    allPartitions: db.prepare('SELECT topic, partition FROM partition_heads ORDER BY topic, partition'),
    // The oldest message left, and the newest of the chunk after it that is past retention.
    oldest: db.prepare(
      'SELECT offset FROM messages WHERE topic = ? AND partition = ? ORDER BY offset LIMIT 1',
    ),
    expiredThrough: db.prepare(
      `SELECT MAX(offset) AS through FROM messages
        WHERE topic = ? AND partition = ? AND offset >= ? AND offset < ? AND timestamp < ?`,
    ),
    deleteThrough: db.prepare('DELETE FROM messages WHERE topic = ? AND partition = ? AND offset <= ?'),
    groupsBehind: db.prepare(
      'SELECT group_id, next_offset FROM group_offsets WHERE topic = ? AND partition = ? AND next_offset <= ?',
    ),
  } satisfies Record<string, StatementSync>
  statements.fetch.setReturnArrays(true)

  const appended = new EventEmitter()
  appended.setMaxListeners(0)
  const groups = new Map<string, Group>()
  const consumers = new Set<Consumer>()
  let nextMemberId = 0
  const roundRobin = new Map<string, number>()
  let closed = false

  const assertOpen = (): void => {
    if (closed) throw new ClosedError('event log')
  }

  // Partitions whose last batch read failed for want of storage (a damaged page, an I/O error),
  // by group: `ping` fails while one is here. A read that succeeds takes its partition out, and a
  // consumer that stops takes out those it failed to read. No failure is held for a while after
  // (as `watchStorage` holds a failed write): the consumer reads again every few seconds by
  // itself, with or without traffic, so its next read, not a timer, says when the file reads again.
  const readFailures = new Map<string, ReadFailure>()
  const readFailureKey = (groupId: string, topic: string, partition: number) =>
    `${groupId}\u0000${partitionKey(topic, partition)}`

  /**
   * `work` in one transaction, SQLite's errors translated (a full disk is a retriable
   * UnavailableError), its outcome told to `health` for `ping`.
   */
  const transaction = <T>(operation: string, work: () => T): T => {
    try {
      const result = runTransaction(db, work)
      health.wrote()
      return result
    } catch (error) {
      health.wrote(error)
      throw translateSqliteError(error, 'event log', operation)
    }
  }

  /**
   * Waits until the commits before it are on disk (`createWalSync`). A sync that fails (an I/O
   * error, the log file gone) leaves them in the file but not known to be on disk: a storage
   * failure like a failed write, told to `health` and answered as retriable.
   */
  const durable = async (operation: string): Promise<void> => {
    try {
      await wal.durable()
    } catch (error) {
      health.wrote(error)
      throw walSyncError(error, 'event log', operation)
    }
  }

  // A topic's partition count never changes once it exists (createTopics keeps an existing
  // topic as it is), and only this process writes the file, so a count read once holds.
  const partitionCounts = new Map<string, number>()
  const partitionsOf = (topic: string): number => {
    const known = partitionCounts.get(topic)
    if (known !== undefined) return known
    const row = statements.topic.get(topic) as { partitions: number } | undefined
    if (row === undefined) throw new NotFoundError(`topic ${topic} does not exist`, { topic })
    partitionCounts.set(topic, row.partitions)
    return row.partitions
  }

  // Producers pass the same headers object with every message of a kind (a frozen constant),
  // so its JSON is worked out once per object rather than once per message.
  const headerTexts = new WeakMap<object, string>()
  const headersJson = (headers: OutgoingMessage['headers']): string => {
    if (headers === undefined) return '{}'
    let text = headerTexts.get(headers)
    if (text === undefined) {
      text = JSON.stringify(headers)
      if (Object.isFrozen(headers)) headerTexts.set(headers, text)
    }
    return text
  }

  // What a consumer is handed as a message's headers: frozen, as those read back from the file.
  const frozenHeaders = (headers: OutgoingMessage['headers']): Headers => {
    if (headers === undefined) return NO_HEADERS
    return Object.isFrozen(headers) ? headers : Object.freeze({ ...headers })
  }

  const choosePartition = (topic: string, key: string | null, partitions: number): number => {
    if (key !== null) return partitionForKey(key, partitions)
    const next = roundRobin.get(topic) ?? 0
    roundRobin.set(topic, next + 1)
    return next % partitions
  }

  const assignment = (group: Group, member: Member, topic: string): number[] => {
    const peers = group.members.filter((m) => m.topics.includes(topic))
    const index = peers.indexOf(member)
    const partitions = partitionsOf(topic)
    const owned: number[] = []
    for (let p = 0; p < partitions; p++) if (p % peers.length === index) owned.push(p)
    return owned
  }

  // After a member joins or leaves: who reads what, keeping the time of partitions that stay.
  const rebalance = (group: Group): void => {
    const now = clock()
    for (const member of group.members) {
      for (const topic of member.topics) {
        const before = member.held.get(topic)
        const after = new Map<number, number>()
        for (const p of assignment(group, member, topic)) after.set(p, before?.get(p) ?? now)
        member.held.set(topic, after)
      }
    }
  }

  // Each partition's newest messages as published (`tailBytes`). Only this process writes the
  // file and every message goes in through `publish`, so a tail runs unbroken to the head. Its
  // budget counts the values' own bytes: small values made by `Buffer.from` share the pool's
  // 8 KiB slabs, but a publish's values are made one after another, so they share slabs with
  // each other rather than each holding one alive.
  const tailBytes = options.tailBytes ?? DEFAULT_TAIL_BYTES
  const tails = new Map<string, Tail>()
  const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`

  /** Drops a tail's oldest messages: through offset `through`, and down to 3/4 of the budget once over it. */
  const trimTail = (tail: Tail, through = -1): void => {
    const keep = tail.bytes > tailBytes ? (tailBytes * 3) / 4 : Number.POSITIVE_INFINITY
    let drop = 0
    let bytes = tail.bytes
    while (drop < tail.messages.length && (bytes > keep || tail.first + drop <= through)) {
      bytes -= (tail.messages[drop] as LogMessage).value.byteLength
      drop++
    }
    if (drop === 0) return
    tail.messages.splice(0, drop)
    tail.first += drop
    tail.bytes = bytes
  }

  /** Adds a committed publish's messages (in offset order per partition) to their tails. */
  const extendTails = (published: readonly LogMessage[]): void => {
    const touched = new Set<Tail>()
    for (const message of published) {
      const key = partitionKey(message.topic, message.partition)
      let tail = tails.get(key)
      if (tail === undefined || tail.first + tail.messages.length !== message.offset) {
        tail = { first: message.offset, messages: [], bytes: 0 }
        tails.set(key, tail)
      }
      tail.messages.push(message)
      tail.bytes += message.value.byteLength
      touched.add(tail)
    }
    for (const tail of touched) trimTail(tail)
  }

  /** Up to `max` messages from the group's committed offset, or from `from` where given. */
  /**
   * The messages of a partition from the group's committed offset (or `from`), at most `max` of
   * them and `maxBytes` of values, except that the first is taken whatever its size when
   * `first` (a batch holds one message at least). `full` tells that the next message would have
   * gone over `maxBytes`.
   */
  const fetch = (
    groupId: string,
    topic: string,
    partition: number,
    max: number,
    maxBytes: number,
    first: boolean,
    from?: number,
  ): { messages: LogMessage[]; bytes: number; full: boolean } => {
    const committed =
      from === undefined
        ? (statements.committed.get(groupId, topic, partition) as { next_offset: number } | undefined)
        : { next_offset: from }
    const next = committed?.next_offset ?? 0
    const tail = tails.get(partitionKey(topic, partition))
    let bytes = 0
    const fits = (size: number, taken: number) => (first && taken === 0) || bytes + size <= maxBytes
    if (tail !== undefined && next >= tail.first) {
      const start = next - tail.first
      const end = Math.min(start + max, tail.messages.length)
      let i = start
      for (; i < end; i++) {
        const size = (tail.messages[i] as LogMessage).value.byteLength
        if (!fits(size, i - start)) break
        bytes += size
      }
      return { messages: tail.messages.slice(start, i), bytes, full: i < end }
    }
    // Rows as arrays (`setReturnArrays`): no object with named properties built per row only to
    // be copied into the message. Read one at a time so that rows past the byte bound are never
    // loaded (about 0.3 µs more a row than reading them all at once).
    const rows = statements.fetch.iterate(topic, partition, next, max) as unknown as Iterable<
      [offset: number, key: string | null, value: Uint8Array, headers: string, timestamp: number]
    >
    // Messages of one kind carry the same headers (every delivery command's are alike): each
    // distinct text is parsed once per fetch, and the messages share the frozen result.
    const parsed = new Map<string, Readonly<Record<string, string>>>()
    const messages: LogMessage[] = []
    let full = false
    for (const [offset, key, value, headersText, timestamp] of rows) {
      if (!fits(value.byteLength, messages.length)) {
        full = true
        break
      }
      bytes += value.byteLength
      let headers = parsed.get(headersText)
      if (headers === undefined) {
        headers = Object.freeze(JSON.parse(headersText) as Record<string, string>)
        parsed.set(headersText, headers)
      }
      messages.push({ topic, partition, offset, key, value, headers, timestamp })
    }
    return { messages, bytes, full }
  }

  /**
   * Commits a group's offset, not waited onto the disk (see the factory's comment); its outcome
   * told to `health` for `ping`. A closed log commits nothing: the batch is read again next time.
   */
  const commitOffset = (groupId: string, topic: string, partition: number, next: number): void => {
    if (closed) return
    try {
      statements.commit.run(groupId, topic, partition, next)
      health.wrote()
    } catch (error) {
      health.wrote(error)
      throw translateSqliteError(error, 'event log', 'commit')
    }
  }

  /** Runs `work` once no other member holds this partition of the group. */
  const withPartitionLock = async (group: Group, lockKey: string, work: () => Promise<void>) => {
    for (;;) {
      const held = group.partitionLocks.get(lockKey)
      if (held === undefined) break
      await held
    }
    const run = work()
    const settled = run.then(
      () => undefined,
      () => undefined,
    )
    group.partitionLocks.set(lockKey, settled)
    try {
      await run
    } finally {
      group.partitionLocks.delete(lockKey)
    }
  }

  const consume = async (consumeOptions: ConsumeOptions, handler: BatchHandler): Promise<Consumer> => {
    assertOpen()
    const { groupId, topics } = consumeOptions
    const maxBatchSize = consumeOptions.maxBatchSize ?? DEFAULT_MAX_BATCH
    const maxBatchBytes = consumeOptions.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    if (!(Number.isInteger(maxBatchBytes) && maxBatchBytes >= 1))
      throw new ValidationError('invalid consume options', [
        { path: 'maxBatchBytes', message: 'must be a whole number of bytes, at least 1' },
      ])
    const maxWaitMs = consumeOptions.maxWaitMs ?? 0
    // As the Kafka adapter refuses them: a batch size of 0 never moved on, a negative one
    // handed over all but that many of what was there.
    const issues: FieldIssue[] = []
    if (groupId === '') issues.push({ path: 'groupId', message: 'must not be empty' })
    if (topics.length === 0) issues.push({ path: 'topics', message: 'must name at least one topic' })
    if (!(Number.isInteger(maxBatchSize) && maxBatchSize >= 1))
      issues.push({ path: 'maxBatchSize', message: 'must be a positive integer' })
    if (!(Number.isFinite(maxWaitMs) && maxWaitMs >= 0))
      issues.push({ path: 'maxWaitMs', message: 'must be a number of ms, at least 0' })
    if (issues.length > 0) throw new ValidationError('invalid consume options', issues)
    for (const topic of topics) partitionsOf(topic)

    const group: Group = groups.get(groupId) ?? { members: [], partitionLocks: new Map() }
    groups.set(groupId, group)
    const member: Member = { id: nextMemberId++, topics, held: new Map() }
    const partitionOfKey = rememberingPartitioner()
    group.members.push(member)
    rebalance(group)

    let stopping = false
    let wake: (() => void) | undefined
    const onAppend = (topic: string) => {
      if (topics.includes(topic)) wake?.()
    }
    appended.on('appended', onAppend)

    const idle = (ms = idlePollMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      }).finally(() => {
        wake = undefined
      })

    // A partition whose read, handler or commit failed is left alone until its back-off is
    // over, counted by its own failures, as a Kafka consumer pauses just that partition: a
    // failing partition neither holds up the member's other partitions (its back-off slept in
    // their loop) nor has its back-off cut short by their successes.
    const retries = new Map<string, { readonly failures: number; readonly at: number }>()
    const failed = (topic: string, partition: number): void => {
      const key = partitionKey(topic, partition)
      const failures = (retries.get(key)?.failures ?? 0) + 1
      retries.set(key, { failures, at: performance.now() + backoffDelay(backoff, failures) })
    }
    /** How long an idle member sleeps: until the next retry is due, or the idle poll. */
    const idleMs = (): number => {
      let ms = idlePollMs
      const now = performance.now()
      for (const { at } of retries.values()) ms = Math.min(ms, at - now)
      return Math.max(1, Math.ceil(ms))
    }

    const loop = async () => {
      while (!stopping) {
        let progressed = false
        for (const topic of topics) {
          // What `rebalance` last gave this member (a stopping member holds nothing).
          for (const partition of member.held.get(topic)?.keys() ?? []) {
            if (stopping) break
            const retry = retries.get(partitionKey(topic, partition))
            if (retry !== undefined && performance.now() < retry.at) continue
            await withPartitionLock(group, partitionKey(topic, partition), async () => {
              let messages: LogMessage[]
              // A read that fails (an I/O error, a damaged page) is tried again after the
              // handlers' back-off, as a failed commit is: thrown from here, it would end the
              // loop with a rejection nobody handles.
              try {
                let read = fetch(groupId, topic, partition, maxBatchSize, maxBatchBytes, true)
                messages = read.messages
                let { bytes, full } = read
                // A partial batch waits for more until its oldest message is maxWaitMs old. Each
                // append wakes it, and it reads only what came since: read again from the
                // committed offset at every wake, a batch filling under load was read over and
                // over, on the event loop. A batch the next message would take over its bytes
                // is full.
                const due = (messages[0]?.timestamp ?? 0) + maxWaitMs
                while (
                  messages.length > 0 &&
                  messages.length < maxBatchSize &&
                  !full &&
                  !stopping &&
                  clock() < due
                ) {
                  await idle(Math.max(1, due - clock()))
                  const held = messages.at(-1) as LogMessage
                  read = fetch(
                    groupId,
                    topic,
                    partition,
                    maxBatchSize - messages.length,
                    maxBatchBytes - bytes,
                    false,
                    held.offset + 1,
                  )
                  if (read.messages.length > 0) messages = messages.concat(read.messages)
                  bytes += read.bytes
                  full = read.full
                }
              } catch (error) {
                const failure = storageFailureOf(error)
                if (failure !== undefined)
                  readFailures.set(readFailureKey(groupId, topic, partition), {
                    ...failure,
                    member: member.id,
                    groupId,
                    topic,
                    partition,
                  })
                options.onReadError?.(
                  translateSqliteError(error, 'event log', 'read'),
                  { topic, partition },
                  groupId,
                )
                failed(topic, partition)
                return
              }
              if (readFailures.size > 0) readFailures.delete(readFailureKey(groupId, topic, partition))
              const last = messages.at(-1)
              if (last === undefined) return
              const batch: Batch = { topic, partition, messages }
              try {
                await handler(batch)
              } catch (error) {
                options.onHandlerError?.(error, batch, groupId)
                failed(topic, partition)
                return
              }
              // A commit that fails (a full disk) is retried as a failed handler is: the batch
              // is read again from the offset committed before and handed over again (handlers
              // are idempotent), after the same back-off. Thrown from here, it would end the
              // loop with a rejection nobody handles, and the process with it.
              try {
                commitOffset(groupId, topic, partition, last.offset + 1)
              } catch (error) {
                options.onCommitError?.(error, batch, groupId)
                failed(topic, partition)
                return
              }
              retries.delete(partitionKey(topic, partition))
              progressed = true
            })
          }
        }
        if (!progressed && !stopping) await idle(idleMs())
      }
    }

    const running = loop()
    const consumer: Consumer = {
      stop: async () => {
        if (stopping) return running
        stopping = true
        member.held.clear()
        wake?.()
        try {
          await running
        } finally {
          for (const [key, failure] of readFailures)
            if (failure.member === member.id) readFailures.delete(key)
          appended.off('appended', onAppend)
          group.members.splice(group.members.indexOf(member), 1)
          rebalance(group)
          consumers.delete(consumer)
        }
      },
      holdsSince: (topic, key) => {
        const held = member.held.get(topic)
        return held === undefined ? undefined : held.get(partitionOfKey(key, partitionsOf(topic)))
      },
    }
    consumers.add(consumer)
    return consumer
  }

  /** One partition's expired messages, a chunk per transaction, yielding between chunks. */
  const retainPartition = async (topic: string, partition: number, before: number): Promise<number> => {
    let deleted = 0
    let through = -1
    const unconsumed = new Map<string, number>()
    for (;;) {
      if (closed) break
      const first = (statements.oldest.get(topic, partition) as { offset: number } | undefined)?.offset
      if (first === undefined) break
      const last = (
        statements.expiredThrough.get(topic, partition, first, first + RETENTION_CHUNK, before) as {
          through: number | null
        }
      ).through
      if (last === null) break
      transaction('retention', () => {
        deleted += Number(statements.deleteThrough.run(topic, partition, last).changes)
        for (const row of statements.groupsBehind.all(topic, partition, last) as {
          group_id: string
          next_offset: number
        }[])
          unconsumed.set(
            row.group_id,
            (unconsumed.get(row.group_id) ?? 0) + last + 1 - Math.max(row.next_offset, first),
          )
      })
      through = last
      const tail = tails.get(partitionKey(topic, partition))
      if (tail !== undefined) trimTail(tail, last)
      // The chunk held messages still within retention: nothing older is left.
      if (last < first + RETENTION_CHUNK - 1) break
      await yieldToLoop()
    }
    if (deleted > 0)
      options.onRetention?.({
        topic,
        partition,
        deleted,
        throughOffset: through,
        unconsumed: [...unconsumed].map(([group, messages]) => ({ group, messages })),
      })
    return deleted
  }

  let retaining: Promise<number> | undefined
  const applyRetention = (): Promise<number> => {
    const retentionMs = options.retentionMs ?? 0
    if (closed || retentionMs <= 0) return Promise.resolve(0)
    retaining ??= (async () => {
      try {
        const before = clock() - retentionMs
        let deleted = 0
        for (const { topic, partition } of statements.allPartitions.all() as {
          topic: string
          partition: number
        }[])
          deleted += await retainPartition(topic, partition, before)
        return deleted
      } finally {
        retaining = undefined
      }
    })()
    return retaining
  }
  const retentionTimer =
    (options.retentionMs ?? 0) > 0
      ? setInterval(
          () => void applyRetention().catch((error: unknown) => options.onRetentionError?.(error)),
          options.retentionCheckMs ?? 60_000,
        )
      : undefined
  retentionTimer?.unref()

  return {
    lag: async (groupId: string, topics: readonly string[]) => {
      assertOpen()
      return topics.flatMap((topic) => {
        partitionsOf(topic)
        const rows = statements.lag.all(groupId, topic) as {
          partition: number
          end: number
          committed: number
          oldest_at: number | null
        }[]
        return rows.map((row) => ({
          topic,
          partition: row.partition,
          committed: row.committed,
          end: row.end,
          ...(row.oldest_at === null ? {} : { oldestAt: row.oldest_at }),
        }))
      })
    },
    createTopics: async (specs: readonly TopicSpec[]) => {
      assertOpen()
      for (const spec of specs) {
        if (spec.topic === '' || !Number.isInteger(spec.partitions) || spec.partitions < 1) {
          throw new ValidationError(`invalid topic spec for "${spec.topic}"`, [
            { path: 'partitions', message: 'must be an integer of at least 1' },
          ])
        }
      }
      transaction('createTopics', () => {
        for (const { topic, partitions } of specs) {
          statements.insertTopic.run(topic, partitions)
          const actual = partitionsOf(topic)
          for (let p = 0; p < actual; p++) statements.insertHead.run(topic, p)
        }
      })
      await durable('createTopics')
    },

    publish: async (topic: string, messages: readonly OutgoingMessage[]) => {
      assertOpen()
      const partitions = partitionsOf(topic)
      const timestamp = clock()
      const positions: PublishedPosition[] = new Array(messages.length)
      const published: LogMessage[] = tailBytes > 0 ? new Array(messages.length) : []
      const rows: (string | number | Uint8Array | null)[] = []
      transaction('publish', () => {
        // Each partition's head is read once and advanced once per publish, not per message.
        const heads = new Map<number, number>()
        let grouped = 0
        for (let i = 0; i < messages.length; i++) {
          const message = messages[i] as OutgoingMessage
          const partition = choosePartition(topic, message.key, partitions)
          let offset = heads.get(partition)
          if (offset === undefined)
            offset = (statements.head.get(topic, partition) as { next_offset: number }).next_offset
          heads.set(partition, offset + 1)
          positions[i] = { topic, partition, offset }
          if (tailBytes > 0)
            published[i] = {
              topic,
              partition,
              offset,
              key: message.key,
              value: message.value,
              headers: frozenHeaders(message.headers),
              timestamp,
            }
          rows.push(
            topic,
            partition,
            offset,
            message.key,
            message.value,
            headersJson(message.headers),
            timestamp,
          )
          if (++grouped === INSERT_GROUP) {
            statements.insertMessages.run(...rows)
            rows.length = 0
            grouped = 0
          }
        }
        for (let r = 0; r < rows.length; r += 7) statements.insertMessage.run(...rows.slice(r, r + 7))
        for (const [partition, next] of heads) statements.advanceHead.run(next, topic, partition)
      })
      if (tailBytes > 0) extendTails(published)
      await durable('publish')
      appended.emit('appended', topic)
      return positions
    },

    consume,

    // Ready while the file open is still the one at its path, its last write did not fail for
    // want of storage and no consumer's last read did: a `SELECT 1` alone answers from a deleted
    // file, a full disk and a damaged page it does not read.
    ping: async () => {
      assertOpen()
      health.check()
      const [failed] = readFailures.values()
      if (failed !== undefined)
        throw new UnavailableError(
          `event log: reading ${failed.topic} partition ${failed.partition} for group ${failed.groupId} failed with ${failed.code} (${failed.message}) and no read of it has succeeded since`,
          {
            context: {
              path: options.path,
              failure: failed.code,
              group: failed.groupId,
              topic: failed.topic,
              partition: failed.partition,
            },
          },
        )
      db.prepare('SELECT 1').get()
    },

    applyRetention,

    close: async () => {
      if (closed) return
      clearInterval(retentionTimer)
      await Promise.all([...consumers].map((c) => c.stop()))
      await retaining
      closed = true
      tails.clear()
      // Publishes waiting for their sync get it before the file closes.
      await wal.close()
      checkpoints?.stop()
      db.close()
      // Whoever opens the file next must not race the checkpoint connection's own close.
      await checkpoints?.ended
    },
  }
}
