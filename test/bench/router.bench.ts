/**
 * The router's batch handler end to end (issue 5, item 5):
 * `npx node test/bench/router.bench.ts [events] [rounds]`, and with `--cpu-prof` for a
 * profile. Engine events (~0.5–1.5 KB, the generator's mix over 100 accounts) are encoded
 * once as CloudEvents structured-mode JSON; each round feeds all of them, in batches of 500
 * as a consumer fetches them (`HERALD_BENCH_BATCH` for another size), through `createRouterHandler`: decode and validate, deduplicate
 * against a SQLite processed-id window, match 1,000 selectors (10 per account over 300
 * configurations, 1% global), encode the delivery commands and publish them durably to the
 * embedded (SQLite) log. Each round starts with a fresh window, so every event is routed.
 * Figures are printed, never asserted; the median round is the one to quote.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { loadConfig, topicPartitions } from '../../src/config/index.ts'
import { encodeLogEvent, eventTypes } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createIngressDecoder,
  createSqliteProcessedIds,
  type IngressDecoder,
  type IngressResult,
} from '../../src/ingress/index.ts'
import type { EndpointConfiguration, LevelPattern, Selector } from '../../src/notifications/index.ts'
import type { EventLog, LogMessage } from '../../src/ports/event-log.ts'
import { createDigestStore } from '../../streams/digest-store-sqlite.ts'
import { createRouterHandler } from '../../streams/router.ts'
import { buildSelectorIndex } from '../../streams/routing/selector-index.ts'
import { aConfiguration, aSelector, aSelectorSet } from '../../streams/routing/test-fixtures.ts'

const EVENTS = Number(process.argv[2] ?? 100_000)
const ROUNDS = Number(process.argv[3] ?? 5)
/**
 * `memory`: commands are counted instead of written to the SQLite log, to see the router's
 * own cost; `route-only`: that, and the events come decoded and nothing is deduplicated, to
 * see the routing alone (dedup loop, matching, command encoding).
 */
const LOG = process.argv[4] ?? 'sqlite'
/** Messages per handler call: the router's `maxBatchSize` (HERALD_BENCH_BATCH to try another). */
const BATCH = Number(process.env.HERALD_BENCH_BATCH ?? 500)
const ACCOUNTS = Array.from({ length: 100 }, (_, i) => `account-${i}`)
/** Every tenth configuration asks for digests: a storm of its events becomes one command per window. */
const DIGEST_EVERY = Number(process.env.HERALD_BENCH_DIGEST_EVERY ?? 10)

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const out = (line = '') => process.stdout.write(`${line}\n`)

// A deterministic generator, so every run measures the same workload.
let seed = 7
const random = (): number => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
  return seed / 2_147_483_648
}
const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T

const TYPES = eventTypes.map((entry) => entry.type).filter((type) => !type.startsWith('herald.report.'))
const WILDCARDS = ['user.checks.*', 'user.image.*', 'system.*', 'user.*', '*.failed', '*']
const LEVELS: LevelPattern[] = ['*', '*', '*', 'info', 'warning', 'error']

const configurations: EndpointConfiguration[] = Array.from({ length: 300 }, (_, i) =>
  aConfiguration({
    id: `cfg-${String(i).padStart(3, '0')}`,
    account: ACCOUNTS[i % ACCOUNTS.length] as string,
    digest: { enabled: DIGEST_EVERY > 0 && i % DIGEST_EVERY === 0, windowSeconds: 30 },
  }),
)
const selectors: Selector[] = Array.from({ length: 1_000 }, (_, i) => {
  const global = i < 10
  const configuration = (
    global ? configurations[0] : configurations[i % configurations.length]
  ) as EndpointConfiguration
  return aSelector(
    { type: random() < 0.7 ? pick(TYPES) : pick(WILDCARDS), level: pick(LEVELS) },
    {
      id: `sel-${String(i).padStart(4, '0')}`,
      configurationId: configuration.id,
      account: configuration.account,
      scope: global ? 'global' : 'account',
    },
  )
})
const index = buildSelectorIndex(aSelectorSet(configurations, selectors))

const events = [
  ...generateActivity({ seed: 42, accounts: ACCOUNTS, count: EVENTS, clock: () => Date.UTC(2026, 10, 22) }),
]
const messages: LogMessage[] = events.map((event, offset) => {
  const m = encodeLogEvent(event)
  return {
    topic: 'engine.events',
    partition: 0,
    offset,
    key: m.key,
    value: m.value,
    headers: m.headers ?? {},
    timestamp: 0,
  }
})
const bytes = messages.reduce((n, m) => n + m.value.length, 0) / messages.length

const dir = mkdtempSync(join(tmpdir(), 'herald-router-bench-'))
const sqliteLog = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite') })
let published = 0
const log: Pick<EventLog, 'publish'> =
  LOG !== 'sqlite'
    ? {
        publish: async (_topic, messages) => {
          published += messages.length
          return []
        },
      }
    : sqliteLog
// As many partitions as Herald makes on its embedded log.
const partitions = topicPartitions(loadConfig({ env: {}, cwd: tmpdir() }).event_log)
await sqliteLog.createTopics([
  { topic: 'notifications.deliveries', partitions },
  { topic: 'engine.events.dlq', partitions },
])
const realDecoder = createIngressDecoder()
const decoded = LOG === 'route-only' ? await realDecoder.decodeBatch(messages) : []
const decoder: IngressDecoder =
  LOG === 'route-only'
    ? {
        decodeBatch: async (batch) => batch.map((m) => decoded[m.offset] as IngressResult),
        remember: () => undefined,
      }
    : realDecoder
let deliveries = 0
let digested = 0

const cpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1_000
}

/** Events per wall-clock second and per CPU-second of this process. */
const round = async (n: number): Promise<[number, number]> => {
  const processed =
    LOG === 'route-only' ? undefined : createSqliteProcessedIds({ path: join(dir, `processed-${n}.sqlite`) })
  const digests = createDigestStore({ path: join(dir, `digests-${n}.sqlite`) })
  const handler = createRouterHandler({
    log,
    topics: { deliveries: 'notifications.deliveries', dlq: 'engine.events.dlq' },
    getIndex: () => index,
    clock: Date.now,
    logger: () => {},
    decoder,
    ...(processed === undefined ? {} : { processed }),
    digests: { store: digests, defaultWindowSeconds: 30 },
    onRouted: (counts) => {
      deliveries += counts.deliveries
      digested += counts.digested
    },
  })
  const started = performance.now()
  const cpuStarted = cpuMs()
  for (let i = 0; i < messages.length; i += BATCH)
    await handler({ topic: 'engine.events', partition: 0, messages: messages.slice(i, i + BATCH) })
  const ms = performance.now() - started
  const cpu = cpuMs() - cpuStarted
  await processed?.close()
  await digests.close()
  return [(messages.length / ms) * 1_000, (messages.length / cpu) * 1_000]
}

out(
  `router handler: ${fmt(messages.length)} events (~${fmt(bytes)} B), ${index.size} selectors over ${ACCOUNTS.length} accounts, ` +
    `${configurations.filter((c) => c.digest.enabled).length} of ${configurations.length} configurations with digests, ` +
    `commands to ${LOG === 'sqlite' ? 'the SQLite log' : `memory (${LOG})`}`,
)
await round(-1) // warm-up: JIT, the decoder's compiled validators, the log's pages
deliveries = 0
digested = 0
const rates: number[] = []
const cpuRates: number[] = []
for (let n = 0; n < ROUNDS; n++) {
  const [rate, perCpu] = await round(n)
  rates.push(rate)
  cpuRates.push(perCpu)
  out(`  round ${n + 1}: ${fmt(rate)} events/s wall, ${fmt(perCpu)} per CPU-second`)
}
rates.sort((a, b) => a - b)
cpuRates.sort((a, b) => a - b)
out(
  `median ${fmt(rates[rates.length >> 1] as number)} events/s wall (best ${fmt(rates[rates.length - 1] as number)}), ` +
    `${fmt(cpuRates[cpuRates.length >> 1] as number)} per CPU-second; ` +
    `${(deliveries / ROUNDS / messages.length).toFixed(2)} commands and ${(digested / ROUNDS / messages.length).toFixed(2)} digest entries per event`,
)
if (LOG !== 'sqlite') out(`${fmt(published)} messages published to memory`)
await sqliteLog.close()
rmSync(dir, { recursive: true, force: true })
