import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import {
  createKafkaEventLog,
  type KafkaEventLogOptions,
  type KafkaLogEntry,
} from '../../src/adapters/kafka-event-log/index.ts'
import { partitionForKey } from '../../src/adapters/murmur2.ts'
import { isRetriable, UnavailableError, ValidationError } from '../../src/errors/index.ts'
import { runEventLogContract } from '../contracts/event-log.contract.ts'
import { eventually } from '../support/eventually.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'

let kafka: KafkaMock

before(async () => {
  kafka = await startKafkaMock({ brokers: 3 })
})
after(async () => {
  await kafka?.stop()
})

const testOptions = (overrides: Partial<KafkaEventLogOptions> = {}): KafkaEventLogOptions => ({
  ...mockLogOptions(kafka.bootstrapServers),
  clientId: 'herald-int',
  requestTimeoutMs: 5_000,
  ...overrides,
})

runEventLogContract({
  name: 'Kafka (kafkajs against the librdkafka mock cluster)',
  open: async () => createKafkaEventLog(testOptions()),
  prepareTopics: async (topics) => {
    for (const { topic, partitions } of topics) await kafka.createTopic(topic, partitions)
  },
})

// The throughput settings keep the contract too: commits gathered over an interval (and
// flushed by stop()), several partitions handled at once.
runEventLogContract({
  name: 'Kafka with a commit interval and concurrent partitions',
  open: async () =>
    createKafkaEventLog(
      testOptions({
        consumer: {
          ...mockLogOptions(kafka.bootstrapServers).consumer,
          commitIntervalMs: 1_000,
          partitionsConsumedConcurrently: 4,
        },
      }),
    ),
  prepareTopics: async (topics) => {
    for (const { topic, partitions } of topics) await kafka.createTopic(topic, partitions)
  },
})

describe('Kafka event log adapter', () => {
  it('commits what the last batches before a quiet spell handled, without waiting for another batch', async () => {
    const log = createKafkaEventLog(
      testOptions({
        consumer: { ...mockLogOptions(kafka.bootstrapServers).consumer, commitIntervalMs: 3_000 },
      }),
    )
    const topic = `quiet-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const publish = (from: number) =>
      log.publish(
        topic,
        Array.from({ length: 5 }, (_, i) => ({
          key: 'k',
          value: new TextEncoder().encode(String(from + i)),
        })),
      )
    let handled = 0
    const groupId = `quiet-${Date.now()}`
    await publish(0)
    const consumer = await log.consume({ groupId, topics: [topic] }, async (batch) => {
      handled += batch.messages.length
    })
    await eventually(() => assert.equal(handled, 5), { timeoutMs: 30_000 })
    // The second batch comes well within the interval of the last commit, and nothing after it.
    await publish(5)
    await eventually(() => assert.equal(handled, 10), { timeoutMs: 30_000 })
    await eventually(async () => assert.deepEqual((await log.lag(groupId, [topic]))[0]?.committed, 10), {
      timeoutMs: 10_000,
    })
    await consumer.stop()
    await log.close()
  })

  it('counts in the lag only what a group can still read once retention deleted what it had not', async () => {
    const log = createKafkaEventLog(testOptions())
    const topic = `retained-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const groupId = `early-${Date.now()}`
    try {
      await log.publish(topic, [{ key: 'k', value: new Uint8Array([1]) }])
      let handled = 0
      const consumer = await log.consume({ groupId, topics: [topic] }, async (batch) => {
        handled += batch.messages.length
      })
      await eventually(() => assert.equal(handled, 1), { timeoutMs: 30_000 })
      await consumer.stop()
      assert.equal((await log.lag(groupId, [topic]))[0]?.committed, 1)
      // The mock keeps 5 MiB a partition: twelve sends of 600 KB delete the oldest messages.
      for (let i = 0; i < 12; i++)
        await log.publish(topic, [{ key: 'k', value: new Uint8Array(600_000).fill(i) }])
      const [early] = await log.lag(groupId, [topic])
      const [never] = await log.lag(`never-${Date.now()}`, [topic])
      assert.equal(early?.end, 13)
      assert.ok(
        (never?.committed ?? 0) > 1,
        `the oldest messages were deleted (first readable: ${never?.committed})`,
      )
      assert.equal(early?.committed, never?.committed, 'both groups read from the first readable offset')
    } finally {
      await log.close()
    }
  })

  it('answers ping while the cluster is up', async () => {
    const log = createKafkaEventLog(testOptions())
    try {
      await log.ping()
    } finally {
      await log.close()
    }
  })

  it('reports an unreachable cluster as a retriable UnavailableError with the kafkajs cause', async () => {
    const log = createKafkaEventLog(
      testOptions({
        brokers: ['127.0.0.1:1'],
        retry: { retries: 1, initialRetryTimeMs: 20, maxRetryTimeMs: 50 },
      }),
    )
    try {
      await assert.rejects(log.ping(), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, `got ${String(error)}`)
        assert.ok(isRetriable(error))
        assert.ok(error.cause instanceof Error)
        assert.match(error.cause.name, /^KafkaJS/)
        return true
      })
      await assert.rejects(
        log.publish('anything', [{ key: 'k', value: new Uint8Array(1) }]),
        UnavailableError,
      )
    } finally {
      await log.close()
    }
  })

  it('rejects bad topic specs and consume options before touching the cluster', async () => {
    const log = createKafkaEventLog(testOptions())
    try {
      await assert.rejects(log.createTopics([{ topic: 'has space', partitions: 1 }]), ValidationError)
      await assert.rejects(log.createTopics([{ topic: 'ok', partitions: 0 }]), ValidationError)
      await assert.rejects(
        log.consume({ groupId: 'g', topics: ['x'], maxBatchSize: 0 }, async () => {}),
        ValidationError,
      )
    } finally {
      await log.close()
    }
  })

  it('spreads keyless messages over partitions and reports every position', async () => {
    const topic = `keyless-${Date.now()}`
    await kafka.createTopic(topic, 3)
    const log = createKafkaEventLog(testOptions())
    try {
      const positions = await log.publish(
        topic,
        Array.from({ length: 9 }, (_, i) => ({ key: null, value: new TextEncoder().encode(String(i)) })),
      )
      assert.equal(positions.length, 9)
      assert.equal(new Set(positions.map((p) => p.partition)).size, 3)
      const perPartition = new Map<number, number[]>()
      for (const p of positions)
        perPartition.set(p.partition, [...(perPartition.get(p.partition) ?? []), p.offset])
      for (const offsets of perPartition.values()) {
        assert.deepEqual(
          offsets,
          offsets.map((_, i) => i),
        )
      }
    } finally {
      await log.close()
    }
  })

  it('places a repeated key where murmur2 puts it for each topic’s partition count, publish after publish', async () => {
    // The producer remembers keys' partitions; topics of 2 and 3 partitions share one producer,
    // and the second round is answered from what the first remembered.
    const topics = [`keyed2-${Date.now()}`, `keyed3-${Date.now()}`] as const
    await kafka.createTopic(topics[0], 2)
    await kafka.createTopic(topics[1], 3)
    const log = createKafkaEventLog(testOptions())
    const keys = Array.from({ length: 40 }, (_, i) => `configuration-${i}`)
    try {
      for (let round = 0; round < 2; round++)
        for (const [topic, partitions] of [
          [topics[0], 2],
          [topics[1], 3],
        ] as const) {
          const positions = await log.publish(
            topic,
            keys.map((key) => ({ key, value: new TextEncoder().encode(key) })),
          )
          assert.deepEqual(
            positions.map((p) => p.partition),
            keys.map((key) => partitionForKey(key, partitions)),
          )
        }
    } finally {
      await log.close()
    }
  })

  it('maps brokers going down to UnavailableError and recovers when they return', async () => {
    const topic = `outage-${Date.now()}`
    await kafka.createTopic(topic, 3)
    const log = createKafkaEventLog(testOptions())
    const message = { key: 'k', value: new Uint8Array([1]) }
    try {
      await log.publish(topic, [message])
      for (const id of [1, 2, 3]) await kafka.brokerDown(id)
      await assert.rejects(log.publish(topic, [message]), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, `got ${String(error)}`)
        assert.ok(isRetriable(error))
        assert.deepEqual(error.context.topic, topic)
        return true
      })
      await assert.rejects(log.ping(), UnavailableError)
    } finally {
      for (const id of [1, 2, 3]) await kafka.brokerUp(id)
    }
    try {
      const [position] = await log.publish(topic, [message])
      assert.equal(position?.offset, 1)
      await log.ping()
    } finally {
      await log.close()
    }
  })

  it('reports the positions an independent client (kcat) reads the messages at', async () => {
    const topic = `interop-${Date.now()}`
    await kafka.createTopic(topic, 3)
    const log = createKafkaEventLog(testOptions())
    let positions: Awaited<ReturnType<typeof log.publish>>
    try {
      positions = await log.publish(
        topic,
        ['a', 'b', 'c', 'acme', 'a'].map((key, i) => ({
          key,
          value: new TextEncoder().encode(`v${i}`),
          headers: { n: String(i) },
        })),
      )
    } finally {
      await log.close()
    }
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'kcat',
        ['-b', kafka.bootstrapServers.join(','), '-C', '-t', topic, '-e', '-q', '-f', '%p %o %k %s %h\\n'],
        { timeout: 10_000 },
        (error, stdout, stderr) =>
          error ? reject(new Error(`kcat failed: ${stderr}`, { cause: error })) : resolve(stdout),
      )
    })
    const seen = output
      .trim()
      .split('\n')
      .map((line) => {
        const [partition, offset, key, value, headers] = line.split(' ')
        return { partition: Number(partition), offset: Number(offset), key, value, headers }
      })
      .sort((x, y) => Number(x.value?.slice(1)) - Number(y.value?.slice(1)))
    assert.deepEqual(
      seen,
      positions.map((p, i) => ({
        partition: p.partition,
        offset: p.offset,
        key: ['a', 'b', 'c', 'acme', 'a'][i],
        value: `v${i}`,
        headers: `n=${i}`,
      })),
    )
  })

  it('restarts a consumer that kafkajs abandoned after a non-retriable error', async () => {
    const topic = `restart-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const lines: KafkaLogEntry[] = []
    const log = createKafkaEventLog(testOptions({ logLevel: 'warn', logger: (entry) => lines.push(entry) }))
    const received: string[] = []
    try {
      await log.publish(topic, [{ key: 'k', value: new TextEncoder().encode('before') }])
      const consumer = await log.consume(
        { groupId: `restart-${Date.now()}`, topics: [topic] },
        async (batch) => {
          received.push(...batch.messages.map((m) => new TextDecoder().decode(m.value)))
        },
      )
      await eventually(() => assert.deepEqual(received, ['before']))
      // INVALID_REQUEST (42) on a Heartbeat (API key 12): kafkajs gives the consumer up for good.
      await kafka.injectErrors(12, [42])
      await eventually(() =>
        assert.ok(
          lines.some((e) => e.event === 'kafka_event_log.consumer_crashed' && e.fields.restart === true),
        ),
      )
      await log.publish(topic, [{ key: 'k', value: new TextEncoder().encode('after') }])
      await eventually(() => assert.deepEqual(received, ['before', 'after']))
      await consumer.stop()
    } finally {
      await log.close()
    }
  })

  it('refuses use after close', async () => {
    const log = createKafkaEventLog(testOptions())
    await log.close()
    await log.close()
    await assert.rejects(log.publish('t', [{ key: 'k', value: new Uint8Array(1) }]), { code: 'closed' })
  })
})
