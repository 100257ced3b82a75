import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import {
  createKafkaEventLog,
  type KafkaEventLogOptions,
  type KafkaLogEntry,
} from '../../src/adapters/kafka-event-log/index.ts'
import { partitionForKey } from '../../src/adapters/murmur2.ts'
import {
  isHeraldError,
  isMessageTooLarge,
  isRetriable,
  UnavailableError,
  ValidationError,
} from '../../src/errors/index.ts'
import { type LogMessage, messageBytes, type OutgoingMessage } from '../../src/ports/event-log.ts'
import { runEventLogContract } from '../contracts/event-log.contract.ts'
import { eventually } from '../support/eventually.ts'
import { appendTransactionMarker } from '../support/kafka-control-records.ts'
import { type KafkaMock, mockLogOptions, startKafkaMock } from '../support/kafka-mock.ts'
import { createKcat } from '../support/kcat.ts'

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

  it('reads a header a producer sent with a null value as absent, and goes on with the partition', async () => {
    // kcat (librdkafka) sends `-H trace` with a null value, as a Java RecordHeader with a
    // null value does; kafkajs itself cannot send one.
    const topic = `null-header-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const kcat = createKcat(kafka.bootstrapServers)
    const lines: KafkaLogEntry[] = []
    const log = createKafkaEventLog(testOptions({ logLevel: 'warn', logger: (entry) => lines.push(entry) }))
    const groupId = `null-header-${Date.now()}`
    const received: { value: string; headers: Readonly<Record<string, string>> }[] = []
    try {
      await kcat.produce(topic, {
        key: 'k',
        value: 'first',
        headers: { 'content-type': 'text/plain', trace: null },
      })
      await kcat.produce(topic, { key: 'k', value: 'second', headers: { trace: 't-2' } })
      const consumer = await log.consume({ groupId, topics: [topic] }, async (batch) => {
        for (const m of batch.messages)
          received.push({ value: new TextDecoder().decode(m.value), headers: m.headers })
      })
      await eventually(() => assert.equal(received.length, 2), { timeoutMs: 30_000 })
      assert.deepEqual(received, [
        { value: 'first', headers: { 'content-type': 'text/plain' } },
        { value: 'second', headers: { trace: 't-2' } },
      ])
      await eventually(async () => assert.equal((await log.lag(groupId, [topic]))[0]?.committed, 2))
      await consumer.stop()
      assert.deepEqual(
        lines.filter((e) => e.event === 'kafka_event_log.consumer_crashed'),
        [],
        'the consumer never crashed',
      )
    } finally {
      kcat.close()
      await log.close()
    }
  })

  it('keeps a fetch wait longer than the session timeout from getting the member evicted while the log is quiet', async () => {
    // kafkajs heartbeats between fetches: a fetch held on the broker for the consumer's whole
    // maxWaitMs (the projector's `reports.cycle_timers.load`, up to a day) outlives the mock's
    // 4 s session, and the coordinator drops the member at every quiet fetch.
    const topic = `long-wait-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const lines: KafkaLogEntry[] = []
    const log = createKafkaEventLog(testOptions({ logLevel: 'warn', logger: (entry) => lines.push(entry) }))
    const handled: number[] = []
    try {
      const consumer = await log.consume(
        { groupId: `long-wait-${Date.now()}`, topics: [topic], maxWaitMs: 20_000, maxBatchSize: 20_000 },
        async (batch) => {
          for (const _ of batch.messages) handled.push(Date.now())
        },
      )
      await log.publish(topic, [{ key: 'k', value: new Uint8Array([1]) }])
      await eventually(() => assert.equal(handled.length, 1), { timeoutMs: 30_000 })
      // A quiet spell of two sessions, then one more message.
      await new Promise((resolve) => setTimeout(resolve, 8_000))
      const sent = Date.now()
      await log.publish(topic, [{ key: 'k', value: new Uint8Array([2]) }])
      await eventually(() => assert.equal(handled.length, 2), { timeoutMs: 30_000 })
      await consumer.stop()
      assert.deepEqual(
        lines.filter((e) =>
          /not aware of this member|UNKNOWN_MEMBER_ID/.test(`${e.message} ${JSON.stringify(e.fields)}`),
        ),
        [],
        'the member was never dropped',
      )
      // The mock holds an empty fetch for its whole wait: at most a third of the 4 s session.
      assert.ok(
        (handled[1] as number) - sent < 3_000,
        `handled ${(handled[1] as number) - sent} ms after it was sent`,
      )
    } finally {
      await log.close()
    }
  })

  it('commits past the transaction markers of a transactional producer, so the lag reaches 0', async () => {
    // A transactional producer's records are followed by its transaction's marker, a control
    // record that takes an offset but is no message.
    const topic = `markers-${Date.now()}`
    await kafka.createTopic(topic, 1)
    const log = createKafkaEventLog(testOptions())
    const groupId = `markers-${Date.now()}`
    const handled: number[] = []
    const committed = async () => (await log.lag(groupId, [topic]))[0]
    try {
      await log.publish(topic, [{ key: 'k', value: new Uint8Array([1]) }])
      assert.equal(await appendTransactionMarker(kafka.bootstrapServers, topic, 0), 1)
      const consumer = await log.consume({ groupId, topics: [topic] }, async (batch) => {
        for (const m of batch.messages) handled.push(m.offset)
      })
      // A marker fetched with the messages before it.
      await eventually(
        async () => assert.deepEqual(await committed(), { topic, partition: 0, committed: 2, end: 2 }),
        {
          timeoutMs: 30_000,
        },
      )
      await log.publish(topic, [{ key: 'k', value: new Uint8Array([2]) }])
      await eventually(async () => assert.equal((await committed())?.committed, 3))
      // A marker fetched alone: a batch of no messages.
      assert.equal(await appendTransactionMarker(kafka.bootstrapServers, topic, 0), 3)
      await eventually(async () =>
        assert.deepEqual(await committed(), { topic, partition: 0, committed: 4, end: 4 }),
      )
      await consumer.stop()
      assert.deepEqual(handled, [0, 2])
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

describe('Kafka event log publishing more than one request holds', () => {
  // Brokers that close the connection of a request over 100 kB, as a real one refuses a record
  // batch over its message.max.bytes (the mock checks only whole requests).
  const BROKER_MAX = 100_000
  let small: KafkaMock
  before(async () => {
    small = await startKafkaMock({ brokers: 1, maxRequestBytes: BROKER_MAX })
  })
  after(async () => {
    await small?.stop()
  })
  const smallOptions = (overrides: Partial<KafkaEventLogOptions> = {}): KafkaEventLogOptions => ({
    ...mockLogOptions(small.bootstrapServers),
    clientId: 'herald-int',
    requestTimeoutMs: 5_000,
    retry: { retries: 1, initialRetryTimeMs: 20, maxRetryTimeMs: 50 },
    ...overrides,
  })
  // A router batch's worth of delivery commands: 1,000 of 300 bytes, most for one configuration
  // (one partition), with the headers commands carry: about 350 kB in all.
  const HEADERS = { 'content-type': 'application/json', 'herald.schema': 'delivery-command/1' }
  const commands = Array.from({ length: 1_000 }, (_, i) => ({
    key: i % 10 === 0 ? 'cfg-b' : i % 10 === 1 ? 'cfg-c' : 'cfg-a',
    value: new TextEncoder().encode(`${String(i).padStart(4, '0')}:${'x'.repeat(295)}`),
    headers: HEADERS,
  }))

  it('splits a publish into requests the brokers take, keeping each partition’s order and reporting every position', async () => {
    const topic = `chunked-${Date.now()}`
    await small.createTopic(topic, 3)
    // One request for the whole batch is refused: this is what the router used to retry forever.
    const unsplit = createKafkaEventLog(smallOptions({ maxRequestBytes: 10_000_000 }))
    try {
      await assert.rejects(unsplit.publish(topic, commands), UnavailableError)
    } finally {
      await unsplit.close()
    }

    const log = createKafkaEventLog(smallOptions({ maxRequestBytes: BROKER_MAX }))
    const read: LogMessage[] = []
    const groupId = `chunked-${Date.now()}`
    try {
      const positions = await log.publish(topic, commands)
      assert.equal(positions.length, commands.length)
      // Per partition, the caller's order at consecutive offsets from 0.
      const byPartition = new Map<number, number[]>()
      positions.forEach((p, i) => {
        assert.equal(p.topic, topic)
        byPartition.set(p.partition, [...(byPartition.get(p.partition) ?? []), i])
        assert.equal(p.offset, (byPartition.get(p.partition)?.length ?? 0) - 1, `offset of message ${i}`)
      })
      const consumer = await log.consume({ groupId, topics: [topic] }, async (batch) => {
        read.push(...batch.messages)
      })
      try {
        await eventually(() => assert.equal(read.length, commands.length), { timeoutMs: 30_000 })
      } finally {
        await consumer.stop()
      }
      // Each message is where its position says, and each key's messages come in the caller's order.
      const decoder = new TextDecoder()
      const at = new Map(read.map((m) => [`${m.partition}/${m.offset}`, decoder.decode(m.value)]))
      positions.forEach((p, i) => {
        assert.equal(at.get(`${p.partition}/${p.offset}`), decoder.decode(commands[i]?.value))
      })
      for (const key of ['cfg-a', 'cfg-b', 'cfg-c']) {
        const sent = commands.filter((c) => c.key === key).map((c) => decoder.decode(c.value))
        const got = read
          .filter((m) => m.key === key)
          .sort((a, b) => a.offset - b.offset)
          .map((m) => decoder.decode(m.value))
        assert.deepEqual(got, sent, `order of ${key}`)
      }
    } finally {
      await log.close()
    }
  })

  it('sends again in halves a request the broker refuses as too large, and refuses a message it refuses alone once those before it are written', async () => {
    const topic = `refused-${Date.now()}`
    await small.createTopic(topic, 1)
    // The log lets through requests far larger than the brokers' message.max.bytes.
    const log = createKafkaEventLog(smallOptions({ maxRequestBytes: 10_000_000 }))
    const eight = (from: number) => commands.slice(from, from + 8).map((c) => ({ ...c, key: 'cfg-a' }))
    const read: LogMessage[] = []
    try {
      // The whole request is refused (MESSAGE_TOO_LARGE, error 10); its halves are taken.
      await small.injectErrors(0, [10])
      assert.deepEqual(
        (await log.publish(topic, eight(0))).map((p) => p.offset),
        [0, 1, 2, 3, 4, 5, 6, 7],
      )
      // A broker that refuses every request holding message 5: the whole, its second half
      // (0 answers as usual), that half's first half but not message 4, then message 5 alone.
      await small.injectErrors(0, [10, 0, 10, 10, 0, 10])
      const second = eight(8)
      await assert.rejects(log.publish(topic, second), (error: unknown) => {
        assert.ok(isMessageTooLarge(error), `got ${String(error)}`)
        assert.equal(error.retriable, false)
        const bytes = messageBytes(second[5] as OutgoingMessage)
        assert.deepEqual(error.context, { topic, index: 5, bytes, published: 5 })
        assert.equal(
          error.message,
          `kafka publish to ${topic}: the broker refused message 5 (${bytes} bytes) as too large (MESSAGE_TOO_LARGE): set event_log.kafka.max_request_bytes (10000000) at or below its message.max.bytes and the topic's max.message.bytes; the 5 messages before it were written`,
        )
        return true
      })
      const consumer = await log.consume({ groupId: topic, topics: [topic] }, async (batch) => {
        read.push(...batch.messages)
      })
      try {
        await eventually(() => assert.equal(read.length, 13), { timeoutMs: 30_000 })
      } finally {
        await consumer.stop()
      }
      // Each written once, in the caller's order; nothing after the refused one.
      const decoder = new TextDecoder()
      assert.deepEqual(
        read.map((m) => [m.offset, decoder.decode(m.value).slice(0, 4)]),
        [...eight(0), ...second.slice(0, 5)].map((c, i) => [i, decoder.decode(c.value).slice(0, 4)]),
      )
    } finally {
      await log.close()
    }
  })

  it('refuses a message larger than a request may be before sending any, naming the topic and its size', async () => {
    const topic = `oversize-${Date.now()}`
    await small.createTopic(topic, 1)
    const log = createKafkaEventLog(smallOptions({ maxRequestBytes: BROKER_MAX }))
    try {
      const big = { key: 'cfg-a', value: new Uint8Array(BROKER_MAX) }
      await assert.rejects(log.publish(topic, [commands[0] as OutgoingMessage, big]), (error: unknown) => {
        assert.ok(isHeraldError(error), `got ${String(error)}`)
        assert.equal(error.code, 'message_too_large')
        assert.equal(error.retriable, false)
        // A request's framing (at most 512 bytes, the client id and a partition's 80) is not the message's.
        const limit = BROKER_MAX - 512 - 'herald-int'.length - 80
        assert.equal(log.maxMessageBytes, limit)
        const bytes = BROKER_MAX + 'cfg-a'.length + 36
        assert.equal(
          error.message,
          `kafka publish to ${topic}: message 1 is ${bytes} bytes, over the ${limit} one produce request of at most ${BROKER_MAX} bytes carries`,
        )
        assert.deepEqual(error.context, { topic, index: 1, bytes, limit, published: 0 })
        return true
      })
      // Nothing of that publish was written; the log takes the next one.
      assert.deepEqual(await log.publish(topic, [commands[1] as OutgoingMessage]), [
        { topic, partition: 0, offset: 0 },
      ])
    } finally {
      await log.close()
    }
  })
})
