import type { ConnectionOptions } from 'node:tls'
import kafkajs, {
  type Admin,
  type Message,
  type PartitionerArgs,
  type Producer,
  type RetryOptions,
  type SASLOptions,
} from 'kafkajs'
import type { Backoff } from '../../backoff.ts'
import {
  ClosedError,
  type FieldIssue,
  isHeraldError,
  MessageTooLargeError,
  ValidationError,
} from '../../errors/index.ts'
import {
  type Batch,
  type ConsumeOptions,
  type Consumer,
  type EventLog,
  messageBytes,
  type OutgoingMessage,
  type PublishedPosition,
  type TopicSpec,
} from '../../ports/event-log.ts'
import { rememberingPartitioner } from '../murmur2.ts'
import { runConsumerLoop } from './consumer.ts'
import { fromKafkaError } from './errors.ts'
import { batchFetch, longestFetchWait } from './fetching.ts'
import {
  type KafkaEventLogLogger,
  type KafkaLogLevel,
  kafkajsLogCreator,
  stderrErrors,
  toKafkaLevel,
} from './logging.ts'
import { PARTITION_FRAMING, REQUEST_FRAMING, runEnds } from './requests.ts'

export type { KafkaEventLogLogger, KafkaLogEntry, KafkaLogLevel } from './logging.ts'

const { Kafka, Partitioners } = kafkajs

export interface KafkaSaslOptions {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'
  readonly username: string
  readonly password: string
}

/** Exponential retry of failed requests, as plain data (kafkajs's defaults when omitted). */
export interface KafkaRetryOptions {
  readonly retries?: number
  readonly initialRetryTimeMs?: number
  readonly maxRetryTimeMs?: number
  readonly factor?: number
  readonly multiplier?: number
}

/** Consumer-group timings and fetch sizes; the defaults are kafkajs's, suited to a real cluster. */
export interface KafkaConsumerTimings {
  /** Default 30 000. */
  readonly sessionTimeoutMs?: number
  /** Default 3 000; must be below the session timeout. */
  readonly heartbeatIntervalMs?: number
  /** Default 60 000. */
  readonly rebalanceTimeoutMs?: number
  /**
   * Longest a fetch waits for new messages on the broker, default 5 000. Neither this nor a
   * consumer's `maxWaitMs` makes a fetch wait more than a third of the session timeout: see
   * `longestFetchWait`.
   */
  readonly maxWaitTimeMs?: number
  /** Bytes a fetch waits for (up to `maxWaitTimeMs`) before the broker answers, default 1. */
  readonly minBytes?: number
  /** Most bytes one fetch returns, default 10 MiB. */
  readonly maxBytes?: number
  /** Most bytes one fetch returns per partition, default 1 MiB: the largest batch a fetch can bring. */
  readonly maxBytesPerPartition?: number
  /**
   * 0 (default): a batch's offsets are committed before the next batch of its partition is
   * handled. Above 0: handled offsets are committed together at most this often (and always
   * before stop() leaves the group), which saves a request per batch; a crash or a rebalance
   * then delivers again what was handled in the last interval — at-least-once either way.
   */
  readonly commitIntervalMs?: number
  /**
   * Partitions whose batches are handled at the same time (default 1): their handlers'
   * waits overlap, and batches that end together commit in one request. Each partition's
   * batches still run one at a time, in order; the handler must allow concurrent calls for
   * different partitions.
   */
  readonly partitionsConsumedConcurrently?: number
}

export interface KafkaEventLogOptions {
  readonly brokers: readonly string[]
  readonly clientId?: string
  readonly ssl?: boolean | ConnectionOptions
  readonly sasl?: KafkaSaslOptions
  /** Default 1 000. */
  readonly connectionTimeoutMs?: number
  /** Default 30 000. */
  readonly requestTimeoutMs?: number
  readonly retry?: KafkaRetryOptions
  /**
   * Idempotent producer (default true): a retried send cannot duplicate or reorder messages.
   * kafkajs asks the cluster's controller for a producer id, so a cluster that reports no
   * live controller (librdkafka's mock cluster) needs `false`.
   */
  readonly idempotent?: boolean
  /**
   * Most bytes one produce request may carry, framing included (default 1 048 576, the Java
   * producer's `max.request.size`). A publish goes out in as many requests as its messages
   * need, one after the other, so no record batch grows past what a broker takes (its
   * `message.max.bytes`, by default 1 048 588): keep it at or below that of every topic
   * written to. A message that does not fit in one request alone is refused. Set higher, the
   * requests a broker refuses are sent again in halves, at the cost of a round trip each.
   */
  readonly maxRequestBytes?: number
  /** Replication factor of topics `createTopics` makes (default: the broker's default). */
  readonly replicationFactor?: number
  readonly consumer?: KafkaConsumerTimings
  /** Back-off after a failed handler: doubles from `min` up to `max` ms (default 100 → 5 000). */
  readonly retryBackoffMs?: Backoff
  /** Receives handler failures; the batch is redelivered after the back-off either way. */
  readonly onHandlerError?: (error: unknown, batch: Batch, groupId: string) => void
  /**
   * Receives the adapter's own events (`kafka_event_log.handler_failed` as a warning,
   * `kafka_event_log.consumer_crashed`, ...) and kafkajs's lines from `logLevel` up.
   * Default: errors only, as JSON lines on stderr.
   */
  readonly logger?: KafkaEventLogLogger
  /** Lowest level of kafkajs's own lines passed to `logger` (default `error`). */
  readonly logLevel?: KafkaLogLevel
}

/**
 * A broker's MESSAGE_TOO_LARGE: a record batch of the request is over its `message.max.bytes`
 * (or its topic's `max.message.bytes`). kafkajs does not say which partition's.
 */
const refusedAsTooLarge = (error: unknown): boolean =>
  isHeraldError(error) && error.context.kafkaError === 'MESSAGE_TOO_LARGE'

const DEFAULT_MAX_BATCH = 500
/** kafkajs's default fetch wait, which applies when the options leave it out. */
const DEFAULT_MAX_WAIT_MS = 5_000
const DEFAULT_MAX_REQUEST_BYTES = 1_048_576
/** The smallest request limit taken: room for its framing and a message of a few kilobytes. */
const MIN_REQUEST_BYTES = 4_096
/** Keys whose partition the producer remembers (per partition count). */
const REMEMBERED_KEYS = 10_000

// kafkajs merges retry objects with Object.assign, so an explicit `undefined` would
// override its defaults and turn the back-off arithmetic into NaN.
const toKafkaRetry = (retry: KafkaRetryOptions | undefined): RetryOptions | undefined => {
  if (retry === undefined) return undefined
  const result: RetryOptions = {}
  if (retry.retries !== undefined) result.retries = retry.retries
  if (retry.initialRetryTimeMs !== undefined) result.initialRetryTime = retry.initialRetryTimeMs
  if (retry.maxRetryTimeMs !== undefined) result.maxRetryTime = retry.maxRetryTimeMs
  if (retry.factor !== undefined) result.factor = retry.factor
  if (retry.multiplier !== undefined) result.multiplier = retry.multiplier
  return result
}

const toKafkaSasl = (sasl: KafkaSaslOptions | undefined): SASLOptions | undefined => {
  if (sasl === undefined) return undefined
  const { username, password } = sasl
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password }
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password }
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password }
  }
}

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const validateTopics = (topics: readonly TopicSpec[]): void => {
  const issues: FieldIssue[] = []
  topics.forEach((spec, i) => {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(spec.topic)) {
      issues.push({ path: `[${i}].topic`, message: 'must be 1-249 characters of A-Z a-z 0-9 . _ -' })
    }
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      issues.push({ path: `[${i}].partitions`, message: 'must be a positive integer' })
    }
  })
  if (issues.length > 0) throw new ValidationError('invalid topic specs', issues)
}

const validateRequestBytes = (maxRequestBytes: number): number => {
  if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < MIN_REQUEST_BYTES)
    throw new ValidationError('invalid producer options', [
      { path: 'maxRequestBytes', message: `must be an integer of at least ${MIN_REQUEST_BYTES}` },
    ])
  return maxRequestBytes
}

const validateConsumer = (consumer: KafkaConsumerTimings): void => {
  const issues: FieldIssue[] = []
  const { commitIntervalMs, partitionsConsumedConcurrently } = consumer
  if (commitIntervalMs !== undefined && !(Number.isFinite(commitIntervalMs) && commitIntervalMs >= 0))
    issues.push({ path: 'consumer.commitIntervalMs', message: 'must be a number of ms, at least 0' })
  if (
    partitionsConsumedConcurrently !== undefined &&
    !(Number.isInteger(partitionsConsumedConcurrently) && partitionsConsumedConcurrently >= 1)
  )
    issues.push({ path: 'consumer.partitionsConsumedConcurrently', message: 'must be a positive integer' })
  if (issues.length > 0) throw new ValidationError('invalid consumer options', issues)
}

const validateConsume = (options: ConsumeOptions): number => {
  const issues: FieldIssue[] = []
  if (options.groupId === '') issues.push({ path: 'groupId', message: 'must not be empty' })
  if (options.topics.length === 0) issues.push({ path: 'topics', message: 'must name at least one topic' })
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    issues.push({ path: 'maxBatchSize', message: 'must be a positive integer' })
  }
  const { maxWaitMs } = options
  if (maxWaitMs !== undefined && !(Number.isFinite(maxWaitMs) && maxWaitMs >= 0)) {
    issues.push({ path: 'maxWaitMs', message: 'must be a number of ms, at least 0' })
  }
  if (issues.length > 0) throw new ValidationError('invalid consume options', issues)
  return maxBatchSize
}

/**
 * The EventLog on Apache Kafka through kafkajs. Publishing waits for all in-sync replicas
 * (acks=-1), from an idempotent producer unless turned off, and places keys with Kafka's
 * murmur2 partitioner. A publish too large for one produce request (`maxRequestBytes`) goes
 * out in several sends, one after the other; a message too large for one alone is refused
 * (`maxMessageBytes`) before anything is sent. A send a broker refuses as too large (its limit
 * is below `maxRequestBytes`) goes again in halves, and a message it refuses alone fails the
 * publish with a MessageTooLargeError once those before it are written. Consumers commit a
 * batch's offsets only after its handler resolved; a failed batch is delivered again after a
 * back-off. `consume` resolves once connected and subscribed; the group is joined in the
 * background and rejoined after any crash until `stop()`. Connections open on first use.
 *
 * @example
 * const log = createKafkaEventLog({ brokers: ['kafka-1:9092'], clientId: 'herald' })
 * await log.createTopics([{ topic: 'engine.events', partitions: 6 }])
 * await log.publish('engine.events', [{ key: 'acme', value: new TextEncoder().encode('{}') }])
 * await log.close()
 */
export const createKafkaEventLog = (options: KafkaEventLogOptions): EventLog => {
  validateConsumer(options.consumer ?? {})
  const maxRequestBytes = validateRequestBytes(options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES)
  const clientId = options.clientId ?? 'herald'
  // What the records of one request may take: the rest is its framing, the client id's included.
  const recordBudget = maxRequestBytes - REQUEST_FRAMING - Buffer.byteLength(clientId)
  // A message alone in a request pays its partition's framing too.
  const maxMessageBytes = recordBudget - PARTITION_FRAMING
  const logger = options.logger ?? stderrErrors
  const retry = toKafkaRetry(options.retry)
  const kafka = new Kafka({
    brokers: [...options.brokers],
    clientId,
    ssl: options.ssl,
    sasl: toKafkaSasl(options.sasl),
    connectionTimeout: options.connectionTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry,
    // kafkajs formats nothing below this level, so quiet costs nothing.
    logLevel: toKafkaLevel(options.logLevel ?? 'error'),
    logCreator: kafkajsLogCreator(logger),
  })

  // Remembers the partition chosen for each message, so publish() can derive per-message
  // positions from the one base offset per partition that Kafka returns. Reusing the choice
  // also keeps a retried keyless message in the partition it was first sent to.
  const chosenPartition = new WeakMap<Message, number>()
  const createPartitioner = () => {
    const murmur2 = Partitioners.DefaultPartitioner()
    // A keyed message's partition depends only on its key and the topic's partition count, and
    // keys repeat (configuration ids, accounts): remembering them spares hashing every key and
    // the partitioner's per-message scan of the metadata. Bounded for producers of unique keys.
    const partitionOfKey = rememberingPartitioner(REMEMBERED_KEYS)
    const keyed = (args: PartitionerArgs, key: string): number =>
      partitionOfKey(key, args.partitionMetadata.length)
    return (args: PartitionerArgs): number => {
      const known = chosenPartition.get(args.message)
      if (known !== undefined) return known
      const { key, partition: asked } = args.message
      const partition =
        typeof key === 'string' && (asked === undefined || asked === null) ? keyed(args, key) : murmur2(args)
      chosenPartition.set(args.message, partition)
      return partition
    }
  }

  const producer: Producer = kafka.producer({
    createPartitioner,
    idempotent: options.idempotent ?? true,
    allowAutoTopicCreation: false,
    retry,
  })
  const admin: Admin = kafka.admin({ retry })
  const consumers = new Set<Consumer>()
  let closing: Promise<void> | undefined

  const assertOpen = (): void => {
    if (closing !== undefined) throw new ClosedError('kafka event log')
  }

  // Connections are opened on first use and again after a failed attempt.
  const lazily = (connect: () => Promise<void>, what: string) => {
    let ready: Promise<void> | undefined
    return {
      get: (): Promise<void> => {
        ready ??= connect().catch((error: unknown) => {
          ready = undefined
          throw fromKafkaError(error, `${what} connect`)
        })
        return ready
      },
      started: (): boolean => ready !== undefined,
    }
  }
  const producerConnection = lazily(() => producer.connect(), 'producer')
  const adminConnection = lazily(() => admin.connect(), 'admin')

  /**
   * Sends messages in one kafkajs send (a produce request to each broker that leads some of their
   * partitions, none larger than all of them) and gives each one's position, in their order.
   */
  const send = async (topic: string, messages: readonly OutgoingMessage[]): Promise<PublishedPosition[]> => {
    const outgoing: Message[] = messages.map((m) => ({
      key: m.key,
      value: toBuffer(m.value),
      // kafkajs only reads headers, so the caller's (often one shared, frozen) object goes as is.
      headers: m.headers as Message['headers'],
    }))
    let results: Awaited<ReturnType<Producer['send']>>
    try {
      results = await producer.send({ topic, messages: outgoing, acks: -1 })
    } catch (error) {
      throw fromKafkaError(error, 'publish', { topic })
    }
    // Kafka answers with one base offset per partition; messages of one partition were
    // appended in the order given, so each one's offset follows from its rank there.
    const next = new Map<number, number>()
    for (const r of results) {
      if (r.topicName === topic && r.baseOffset !== undefined) next.set(r.partition, Number(r.baseOffset))
    }
    return outgoing.map((m) => {
      const partition = chosenPartition.get(m)
      const offset = partition === undefined ? undefined : next.get(partition)
      if (partition === undefined || offset === undefined) {
        throw new Error(`kafka publish: no position reported for a message to ${topic}`)
      }
      next.set(partition, offset + 1)
      return { topic, partition, offset }
    })
  }

  /** Message `index` of a publish, refused by a broker alone, once the messages before it were written. */
  const refusedAlone = (topic: string, index: number, bytes: number): MessageTooLargeError =>
    new MessageTooLargeError(
      `kafka publish to ${topic}: the broker refused message ${index} (${bytes} bytes) as too large (MESSAGE_TOO_LARGE): set event_log.kafka.max_request_bytes (${maxRequestBytes}) at or below its message.max.bytes and the topic's max.message.bytes; the ${index} messages before it were written`,
      { topic, index, bytes, published: index },
    )

  const longestWait = longestFetchWait(options.consumer?.sessionTimeoutMs)
  const consumerTimings = {
    sessionTimeout: options.consumer?.sessionTimeoutMs,
    heartbeatInterval: options.consumer?.heartbeatIntervalMs,
    rebalanceTimeout: options.consumer?.rebalanceTimeoutMs,
    maxWaitTimeInMs: Math.min(options.consumer?.maxWaitTimeMs ?? DEFAULT_MAX_WAIT_MS, longestWait),
    minBytes: options.consumer?.minBytes,
    maxBytes: options.consumer?.maxBytes,
    maxBytesPerPartition: options.consumer?.maxBytesPerPartition,
  }

  return {
    maxMessageBytes,

    async createTopics(topics) {
      assertOpen()
      validateTopics(topics)
      if (topics.length === 0) return
      await adminConnection.get()
      try {
        const existing = new Set(await admin.listTopics())
        const missing = new Map<string, TopicSpec>()
        for (const spec of topics) if (!existing.has(spec.topic)) missing.set(spec.topic, spec)
        if (missing.size === 0) return
        await admin.createTopics({
          waitForLeaders: true,
          topics: [...missing.values()].map((spec) => ({
            topic: spec.topic,
            numPartitions: spec.partitions,
            replicationFactor: options.replicationFactor ?? -1,
          })),
        })
      } catch (error) {
        throw fromKafkaError(error, 'createTopics', { topics: topics.map((t) => t.topic) })
      }
    },

    async publish(topic, messages: readonly OutgoingMessage[]): Promise<readonly PublishedPosition[]> {
      assertOpen()
      if (messages.length === 0) return []
      const sizes = messages.map(messageBytes)
      const oversize = sizes.findIndex((bytes) => bytes > maxMessageBytes)
      if (oversize >= 0) {
        const bytes = sizes[oversize] as number
        throw new MessageTooLargeError(
          `kafka publish to ${topic}: message ${oversize} is ${bytes} bytes, over the ${maxMessageBytes} one produce request of at most ${maxRequestBytes} bytes carries`,
          { topic, index: oversize, bytes, limit: maxMessageBytes, published: 0 },
        )
      }
      await producerConnection.get()
      let warned = false
      /**
       * Sends `messages[from, to)` in one request; one a broker refuses as too large (its
       * `message.max.bytes`, or the topic's `max.message.bytes`, is below `maxRequestBytes`)
       * goes again as two halves, one after the other, down to a message refused alone, which
       * fails the publish. A partition that took its share of a refused request gets it again
       * (at-least-once, as after any failed send); each partition's order holds.
       */
      const sendFitting = async (from: number, to: number): Promise<PublishedPosition[]> => {
        try {
          return await send(topic, messages.slice(from, to))
        } catch (error) {
          if (!refusedAsTooLarge(error)) throw error
          if (to - from === 1) throw refusedAlone(topic, from, sizes[from] as number)
          if (!warned)
            logger({
              level: 'warn',
              event: 'kafka_event_log.request_refused_too_large',
              message: `the broker refused a request of ${to - from} messages as too large; sending it again in halves. Set event_log.kafka.max_request_bytes (${maxRequestBytes}) at or below the brokers' message.max.bytes`,
              fields: { topic, messages: to - from, maxRequestBytes },
            })
          warned = true
          const half = from + Math.ceil((to - from) / 2)
          const first = await sendFitting(from, half)
          return [...first, ...(await sendFitting(half, to))]
        }
      }
      // One request after the other: each partition's messages are appended in the caller's
      // order, whichever request carries them.
      const positions: PublishedPosition[] = []
      let start = 0
      for (const end of runEnds(messages, sizes, recordBudget)) {
        positions.push(...(await sendFitting(start, end)))
        start = end
      }
      return positions
    },

    async consume(consumeOptions, handler) {
      assertOpen()
      const maxBatchSize = validateConsume(consumeOptions)
      const { groupId } = consumeOptions
      const kafkaConsumer = kafka.consumer({
        groupId,
        allowAutoTopicCreation: false,
        retry,
        ...consumerTimings,
        // A batch wait: see batchFetch.
        ...batchFetch(consumeOptions.maxWaitMs, maxBatchSize, options.consumer ?? {}),
      })
      try {
        await kafkaConsumer.connect()
        // A group without committed offsets starts at the beginning: nothing is ever missed.
        await kafkaConsumer.subscribe({ topics: [...consumeOptions.topics], fromBeginning: true })
      } catch (error) {
        await kafkaConsumer.disconnect().catch(() => {})
        throw fromKafkaError(error, 'consume', { groupId, topics: consumeOptions.topics })
      }
      const consumer = runConsumerLoop(kafkaConsumer, handler, {
        groupId,
        maxBatchSize,
        heartbeatIntervalMs: options.consumer?.heartbeatIntervalMs ?? 3_000,
        retryBackoffMs: options.retryBackoffMs ?? { min: 100, max: 5_000 },
        commitIntervalMs: options.consumer?.commitIntervalMs ?? 0,
        partitionsConsumedConcurrently: options.consumer?.partitionsConsumedConcurrently ?? 1,
        logger,
        onHandlerError: options.onHandlerError,
        partitionCounts: async (topics) => {
          await adminConnection.get()
          const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...topics] })
          return new Map(metadata.map((t) => [t.name, t.partitions.length]))
        },
      })
      const tracked: Consumer = {
        holdsSince: (topic, key) => consumer.holdsSince(topic, key),
        stop: async () => {
          try {
            await consumer.stop()
          } finally {
            consumers.delete(tracked)
          }
        },
      }
      consumers.add(tracked)
      // close() may have begun while this consumer was connecting.
      if (closing !== undefined) {
        await tracked.stop()
        throw new ClosedError('kafka event log')
      }
      return tracked
    },

    async lag(groupId, topics) {
      assertOpen()
      await adminConnection.get()
      try {
        const [ends, commits] = await Promise.all([
          Promise.all(
            topics.map(async (topic) => ({ topic, offsets: await admin.fetchTopicOffsets(topic) })),
          ),
          admin.fetchOffsets({ groupId, topics: [...topics] }),
        ])
        const committed = new Map<string, number>()
        for (const { topic, partitions } of commits)
          for (const { partition, offset } of partitions)
            committed.set(`${topic}/${partition}`, Number(offset))
        return ends.flatMap(({ topic, offsets }) =>
          [...offsets]
            .sort((a, b) => a.partition - b.partition)
            .map(({ partition, high, low }) => {
              // Nothing committed yet (-1), or retention deleted past what was: the group reads
              // from the first readable offset.
              const mine = committed.get(`${topic}/${partition}`) ?? -1
              return { topic, partition, committed: Math.max(mine, Number(low)), end: Number(high) }
            }),
        )
      } catch (error) {
        throw fromKafkaError(error, 'lag', { groupId, topics })
      }
    },

    async ping() {
      assertOpen()
      await adminConnection.get()
      try {
        await admin.describeCluster()
      } catch (error) {
        throw fromKafkaError(error, 'ping')
      }
    },

    close() {
      closing ??= (async () => {
        const stops = await Promise.allSettled([...consumers].map((c) => c.stop()))
        const disconnects = await Promise.allSettled([
          producerConnection.started() ? producer.disconnect() : undefined,
          adminConnection.started() ? admin.disconnect() : undefined,
        ])
        const failed = [...stops, ...disconnects].find((r) => r.status === 'rejected')
        if (failed !== undefined) throw fromKafkaError(failed.reason, 'close')
      })()
      return closing
    },
  }
}
