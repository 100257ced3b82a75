/**
 * Kafka ingress benchmarks for issue 3's targets (part of `npm run bench`; alone:
 * `node test/bench/ingress.ts [ms per decode case]`). Figures are printed, never asserted.
 *
 * 1. decode + validate per core: ~850 B engine events from the wire, through the router's
 *    decoder (header mode, frame, payload — UTF-8 and JSON, or Avro — the writer schema,
 *    the event contract) in batches of 500, each batch's values views of one buffer as kafkajs
 *    hands a fetch over, on one thread. Rates are per CPU-second of this
 *    process, so the other work on a shared machine skews them less than wall time would;
 *    each case runs in five rounds, each paired with a run of UTF-8 decode + JSON.parse of the
 *    same events as plain JSON just before it (the floor under every JSON path); the medians of
 *    the rates and of the paired ratios are shown beside the target of 200,000 events/s.
 * 2. the processed-id window on SQLite (lookup + record per batch of 500).
 * 3. consuming 96,000 events over 32 partitions from the Kafka protocol peer, after an
 *    unreported warm-up on 32,000 others, with the same kafkajs settings throughout: raw
 *    kafkajs (eachBatch, resolve, commit: the floor), the EventLog adapter with a no-op
 *    handler, and the adapter with the full router handler (decode, validate, dedup against
 *    SQLite, route against an empty index), each with the adapter's defaults and with its
 *    throughput settings. Rates are wall-clock, and per CPU-second of this process (the
 *    consumer's own cost); the target is 50,000 events/s.
 *
 * The mock cluster answers a fetch with at most one producer batch per partition, where a
 * broker returns up to `maxBytesPerPartition` (1 MiB, ~1,200 of these events). Under backlog —
 * when a consumer's throughput is what matters — a broker's fetches are full; so the backlog is
 * published in sends of 16,000 (~500 events per partition per fetch). The same events sent
 * 1,000 at a time (~31 per partition per fetch: a producer's small batches, replayed by a mock
 * that cannot merge them) are measured too, as the worst case.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { createKafkaEventLog, type KafkaConsumerTimings } from '../../src/adapters/kafka-event-log/index.ts'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createConfluentSchemaRegistry,
  createIngressDecoder,
  createSqliteProcessedIds,
  heraldAvroSubjects,
  heraldSubjects,
  processedKey,
  registerSubjects,
  type SchemaRegistry,
  toKafkaMessage,
} from '../../src/ingress/index.ts'
import type { LogMessage, OutgoingMessage } from '../../src/ports/event-log.ts'
import { createRouterHandler } from '../../streams/router.ts'
import { emptySelectorIndex } from '../../streams/routing/index.ts'
import { startKafkaMock } from '../support/kafka-mock.ts'
import { startSchemaRegistry } from '../support/schema-registry.ts'
import { median } from './ab.ts'

export type Report = (name: string, count: number, ms: number, unit?: string) => void

const DECODE_TARGET = 200_000
const ROUNDS = 5
const CONSUME_TARGET = 50_000
const TOPICS = {
  events: 'engine.events',
  deliveries: 'notifications.deliveries',
  outcomes: 'notifications.outcomes',
  metrics: 'reports.metrics',
}
const encoder = new TextEncoder()
const out = (line = '') => process.stdout.write(`${line}\n`)
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1_000
}
const verdict = (rate: number, target: number) =>
  rate >= target ? `meets ${fmt(target)}` : `${Math.round((rate / target) * 100)}% of ${fmt(target)}`

/** The generator's mix of engine activity, kept to events of 0.5–1.5 KB: "~1 KB events". */
const sampleEvents = (count: number): EngineEvent[] =>
  [...generateActivity({ seed: 42, accounts: 20, count: count * 4, clock: () => Date.UTC(2026, 10, 22) })]
    .filter((event) => {
      const size = encoder.encode(JSON.stringify(event)).length
      return size >= 512 && size <= 1536
    })
    .slice(0, count)

type Framing = 'plain' | 'json-envelope' | 'json' | 'avro'
interface Shape {
  readonly mode: 'structured' | 'binary'
  readonly framing: Framing
  readonly label: string
}

// A producer looks each subject's id up once.
const latestIds = new Map<string, Promise<number>>()
const latestId = (registry: SchemaRegistry, subject: string): Promise<number> => {
  let id = latestIds.get(subject)
  if (id === undefined) {
    id = registry.latestId(subject)
    latestIds.set(subject, id)
  }
  return id
}

/** A message as producers write it: CloudEvents structured or binary mode, plain or framed. */
const encodeAs = async (
  registry: SchemaRegistry,
  event: EngineEvent,
  shape: Shape,
): Promise<OutgoingMessage> => {
  const { mode, framing } = shape
  const type = event.type
  if (framing === 'plain') return toKafkaMessage(event, { mode })
  if (framing === 'avro') {
    // A Confluent Avro serializer: the frame and Avro of the subject's record; no content type
    // in structured mode (read as structured), the data's own in binary mode.
    const subject = mode === 'binary' ? `${TOPICS.events}-${type}.Data` : `${TOPICS.events}-${type}.Event`
    const value = await registry.encode(
      await latestId(registry, subject),
      mode === 'binary' ? event.data : event,
    )
    const { headers = {} } = toKafkaMessage(event, { mode })
    return { key: event.account, value, headers: mode === 'binary' ? headers : {} }
  }
  const subject =
    mode === 'binary'
      ? `${TOPICS.events}-${type}-data`
      : framing === 'json-envelope'
        ? `${TOPICS.events}-value`
        : `${TOPICS.events}-${type}`
  return toKafkaMessage(event, { mode, schemaId: await latestId(registry, subject) })
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

/**
 * The batch as kafkajs hands it over: each value a view of the one fetch response it came in,
 * not a buffer of its own.
 */
const asFetched = (messages: readonly LogMessage[]): LogMessage[] => {
  const fetched = Buffer.concat(messages.map((m) => m.value))
  let at = 0
  return messages.map((m) => {
    const value = fetched.subarray(at, at + m.value.length)
    at += m.value.length
    return { ...m, value }
  })
}

/** Events per CPU-second of `work` (which returns how many it handled), run for about `ms`. */
const perCpuSecond = async (ms: number, work: () => Promise<number> | number): Promise<number> => {
  await work()
  const wallStart = performance.now()
  const cpuStart = cpuMs()
  let count = 0
  while (performance.now() - wallStart < ms) count += await work()
  return (count / (cpuMs() - cpuStart)) * 1_000
}

const SHAPES: readonly Shape[] = [
  { mode: 'structured', framing: 'plain', label: 'structured, plain JSON' },
  { mode: 'structured', framing: 'json-envelope', label: 'structured, wire format, JSON Schema (envelope)' },
  { mode: 'structured', framing: 'json', label: 'structured, wire format, JSON Schema (per type)' },
  { mode: 'structured', framing: 'avro', label: 'structured, wire format, Avro (per type)' },
  { mode: 'binary', framing: 'plain', label: 'binary ce_ headers, plain JSON data' },
  { mode: 'binary', framing: 'json', label: 'binary ce_ headers, wire format, JSON Schema data' },
  { mode: 'binary', framing: 'avro', label: 'binary ce_ headers, wire format, Avro data' },
]

const decodeBenchmarks = async (
  registry: SchemaRegistry,
  events: readonly EngineEvent[],
  meanBytes: number,
  report: Report,
  caseMs: number,
) => {
  const cases = await Promise.all(
    SHAPES.map(async (shape) => {
      const messages = asLogMessages(await Promise.all(events.map((e) => encodeAs(registry, e, shape))))
      // Each batch's values views of one buffer, as kafkajs hands a fetch over. The decoder is
      // a Kafka consumer's, which keeps nothing (no `keepDecoded`): every pass decodes again.
      const batches: (readonly LogMessage[])[] = []
      for (let i = 0; i < messages.length; i += 500) batches.push(asFetched(messages.slice(i, i + 500)))
      const bytes = messages.reduce((n, m) => n + m.value.length, 0) / messages.length
      return {
        shape,
        batches,
        bytes,
        decoder: createIngressDecoder({ registry }),
        rates: [] as number[],
        ratios: [] as number[],
      }
    }),
  )
  const utf8 = new TextDecoder()
  const plain = events.map((e) => encoder.encode(JSON.stringify(e)))
  const baseline: number[] = []
  const parseAll = () => {
    for (const value of plain) JSON.parse(utf8.decode(value))
    return plain.length
  }
  // Each measurement of a case is paired with one of the baseline just before it, so their
  // ratio holds even when the machine's other load changes between rounds.
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const floor = await perCpuSecond(caseMs, parseAll)
      baseline.push(floor)
      const rate = await perCpuSecond(caseMs, async () => {
        let n = 0
        for (const batch of c.batches) {
          for (const result of await c.decoder.decodeBatch(batch)) {
            if (!result.ok)
              throw new Error(
                `bench: a sample event was rejected (${c.shape.label}): ${result.failure.message}`,
              )
          }
          n += batch.length
        }
        return n
      })
      c.rates.push(rate)
      c.ratios.push(rate / floor)
    }
  }
  const floor = median(baseline)
  out(
    `\n## Decode + validate per core (~${meanBytes} B events as JSON; batches of 500; events per CPU-second, median of ${ROUNDS} rounds)`,
  )
  out(
    `  baseline: UTF-8 decode + JSON.parse alone of the same events: ${fmt(floor)}/s (from ${fmt(Math.min(...baseline))} to ${fmt(Math.max(...baseline))})`,
  )
  out(`  ${'case'.padEnd(58)} ${'events/s'.padStart(9)}  ${'× JSON.parse'.padStart(12)}  target`)
  for (const c of cases) {
    const rate = median(c.rates)
    const ratio = median(c.ratios)
    out(
      `  ${`${c.shape.label} (${Math.round(c.bytes)} B)`.padEnd(58)} ${fmt(rate).padStart(9)}  ${ratio.toFixed(2).padStart(12)}  ${verdict(rate, DECODE_TARGET)}`,
    )
    report(`decode+validate ${c.shape.label} (× JSON.parse ${ratio.toFixed(2)})`, rate, 1_000)
  }
  out("  (× JSON.parse: the median of each round's ratio to the baseline measured just before it)")
  report('  for scale: UTF-8 decode + JSON.parse alone', floor, 1_000)
}

/** Settings every consumer of the comparison shares; sized to the mock (see kafka-mock.ts). */
const FETCH = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, maxWaitTimeMs: 100 } as const
// The adapter's throughput settings: commits gathered over a second, four partitions at once.
const TUNED = { commitIntervalMs: 1_000, partitionsConsumedConcurrently: 4 } as const

interface Consumed {
  readonly count: number
  readonly wallMs: number
  readonly cpuMs: number
  readonly handlerMs: number
}

const consumeBenchmarks = async (
  registry: SchemaRegistry,
  events: readonly EngineEvent[],
  dir: string,
  report: Report,
) => {
  const binary = join(import.meta.dirname, '../../infra/kafka-mock/build/mock-cluster')
  if (!existsSync(binary)) {
    out('\nkafka consume: skipped, the mock cluster is not built (npm run test:setup)')
    return
  }
  const kafka = await startKafkaMock()
  const logOf = (consumer: KafkaConsumerTimings) =>
    createKafkaEventLog({
      brokers: [...kafka.bootstrapServers],
      idempotent: false,
      consumer,
      logger: () => {},
    })
  const publisher = logOf(FETCH)
  const total = 96_000
  // The mix of the figures before: structured JSON, structured JSON Schema wire format, binary JSON.
  const mix: Shape[] = [SHAPES[0], SHAPES[2], SHAPES[4]] as Shape[]
  const topics = {
    backlog: `${TOPICS.events}.backlog`,
    small: `${TOPICS.events}.small`,
    warmUp: `${TOPICS.events}.warm-up`,
  }
  const ends = new Map<string, Map<number, number>>()
  const counts = new Map<string, number>()
  try {
    for (const [topic, send, count] of [
      [topics.backlog, 16_000, total],
      [topics.small, 1_000, total],
      [topics.warmUp, 16_000, 32_000],
    ] as const) {
      await kafka.createTopic(topic, 32)
      counts.set(topic, count)
      const last = new Map<number, number>()
      for (let i = 0; i < count; i += send) {
        const chunk = await Promise.all(
          Array.from({ length: send }, async (_, j) => {
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
        for (const p of await publisher.publish(topic, chunk))
          last.set(p.partition, Math.max(last.get(p.partition) ?? -1, p.offset))
      }
      ends.set(topic, last)
    }

    let group = 0
    /** Consumes `topic` to its end; done when every partition was read to its last offset. */
    const consume = async (
      topic: string,
      start: (
        onBatch: (partition: number, lastOffset: number, count: number) => void,
      ) => Promise<{ stop: () => Promise<void>; handlerMs?: () => number }>,
    ): Promise<Consumed> => {
      const end = ends.get(topic) as Map<number, number>
      const reached = new Map<number, number>()
      let seen = 0
      let first = 0
      let last = 0
      let cpuFirst = 0
      let cpuLast = 0
      let finished: () => void = () => {}
      const done = new Promise<void>((resolve) => {
        finished = resolve
      })
      const running = await start((partition, lastOffset, count) => {
        if (first === 0) {
          first = performance.now()
          cpuFirst = cpuMs()
        }
        seen += count
        reached.set(partition, lastOffset)
        last = performance.now()
        cpuLast = cpuMs()
        if ([...end].every(([p, offset]) => (reached.get(p) ?? -1) >= offset)) finished()
      })
      const stall = setInterval(() => {
        if (first !== 0 && performance.now() - last > 15_000) finished()
      }, 1_000)
      await done
      clearInterval(stall)
      await running.stop()
      if (seen < (counts.get(topic) ?? total))
        throw new Error(`bench: consuming ${topic} stalled after ${seen} events`)
      return {
        count: seen,
        wallMs: last - first,
        cpuMs: cpuLast - cpuFirst,
        handlerMs: running.handlerMs?.() ?? 0,
      }
    }

    const raw = (topic: string) =>
      consume(topic, async (onBatch) => {
        const client = new kafkajs.Kafka({
          brokers: [...kafka.bootstrapServers],
          logLevel: kafkajs.logLevel.NOTHING,
        })
        const consumer = client.consumer({
          groupId: `bench-raw-${group++}`,
          sessionTimeout: FETCH.sessionTimeoutMs,
          heartbeatInterval: FETCH.heartbeatIntervalMs,
          maxWaitTimeInMs: FETCH.maxWaitTimeMs,
        })
        await consumer.connect()
        await consumer.subscribe({ topics: [topic], fromBeginning: true })
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
            const lastMessage = batch.messages.at(-1)
            if (lastMessage === undefined) return
            resolveOffset(lastMessage.offset)
            await commitOffsetsIfNecessary({
              topics: [
                {
                  topic,
                  partitions: [
                    { partition: batch.partition, offset: String(Number(lastMessage.offset) + 1) },
                  ],
                },
              ],
            })
            onBatch(batch.partition, Number(lastMessage.offset), batch.messages.length)
          },
        })
        return { stop: () => consumer.disconnect() }
      })

    const adapter = (topic: string, settings: KafkaConsumerTimings, routed: boolean) =>
      consume(topic, async (onBatch) => {
        const log = logOf({ ...FETCH, ...settings })
        const processed = createSqliteProcessedIds({ path: join(dir, `processed-${group}.sqlite`) })
        const router = createRouterHandler({
          log,
          topics: { deliveries: TOPICS.deliveries, dlq: `${TOPICS.events}.dlq` },
          getIndex: () => emptySelectorIndex,
          clock: Date.now,
          logger: () => {},
          decoder: createIngressDecoder({ registry }),
          processed,
        })
        // With partitions handled at once, handler times overlap and say nothing per handler.
        const timed = routed && (settings.partitionsConsumedConcurrently ?? 1) === 1
        let handlerMs = 0
        const consumer = await log.consume(
          { groupId: `bench-adapter-${group++}`, topics: [topic], maxBatchSize: 1_000 },
          async (batch) => {
            if (routed) {
              const start = performance.now()
              await router(batch)
              if (timed) handlerMs += performance.now() - start
            }
            onBatch(batch.partition, batch.messages.at(-1)?.offset ?? -1, batch.messages.length)
          },
        )
        return {
          stop: async () => {
            await consumer.stop()
            await log.close()
            await processed.close()
          },
          handlerMs: () => handlerMs,
        }
      })

    // Unreported: lets V8 compile kafkajs's, the adapter's and the router's code before the
    // first measured run, which would otherwise pay for it.
    await raw(topics.warmUp)
    await adapter(topics.warmUp, {}, true)

    const runs: { label: string; run: () => Promise<Consumed> }[] = [
      { label: 'raw kafkajs (eachBatch, resolve, commit)', run: () => raw(topics.backlog) },
      { label: 'adapter, no-op handler, defaults', run: () => adapter(topics.backlog, {}, false) },
      {
        label: 'adapter, no-op handler, throughput settings',
        run: () => adapter(topics.backlog, TUNED, false),
      },
      { label: 'adapter + router, defaults', run: () => adapter(topics.backlog, {}, true) },
      { label: 'adapter + router, throughput settings', run: () => adapter(topics.backlog, TUNED, true) },
      { label: 'small batches: adapter + router, defaults', run: () => adapter(topics.small, {}, true) },
      {
        label: 'small batches: adapter + router, throughput settings',
        run: () => adapter(topics.small, TUNED, true),
      },
    ]
    out(
      `\n## Kafka consume from the protocol peer (${fmt(total)} events over 32 partitions; JSON mix: structured, JSON Schema wire format, binary)`,
    )
    out(
      `  settings: maxWaitTime ${FETCH.maxWaitTimeMs} ms, maxBatchSize 1,000; throughput settings: commitIntervalMs ${TUNED.commitIntervalMs}, partitionsConsumedConcurrently ${TUNED.partitionsConsumedConcurrently}`,
    )
    out(
      `  ${'case'.padEnd(54)} ${'wall/s'.padStart(8)} ${'per CPU-s'.padStart(10)} ${'handler/s'.padStart(10)}  target (per CPU-s)`,
    )
    for (const { label, run } of runs) {
      const r = await run()
      const wall = (r.count / r.wallMs) * 1_000
      const cpu = (r.count / r.cpuMs) * 1_000
      const handler = r.handlerMs > 0 ? fmt((r.count / r.handlerMs) * 1_000) : '-'
      out(
        `  ${label.padEnd(54)} ${fmt(wall).padStart(8)} ${fmt(cpu).padStart(10)} ${handler.padStart(10)}  ${verdict(cpu, CONSUME_TARGET)}`,
      )
      report(`kafka consume: ${label}`, r.count, r.wallMs)
    }
    out("  (wall/s: events per second of the run; per CPU-s: per second of this process's CPU, what one")
    out('   core of its own would take; handler/s: the router handler alone, per second it ran)')
  } finally {
    await publisher.close()
    await kafka.stop()
  }
}

export const runIngressBenchmarks = async (report: Report, caseMs = 500): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-ingress-'))
  const standIn = await startSchemaRegistry()
  const registry = createConfluentSchemaRegistry({ url: standIn.url })
  try {
    await registerSubjects(registry, [...heraldSubjects(TOPICS), ...heraldAvroSubjects(TOPICS)])
    const events = sampleEvents(4_000)
    const meanBytes = Math.round(
      events.reduce((n, e) => n + encoder.encode(JSON.stringify(e)).length, 0) / events.length,
    )

    await decodeBenchmarks(registry, events, meanBytes, report, caseMs)

    // The processed-id window on SQLite, per event: one lookup and one record per batch.
    {
      const processed = createSqliteProcessedIds({ path: join(dir, 'processed.sqlite') })
      let next = 0
      const start = performance.now()
      let count = 0
      while (performance.now() - start < 3_000) {
        const keys = Array.from({ length: 500 }, () =>
          processedKey({ account: 'acme', source: '/b', id: `e${next++}` }),
        )
        await processed.seen(keys)
        await processed.record(keys)
        count += keys.length
      }
      out(
        `\n## Processed-id window, SQLite (seen + record, batches of 500): ${fmt((count / (performance.now() - start)) * 1_000)} events/s`,
      )
      report('processed-id window, SQLite (seen + record, batches of 500)', count, performance.now() - start)
      await processed.close()
    }

    await consumeBenchmarks(registry, events, dir, report)
  } finally {
    await registry.close()
    await standIn.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  await runIngressBenchmarks(() => {}, Number(process.argv[2] ?? 500))
}
