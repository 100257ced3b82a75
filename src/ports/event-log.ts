/**
 * EventLog: Herald's port to a partitioned, replayable log (Kafka, or SQLite when embedded).
 *
 * Topics have a fixed number of partitions; a message's partition is chosen by the murmur2
 * hash of its key, as Kafka's Java client does, so the same key always lands in the same
 * partition and keeps its order. Consumers join a group; each partition is read by one member
 * of a group at a time; a batch's offsets are committed only after its handler resolved
 * (at-least-once). A new group starts at the earliest offset, so nothing is ever missed.
 *
 * @example
 * await log.createTopics([{ topic: 'engine.events', partitions: 3 }])
 * await log.publish('engine.events', [{ key: 'acme', value: Buffer.from('{}') }])
 * const consumer = await log.consume({ groupId: 'router', topics: ['engine.events'] }, async (batch) => {
 *   for (const m of batch.messages) handle(m)
 * })
 * await consumer.stop() // finishes the in-flight batch and commits it
 */
export interface TopicSpec {
  readonly topic: string
  readonly partitions: number
}

export type Headers = Readonly<Record<string, string>>

export interface OutgoingMessage {
  /** Partitioning key; messages without a key are spread round-robin. */
  readonly key: string | null
  readonly value: Uint8Array
  readonly headers?: Headers
}

/** Kafka's framing of one record at most: its length, attributes, time and offset deltas, key and value lengths and header count, each a varint at its widest. */
const RECORD_FRAMING = 36
/** Kafka's framing of one header at most: its name's and value's lengths. */
const HEADER_FRAMING = 10

/**
 * The bytes a message takes in a log, as `EventLog.maxMessageBytes` counts them: its key, value
 * and headers in UTF-8, and the framing Kafka gives each at most (the larger of the two logs').
 *
 * @example
 * messageBytes({ key: 'acme', value: new Uint8Array(100) }) // 140
 */
export const messageBytes = (message: OutgoingMessage): number => {
  let bytes = RECORD_FRAMING + message.value.byteLength
  if (message.key !== null) bytes += Buffer.byteLength(message.key)
  if (message.headers !== undefined)
    for (const name in message.headers)
      bytes += HEADER_FRAMING + Buffer.byteLength(name) + Buffer.byteLength(message.headers[name] ?? '')
  return bytes
}

export interface LogMessage {
  readonly topic: string
  readonly partition: number
  /** Position in its partition, from 0. Numbers are exact up to 2^53. */
  readonly offset: number
  readonly key: string | null
  readonly value: Uint8Array
  readonly headers: Headers
  /**
   * The headers whose bytes were no UTF-8 text (each value holds U+FFFD where a bad sequence
   * was), so a reader can refuse what it cannot read faithfully. Absent when every one was.
   */
  readonly undecodableHeaders?: readonly string[]
  /** Append time, milliseconds since the epoch. */
  readonly timestamp: number
}

export interface PublishedPosition {
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

/** A run of messages from one partition, in offset order. */
export interface Batch {
  readonly topic: string
  readonly partition: number
  readonly messages: readonly LogMessage[]
}

/**
 * Handles one batch. Resolving commits the batch's offsets; rejecting leaves them
 * uncommitted and the same messages are delivered again after a back-off.
 */
export type BatchHandler = (batch: Batch) => Promise<void>

export interface ConsumeOptions {
  readonly groupId: string
  readonly topics: readonly string[]
  /** Upper bound on messages per batch (default 500). */
  readonly maxBatchSize?: number
  /**
   * Upper bound on the bytes of a batch's message values; a batch holds one message at least,
   * whatever its size. The embedded log's default is 32 MiB. Kafka ignores it: each fetch is
   * bounded by the consumer's `max_bytes_per_partition` instead.
   */
  readonly maxBatchBytes?: number
  /**
   * How long a partial batch may wait for more messages (default 0: hand over whatever is
   * there). A batch goes to the handler when it is full or its oldest message has waited this
   * long, whichever comes first, so a consumer that pays per batch (the projector's inserts)
   * gets large batches under load and bounded latency when quiet. On Kafka it is the fetch's
   * wait on the broker, with a minimum fetch size of about a full batch (no more than one
   * partition's fetch bound, all a broker counts of a partition), and at most a third of
   * the consumer session timeout (10 s by default): a fetch is no heartbeat, and one held
   * longer would get the member dropped from its group while the log is quiet.
   */
  readonly maxWaitMs?: number
}

/** Where a consumer group stands in one partition. */
export interface PartitionLag {
  readonly topic: string
  readonly partition: number
  /** The next offset the group will read: its committed offset, or the first one it can read. */
  readonly committed: number
  /** The next offset a publish will be given (Kafka's high watermark). */
  readonly end: number
  /**
   * When the oldest message not consumed yet was appended (ms since the epoch), where the log
   * can tell cheaply (the embedded one); absent when there is none, or on Kafka.
   */
  readonly oldestAt?: number
}

export interface Consumer {
  /** Stops fetching, lets the in-flight batch finish and commit, then leaves the group. */
  stop(): Promise<void>
  /**
   * Since when (ms since the epoch) this member has been reading the partition of `topic`
   * that messages keyed `key` go to; `undefined` while it does not read it: another member
   * does, the group is rebalancing, the consumer stopped, or it has not joined yet. For work
   * done outside the handler that only one member of the group may do per key (the
   * deliverer's queues): the member that reads a key's partition owns the key.
   */
  holdsSince(topic: string, key: string): number | undefined
}

export interface EventLog {
  /**
   * The largest message, as `messageBytes` counts it, that `publish` takes; absent where there
   * is no limit (the embedded log). A publish holding a larger one fails with a
   * MessageTooLargeError before anything is written: a caller that cannot make the message
   * smaller sets it aside by this limit beforehand, rather than fail its batch again and again.
   * A log whose own storage takes less (a Kafka broker's `message.max.bytes` below the limit
   * configured here) fails with one too, naming the message it refused alone once every
   * message before it is written (`context.published`): the caller sets that one aside and
   * publishes the rest.
   */
  readonly maxMessageBytes?: number
  /** Creates the topics that do not exist yet; existing topics are left as they are. */
  createTopics(topics: readonly TopicSpec[]): Promise<void>
  /**
   * Appends durably: when the promise resolves, the messages survive a crash. A log may split
   * a large publish into several writes, each in order after the one before: if one fails,
   * those before it are written, and the publish fails (at-least-once, as any failed publish
   * retried).
   */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<readonly PublishedPosition[]>
  consume(options: ConsumeOptions, handler: BatchHandler): Promise<Consumer>
  /**
   * Where `groupId` stands in every partition of `topics`, in topic then partition order:
   * messages `committed` to `end - 1` are not consumed yet. For lag metrics, and for telling a
   * stopped consumer from a quiet log.
   */
  lag(groupId: string, topics: readonly string[]): Promise<readonly PartitionLag[]>
  /**
   * Reports whether the log is reachable and can take writes, for `/ready`: an embedded log
   * fails it while its last write failed for want of storage or its file was deleted or replaced.
   */
  ping(): Promise<void>
  /** Stops every consumer of this instance, then releases the connection. */
  close(): Promise<void>
}
