import { isUtf8 } from 'node:buffer'
import type { EachBatchPayload, Consumer as KafkaConsumer, KafkaMessage } from 'kafkajs'
import { type Backoff, backoffDelay } from '../../backoff.ts'
import type { Batch, BatchHandler, Consumer, LogMessage } from '../../ports/event-log.ts'
import { rememberingPartitioner } from '../murmur2.ts'
import { createCommitter, type SendCommit } from './committer.ts'
import { fromKafkaError } from './errors.ts'
import type { KafkaEventLogLogger } from './logging.ts'

export interface ConsumerLoopOptions {
  readonly groupId: string
  readonly maxBatchSize: number
  readonly heartbeatIntervalMs: number
  readonly retryBackoffMs: Backoff
  /** 0: each batch's offsets are committed before its next batch starts; see `KafkaConsumerTimings`. */
  readonly commitIntervalMs: number
  readonly partitionsConsumedConcurrently: number
  readonly logger: KafkaEventLogLogger
  readonly onHandlerError?: (error: unknown, batch: Batch, groupId: string) => void
  readonly clock?: () => number
  /** The partition count of each topic, asked again at every join (for `holdsSince`). */
  readonly partitionCounts?: (topics: readonly string[]) => Promise<ReadonlyMap<string, number>>
}

const EMPTY = new Uint8Array(0)

// Buffer's own UTF-8 decoding costs a third less per short string than TextDecoder's, and
// keys and headers are short strings, several per message. Both replace invalid bytes.
const text = (value: Buffer | string): string => (typeof value === 'string' ? value : value.toString())

// Whether a header's bytes were replaced in its text: only when the text holds U+FFFD (which
// a producer may also send, as the bytes EF BF BD) are the bytes checked.
const undecodable = (raw: Buffer | string, decoded: string): boolean =>
  typeof raw !== 'string' && decoded.includes('\uFFFD') && !isUtf8(raw)

export const toLogMessage = (topic: string, partition: number, message: KafkaMessage): LogMessage => {
  const headers: Record<string, string> = {}
  let bad: string[] | undefined
  const raw = message.headers
  if (raw !== undefined)
    for (const name in raw) {
      const value = raw[name]
      if (value === undefined) continue
      // Kafka allows a header name twice; the port has one value per name, so the last wins.
      const last: Buffer | string | null | undefined = Array.isArray(value) ? value.at(-1) : value
      // Kafka also allows a header without a value (a Java RecordHeader with a null value,
      // librdkafka's header_add with NULL), which kafkajs hands over as null. The port's headers
      // are text, and a null is none: the header reads as absent, not as an empty value.
      if (last === undefined || last === null) continue
      const decoded = text(last)
      headers[name] = decoded
      if (!undecodable(last, decoded)) continue
      bad ??= []
      bad.push(name)
    }
  return {
    topic,
    partition,
    offset: Number(message.offset),
    key: message.key === null || message.key === undefined ? null : text(message.key),
    value: message.value ?? EMPTY,
    headers,
    ...(bad === undefined ? {} : { undecodableHeaders: bad }),
    timestamp: Number(message.timestamp),
  }
}

/**
 * The partitions a member of a group reads, and since when (for `Consumer.holdsSince`): set
 * at each join, hidden while the group rebalances, dropped when the member stops or crashes.
 * A partition kept through a rebalance keeps its time, unless the member rejoined under a new
 * id: it was dropped from the group, and another member may have read the partition since.
 */
export const createHeldPartitions = (clock: () => number) => {
  let held = new Map<string, Map<number, number>>()
  let holding = false
  let memberId: string | undefined
  return {
    joined(id: string, assignment: Readonly<Record<string, readonly number[]>>): void {
      const now = clock()
      const kept = id === memberId ? held : new Map<string, Map<number, number>>()
      memberId = id
      held = new Map(
        Object.entries(assignment).map(([topic, partitions]) => [
          topic,
          new Map(partitions.map((p) => [p, kept.get(topic)?.get(p) ?? now])),
        ]),
      )
      holding = true
    },
    rebalancing(): void {
      holding = false
    },
    release(): void {
      holding = false
      held = new Map()
    },
    since(topic: string, partition: number): number | undefined {
      return holding ? held.get(topic)?.get(partition) : undefined
    },
  }
}

const nextOffset = (offset: string): string => (BigInt(offset) + 1n).toString()

/**
 * Where a partition is handled up to once the last message of a fetched batch is: past the
 * batch's last offset, which counts the records a consumer never sees after that message (a
 * transaction's marker, a control record that takes an offset; aborted records). Committing
 * only past the message would leave each transaction's marker unconsumed: a lag of 1 for good.
 */
const nextAfterBatch = (batch: EachBatchPayload['batch'], lastMessage: string): string => {
  const last = BigInt(lastMessage)
  const end = BigInt(batch.lastOffset())
  return ((end > last ? end : last) + 1n).toString()
}

/**
 * Runs `handler` over a connected, subscribed kafkajs consumer with at-least-once semantics:
 * the position after a chunk is resolved and marked for commit only once the handler
 * resolved, and committed before the next chunk of the partition starts (or, with a commit
 * interval, within it, and always before stop() leaves the group). Commits of chunks that end
 * together go in one request. A failed chunk is not resolved; the partition is sought back to
 * its first offset and paused for a back-off, so the next fetch delivers the same messages
 * again while other partitions keep flowing. Returns at once; the group is joined in the
 * background.
 */
export const runConsumerLoop = (
  consumer: KafkaConsumer,
  handler: BatchHandler,
  options: ConsumerLoopOptions,
): Consumer => {
  const { groupId, maxBatchSize, retryBackoffMs, logger, commitIntervalMs } = options
  const failures = new Map<string, number>()
  // Commits go through the latest run's payload: it commits even while kafkajs stops.
  let sendCommit: SendCommit | undefined
  // Before any batch of this run (a run whose first fetch holds only transaction markers),
  // commits go through the consumer itself.
  const commitThroughConsumer: SendCommit = (offsets) =>
    consumer.commitOffsets(
      offsets.topics.flatMap(({ topic, partitions }) => partitions.map((p) => ({ topic, ...p }))),
    )
  const committer = createCommitter(() => sendCommit ?? commitThroughConsumer, {
    intervalMs: commitIntervalMs,
    clock: options.clock ?? Date.now,
  })
  // Chunks whose handler is running, for stop() to wait on.
  const active = new Set<Promise<void>>()
  // Back-off timers (paused partitions, restarts), cleared by stop().
  const resumeTimers = new Set<NodeJS.Timeout>()
  let stopped = false
  // With a commit interval, what the last batches before a quiet spell marked is committed by
  // this timer, not left for the next batch (which may not come for a long time).
  let trailing: NodeJS.Timeout | undefined
  const commitLater = (): void => {
    if (commitIntervalMs === 0 || trailing !== undefined || stopped) return
    trailing = setTimeout(() => {
      trailing = undefined
      committer.flush().catch((error: unknown) => {
        logger({
          level: 'warn',
          event: 'kafka_event_log.commit_failed',
          message: 'could not commit handled offsets; retrying with the next batch or on stop',
          fields: { groupId, error },
        })
      })
    }, commitIntervalMs)
    trailing.unref()
  }

  // A handler that runs longer than the session timeout would otherwise get this member
  // evicted mid-batch; heartbeat() is rate-limited by kafkajs, so ticking often is cheap.
  const withHeartbeats = async (heartbeat: () => Promise<void>, work: () => Promise<void>) => {
    const ticker = setInterval(() => {
      heartbeat().catch(() => {
        // A rebalance shows up again at commit time, where it is handled.
      })
    }, options.heartbeatIntervalMs)
    try {
      await work()
    } finally {
      clearInterval(ticker)
    }
  }

  const backOff = (payload: EachBatchPayload, firstOffset: string, error: unknown, batch: Batch) => {
    const { topic, partition } = payload.batch
    const key = `${topic}\u0000${partition}`
    const attempt = (failures.get(key) ?? 0) + 1
    failures.set(key, attempt)
    const delayMs = backoffDelay(retryBackoffMs, attempt)
    logger({
      level: 'warn',
      event: 'kafka_event_log.handler_failed',
      message: `handler failed; redelivering from offset ${firstOffset} in ${delayMs} ms`,
      fields: { groupId, topic, partition, offset: Number(firstOffset), attempt, delayMs, error },
    })
    try {
      options.onHandlerError?.(error, batch, groupId)
    } catch {
      // An observer's failure must not change delivery.
    }
    consumer.seek({ topic, partition, offset: firstOffset })
    const resume = payload.pause()
    // A batch that failed while stop() waited for it needs no retry timer holding the process.
    if (stopped) return
    const timer = setTimeout(() => {
      resumeTimers.delete(timer)
      resume()
    }, delayMs)
    resumeTimers.add(timer)
  }

  /** Commits what was marked now, or within the commit interval. */
  const commitMarked = async (payload: { isRunning: () => boolean }): Promise<void> => {
    // Once stopping, nothing handled may stay uncommitted.
    if (commitIntervalMs === 0 || stopped || !payload.isRunning() || committer.due()) await committer.flush()
    else commitLater()
  }

  const handleChunk = async (
    payload: EachBatchPayload,
    chunk: readonly KafkaMessage[],
    lastOfBatch: boolean,
  ): Promise<boolean> => {
    const { topic, partition } = payload.batch
    const first = chunk[0] as KafkaMessage
    const last = chunk.at(-1) as KafkaMessage
    // The batch is made inside the try: whatever it cannot read fails this chunk like a
    // handler would (a back-off, then the same messages), where an error escaping eachBatch
    // crashes the kafkajs consumer, which restarts into the same messages, again and again.
    let batch: Batch = { topic, partition, messages: [] }
    try {
      batch = { topic, partition, messages: chunk.map((m) => toLogMessage(topic, partition, m)) }
      const made = batch
      await withHeartbeats(payload.heartbeat, () => handler(made))
    } catch (error) {
      backOff(payload, first.offset, error, batch)
      return false
    }
    failures.delete(`${topic}\u0000${partition}`)
    payload.resolveOffset(last.offset)
    committer.mark(
      topic,
      partition,
      lastOfBatch ? nextAfterBatch(payload.batch, last.offset) : nextOffset(last.offset),
    )
    await commitMarked(payload)
    return true
  }

  const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
    sendCommit = payload.commitOffsetsIfNecessary
    const raw = payload.batch.messages
    for (let start = 0; start < raw.length; start += maxBatchSize) {
      // After stop() only the chunk already running may finish; the rest stays uncommitted.
      if (stopped || !payload.isRunning() || payload.isStale()) return
      const chunk = raw.length <= maxBatchSize ? raw : raw.slice(start, start + maxBatchSize)
      if (chunk.length === 0) return
      const running = handleChunk(payload, chunk, start + maxBatchSize >= raw.length)
      const tracked = running.then(
        () => {},
        () => {},
      )
      active.add(tracked)
      try {
        if (!(await running)) return
      } finally {
        active.delete(tracked)
      }
    }
  }

  const runConfig = {
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently,
    eachBatch,
  }

  // Joining a group can take a whole rebalance, so it runs in the background; stop() waits
  // for it, because a kafkajs consumer disconnected mid-join may schedule its own restart.
  let running: Promise<void> = Promise.resolve()
  let restarts = 0
  const run = (connectFirst: boolean): void => {
    running = (async () => {
      if (connectFirst) await consumer.connect()
      await consumer.run(runConfig)
    })().catch((error: unknown) => {
      logger({
        level: 'error',
        event: 'kafka_event_log.consumer_start_failed',
        message: `consumer start failed: ${String(error)}`,
        fields: { groupId, error },
      })
      restartLater()
    })
  }

  // kafkajs restarts a crashed consumer only after retriable errors; after any other it
  // stays disconnected for good, a silent outage for a long-running service. Like Kafka's
  // Java client, this keeps trying, with a back-off, until stop().
  const restartLater = (): void => {
    if (stopped) return
    restarts++
    const delayMs = backoffDelay(retryBackoffMs, restarts)
    const timer = setTimeout(() => {
      resumeTimers.delete(timer)
      if (!stopped) run(true)
    }, delayMs)
    resumeTimers.add(timer)
  }

  const held = createHeldPartitions(options.clock ?? Date.now)
  let partitionCounts = new Map<string, number>()
  const partitionOfKey = rememberingPartitioner()

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    restarts = 0
    // Positions of partitions that moved to another member are theirs to commit now.
    committer.retain(new Map(Object.entries(payload.memberAssignment)))
    held.joined(payload.memberId, payload.memberAssignment)
    options
      .partitionCounts?.(Object.keys(payload.memberAssignment))
      .then((counts) => {
        partitionCounts = new Map(counts)
      })
      .catch((error: unknown) => {
        logger({
          level: 'warn',
          event: 'kafka_event_log.metadata_failed',
          message:
            'could not read the partition counts of the assigned topics; asking again at the next join',
          fields: { groupId, error },
        })
      })
  })
  consumer.on(consumer.events.REBALANCING, () => held.rebalancing())
  // A fetched batch of transaction markers (or aborted records) alone holds no message, so
  // kafkajs moves past it without calling eachBatch and, with autoCommit off, commits nothing:
  // the partition's committed offset would stay before it, a lag that never drains. Such a
  // batch (no message, but records: firstOffset set) is marked handled here. kafkajs fetches
  // a partition again only once its previous batch is through, so nothing before it waits.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    const { topic, partition, batchSize, firstOffset, lastOffset } = payload
    if (batchSize !== 0 || firstOffset === null || stopped) return
    committer.mark(topic, partition, nextOffset(lastOffset))
    commitMarked({ isRunning: () => true }).catch((error: unknown) => {
      logger({
        level: 'warn',
        event: 'kafka_event_log.commit_failed',
        message: 'could not commit past transaction markers; retrying with the next batch or on stop',
        fields: { groupId, topic, partition, error },
      })
    })
  })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    held.release()
    const restartHere = !payload.restart && !stopped
    logger({
      level: 'error',
      event: 'kafka_event_log.consumer_crashed',
      message: `consumer crashed: ${payload.error.message}${payload.restart || restartHere ? '; restarting' : ''}`,
      fields: { groupId, restart: payload.restart || restartHere, error: payload.error },
    })
    if (restartHere) restartLater()
  })

  const stopConsumer = async (): Promise<void> => {
    stopped = true
    held.release()
    clearTimeout(trailing)
    for (const timer of resumeTimers) clearTimeout(timer)
    resumeTimers.clear()
    await running
    // The chunks in flight finish and commit; so does anything handled and not yet committed.
    while (active.size > 0) await Promise.all(active)
    await committer.flush().catch((error: unknown) => {
      logger({
        level: 'warn',
        event: 'kafka_event_log.commit_failed',
        message: 'could not commit handled offsets on stop; they will be delivered again',
        fields: { groupId, error },
      })
    })
    // disconnect() stops fetching, lets kafkajs's own work finish, leaves the group.
    await consumer.disconnect()
  }

  run(false)

  let stopping: Promise<void> | undefined
  return {
    stop: () => {
      stopping ??= stopConsumer().catch((error: unknown) => {
        throw fromKafkaError(error, 'consumer stop', { groupId })
      })
      return stopping
    },
    holdsSince: (topic, key) => {
      const partitions = partitionCounts.get(topic)
      return partitions === undefined ? undefined : held.since(topic, partitionOfKey(key, partitions))
    },
  }
}
