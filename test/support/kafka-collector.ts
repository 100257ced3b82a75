import { randomUUID } from 'node:crypto'
import kafkajs from 'kafkajs'

/** One message as an independent consumer read it. */
export interface CollectedMessage {
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: Buffer
  readonly headers: Readonly<Record<string, string>>
  /** `performance.now()` when the batch holding it was handed to this consumer. */
  readonly receivedAt: number
  /** The message's timestamp, ms since the epoch: when its producer sent it, unless it set one. */
  readonly timestamp: number
}

export interface Collector {
  /** Every message read so far, unless `keep` was false. */
  readonly messages: readonly CollectedMessage[]
  /** How many messages were read so far. */
  count(): number
  /** Resolves once the consumer joined its group and was given partitions. */
  readonly joined: Promise<void>
  stop(): Promise<void>
}

export interface CollectorOptions {
  readonly brokers: readonly string[]
  readonly topic: string
  /** A fresh group by default. */
  readonly groupId?: string
  /**
   * How long a fetch waits on the broker when there is nothing to read (default 20 ms). The
   * mock cluster sleeps this long on an empty fetch even when messages arrive meanwhile, so it
   * bounds what the collector adds to a measured latency.
   */
  readonly maxWaitTimeMs?: number
  /** Read the topic from its beginning (default), or only what arrives after joining. */
  readonly fromBeginning?: boolean
  /** Keep every message in `messages` (default true); off for benchmarks that only count. */
  readonly keep?: boolean
  /** Called for every batch, as it arrives. */
  readonly onBatch?: (messages: readonly CollectedMessage[]) => void
}

/**
 * A plain kafkajs consumer that shares no code with Herald: it reads a topic in its own group and records what it sees, with the time it saw it. Tests and
 * benchmarks judge Herald's output through it.
 *
 * @example
 * const deliveries = await collectTopic({ brokers: [...kafka.bootstrapServers], topic: 'notifications.deliveries' })
 * await eventually(() => assert.equal(deliveries.count(), 3))
 * await deliveries.stop()
 */
export const collectTopic = async (options: CollectorOptions): Promise<Collector> => {
  const client = new kafkajs.Kafka({
    brokers: [...options.brokers],
    clientId: 'herald-test-collector',
    logLevel: kafkajs.logLevel.NOTHING,
  })
  // Session and heartbeat sized to the mock (see mockLogOptions in kafka-mock.ts).
  const consumer = client.consumer({
    groupId: options.groupId ?? `collector-${randomUUID()}`,
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
    rebalanceTimeout: 6_000,
    maxWaitTimeInMs: options.maxWaitTimeMs ?? 20,
  })
  const messages: CollectedMessage[] = []
  let count = 0
  let markJoined: () => void = () => {}
  const joined = new Promise<void>((resolve) => {
    markJoined = resolve
  })
  consumer.on(consumer.events.GROUP_JOIN, () => markJoined())
  await consumer.connect()
  await consumer.subscribe({ topics: [options.topic], fromBeginning: options.fromBeginning ?? true })
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const receivedAt = performance.now()
      const read = batch.messages.map(
        (m): CollectedMessage => ({
          partition: batch.partition,
          offset: Number(m.offset),
          key: m.key === null ? null : m.key.toString('utf8'),
          value: m.value ?? Buffer.alloc(0),
          headers: Object.fromEntries(
            Object.entries(m.headers ?? {}).map(([name, value]) => [name, String(value)]),
          ),
          receivedAt,
          timestamp: Number(m.timestamp),
        }),
      )
      count += read.length
      if (options.keep ?? true) messages.push(...read)
      options.onBatch?.(read)
    },
  })
  return {
    messages,
    count: () => count,
    joined,
    stop: () => consumer.disconnect(),
  }
}
