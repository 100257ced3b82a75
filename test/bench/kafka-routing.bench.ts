/**
 * Routing through Kafka, end to end (issue 5); part of `npm run bench`, alone:
 * `node test/bench/kafka-routing.bench.ts [--events 30000] [--latency 20s] [--tick 100ms]
 * [--rate <events/s>] [--partitions 3] [--chunk 500] [--herald-env KEY=VALUE,...]`.
 *
 * A real Herald process (`herald start`: Kafka event log on the librdkafka mock cluster,
 * embedded event store and warehouse, router, deliverer and projector all running) with 1,000
 * selectors over 100 accounts created through its REST API; the deliverer posts to a webhook
 * stand-in. Events come from the activity generator, alternately in structured and binary
 * mode, published with kafkajs; an independent kafkajs consumer of `notifications.deliveries`
 * says when their commands are out.
 *
 * 1. Sustained throughput: `--events` events published as fast as Herald takes them; the
 *    rate is events over the time from the first send to the last of their commands read.
 *    Two things about the mock shape how they are sent. It answers a fetch with at most one
 *    producer batch per partition, where a broker returns everything up to 1 MiB; so under
 *    backlog the events go in sends of `--chunk` per partition (~0.8 MB), which a broker's
 *    fetch would bring at once. And it keeps only 5 MiB per partition, deleting older
 *    messages read or not; so the producer stays at most three sends ahead of the router.
 * 2. Latency at half that rate (or `--rate`) for `--latency`, once Herald has worked off what
 *    the first part left its deliverer (its sends included) and projector (waiting up to
 *    3 min): events fall due evenly and every `--tick` the producer sends those due since its
 *    last send (a producer lingering that long; sending each alone would, on the mock, cap the
 *    router at one event per partition per fetch). Each command's latency is taken from its
 *    event's due time (the linger included: the figure against the target) and from its
 *    send, after 2 s of settling.
 *
 * Figures are printed with the targets beside them, never asserted. Everything — Herald, the
 * mock cluster, the relay, the producer and the consumer — shares this machine's cores.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { HERALD_TOPICS } from '../support/herald-on-kafka.ts'
import {
  ACCOUNTS,
  CONFIGURATIONS_PER_ACCOUNT,
  encodeAs,
  flags,
  fmt,
  GLOBAL_SELECTORS,
  heraldLags,
  machine,
  out,
  parseDuration,
  processStats,
  publishPaced,
  type RoutingRig,
  SELECTORS,
  startRoutingRig,
} from './kafka-rig.ts'

/**
 * Issue 5's targets for this path: 50,000 events/s sustained on 2 cores with 1,000 selectors;
 * at half the sustainable rate, publish → delivery command p50 ≤ 20 ms and p99 ≤ 100 ms.
 */
export const TARGETS = {
  throughput: 50_000,
  p50Ms: 20,
  p99Ms: 100,
} as const

export interface ThroughputResult {
  readonly events: number
  readonly commands: number
  readonly expectedCommands: number
  readonly publishMs: number
  readonly totalMs: number
  readonly heraldCpuMs: number
  /** CPU of the rig that offers and reads the load: the mock cluster and this process (producer, consumer). */
  readonly rigCpuMs: number
  readonly webhooks: number
}

/**
 * Publishes `events` pool events under fresh ids in sends of `chunk`, never more than
 * `window` events ahead of what the router has surely routed; waits for every command (or
 * 30 s without one).
 */
export const measureThroughput = async (
  bench: RoutingRig,
  { events, window, chunk, label }: { events: number; window: number; chunk: number; label: string },
): Promise<ThroughputResult> => {
  const { pool, expected, producer } = bench
  const cumulative: number[] = [0]
  for (let i = 0; i < events; i++)
    cumulative.push((cumulative[i] as number) + (expected[i % pool.length] as number))
  const want = cumulative[events] as number
  /** Events surely routed: the most whose commands, counted in order, add up to those read. */
  const routed = (commands: number) => {
    let lo = 0
    let hi = events
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((cumulative[mid] as number) <= commands) lo = mid
      else hi = mid - 1
    }
    return lo
  }
  const pid = bench.herald().child.pid as number
  const webhooksBefore = await bench.sink.received()
  bench.resetCount()
  const cpuBefore = processStats(pid).cpuMs
  const rigCpu = () => {
    const own = process.cpuUsage()
    return processStats(bench.rig.kafka.pid).cpuMs + (own.user + own.system) / 1_000
  }
  const rigBefore = rigCpu()
  const started = performance.now()
  for (let i = 0; i < events; i += chunk) {
    while (i - routed(bench.commandsSince().count) > window) await sleep(2)
    await producer.send({
      topic: HERALD_TOPICS.events,
      messages: Array.from({ length: Math.min(chunk, events - i) }, (_, j) => {
        const n = i + j
        return encodeAs(bench.event(n), `${label}-${n}`, n)
      }),
    })
  }
  const publishMs = performance.now() - started
  let last = bench.commandsSince().count
  let lastProgress = performance.now()
  while (bench.commandsSince().count < want) {
    await sleep(50)
    const now = bench.commandsSince().count
    if (now !== last) {
      last = now
      lastProgress = performance.now()
    } else if (performance.now() - lastProgress > 30_000) break
  }
  const { count, lastAt } = bench.commandsSince()
  return {
    events,
    commands: count,
    expectedCommands: want,
    publishMs,
    totalMs: lastAt - started,
    heraldCpuMs: processStats(pid).cpuMs - cpuBefore,
    rigCpuMs: rigCpu() - rigBefore,
    webhooks: (await bench.sink.received()) - webhooksBefore,
  }
}

interface Percentiles {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

const percentiles = (values: number[]): Percentiles => {
  const sorted = values.sort((a, b) => a - b)
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
  return { p50: at(50), p90: at(90), p99: at(99), max: sorted.at(-1) ?? Number.NaN }
}

export interface LatencyResult {
  readonly rate: number
  readonly achievedRate: number
  /** Commands measured, and how many the events sent after settling should have produced. */
  readonly samples: number
  readonly expectedSamples: number
  /** From the moment each event was due (the producer's linger included). */
  readonly fromDue: Percentiles
  /** From the producer's send call. */
  readonly fromSend: Percentiles
  /**
   * From the send call to Herald's produce of the command (the command's Kafka timestamp):
   * the mock, Herald's fetch and its handling, without the reader's fetch.
   */
  readonly toPublished: Percentiles
  /** Median from due time over the first and the second half of the run: growth means backlog. */
  readonly firstHalfP50: number
  readonly secondHalfP50: number
}

/**
 * Events fall due evenly at `rate` per second for `durationMs`; every `tickMs` the producer
 * sends those due since its last send. Each command's latency is taken from its event's due
 * time and from its send; commands still missing 5 s after the last send are left out.
 */
export const measureLatency = async (
  bench: RoutingRig,
  { rate, durationMs, tickMs, label }: { rate: number; durationMs: number; tickMs: number; label: string },
): Promise<LatencyResult> => {
  const times = new Map<string, { due: number; sent: number }>()
  const measured: { due: number; fromDue: number; fromSend: number; toPublished: number }[] = []
  const settleMs = 2_000
  let started = performance.now()
  bench.onCommands((messages) => {
    for (const m of messages) {
      const id = (JSON.parse(m.value.toString('utf8')) as { event: { id: string } }).event.id
      const at = times.get(id)
      if (at === undefined || at.due - started < settleMs) continue
      measured.push({
        due: at.due,
        fromDue: m.receivedAt - at.due,
        fromSend: m.receivedAt - at.sent,
        toPublished: m.timestamp - (performance.timeOrigin + at.sent),
      })
    }
  })
  let expectedSamples = 0
  const load = await publishPaced(bench, {
    rate,
    durationMs,
    tickMs,
    label,
    onEvent: (n, id, due, sent) => {
      if (n === 0) started = due
      times.set(id, { due, sent })
      if (due - started >= settleMs) expectedSamples += bench.expectedFor(n)
    },
  })
  const achievedRate = (load.sent / (load.ended - load.started)) * 1_000
  await sleep(5_000)
  bench.onCommands(undefined)
  const middle = started + settleMs + (load.ended - started - settleMs) / 2
  return {
    rate,
    achievedRate,
    samples: measured.length,
    expectedSamples,
    fromDue: percentiles(measured.map((m) => m.fromDue)),
    fromSend: percentiles(measured.map((m) => m.fromSend)),
    toPublished: percentiles(measured.map((m) => m.toPublished)),
    firstHalfP50: percentiles(measured.filter((m) => m.due < middle).map((m) => m.fromDue)).p50,
    secondHalfP50: percentiles(measured.filter((m) => m.due >= middle).map((m) => m.fromDue)).p50,
  }
}

/** Lag of Herald's three consumer groups, one line. */
export const lags = async (bench: RoutingRig): Promise<string> => {
  const { router, projector, deliverer } = await heraldLags(bench.admin)
  const one = (name: string, l: { lag: number; droppedUnread: number }) =>
    `${name} ${fmt(l.lag)}${l.droppedUnread > 0 ? ` (${fmt(l.droppedUnread)} deleted by the mock unread)` : ''}`
  return `consumer lag: ${one('router', router)}, ${one('projector', projector)}, ${one('deliverer', deliverer)}`
}

/**
 * Waits until Herald has worked off what a measurement left: its three groups stop moving (the
 * same lag in two readings 2 s apart) and the webhook stand-in has every command read since
 * the rig was ready — the deliverer's lag counts commands recorded, not sent, so a backlog
 * of sends would otherwise share the event loop with the next measurement. Sends that stop
 * short (nothing moving for 20 s) end the wait too: the mock keeps 5 MiB a partition of
 * `notifications.deliveries` as well, so commands the deliverer had not read by then are
 * deleted and never sent. Gives up after `maxMs`; resolves with how long it waited, whether it
 * got there, and how many commands read never reached the stand-in.
 */
export const waitForQuiet = async (bench: RoutingRig, maxMs: number) => {
  const started = performance.now()
  const reading = async () => {
    const { router, projector, deliverer } = await heraldLags(bench.admin)
    return { lags: `${router.lag}/${projector.lag}/${deliverer.lag}`, unsent: await bench.undelivered() }
  }
  let previous = await reading()
  let sameFor = 0
  while (performance.now() - started < maxMs) {
    await sleep(2_000)
    const now = await reading()
    sameFor = now.lags === previous.lags && now.unsent === previous.unsent ? sameFor + 1 : 0
    previous = now
    if (sameFor >= 1 && (now.unsent <= 0 || sameFor >= 10))
      return { waitedMs: performance.now() - started, quiet: true, unsent: now.unsent }
  }
  return { waitedMs: performance.now() - started, quiet: false, unsent: previous.unsent }
}

/** `A=1,B=2` → `{ A: '1', B: '2' }`, for `--herald-env`. */
export const envList = (text: string | undefined): Record<string, string> =>
  Object.fromEntries(
    (text ?? '')
      .split(',')
      .filter((pair) => pair.includes('='))
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  )

export const describeWorkload = (bench: RoutingRig, partitions: number, env: Record<string, string>) => {
  const meanMatches = bench.expected.reduce((a, b) => a + b, 0) / bench.expected.length
  return `${fmt(SELECTORS)} selectors (${fmt(SELECTORS - GLOBAL_SELECTORS)} account-scoped over ${fmt(ACCOUNTS.length * CONFIGURATIONS_PER_ACCOUNT)} webhook configurations of ${ACCOUNTS.length} accounts, ${GLOBAL_SELECTORS} global); ${partitions} partitions per topic; generator events, ${fmt(meanMatches, 2)} commands per event; set-up ${fmt(bench.setupMs / 1_000, 1)} s${Object.keys(env).length === 0 ? '' : `; Herald env ${JSON.stringify(env)}`}`
}

const met = (ok: boolean) => (ok ? 'yes' : 'NO')

export const runKafkaRoutingBenchmarks = async (argv: readonly string[]) => {
  const options = flags(argv)
  const events = Number(options.get('events') ?? 30_000)
  const latencyMs = parseDuration(options.get('latency') ?? '20s')
  const tickMs = parseDuration(options.get('tick') ?? '100ms')
  const partitions = Number(options.get('partitions') ?? 3)
  const chunk = Number(options.get('chunk') ?? 500) * partitions
  const env = envList(options.get('herald-env'))
  const atStart = machine()
  const bench = await startRoutingRig({ partitions, env })
  try {
    out('\n## Kafka: engine.events → notifications.deliveries through a running Herald')
    out(`  machine: ${atStart}; shared with other work, so these figures are indicative`)
    out(`  workload: ${describeWorkload(bench, partitions, env)}`)

    const t = await measureThroughput(bench, { events, window: 3 * chunk, chunk, label: 'tp' })
    const rate = (t.events / t.totalMs) * 1_000
    const complete = t.commands >= t.expectedCommands
    out(
      `  throughput: ${fmt(t.events)} events in sends of ${fmt(chunk)}: ${fmt(t.totalMs)} ms to the last command, ${fmt(t.commands)} of ${fmt(t.expectedCommands)} commands${complete ? '' : ' — INCOMPLETE'}; Herald used ${fmt(t.heraldCpuMs)} ms CPU (${fmt((t.heraldCpuMs / t.totalMs) * 100)}% of one core), the rig (mock cluster, producer, consumer) ${fmt(t.rigCpuMs)} ms (${fmt((t.rigCpuMs / t.totalMs) * 100)}%, ${fmt((t.rigCpuMs * 1_000) / t.events)} µs per event); the deliverer sent ${fmt(t.webhooks)} webhooks meanwhile (${fmt((t.webhooks / t.totalMs) * 1_000)}/s)`,
    )
    out(`    after it, ${await lags(bench)}`)

    const quiet = await waitForQuiet(bench, 180_000)
    out(
      `    ${quiet.quiet ? `Herald was idle again after ${fmt(quiet.waitedMs / 1_000)} s` : `Herald was still working off the backlog after ${fmt(quiet.waitedMs / 1_000)} s; measuring anyway`}: ${await lags(bench)}${quiet.unsent > 0 ? `; ${fmt(quiet.unsent)} commands read never reached the webhook stand-in (deleted by the mock before the deliverer read them, or still unsent)` : ''}`,
    )

    const latencyRate = Number(options.get('rate') ?? Math.max(1, Math.round(rate / 2)))
    const l = await measureLatency(bench, { rate: latencyRate, durationMs: latencyMs, tickMs, label: 'lat' })
    const line = (p: Percentiles) =>
      `p50 ${fmt(p.p50, 1)} ms, p90 ${fmt(p.p90, 1)} ms, p99 ${fmt(p.p99, 1)} ms, max ${fmt(p.max, 1)} ms`
    out(
      `  latency: ${fmt(l.achievedRate)} events/s (asked ${fmt(l.rate)}) for ${fmt(latencyMs / 1_000)} s, sent every ${fmt(tickMs)} ms; ${fmt(l.samples)} of ${fmt(l.expectedSamples)} commands read within 5 s of the last send`,
    )
    out(`    from each event's due time: ${line(l.fromDue)}`)
    out(`    from its send:              ${line(l.fromSend)}`)
    out(`    send → Herald produced it:  ${line(l.toPublished)}`)
    out(
      `    median from due time, first half ${fmt(l.firstHalfP50, 1)} ms, second half ${fmt(l.secondHalfP50, 1)} ms${l.secondHalfP50 > 2 * l.firstHalfP50 + 50 ? ': GROWING, Herald fell behind this rate' : ''}`,
    )
    out(`    after it, ${await lags(bench)}`)

    out('\n| figure | measured | target | met |\n|---|---|---|---|')
    out(
      `| sustained events/s, publish → last command read | ${fmt(rate)} (${fmt((t.commands / t.totalMs) * 1_000)} commands/s) | ≥ ${fmt(TARGETS.throughput)} | ${met(complete && rate >= TARGETS.throughput)} |`,
    )
    out(
      `| events per CPU-second of Herald (all its consumers) | ${fmt((t.events / t.heraldCpuMs) * 1_000)} | | |`,
    )
    // What offering and reading the load costs on the same two cores: at this much per event,
    // the rig alone would need (rigCpu per event × target) of a core to offer the target rate.
    out(
      `| the rig's CPU per event (mock cluster, producer, consumer): share of 2 cores it would need at ${fmt(TARGETS.throughput)}/s | ${fmt((t.rigCpuMs * 1_000) / t.events)} µs: ${fmt((t.rigCpuMs / t.events) * TARGETS.throughput * 0.05)}% | | |`,
    )
    out(
      `| latency p50, event due → command read, at ${fmt(l.achievedRate)} events/s | ${fmt(l.fromDue.p50, 1)} ms | ≤ ${TARGETS.p50Ms} ms | ${met(l.fromDue.p50 <= TARGETS.p50Ms)} |`,
    )
    out(
      `| latency p99, same run | ${fmt(l.fromDue.p99, 1)} ms | ≤ ${TARGETS.p99Ms} ms | ${met(l.fromDue.p99 <= TARGETS.p99Ms && l.samples >= l.expectedSamples)} |`,
    )
    return { throughput: t, rate, latency: l }
  } finally {
    await bench.close()
  }
}

if (import.meta.main) {
  await runKafkaRoutingBenchmarks(process.argv.slice(2))
}
