import { EventEmitter } from 'node:events'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { ClosedError, NotFoundError, ValidationError } from '../../errors/index.ts'
import type {
  Batch,
  BatchHandler,
  ConsumeOptions,
  Consumer,
  EventLog,
  LogMessage,
  OutgoingMessage,
  PublishedPosition,
  TopicSpec,
} from '../../ports/event-log.ts'
import { partitionForKey } from './murmur2.ts'

export interface SqliteEventLogOptions {
  /** Database file; `:memory:` for a throw-away log. */
  readonly path: string
  /** How long an idle consumer sleeps before looking again, in ms (default 500). */
  readonly idlePollMs?: number
  /** Back-off after a failed handler: doubles from `min` up to `max` ms (default 100 → 5000). */
  readonly retryBackoffMs?: { readonly min: number; readonly max: number }
  readonly clock?: () => number
  /** Receives handler failures; the batch is retried after a back-off either way. */
  readonly onHandlerError?: (error: unknown, batch: Batch, groupId: string) => void
}

const DEFAULT_MAX_BATCH = 500

interface Member {
  readonly id: number
  readonly topics: readonly string[]
}

interface Group {
  readonly members: Member[]
  /** Serialises batches per partition while ownership moves between members. */
  readonly partitionLocks: Map<string, Promise<void>>
}

/**
 * The embedded EventLog: Kafka's model (topics, murmur2 partitions, consumer groups,
 * committed offsets) in one SQLite file, for a single Herald process. A publish is durable
 * when it resolves (WAL with synchronous=FULL); offsets are committed in the same file after
 * the handler resolved, so delivery is at-least-once across crashes.
 *
 * @example
 * const log = createSqliteEventLog({ path: 'data/eventlog.sqlite' })
 * await log.createTopics([{ topic: 'engine.events', partitions: 3 }])
 */
export const createSqliteEventLog = (options: SqliteEventLogOptions): EventLog => {
  const clock = options.clock ?? Date.now
  const idlePollMs = options.idlePollMs ?? 500
  const backoff = options.retryBackoffMs ?? { min: 100, max: 5_000 }
  const db = new DatabaseSync(options.path)
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
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
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS group_offsets (
      group_id TEXT NOT NULL,
      topic TEXT NOT NULL,
      partition INTEGER NOT NULL,
      next_offset INTEGER NOT NULL,
      PRIMARY KEY (group_id, topic, partition)
    ) WITHOUT ROWID;
  `)

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
    fetch: db.prepare(
      'SELECT offset, key, value, headers, timestamp FROM messages WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?',
    ),
    committed: db.prepare(
      'SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ? AND partition = ?',
    ),
    lag: db.prepare(
      `SELECT h.partition AS partition, h.next_offset AS end, COALESCE(o.next_offset, 0) AS committed,
              (SELECT m.timestamp FROM messages m
                WHERE m.topic = h.topic AND m.partition = h.partition AND m.offset = COALESCE(o.next_offset, 0)) AS oldest_at
         FROM partition_heads h
         LEFT JOIN group_offsets o ON o.group_id = ? AND o.topic = h.topic AND o.partition = h.partition
        WHERE h.topic = ? ORDER BY h.partition`,
    ),
    commit: db.prepare(
      `INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)
       ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
    ),
  } satisfies Record<string, StatementSync>

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

  const transaction = <T>(work: () => T): T => {
    db.exec('BEGIN IMMEDIATE')
    try {
      const result = work()
      db.exec('COMMIT')
      return result
    } catch (error) {
      db.exec('ROLLBACK')
      throw error
    }
  }

  const partitionsOf = (topic: string): number => {
    const row = statements.topic.get(topic) as { partitions: number } | undefined
    if (row === undefined) throw new NotFoundError(`topic ${topic} does not exist`, { topic })
    return row.partitions
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

  const fetch = (groupId: string, topic: string, partition: number, max: number): LogMessage[] => {
    const committed = statements.committed.get(groupId, topic, partition) as
      | { next_offset: number }
      | undefined
    const rows = statements.fetch.all(topic, partition, committed?.next_offset ?? 0, max) as {
      offset: number
      key: string | null
      value: Uint8Array
      headers: string
      timestamp: number
    }[]
    return rows.map((row) => ({
      topic,
      partition,
      offset: row.offset,
      key: row.key,
      value: row.value,
      headers: JSON.parse(row.headers) as Record<string, string>,
      timestamp: row.timestamp,
    }))
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
    const maxWaitMs = consumeOptions.maxWaitMs ?? 0
    if (!(Number.isFinite(maxWaitMs) && maxWaitMs >= 0))
      throw new ValidationError('invalid consume options', [
        { path: 'maxWaitMs', message: 'must be a number of ms, at least 0' },
      ])
    if (topics.length === 0) throw new ValidationError('consume needs at least one topic', [])
    for (const topic of topics) partitionsOf(topic)

    const group: Group = groups.get(groupId) ?? { members: [], partitionLocks: new Map() }
    groups.set(groupId, group)
    const member: Member = { id: nextMemberId++, topics }
    group.members.push(member)

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

    const loop = async () => {
      let failures = 0
      while (!stopping) {
        let progressed = false
        for (const topic of topics) {
          for (const partition of assignment(group, member, topic)) {
            if (stopping) break
            const lockKey = `${topic}\u0000${partition}`
            await withPartitionLock(group, lockKey, async () => {
              let messages = fetch(groupId, topic, partition, maxBatchSize)
              // A partial batch waits for more until its oldest message is maxWaitMs old.
              const due = (messages[0]?.timestamp ?? 0) + maxWaitMs
              while (messages.length > 0 && messages.length < maxBatchSize && !stopping && clock() < due) {
                await idle(Math.max(1, due - clock()))
                messages = fetch(groupId, topic, partition, maxBatchSize)
              }
              const last = messages.at(-1)
              if (last === undefined) return
              const batch: Batch = { topic, partition, messages }
              try {
                await handler(batch)
              } catch (error) {
                failures++
                options.onHandlerError?.(error, batch, groupId)
                await sleep(Math.min(backoff.max, backoff.min * 2 ** (failures - 1)))
                return
              }
              failures = 0
              progressed = true
              if (!closed) statements.commit.run(groupId, topic, partition, last.offset + 1)
            })
          }
        }
        if (!progressed && !stopping) await idle()
      }
    }

    const running = loop()
    const consumer: Consumer = {
      stop: async () => {
        if (stopping) return running
        stopping = true
        wake?.()
        try {
          await running
        } finally {
          appended.off('appended', onAppend)
          group.members.splice(group.members.indexOf(member), 1)
          consumers.delete(consumer)
        }
      },
    }
    consumers.add(consumer)
    return consumer
  }

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
      transaction(() => {
        for (const { topic, partitions } of specs) {
          statements.insertTopic.run(topic, partitions)
          const actual = partitionsOf(topic)
          for (let p = 0; p < actual; p++) statements.insertHead.run(topic, p)
        }
      })
    },

    publish: async (topic: string, messages: readonly OutgoingMessage[]) => {
      assertOpen()
      const partitions = partitionsOf(topic)
      const timestamp = clock()
      const positions = transaction(() =>
        messages.map((message): PublishedPosition => {
          const partition = choosePartition(topic, message.key, partitions)
          const head = statements.head.get(topic, partition) as { next_offset: number }
          const offset = head.next_offset
          statements.insertMessage.run(
            topic,
            partition,
            offset,
            message.key,
            message.value,
            JSON.stringify(message.headers ?? {}),
            timestamp,
          )
          statements.advanceHead.run(offset + 1, topic, partition)
          return { topic, partition, offset }
        }),
      )
      appended.emit('appended', topic)
      return positions
    },

    consume,

    ping: async () => {
      assertOpen()
      db.prepare('SELECT 1').get()
    },

    close: async () => {
      if (closed) return
      await Promise.all([...consumers].map((c) => c.stop()))
      closed = true
      db.close()
    },
  }
}
