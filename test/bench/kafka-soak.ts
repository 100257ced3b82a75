/**
 * Soak (issue 5): `npm run bench:soak -- [--duration 10m] [--rate <events/s>] [--tick 100ms]
 * [--sample 5s] [--recovery <max wait>] [--partitions 3] [--events 20000]
 * [--herald-env KEY=VALUE,...]`; a smoke run: `npm run bench:soak -- --duration 30s`.
 *
 * The rig of kafka-routing.bench.ts (a real Herald on the Kafka mock cluster, 1,000 selectors
 * over 100 accounts), first measuring its sustainable rate as that benchmark does (unless
 * `--rate` is given), then publishing at twice that rate — events falling due evenly, sent
 * every `--tick` — for `--duration`. Every `--sample` it reads Herald's resident memory
 * (/proc/<pid>/status), its V8 heap (used/total) and external memory (its `/metrics`), its
 * CPU, and the lag of its router, projector and deliverer groups;
 * after the load it keeps reading until the router and projector have caught up, or for
 * `--recovery` (default: the duration, at least 2 min). It reports the largest RSS, whether
 * Herald crashed, whether and how fast the lag recovered, and how many commands came out of
 * the events sent.
 *
 * The mock keeps only 5 MiB per partition and deletes older messages whether read or not.
 * Under an overload the backlog outgrows that within seconds, so part of it is deleted
 * before Herald reads it: the "deleted unread" and "commands missing" figures say how much,
 * and a lag that recovers then says that Herald caught up with what the mock kept, not with
 * everything sent. A broker with real retention keeps the whole backlog.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { HERALD_TOPICS } from '../support/herald-on-kafka.ts'
import {
  encodeAs,
  flags,
  fmt,
  heraldLags,
  machine,
  out,
  parseDuration,
  processStats,
  publishPaced,
  startRoutingRig,
} from './kafka-rig.ts'
import { describeWorkload, envList, measureThroughput, waitForQuiet } from './kafka-routing.bench.ts'

/** Issue 5's soak target: 10 minutes at twice the sustainable rate with RSS ≤ 1 GiB, no crash, lag recovering. */
const TARGETS = { maxRssMiB: 1_024 } as const

const options = flags(process.argv.slice(2))
const durationMs = parseDuration(options.get('duration') ?? '10m')
const tickMs = parseDuration(options.get('tick') ?? '100ms')
const sampleMs = parseDuration(options.get('sample') ?? '5s')
const recoveryMs = parseDuration(options.get('recovery') ?? `${Math.max(120_000, durationMs)}ms`)
const partitions = Number(options.get('partitions') ?? 3)
const env = envList(options.get('herald-env'))
const atStart = machine()

const bench = await startRoutingRig({ partitions, env })
try {
  out('\n## Soak: twice the sustainable rate through a running Herald on Kafka')
  out(`  machine: ${atStart}; shared with other work, so these figures are indicative`)
  out(`  workload: ${describeWorkload(bench, partitions, env)}`)

  let rate = Number(options.get('rate') ?? Number.NaN)
  let sustainable = Number.NaN
  if (Number.isNaN(rate)) {
    const chunk = 500 * partitions
    const t = await measureThroughput(bench, {
      events: Number(options.get('events') ?? 20_000),
      window: 3 * chunk,
      chunk,
      label: 'sustainable',
    })
    sustainable = (t.events / t.totalMs) * 1_000
    rate = Math.round(2 * sustainable)
    out(`  sustainable rate measured first: ${fmt(sustainable)} events/s; soaking at ${fmt(rate)} events/s`)
  } else out(`  soaking at ${fmt(rate)} events/s (--rate)`)
  const quiet = await waitForQuiet(bench, 180_000)
  out(
    `  ${quiet.quiet ? 'Herald idle' : 'Herald still busy'} after ${fmt(quiet.waitedMs / 1_000)} s; starting the load`,
  )

  const meanBytes =
    bench.pool.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0) / bench.pool.length
  const kept = (partitions * 5 * 1_024 * 1_024) / meanBytes
  out(
    `  the mock keeps 5 MiB per partition: a backlog of about ${fmt(kept)} events of ${fmt(meanBytes)} B over ${partitions} partitions${Number.isNaN(sustainable) ? '' : `; this load outruns the sustainable rate by about ${fmt(((rate - sustainable) * durationMs) / 1_000)} events`}`,
  )

  const herald = bench.herald()
  const pid = herald.child.pid as number
  let crashed: string | undefined
  herald.child.once('exit', (code, signal) => {
    crashed = `exited with ${signal ?? code}`
  })
  const mib = (kb: number) => kb / 1_024

  bench.resetCount()
  let sent = 0
  let expected = 0
  let maxRssKb = 0
  let maxRouterLag = 0
  let maxDeleted = 0
  let last = { at: performance.now(), cpuMs: processStats(pid).cpuMs }
  const started = performance.now()
  let loadEnded = Number.POSITIVE_INFINITY

  /** Heap (used of total) and external memory in MiB, from Herald's `/metrics`, as `12/34 ext 5`. */
  const heapOf = async (): Promise<string> => {
    const text = await (await fetch(`${herald.url}/metrics`)).text()
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN)
    const m = (bytes: number) => fmt(bytes / 1_048_576)
    return `${m(value('nodejs_heap_size_used_bytes'))}/${m(value('nodejs_heap_size_total_bytes'))} ext ${m(value('nodejs_external_memory_bytes'))}`
  }

  /** One reading, printed as a line; resolves with the router's and projector's lag. */
  const sample = async () => {
    const now = performance.now()
    const heap = await heapOf().catch(() => '?')
    const stats = processStats(pid)
    const cpu = ((stats.cpuMs - last.cpuMs) / (now - last.at)) * 100
    last = { at: now, cpuMs: stats.cpuMs }
    maxRssKb = Math.max(maxRssKb, stats.rssKb)
    const { router, projector, deliverer } = await heraldLags(bench.admin)
    if (now < loadEnded && sent > 0 && router.held === 0)
      endBroken(
        'the mock cluster keeps none of what is sent (every partition of engine.events is empty mid-load)',
      )
    maxRouterLag = Math.max(maxRouterLag, router.lag)
    maxDeleted = Math.max(maxDeleted, router.droppedUnread)
    const t = (now - started) / 1_000
    out(
      `  ${now < loadEnded ? 'load ' : 'after'} t=${fmt(t).padStart(4)} s  sent ${fmt(sent).padStart(9)}  RSS ${fmt(mib(stats.rssKb)).padStart(5)} MiB (heap ${heap})  CPU ${fmt(cpu).padStart(3)}%  lag: router ${fmt(router.lag).padStart(7)}  projector ${fmt(projector.lag).padStart(7)}  deliverer ${fmt(deliverer.lag).padStart(7)}  commands ${fmt(bench.commandsSince().count).padStart(9)}${router.droppedUnread > 0 ? `  (router: ${fmt(router.droppedUnread)} deleted unread)` : ''}`,
    )
    return { router: router.lag, projector: projector.lag, deliverer: deliverer.lag }
  }

  let sampling = true
  const sampler = (async () => {
    while (sampling && crashed === undefined) {
      await sleep(sampleMs)
      if (sampling && crashed === undefined)
        await sample().catch((error: unknown) => out(`  sample failed: ${String(error)}`))
    }
  })()

  // The mock cluster has been seen to break under this overload: it goes on answering the
  // producer but keeps nothing (every partition of engine.events empty, high watermark = log
  // start), so Herald has nothing to read; later the producer's sends, and the admin requests
  // the samples make, wait on it for minutes. Either ends the run, saying so.
  const stallMs = 30_000
  let sentAt = performance.now()
  let rigBroken: string | undefined
  const endBroken = (why: string) => {
    if (rigBroken !== undefined) return
    rigBroken = why
    out(
      `  RIG FAILED: ${why}; ending the run. So far: ${fmt(sent)} events sent, largest RSS sampled ${fmt(mib(maxRssKb))} MiB, Herald ${crashed ?? 'running'}.`,
    )
    void Promise.race([bench.close(), sleep(10_000)]).finally(() => process.exit(2))
  }
  const watchdog = setInterval(() => {
    if (performance.now() < loadEnded && performance.now() - sentAt >= stallMs)
      endBroken(`the rig's producer has had no send answered for ${fmt(stallMs / 1_000)} s`)
  }, 1_000)
  watchdog.unref()
  const load = await publishPaced(bench, {
    rate,
    durationMs,
    tickMs,
    label: 'soak',
    onEvent: (n) => {
      expected += bench.expectedFor(n)
      sent = n + 1
    },
    onSent: () => {
      sentAt = performance.now()
    },
    until: () => crashed !== undefined,
  })
  loadEnded = load.ended
  clearInterval(watchdog)
  const achieved = (load.sent / (loadEnded - load.started)) * 1_000
  sampling = false
  await sampler

  // After the load: read until the router and projector stop moving, or the recovery time
  // runs out. Herald commits what it handled only when a later batch finishes once the commit
  // interval has passed, so an idle group keeps showing the lag of its last second of work;
  // one more event then makes it commit everything it handled.
  let settledAfterMs: number | undefined
  let settled = { router: Number.NaN, projector: Number.NaN, deliverer: Number.NaN }
  let previous = settled
  let still = 0
  while (crashed === undefined && performance.now() - loadEnded < recoveryMs) {
    const reading = await sample()
    still = reading.router === previous.router && reading.projector === previous.projector ? still + 1 : 0
    previous = reading
    if (still >= 2) {
      settled = reading
      settledAfterMs = performance.now() - loadEnded
      break
    }
    await sleep(sampleMs)
  }
  let final = previous
  if (settledAfterMs !== undefined && crashed === undefined) {
    await bench.producer.send({
      topic: HERALD_TOPICS.events,
      messages: [encodeAs(bench.event(sent), `soak-${sent}`, sent)],
    })
    expected += bench.expectedFor(sent)
    sent++
    await sleep(Math.max(3_000, 2 * sampleMs))
    final = await sample()
  }
  const recovered = final.router === 0 && final.projector === 0
  // Commands of the last routed events are still on their way.
  await sleep(3_000)
  const commands = bench.commandsSince().count
  const peakKb = crashed === undefined ? processStats(pid).peakKb : Number.NaN

  out('\n| figure | measured | target | met |\n|---|---|---|---|')
  out(
    `| load | ${fmt(achieved)} events/s for ${fmt((loadEnded - started) / 1_000)} s (asked ${fmt(rate)}), ${fmt(sent)} events | twice the sustainable rate, 10 min | ${achieved >= 0.95 * rate && durationMs >= 600_000 ? 'yes' : 'NO'} |`,
  )
  out(`| Herald crashed | ${crashed ?? 'no'} | no | ${crashed === undefined ? 'yes' : 'NO'} |`)
  out(
    `| largest RSS sampled (peak RSS, VmHWM) | ${fmt(mib(maxRssKb))} MiB (${fmt(mib(peakKb))} MiB) | ≤ ${fmt(TARGETS.maxRssMiB)} MiB | ${mib(maxRssKb) <= TARGETS.maxRssMiB ? 'yes' : 'NO'} |`,
  )
  out(
    `| router lag: largest; after the load | ${fmt(maxRouterLag)}; ${settledAfterMs === undefined ? `still moving after ${fmt(recoveryMs / 1_000)} s (router ${fmt(final.router)}, projector ${fmt(final.projector)})` : `router and projector settled after ${fmt(settledAfterMs / 1_000, 1)} s with ${fmt(settled.router)} and ${fmt(settled.projector)} uncommitted; one more event: ${fmt(final.router)} and ${fmt(final.projector)}`} | recovers | ${recovered ? 'yes' : 'NO'} |`,
  )
  out(`| deliverer lag at the end | ${fmt(final.deliverer)} | | |`)
  out(
    `| commands out of the events sent | ${fmt(commands)} of ${fmt(expected)} (${fmt(Math.max(0, expected - commands))} missing; the router saw up to ${fmt(maxDeleted)} events deleted by the mock unread) | all | ${commands >= expected ? 'yes' : 'NO'} |`,
  )
} finally {
  await bench.close()
}
