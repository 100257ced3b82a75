import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ValidationError } from '../../src/errors/index.ts'
import type { Batch, ConsumeOptions, EventLog, LogMessage, TopicSpec } from '../../src/ports/event-log.ts'
import { eventually } from '../support/eventually.ts'

/**
 * The EventLog contract: every adapter (embedded SQLite, Kafka) runs this suite, which is what
 * keeps them interchangeable. Each test uses its own topics and groups, so one log serves all.
 */
export interface EventLogContractOptions {
  readonly name: string
  /** Opens a log instance on the same underlying data every time (called again after close() to test resume). */
  readonly open: () => Promise<EventLog>
  /** Makes topics exist before createTopics is called, for brokers without a controller. */
  readonly prepareTopics?: (topics: readonly TopicSpec[]) => Promise<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const text = (m: LogMessage): string => decoder.decode(m.value)

export const runEventLogContract = ({ name, open, prepareTopics }: EventLogContractOptions): void => {
  describe(`EventLog contract: ${name}`, () => {
    let log: EventLog

    before(async () => {
      log = await open()
    })
    after(async () => {
      await log.close()
    })

    const newTopic = async (partitions = 3): Promise<string> => {
      const spec = { topic: `t-${randomUUID().slice(0, 8)}`, partitions }
      await prepareTopics?.([spec])
      await log.createTopics([spec])
      return spec.topic
    }
    const group = (): string => `g-${randomUUID().slice(0, 8)}`
    const publishNumbered = async (topic: string, from: number, to: number, keys = ['a', 'b', 'c', 'd']) => {
      const messages = []
      for (let i = from; i < to; i++) {
        messages.push({
          key: keys[i % keys.length] ?? null,
          value: encoder.encode(String(i)),
          headers: { n: String(i) },
        })
      }
      return log.publish(topic, messages)
    }
    const collector = () => {
      const received: LogMessage[] = []
      const batches: Batch[] = []
      const handler = async (batch: Batch) => {
        batches.push(batch)
        received.push(...batch.messages)
      }
      return { received, batches, handler }
    }

    it('creates topics idempotently', async () => {
      const topic = await newTopic(2)
      await log.createTopics([{ topic, partitions: 2 }])
      await log.publish(topic, [{ key: 'k', value: encoder.encode('x') }])
    })

    it('puts one key in one partition with increasing offsets', async () => {
      const topic = await newTopic(3)
      const positions = await publishNumbered(topic, 0, 30, ['same-key'])
      assert.equal(positions.length, 30)
      assert.equal(new Set(positions.map((p) => p.partition)).size, 1)
      const offsets = positions.map((p) => p.offset)
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
      )
      assert.equal(new Set(offsets).size, 30)
      assert.ok(positions.every((p) => p.topic === topic))
    })

    it('partitions keys as Kafka does (murmur2)', async () => {
      const topic = await newTopic(3)
      // Kafka's Java client places these keys in these partitions of a 3-partition topic.
      const positions = await log.publish(topic, [
        { key: 'a', value: encoder.encode('a') },
        { key: 'b', value: encoder.encode('b') },
        { key: 'c', value: encoder.encode('c') },
        { key: 'acme', value: encoder.encode('acme') },
      ])
      assert.deepEqual(
        positions.map((p) => p.partition),
        [1, 2, 1, 0],
      )
    })

    it('delivers everything published before a new group joins, in order per partition', async () => {
      const topic = await newTopic(3)
      await publishNumbered(topic, 0, 60)
      const c = collector()
      const consumer = await log.consume({ groupId: group(), topics: [topic] }, c.handler)
      await eventually(() => assert.equal(c.received.length, 60))
      await consumer.stop()

      assert.deepEqual(c.received.map(text).sort(), Array.from({ length: 60 }, (_, i) => String(i)).sort())
      for (const batch of c.batches) {
        assert.ok(batch.messages.every((m) => m.partition === batch.partition && m.topic === batch.topic))
      }
      for (const key of ['a', 'b', 'c', 'd']) {
        const numbers = c.received.filter((m) => m.key === key).map((m) => Number(text(m)))
        assert.deepEqual(
          numbers,
          [...numbers].sort((x, y) => x - y),
          `order of key ${key}`,
        )
      }
    })

    it('carries key, value bytes, headers and timestamp', async () => {
      const topic = await newTopic(1)
      const bytes = new Uint8Array([0, 1, 2, 254, 255])
      const before = Date.now()
      await log.publish(topic, [
        { key: 'k1', value: bytes, headers: { ce_type: 'x.y', 'content-type': 'a/b' } },
      ])
      const c = collector()
      const consumer = await log.consume({ groupId: group(), topics: [topic] }, c.handler)
      await eventually(() => assert.equal(c.received.length, 1))
      await consumer.stop()
      const [m] = c.received
      assert.ok(m)
      assert.equal(m.key, 'k1')
      assert.deepEqual(new Uint8Array(m.value), bytes)
      assert.equal(m.headers.ce_type, 'x.y')
      assert.equal(m.headers['content-type'], 'a/b')
      assert.equal(m.topic, topic)
      assert.equal(m.offset, 0)
      assert.ok(m.timestamp >= before - 5_000 && m.timestamp <= Date.now() + 5_000)
    })

    it('delivers live messages to a running consumer', async () => {
      const topic = await newTopic(2)
      const c = collector()
      const consumer = await log.consume({ groupId: group(), topics: [topic] }, c.handler)
      await publishNumbered(topic, 0, 5)
      await eventually(() => assert.equal(c.received.length, 5))
      await publishNumbered(topic, 5, 10)
      await eventually(() => assert.equal(c.received.length, 10))
      await consumer.stop()
    })

    it('gives every group its own copy', async () => {
      const topic = await newTopic(2)
      await publishNumbered(topic, 0, 20)
      const one = collector()
      const two = collector()
      const c1 = await log.consume({ groupId: group(), topics: [topic] }, one.handler)
      const c2 = await log.consume({ groupId: group(), topics: [topic] }, two.handler)
      await eventually(() => {
        assert.equal(one.received.length, 20)
        assert.equal(two.received.length, 20)
      })
      await Promise.all([c1.stop(), c2.stop()])
    })

    it('shares a group’s partitions between its members', async () => {
      const topic = await newTopic(4)
      const groupId = group()
      const one = collector()
      const two = collector()
      const c1 = await log.consume({ groupId, topics: [topic] }, one.handler)
      const c2 = await log.consume({ groupId, topics: [topic] }, two.handler)
      const keys = Array.from({ length: 16 }, (_, i) => `key-${i}`)
      let published = 0
      // Until both members own partitions (a rebalance may take a while), keep publishing.
      await eventually(
        async () => {
          await publishNumbered(topic, published, published + 16, keys)
          published += 16
          assert.ok(one.received.length > 0 && two.received.length > 0)
        },
        { intervalMs: 250, timeoutMs: 30_000 },
      )
      await eventually(() => {
        const seen = new Set([...one.received, ...two.received].map(text))
        assert.equal(seen.size, published)
      })
      await Promise.all([c1.stop(), c2.stop()])
    })

    it('tells which member reads the partition of a key, and since when', async () => {
      const topic = await newTopic(4)
      const groupId = group()
      const keys = Array.from({ length: 32 }, (_, i) => `configuration-${i}`)
      const partitionOf = new Map(
        (
          await log.publish(
            topic,
            keys.map((key) => ({ key, value: encoder.encode(key) })),
          )
        ).map((p, i) => [keys[i] as string, p.partition]),
      )
      const one = collector()
      const joined = Date.now()
      const c1 = await log.consume({ groupId, topics: [topic] }, one.handler)
      // Alone in its group, the member reads every partition, from when it joined.
      await eventually(() => {
        for (const key of keys) {
          const since = c1.holdsSince(topic, key)
          assert.ok(since !== undefined && since >= joined - 1_000 && since <= Date.now(), key)
        }
      })
      const before = new Map(keys.map((key) => [key, c1.holdsSince(topic, key)]))
      const secondJoined = Date.now()
      const c2 = await log.consume({ groupId, topics: [topic] }, collector().handler)
      // Two members: each key is held by exactly one of them, the one its partition went to.
      // What the first member kept keeps its time, unless a later rebalance took it away and
      // gave it back (the group may rebalance more than once): then it counts from then.
      await eventually(
        () => {
          const holders = new Map<number, string>()
          for (const key of keys) {
            const held = [c1.holdsSince(topic, key), c2.holdsSince(topic, key)]
            assert.equal(held.filter((since) => since !== undefined).length, 1, key)
            const holder = held[0] === undefined ? 'two' : 'one'
            const partition = partitionOf.get(key) as number
            assert.equal(holders.get(partition) ?? holder, holder, `partition ${partition} has one reader`)
            holders.set(partition, holder)
            const since = held[0]
            if (since !== undefined) assert.ok(since === before.get(key) || since >= secondJoined, key)
          }
          assert.equal(new Set(holders.values()).size, 2)
        },
        { intervalMs: 100, timeoutMs: 30_000 },
      )
      await c2.stop()
      assert.equal(c2.holdsSince(topic, 'configuration-0'), undefined)
      // The partitions of the member that left come back to the first one.
      await eventually(
        () => {
          for (const key of keys) assert.notEqual(c1.holdsSince(topic, key), undefined, key)
        },
        { intervalMs: 100, timeoutMs: 30_000 },
      )
      await c1.stop()
      for (const key of keys) assert.equal(c1.holdsSince(topic, key), undefined)
    })

    it('resumes a group from its committed offsets', async () => {
      const topic = await newTopic(3)
      const groupId = group()
      await publishNumbered(topic, 0, 12)
      const first = collector()
      const c1 = await log.consume({ groupId, topics: [topic] }, first.handler)
      await eventually(() => assert.equal(first.received.length, 12))
      await c1.stop()

      await publishNumbered(topic, 12, 20)
      const second = collector()
      const c2 = await log.consume({ groupId, topics: [topic] }, second.handler)
      await eventually(() => assert.equal(second.received.length, 8))
      await sleep(300)
      await c2.stop()
      assert.deepEqual(
        second.received.map((m) => Number(text(m))).sort((x, y) => x - y),
        [12, 13, 14, 15, 16, 17, 18, 19],
      )
    })

    it('tells where a group stands in every partition', async () => {
      const topic = await newTopic(2)
      const groupId = group()
      const before = Date.now()
      const positions = await publishNumbered(topic, 0, 10)
      for (const { oldestAt } of await log.lag(groupId, [topic])) {
        // Where the log tells it: the append time of the first message the group has not read.
        if (oldestAt !== undefined) assert.ok(oldestAt >= before - 1000 && oldestAt <= Date.now() + 1000)
      }
      const ends = [0, 1].map((p) => positions.filter((x) => x.partition === p).length)
      const byPartition = async () =>
        (await log.lag(groupId, [topic])).map(({ topic: t, partition, committed, end }) => ({
          t,
          partition,
          committed,
          end,
        }))
      assert.deepEqual(await byPartition(), [
        { t: topic, partition: 0, committed: 0, end: ends[0] },
        { t: topic, partition: 1, committed: 0, end: ends[1] },
      ])
      const c = collector()
      const consumer = await log.consume({ groupId, topics: [topic] }, c.handler)
      await eventually(() => assert.equal(c.received.length, 10))
      await consumer.stop()
      assert.ok((await log.lag(groupId, [topic])).every((p) => p.oldestAt === undefined))
      assert.deepEqual(await byPartition(), [
        { t: topic, partition: 0, committed: ends[0], end: ends[0] },
        { t: topic, partition: 1, committed: ends[1], end: ends[1] },
      ])
    })

    it('redelivers a batch whose handler failed, skipping nothing', async () => {
      const topic = await newTopic(1)
      await publishNumbered(topic, 0, 10)
      let failures = 0
      const handled: number[] = []
      const consumer = await log.consume({ groupId: group(), topics: [topic] }, async (batch) => {
        if (failures < 2) {
          failures++
          throw new Error('transient handler failure')
        }
        handled.push(...batch.messages.map((m) => Number(text(m))))
      })
      await eventually(() => assert.equal(handled.length, 10))
      await consumer.stop()
      assert.equal(failures, 2)
      assert.deepEqual(handled, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    })

    it('honours maxBatchSize', async () => {
      const topic = await newTopic(1)
      await publishNumbered(topic, 0, 25)
      const c = collector()
      const consumer = await log.consume({ groupId: group(), topics: [topic], maxBatchSize: 4 }, c.handler)
      await eventually(() => assert.equal(c.received.length, 25))
      await consumer.stop()
      assert.ok(c.batches.every((b) => b.messages.length <= 4))
    })

    it('refuses consume options it cannot honour, naming the option', async () => {
      const topic = await newTopic(1)
      const refused: [ConsumeOptions, string][] = [
        [{ groupId: group(), topics: [topic], maxBatchSize: 0 }, 'maxBatchSize'],
        [{ groupId: group(), topics: [topic], maxBatchSize: -1 }, 'maxBatchSize'],
        [{ groupId: group(), topics: [topic], maxBatchSize: 1.5 }, 'maxBatchSize'],
        [{ groupId: '', topics: [topic] }, 'groupId'],
        [{ groupId: group(), topics: [] }, 'topics'],
      ]
      for (const [options, path] of refused)
        await assert.rejects(
          log.consume(options, async () => {}),
          (error: unknown) =>
            error instanceof ValidationError && error.issues.some((issue) => issue.path === path),
          `${JSON.stringify(options)} is refused naming ${path}`,
        )
    })

    it('lets stop() finish and commit the in-flight batch', async () => {
      const topic = await newTopic(1)
      const groupId = group()
      await publishNumbered(topic, 0, 5)
      let started = false
      let finished = false
      const c1 = await log.consume({ groupId, topics: [topic] }, async () => {
        started = true
        await sleep(400)
        finished = true
      })
      await eventually(() => assert.ok(started))
      await c1.stop()
      assert.ok(finished, 'stop() resolved before the in-flight batch finished')

      // Whatever the first consumer handled was committed; the remainder arrives, nothing twice.
      const second = collector()
      const c2 = await log.consume({ groupId, topics: [topic] }, second.handler)
      await sleep(1_500)
      await c2.stop()
      const numbers = second.received.map((m) => Number(text(m)))
      assert.ok(!numbers.includes(0), 'the batch handled before stop() was delivered again')
    })

    it('resumes after the log is closed and reopened, losing and repeating nothing', async () => {
      const topic = await newTopic(2)
      const groupId = group()
      await publishNumbered(topic, 0, 40)
      const handled: number[] = []
      const c1 = await log.consume({ groupId, topics: [topic], maxBatchSize: 5 }, async (batch) => {
        handled.push(...batch.messages.map((m) => Number(text(m))))
        await sleep(20)
      })
      await eventually(() => assert.ok(handled.length >= 10))
      await c1.stop()
      await log.close()

      log = await open()
      await publishNumbered(topic, 40, 50)
      const c2 = await log.consume({ groupId, topics: [topic], maxBatchSize: 5 }, async (batch) => {
        handled.push(...batch.messages.map((m) => Number(text(m))))
      })
      await eventually(() => assert.equal(handled.length, 50))
      await sleep(300)
      await c2.stop()
      assert.deepEqual(
        [...handled].sort((x, y) => x - y),
        Array.from({ length: 50 }, (_, i) => i),
      )
    })
  })
}
