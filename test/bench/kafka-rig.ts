/**
 * What the Kafka benchmarks share (kafka-routing.bench.ts, kafka-soak.ts): a real Herald
 * process on the Kafka protocol peer with 1,000 selectors over 100 accounts created through
 * its REST API, a webhook stand-in for the deliverer, a producer, an independent consumer of
 * `notifications.deliveries`, and readings of Herald's CPU, memory and consumer lag.
 */
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import kafkajs from 'kafkajs'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { buildPatternIndex, compileAnchoreSelector } from '../../src/index.ts'
import { binaryMessage, structuredMessage } from '../support/cloudevents-kafka.ts'
import { heraldApi, type SelectorBody } from '../support/herald-api.ts'
import { HERALD_TOPICS, type HeraldOnKafka, startHeraldOnKafka } from '../support/herald-on-kafka.ts'
import { type CollectedMessage, type Collector, collectTopic } from '../support/kafka-collector.ts'
import { spawnWebhookSink, type WebhookSink } from '../support/webhook-sink.ts'
import { procStat } from './proc.ts'

export const ACCOUNTS: readonly string[] = Array.from({ length: 100 }, (_, i) => `account-${i}`)
export const CONFIGURATIONS_PER_ACCOUNT = 3
export const SELECTORS = 1_000
export const GLOBAL_SELECTORS = 10

export const out = (line = '') => process.stdout.write(`${line}\n`)
export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–'

/** Reads `--name value` flags; a bare `--name` is `true`. */
export const flags = (argv: readonly string[]): Map<string, string> => {
  const found = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (!arg.startsWith('--')) continue
    const next = argv[i + 1]
    if (next === undefined || next.startsWith('--')) found.set(arg.slice(2), 'true')
    else {
      found.set(arg.slice(2), next)
      i++
    }
  }
  return found
}

/** `30s`, `10m`, `1h`, `500ms`, or a bare number of seconds, in ms. */
export const parseDuration = (text: string): number => {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) throw new Error(`not a duration: ${text} (try 30s, 10m)`)
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h']
  return Number(match[1]) * unit
}

/** Resident and peak memory (kB) and CPU time (ms) of a process, from /proc. */
export const processStats = (pid: number): { rssKb: number; peakKb: number; cpuMs: number } => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssKb: kb('VmRSS'), peakKb: kb('VmHWM'), cpuMs: procStat(`/proc/${pid}/stat`).cpuMs }
}

export const machine = () =>
  `${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ')} (1/5/15 min) at start`

/** A deterministic generator, so every run measures the same selectors. */
const lcg = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
  return seed / 2_147_483_648
}

interface PlannedSelector {
  readonly configuration: number
  readonly body: SelectorBody
}

/**
 * The selector workload of the matching benchmark, made real: 990 account selectors over 300
 * webhook configurations of 100 accounts and 10 global ones on one admin configuration. Types
 * are 70% exact catalog types, 30% wildcards; levels and resource types mostly `*`.
 */
const planSelectors = (types: readonly string[]) => {
  const random = lcg(7)
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T
  const wildcards = ['user.checks.*', 'user.image.*', 'system.*', 'user.*', '*.failed', '*']
  const levels = ['*', '*', '*', 'info', 'warning', 'error']
  const resourceTypes = ['*', '*', '*', '*', 'image_tag', 'image_digest']
  const configurations = ACCOUNTS.flatMap((account) =>
    Array.from({ length: CONFIGURATIONS_PER_ACCOUNT }, () => account),
  )
  const adminConfiguration = configurations.length
  const selectors: PlannedSelector[] = Array.from({ length: SELECTORS }, (_, i) => {
    const global = i >= SELECTORS - GLOBAL_SELECTORS
    return {
      configuration: global ? adminConfiguration : i % configurations.length,
      body: {
        scope: global ? 'global' : 'account',
        event: {
          type: random() < 0.7 ? pick(types) : pick(wildcards),
          level: pick(levels),
          resource_type: pick(resourceTypes),
        },
      },
    }
  })
  return { owners: [...configurations, 'admin'], selectors }
}

/** Runs `work` over `items`, at most `limit` at a time. */
const inParallel = async <T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>) => {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++
        results[i] = await work(items[i] as T)
      }
    }),
  )
  return results
}

export interface RoutingRig {
  readonly herald: () => HeraldOnKafka['herald']
  readonly rig: HeraldOnKafka
  readonly sink: WebhookSink
  readonly producer: kafkajs.Producer
  readonly admin: kafkajs.Admin
  /** The independent consumer of `notifications.deliveries`, from the moment the rig is ready. */
  readonly deliveries: Collector
  /** Commands read since the last `resetCount`, and when the last one arrived. */
  commandsSince(): { count: number; lastAt: number }
  /** Commands read since the rig was ready that the webhook stand-in has not received yet. */
  undelivered(): Promise<number>
  resetCount(): void
  /** Subscribes to every command the collector reads. */
  onCommands(listener: ((messages: readonly CollectedMessage[]) => void) | undefined): void
  /** The generator's events over the 100 accounts (and the admin's system events). */
  readonly pool: readonly EngineEvent[]
  /** Commands Herald should publish for `pool[i]`: configurations with a matching selector. */
  readonly expected: readonly number[]
  /** The n-th event of a run: the pool, round and round. */
  event(n: number): EngineEvent
  /** Commands Herald should publish for `event(n)`. */
  expectedFor(n: number): number
  readonly setupMs: number
  /** Herald's log lines `keepLog` chose, within half a second of their writing. */
  readonly log: readonly Record<string, unknown>[]
  close(): Promise<void>
}

/** A message of `event` under a fresh `id`: structured mode for even `n`, binary for odd. */
export const encodeAs = (event: EngineEvent, id: string, n: number): kafkajs.Message =>
  n % 2 === 0 ? structuredMessage({ ...event, id }) : binaryMessage({ ...event, id })

/**
 * Consumer lag of `groupId` on `topic` (end offsets minus committed), what the log dropped
 * unread, and what it `held` now over all partitions (high watermark minus log start).
 */
export const lagOf = async (admin: kafkajs.Admin, groupId: string, topic: string) => {
  const [ends, [committed]] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ])
  const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  let lag = 0
  let droppedUnread = 0
  let held = 0
  for (const end of ends) {
    const high = Number(end.high)
    const low = Number(end.low)
    const offset = at.get(end.partition) ?? -1
    lag += high - (offset < 0 ? low : Math.max(offset, low))
    if (offset >= 0 && offset < low) droppedUnread += low - offset
    held += high - low
  }
  return { lag, droppedUnread, held }
}

/** The lag of Herald's groups: router and projector on `engine.events`, deliverer on `notifications.deliveries`. */
export const heraldLags = async (admin: kafkajs.Admin) => {
  const [router, projector, deliverer] = await Promise.all([
    lagOf(admin, 'herald-router', HERALD_TOPICS.events),
    lagOf(admin, 'herald-projector', HERALD_TOPICS.events),
    lagOf(admin, 'herald-deliverer', HERALD_TOPICS.deliveries),
  ])
  return { router, projector, deliverer }
}

/**
 * Most events `publishPaced` sends at once (about 4.4 MB of the generator's events, 1.5 MB per
 * partition of three). librdkafka's mock cluster (2.0) makes room in a partition before it
 * links the message set being appended: when that message set and the oldest one left are
 * together over its 5 MiB, it deletes that one too and, finding no next set, moves the log
 * start to the end, past the new set as well. The partition then reads as empty (high
 * watermark = log start) and consumers are reset past what it still holds.
 */
export const MAX_PACED_SEND = 3_000

export interface PacedLoad {
  readonly rate: number
  readonly durationMs: number
  /** How often the producer sends what fell due since its last send. */
  readonly tickMs: number
  /** Prefix of the events' ids. */
  readonly label: string
  /** Called for each event as it goes out: its number, id, and when it fell due and was sent. */
  readonly onEvent?: (n: number, id: string, dueAt: number, sentAt: number) => void
  /** Called as each send is answered. */
  readonly onSent?: () => void
  /** Stops the load early when it returns true. */
  readonly until?: () => boolean
}

/**
 * Events of `bench.event(n)` fall due evenly at `rate` per second; every `tickMs` the producer
 * sends those due since its last send. Resolves when `durationMs` has passed, with how many
 * were sent and when the load started and ended.
 */
export const publishPaced = async (bench: RoutingRig, load: PacedLoad) => {
  const started = performance.now()
  let sent = 0
  while (performance.now() - started < load.durationMs && !(load.until?.() ?? false)) {
    const now = performance.now()
    const due = Math.floor(((now - started) / 1_000) * load.rate)
    if (due > sent) {
      const messages = Array.from({ length: due - sent }, (_, j) => {
        const n = sent + j
        const id = `${load.label}-${n}`
        load.onEvent?.(n, id, started + (n / load.rate) * 1_000, now)
        return encodeAs(bench.event(n), id, n)
      })
      sent = due
      // A late tick sends a larger backlog: in sends of at most MAX_PACED_SEND, since the mock
      // loses a partition's whole log when one message set outgrows what it keeps (see there).
      for (let i = 0; i < messages.length; i += MAX_PACED_SEND) {
        await bench.producer.send({
          topic: HERALD_TOPICS.events,
          messages: messages.slice(i, i + MAX_PACED_SEND),
        })
        load.onSent?.()
      }
    }
    await sleep(Math.max(0, load.tickMs - (performance.now() - now)))
  }
  return { sent, started, ended: performance.now() }
}

export interface RoutingRigOptions {
  readonly partitions?: number
  readonly poolSize?: number
  readonly env?: Record<string, string>
  /** Herald's log lines to keep in `RoutingRig.log` (the rest are dropped as they come). */
  readonly keepLog?: (line: Record<string, unknown>) => boolean
}

/**
 * Starts the whole rig and waits until Herald routes: selectors created over REST, Herald
 * restarted (its router loads the complete selector index before it consumes), a warm-up
 * routed end to end.
 */
export const startRoutingRig = async (options: RoutingRigOptions = {}): Promise<RoutingRig> => {
  const started = performance.now()
  const sink = await spawnWebhookSink()
  const env = { HERALD_LOG_LEVEL: 'info', ...options.env }
  const rig = await startHeraldOnKafka({
    ...(options.partitions === undefined ? {} : { partitions: options.partitions }),
    env,
  })
  // Herald logs every delivery at info; the harness keeps only what it was asked to.
  const log: Record<string, unknown>[] = []
  const trim = setInterval(() => {
    const lines = rig.herald.lines.splice(0)
    if (options.keepLog !== undefined) for (const line of lines) if (options.keepLog(line)) log.push(line)
  }, 500)
  trim.unref()
  const client = new kafkajs.Kafka({
    brokers: [...rig.brokers],
    clientId: 'bench-producer',
    logLevel: kafkajs.logLevel.NOTHING,
  })
  const producer = client.producer({
    createPartitioner: kafkajs.Partitioners.DefaultPartitioner,
    idempotent: false,
    allowAutoTopicCreation: false,
  })
  const admin = client.admin()
  await Promise.all([producer.connect(), admin.connect()])

  // Selectors over REST, as users would create them.
  const api = heraldApi(rig.herald.url, rig.adminToken)
  const catalog = await api.call('GET', '/v1/notifications/event-types')
  const types = (catalog.json.items as { type: string }[])
    .map((item) => item.type)
    .filter((type) => !type.startsWith('herald.report.'))
  const plan = planSelectors(types)
  const tokens = new Map(
    await inParallel(
      ACCOUNTS,
      8,
      async (account) => [account, await api.issueToken(account, 'read-write')] as const,
    ),
  )
  tokens.set('admin', rig.adminToken)
  const apiOf = (account: string) => heraldApi(rig.herald.url, tokens.get(account) as string)
  const configurationIds = await inParallel(plan.owners, 8, (owner) =>
    apiOf(owner).createWebhook(sink.url, 'bench'),
  )
  await inParallel(plan.selectors, 8, (s) =>
    apiOf(plan.owners[s.configuration] as string).addSelector(
      configurationIds[s.configuration] as string,
      s.body,
    ),
  )

  // What Herald should route, through the package's public matcher.
  const index = buildPatternIndex(
    plan.selectors.map((s) => ({
      id: s.configuration,
      pattern: compileAnchoreSelector({ ...s.body, account: plan.owners[s.configuration] }),
    })),
  )
  const pool = [
    ...generateActivity({
      seed: 42,
      accounts: ACCOUNTS,
      count: options.poolSize ?? 30_000,
      clock: () => Date.UTC(2026, 10, 22),
    }),
  ]
  const expected = pool.map((event) => new Set(index.match(event)).size)

  // The router reads the whole selector index before it consumes only at start-up.
  await rig.restart(env)

  let count = 0
  let lastAt = 0
  let listener: ((messages: readonly CollectedMessage[]) => void) | undefined
  const deliveries = await collectTopic({
    brokers: rig.brokers,
    topic: HERALD_TOPICS.deliveries,
    fromBeginning: false,
    keep: false,
    onBatch: (messages) => {
      count += messages.length
      lastAt = performance.now()
      listener?.(messages)
    },
  })
  await deliveries.joined

  // Warm-up: the groups joined, the code paths compiled.
  const warm = 2_000
  const want = expected.slice(0, warm).reduce((a, b) => a + b, 0)
  const base = count
  for (let i = 0; i < warm; i += 500)
    await producer.send({
      topic: HERALD_TOPICS.events,
      messages: pool.slice(i, i + 500).map((e, j) => encodeAs(e, `warm-${i + j}`, i + j)),
    })
  const deadline = performance.now() + 120_000
  while (count - base < want) {
    if (performance.now() > deadline)
      throw new Error(`warm-up: ${count - base} of ${want} commands within 120 s`)
    await sleep(100)
  }

  let since = count
  const commandsAtReady = count
  const webhooksAtReady = await sink.received()
  return {
    herald: () => rig.herald,
    rig,
    sink,
    producer,
    admin,
    deliveries,
    commandsSince: () => ({ count: count - since, lastAt }),
    undelivered: async () => count - commandsAtReady - ((await sink.received()) - webhooksAtReady),
    resetCount: () => {
      since = count
    },
    onCommands: (l) => {
      listener = l
    },
    pool,
    expected,
    event: (n) => pool[n % pool.length] as EngineEvent,
    expectedFor: (n) => expected[n % pool.length] as number,
    setupMs: performance.now() - started,
    log,
    close: async () => {
      clearInterval(trim)
      await deliveries.stop().catch(() => {})
      await producer.disconnect().catch(() => {})
      await admin.disconnect().catch(() => {})
      await rig.stop()
      await sink.stop()
    },
  }
}
