/**
 * Herald's benchmarks: `npm run bench`. Each case runs for a bounded time on this machine and
 * prints throughput; figures are reported in notes, never asserted in tests.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { decodeCloudEvent, encodeLogEvent } from '../../src/events/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import type { LogMessage } from '../../src/ports/event-log.ts'
import { runIngressBenchmarks } from './ingress.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-bench-'))
const results: { case: string; value: string }[] = []
/** Adds a figure to the closing table. */
const record = (name: string, count: number, ms: number, unit = 'events/s') => {
  const rate = Math.round((count / ms) * 1000)
  results.push({ case: name, value: `${rate.toLocaleString('en-US')} ${unit}` })
  return rate
}
/** Prints a figure, and adds it to the closing table. */
const report = (name: string, count: number, ms: number, unit = 'events/s') => {
  const rate = record(name, count, ms, unit)
  process.stdout.write(`${name}: ${rate.toLocaleString('en-US')} ${unit} (${count} in ${ms.toFixed(0)} ms)\n`)
}

/** A ~1 KB engine event, like an analysis-completed notification with a short payload. */
const sampleEvent = (i: number) => ({
  specversion: '1.0' as const,
  id: `evt-${i}-${randomUUID()}`,
  source: '/engine/analyzer',
  type: 'user.image.analysis.completed',
  account: `account-${i % 20}`,
  time: new Date(Date.UTC(2026, 10, 22, 10, 0, 0, i)).toISOString(),
  level: 'info' as const,
  resourcetype: 'image',
  subject: `sha256:${i.toString(16).padStart(64, '0')}`,
  data: {
    digest: `sha256:${i.toString(16).padStart(64, '0')}`,
    registry: 'registry.example.com',
    repository: 'platform/payments-service',
    tag: `v1.${i % 100}.0`,
    distro: 'debian:12',
    packages: 412,
    summary: { critical: 1, high: 7, medium: 22, low: 40, negligible: 3, unknown: 0 },
    annotations: { team: 'payments', pipeline: 'build-and-scan', note: 'x'.repeat(420) },
  },
})

const timed = async (work: () => Promise<number> | number): Promise<[number, number]> => {
  const start = performance.now()
  const count = await work()
  return [count, performance.now() - start]
}

// 1. The CloudEvents envelope alone from JSON bytes, one core; the whole event contract from
// every wire format is measured in test/bench/ingress.ts.
{
  const encoder = new TextEncoder()
  const decoder = new TextDecoder()
  const frames = Array.from({ length: 5_000 }, (_, i) => encoder.encode(JSON.stringify(sampleEvent(i))))
  const bytes = frames.reduce((n, f) => n + f.length, 0) / frames.length
  for (const f of frames) decodeCloudEvent(JSON.parse(decoder.decode(f)))
  const [count, ms] = await timed(() => {
    let n = 0
    const deadline = performance.now() + 2_000
    while (performance.now() < deadline) {
      for (const frame of frames) if (decodeCloudEvent(JSON.parse(decoder.decode(frame))).ok) n++
    }
    return n
  })
  report(`envelope decode+validate only (${Math.round(bytes)} B JSON)`, count, ms)
}

// 2. Embedded log: durable publish in batches of 500, then consumer groups reading it all (in
// batches of 1,000 and of 100).
{
  const log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 10 })
  await log.createTopics([{ topic: 'engine.events', partitions: 3 }])
  const messages = Array.from({ length: 500 }, (_, i) => encodeLogEvent(sampleEvent(i)))
  const [published, publishMs] = await timed(async () => {
    for (let i = 0; i < 100; i++) await log.publish('engine.events', messages)
    return 50_000
  })
  report('embedded log publish (batches of 500)', published, publishMs)
  // As `POST /v1/events` under load publishes: four requests of 250 at a time. Also how busy
  // the event loop was meanwhile (the rest of the time it could serve other work).
  {
    const quarter = messages.slice(0, 250)
    const loopBefore = performance.eventLoopUtilization()
    const [concurrent, concurrentMs] = await timed(async () => {
      for (let i = 0; i < 50; i++) {
        await Promise.all([1, 2, 3, 4].map(() => log.publish('engine.events', quarter)))
        // Requests come in turns of the loop of their own, which also lets it count its time.
        await new Promise((resolve) => setImmediate(resolve))
      }
      return 50_000
    })
    report('embedded log publish (4 at once, 250 each)', concurrent, concurrentMs)
    const busy = performance.eventLoopUtilization(loopBefore).utilization
    process.stdout.write(`  event loop busy ${(busy * 100).toFixed(0)}% meanwhile\n`)
  }
  // One group reading all that was published (both publish cases), in batches of `maxBatchSize`.
  const consumeAll = (groupId: string, maxBatchSize: number) =>
    timed(async () => {
      let n = 0
      await new Promise<void>((resolve) => {
        void log.consume({ groupId, topics: ['engine.events'], maxBatchSize }, async (batch) => {
          n += batch.messages.length
          if (n >= published * 2) resolve()
        })
      })
      return n
    })
  report('embedded log consume', ...(await consumeAll('bench', 1_000)))
  // The router's batches under load hold about a hundred events: an offset commit per hundred.
  report('embedded log consume, batches of 100', ...(await consumeAll('bench-small', 100)))
  await log.close()
}

// 3. Projector: decode + build rows + tokened insert into chDB, in batches of 1000.
{
  const warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
  await migrate(warehouse, warehouseMigrations)
  const handler = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
  const batches = Array.from({ length: 30 }, (_, b) => ({
    topic: 'engine.events',
    partition: 0,
    messages: Array.from({ length: 1_000 }, (_, i): LogMessage => {
      const offset = b * 1_000 + i
      return {
        topic: 'engine.events',
        partition: 0,
        offset,
        timestamp: Date.now(),
        headers: {},
        ...encodeLogEvent(sampleEvent(offset)),
      }
    }),
  }))
  const [projected, projectMs] = await timed(async () => {
    for (const batch of batches) await handler(batch)
    return 30_000
  })
  report('projector into chDB (batches of 1000)', projected, projectMs)
  await warehouse.close()
}

// 4. Kafka ingress: wire-format decode + validate per core, the processed-id window, and
// consuming from the Kafka protocol peer (test/bench/ingress.ts, which prints its own tables
// against issue 3's targets).
await runIngressBenchmarks(record)

rmSync(dir, { recursive: true, force: true })
process.stdout.write(`\n${results.map((r) => `| ${r.case} | ${r.value} |`).join('\n')}\n`)
