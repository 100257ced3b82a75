/**
 * Kafka ingress benchmarks (part of `npm run bench`; alone: `node test/bench/ingress.ts`):
 *
 * 1. decode + validate per core: ~1 KB engine events from the wire (CloudEvents structured
 *    and binary mode, plain JSON and the Confluent wire format with a cached schema), through
 *    the router's decoder — header mode, frame, UTF-8, JSON, the writer schema, the event
 *    contract — in batches of 500, on one thread;
 * 2. the processed-id window on SQLite (lookup + record per batch of 500);
 * 3. consuming from the Kafka protocol peer (96 000 events over 32 partitions) through the
 *    kafkajs EventLog adapter: a no-op handler (the adapter and peer alone), then the full
 *    router handler (decode, validate, dedup against SQLite, route against an empty index) —
 *    the consumer is not the bottleneck while this exceeds the producers' rate.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKafkaEventLog } from '../../src/adapters/kafka-event-log/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createEmbeddedSchemaRegistry,
  createIngressDecoder,
  createSqliteProcessedIds,
  heraldSubjects,
  processedKey,
  type SchemaRegistry,
  toKafkaMessage,
} from '../../src/ingress/index.ts'
import type { LogMessage, OutgoingMessage } from '../../src/ports/event-log.ts'
import { createRouterHandler } from '../../streams/router.ts'
import { emptySelectorIndex } from '../../streams/routing/index.ts'
import { startKafkaMock } from '../support/kafka-mock.ts'

export type Report = (name: string, count: number, ms: number, unit?: string) => void

const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
}
const encoder = new TextEncoder()

/** The generator's mix of engine activity, kept to events of 0.5–1.5 KB: "~1 KB events". */
const sampleEvents = (count: number): EngineEvent[] =>
  [...generateActivity({ seed: 42, accounts: 20, count: count * 4, clock: () => Date.UTC(2026, 10, 22) })]
    .filter((event) => {
      const size = encoder.encode(JSON.stringify(event)).length
      return size >= 512 && size <= 1536
    })
    .slice(0, count)

type Shape = { readonly mode: 'structured' | 'binary'; readonly framing: 'plain' | 'envelope' | 'type' }

const encodeAs = async (
  registry: SchemaRegistry,
  event: EngineEvent,
  shape: Shape,
): Promise<OutgoingMessage> => {
  const { mode, framing } = shape
  if (framing === 'plain') return toKafkaMessage(event, { mode })
  const subject =
    mode === 'binary'
      ? `${TOPICS.events}-${event.type}-data`
      : framing === 'envelope'
        ? `${TOPICS.events}-value`
        : `${TOPICS.events}-${event.type}`
  return toKafkaMessage(event, { mode, schemaId: await registry.latestId(subject) })
}

const asLogMessages = (messages: readonly OutgoingMessage[]): LogMessage[] =>
  messages.map((m, offset) => ({
    topic: TOPICS.events,
    partition: 0,
    offset,
    key: m.key,
    value: m.value,
    headers: m.headers ?? {},
    timestamp: 0,
  }))

const forAbout = async (ms: number, work: () => Promise<number>): Promise<[number, number]> => {
  await work()
  const start = performance.now()
  let count = 0
  while (performance.now() - start < ms) count += await work()
  return [count, performance.now() - start]
}

export const runIngressBenchmarks = async (report: Report): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-ingress-'))
  const registry = createEmbeddedSchemaRegistry({ subjects: heraldSubjects(TOPICS) })
  const events = sampleEvents(4_000)
  const meanBytes = Math.round(
    events.reduce((n, e) => n + encoder.encode(JSON.stringify(e)).length, 0) / events.length,
  )

  // 1. Decode + validate, one core.
  const shapes: (Shape & { label: string })[] = [
    { mode: 'structured', framing: 'plain', label: 'structured, plain JSON' },
    { mode: 'structured', framing: 'envelope', label: 'structured, wire format (envelope schema)' },
    { mode: 'structured', framing: 'type', label: 'structured, wire format (per-type schema)' },
    { mode: 'binary', framing: 'plain', label: 'binary ce_ headers, plain JSON data' },
    { mode: 'binary', framing: 'type', label: 'binary ce_ headers, wire format data' },
  ]
  for (const shape of shapes) {
    const messages = asLogMessages(await Promise.all(events.map((e) => encodeAs(registry, e, shape))))
    const decoder = createIngressDecoder({ registry })
    const batches: LogMessage[][] = []
    for (let i = 0; i < messages.length; i += 500) batches.push(messages.slice(i, i + 500))
    let rejected = 0
    const [count, ms] = await forAbout(3_000, async () => {
      let n = 0
      for (const batch of batches) {
        for (const result of await decoder.decodeBatch(batch)) if (!result.ok) rejected++
        n += batch.length
      }
      return n
    })
    if (rejected > 0)
      throw new Error(`bench: ${rejected} of the sample events were rejected (${shape.label})`)
    report(`decode+validate ${shape.label}, ~${meanBytes} B`, count, ms)
  }

  // For scale: V8's JSON.parse of the same bytes, the floor under every JSON path above.
  {
    const utf8 = new TextDecoder()
    const values = events.map((e) => encoder.encode(JSON.stringify(e)))
    const [count, ms] = await forAbout(3_000, async () => {
      for (const value of values) JSON.parse(utf8.decode(value))
      return values.length
    })
    report(`  for scale: UTF-8 decode + JSON.parse alone, ~${meanBytes} B`, count, ms)
  }

  // 2. The processed-id window on SQLite, per event: one lookup and one record per batch.
  {
    const processed = createSqliteProcessedIds({ path: join(dir, 'processed.sqlite') })
    let next = 0
    const [count, ms] = await forAbout(3_000, async () => {
      const keys = Array.from({ length: 500 }, () =>
        processedKey({ account: 'acme', source: '/b', id: `e${next++}` }),
      )
      await processed.seen(keys)
      await processed.record(keys)
      return keys.length
    })
    report('processed-id window, SQLite (seen + record, batches of 500)', count, ms)
    await processed.close()
  }

  // 3. Consuming from the Kafka protocol peer.
  const binary = join(import.meta.dirname, '../../infra/kafka-mock/build/mock-cluster')
  if (!existsSync(binary)) {
    process.stdout.write('kafka consume: skipped, the mock cluster is not built (npm run test:setup)\n')
  } else {
    const kafka = await startKafkaMock()
    const log = createKafkaEventLog({
      brokers: [...kafka.bootstrapServers],
      idempotent: false,
      consumer: { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, maxWaitTimeMs: 100 },
      logger: () => {},
    })
    try {
      // The mock keeps about 5 MB per partition and drops older messages beyond that, so the
      // sample is sized to stay under it: 96 000 events of ~850 B over 32 partitions.
      const total = 96_000
      const ends = new Map<number, number>()
      await kafka.createTopic(TOPICS.events, 32)
      const mix: Shape[] = [
        { mode: 'structured', framing: 'plain' },
        { mode: 'structured', framing: 'type' },
        { mode: 'binary', framing: 'plain' },
      ]
      for (let i = 0; i < total; i += 1_000) {
        const chunk = await Promise.all(
          Array.from({ length: 1_000 }, async (_, j) => {
            const n = i + j
            const event = events[n % events.length] as EngineEvent
            // Distinct ids, so the dedup window lets every event through; keys spread evenly.
            const message = await encodeAs(
              registry,
              { ...event, id: `${event.id}-${n}` },
              mix[n % mix.length] as Shape,
            )
            return { ...message, key: `k${n % 256}` }
          }),
        )
        for (const position of await log.publish(TOPICS.events, chunk))
          ends.set(position.partition, Math.max(ends.get(position.partition) ?? -1, position.offset))
      }
      // Done when every partition was read to its end; stalled (no batch for 15 s) is an error.
      const consume = async (
        group: string,
        handler: (batch: { partition: number; messages: readonly LogMessage[] }) => Promise<void>,
      ) => {
        let seen = 0
        let first = 0
        let last = performance.now()
        const reached = new Map<number, number>()
        const finished = () => [...ends].every(([partition, end]) => (reached.get(partition) ?? -1) >= end)
        const consumer = await log.consume(
          { groupId: group, topics: [TOPICS.events], maxBatchSize: 1_000 },
          async (batch) => {
            if (first === 0) first = performance.now()
            await handler(batch)
            seen += batch.messages.length
            last = performance.now()
            reached.set(batch.partition, batch.messages.at(-1)?.offset ?? -1)
          },
        )
        while (!finished()) {
          if (performance.now() - last > 15_000)
            throw new Error(`bench: ${group} stalled after ${seen} events`)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
        const ms = last - first
        await consumer.stop()
        return [seen, ms] as const
      }
      const [raw, rawMs] = await consume('bench-noop', async () => {})
      report('kafka consume, no-op handler (kafkajs + peer)', raw, rawMs)
      const processed = createSqliteProcessedIds({ path: join(dir, 'router-processed.sqlite') })
      const router = createRouterHandler({
        log,
        topics: { deliveries: TOPICS.deliveries, dlq: `${TOPICS.events}.dlq` },
        getIndex: () => emptySelectorIndex,
        clock: Date.now,
        logger: () => {},
        decoder: createIngressDecoder({ registry }),
        processed,
      })
      let busyMs = 0
      const [routed, routedMs] = await consume('bench-router', async (batch) => {
        const start = performance.now()
        await router({ topic: TOPICS.events, partition: batch.partition, messages: batch.messages })
        busyMs += performance.now() - start
      })
      report('kafka consume through the router (decode, validate, dedup)', routed, routedMs)
      // The router's own share: what one core could take if fetching and committing cost nothing.
      report('  of which the router handler itself (per handler-second)', routed, busyMs)
      await processed.close()
    } finally {
      await log.close()
      await kafka.stop()
    }
  }
  rmSync(dir, { recursive: true, force: true })
}

if (import.meta.main) {
  await runIngressBenchmarks((name, count, ms, unit = 'events/s') => {
    const rate = Math.round((count / ms) * 1000)
    process.stdout.write(
      `${name}: ${rate.toLocaleString('en-US')} ${unit} (${count} in ${ms.toFixed(0)} ms)\n`,
    )
  })
}
