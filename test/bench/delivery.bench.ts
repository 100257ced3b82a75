/**
 * Delivery throughput and isolation (issue 6):
 * `npm run bench:delivery [-- --deliveries N] [--concurrency C] [--configurations K]
 * [--sender-thread true|false] [--max-in-flight W] [--warmup M] [--event-bytes B]`
 * (C: `notifications.delivery.concurrency`'s default; W: `notifications.delivery.max_in_flight.webhook`'s,
 * 1; K: 100; M: 10,000; the requests from the `http-sender` thread or the event loop:
 * `outbound.sender_thread`'s default; B: absent, an image-analysis event of about 300 bytes;
 * given, one whose data lists vulnerabilities until it is about B bytes as JSON).
 * The real deliverer — the delivery log on SQLite, its read model, one queue per
 * configuration, the webhook channel signing every request (Standard Webhooks) through the
 * SSRF guard — delivering to a webhook sink in its own process (204, arrival times by
 * `webhook-id`), for K configurations (one of them the hanging one below).
 *
 * 1. Throughput: M commands delivered unmeasured (the process compiles its hot code meanwhile),
 *    then N published at once; deliveries/s until the sink has them all.
 * 2. Isolation: deliveries to the K - 1 healthy configurations at a steady rate, once alone and
 *    once while the Kth configuration's endpoint hangs (each attempt held until the 15 s timeout);
 *    the p50/p99 of publish → arrival for the healthy ones, and the p99 added.
 * Figures are printed beside the targets, never asserted.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { loadConfig, topicPartitions } from '../../src/config/index.ts'
import { createDeliveryReadModel, createThreadedDeliveryReadModel } from '../../src/deliveries/index.ts'
import type { EndpointConfiguration } from '../../src/notifications/index.ts'
import { silentLogger } from '../../src/observability/index.ts'
import { createOutboundGuard } from '../../src/outbound/index.ts'
import { createDeliveryChannels, startDeliveryEngine } from '../../streams/delivery/index.ts'
import { type DeliveryCommand, encodeDeliveryCommand } from '../../streams/routing/index.ts'
import {
  deliveryEngineDefaults,
  startWebhookConfigurations,
  webhookCommand,
} from '../support/webhook-configurations.ts'
import { spawnWebhookSink } from '../support/webhook-sink.ts'
import { optionalPositiveWholeNumber, positiveWholeNumber, wholeNumber } from './args.ts'
import { calibrationLine } from './calibration.ts'
import { padded } from './padding.ts'
import { procStat } from './proc.ts'

/**
 * CPU time (µs, user + system) of this process's threads by name, from
 * `/proc/self/task/<tid>/stat`: Herald's worker threads are named (`store-writer`,
 * `delivery-fold`, `wal-checkpoint`), V8's own show as `V8Worker`, the event loop as `MainThread`.
 */
const cpuByThread = (): Map<string, number> => {
  const byName = new Map<string, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    let thread: { name: string; cpuMs: number }
    try {
      thread = procStat(`/proc/self/task/${tid}/stat`)
    } catch {
      continue // the thread ended between the listing and the read
    }
    byName.set(thread.name, (byName.get(thread.name) ?? 0) + thread.cpuMs * 1_000)
  }
  return byName
}

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '10000' },
    // Delivered before the measured part: a new process compiles its hot code first (V8's
    // helper threads alone took about twice the CPU per delivery over 20,000 as over 60,000).
    warmup: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '15' },
    // Absent: the configured default (`notifications.delivery.concurrency`), as `npm start` runs.
    concurrency: { type: 'string' },
    // Absent: the configured default (`notifications.delivery.max_in_flight.webhook`).
    'max-in-flight': { type: 'string' },
    // Fewer: each queue holds more deliveries, so a queue's own cycle bounds the rate sooner.
    configurations: { type: 'string', default: '100' },
    // The read model folded on the event loop rather than by its own thread (as with KurrentDB).
    'fold-in-process': { type: 'boolean', default: false },
    // true / false: requests from the `http-sender` thread or the event loop; absent, the
    // configured default (`outbound.sender_thread`), as `npm start` runs.
    'sender-thread': { type: 'string' },
    // Absent: the image-analysis event of `webhookCommand`, about 300 bytes as JSON. Given, its
    // data also lists vulnerabilities until the event is about this long, as a scan's events are.
    'event-bytes': { type: 'string' },
  },
})
// Herald's defaults, with no environment or file.
const defaults = loadConfig({ env: {}, cwd: tmpdir() })
const total = positiveWholeNumber('--deliveries', values.deliveries)
const warmup = wholeNumber('--warmup', values.warmup, 0)
const rate = positiveWholeNumber('--rate', values.rate)
const seconds = positiveWholeNumber('--seconds', values.seconds)
const concurrency = positiveWholeNumber(
  '--concurrency',
  values.concurrency ?? String(defaults.notifications.delivery.concurrency),
)
const maxInFlight = positiveWholeNumber(
  '--max-in-flight',
  values['max-in-flight'] ?? String(defaults.notifications.delivery.max_in_flight.webhook),
)
const eventBytes = optionalPositiveWholeNumber('--event-bytes', values['event-bytes'])
const CONFIGURATIONS = Number(values.configurations)
if (!Number.isInteger(CONFIGURATIONS) || CONFIGURATIONS < 2)
  throw new Error('--configurations: an integer of at least 2 (one of them hangs)')
if (values['sender-thread'] !== undefined && !['true', 'false'].includes(values['sender-thread']))
  throw new Error('--sender-thread: true or false')
const senderThread =
  values['sender-thread'] === undefined ? defaults.outbound.sender_thread : values['sender-thread'] === 'true'
const out = (line: string) => process.stdout.write(`${line}\n`)
process.stdout.write(calibrationLine())
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const dir = mkdtempSync(join(tmpdir(), 'herald-bench-delivery-'))
const sink = await spawnWebhookSink()
const guard = createOutboundGuard({ allowlist: ['127.0.0.1'], senderThread })
const hooks = startWebhookConfigurations(join(dir, 'eventstore.sqlite'))
const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 20 })
// As many partitions as Herald makes on its embedded log.
const partitions = topicPartitions(defaults.event_log)
await log.createTopics([
  { topic: 'notifications.deliveries', partitions },
  { topic: 'notifications.outcomes', partitions },
])
const store = createSqliteEventStore({
  path: join(dir, 'deliveries.sqlite'),
  pollIntervalMs: 50,
  groupCommit: true,
  writerThread: true,
})
const viewOptions = { path: join(dir, 'deliveries-view.sqlite'), newId: randomUUID }
const view = values['fold-in-process']
  ? createDeliveryReadModel(viewOptions)
  : createThreadedDeliveryReadModel({ ...viewOptions, storePath: join(dir, 'deliveries.sqlite') })
view.follow(store)

try {
  const configurations: EndpointConfiguration[] = []
  for (let i = 0; i < CONFIGURATIONS; i++) {
    const path = i === CONFIGURATIONS - 1 ? 'hang' : `c${i}`
    configurations.push(
      await hooks.create({ account: `account-${i % 10}`, role: 'read-write' }, `${sink.url}/${path}`),
    )
  }
  const healthy = configurations.slice(0, -1)
  const hanging = configurations.at(-1) as EndpointConfiguration

  const engine = startDeliveryEngine({
    store,
    view,
    log,
    ...deliveryEngineDefaults,
    getConfiguration: hooks.getConfiguration,
    send: createDeliveryChannels({ guard, logger: silentLogger }).send,
    timeoutMs: 15_000,
    concurrency,
    maxInFlight: { webhook: maxInFlight },
  })
  const consumer = await log.consume(
    { groupId: 'herald-deliverer', topics: ['notifications.deliveries'] },
    engine.handler,
  )

  let sequence = 0
  const commandFor = (configuration: EndpointConfiguration): DeliveryCommand => {
    const command = webhookCommand(configuration, `bench-${++sequence}`)
    return eventBytes === undefined ? command : { ...command, event: padded(command.event, eventBytes) }
  }
  const publish = (commands: readonly DeliveryCommand[]) =>
    log.publish(
      'notifications.deliveries',
      commands.map((c) => encodeDeliveryCommand(c)),
    )
  const until = async (count: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    while ((await sink.received()) < count && Date.now() < deadline) await sleep(50)
    return sink.received()
  }

  // 1. Throughput, once `warmup` deliveries went through unmeasured.
  const warming = Array.from({ length: warmup }, (_, i) =>
    commandFor(healthy[i % healthy.length] as EndpointConfiguration),
  )
  for (let i = 0; i < warming.length; i += 500) await publish(warming.slice(i, i + 500))
  if ((await until(warmup, 600_000)) < warmup) throw new Error('the warm-up deliveries did not all arrive')
  const commands = Array.from({ length: total }, (_, i) =>
    commandFor(healthy[i % healthy.length] as EndpointConfiguration),
  )
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  const threadBefore = process.threadCpuUsage()
  const threadsBefore = cpuByThread()
  const sinkBefore = await sink.cpu()
  const loopBefore = performance.eventLoopUtilization()
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  for (let i = 0; i < commands.length; i += 500) await publish(commands.slice(i, i + 500))
  const received = (await until(warmup + total, 600_000)) - warmup
  const throughput = (received / (performance.now() - started)) * 1000
  loopDelay.disable()
  const loopBusy = performance.eventLoopUtilization(loopBefore).utilization
  // On a shared machine the rate follows what else runs; CPU time per delivery much less so.
  const cpu = process.cpuUsage(cpuBefore)
  const cpuPerDelivery = (cpu.user + cpu.system) / Math.max(1, received)
  // The event loop's own share: what bounds the rate while the other core has room.
  const thread = process.threadCpuUsage(threadBefore)
  const threadPerDelivery = (thread.user + thread.system) / Math.max(1, received)
  const byThread = [...cpuByThread()]
    .map(([name, us]) => [name, (us - (threadsBefore.get(name) ?? 0)) / Math.max(1, received)] as const)
    .filter(([name, us]) => name !== 'MainThread' && us >= 1)
    .sort((a, b) => b[1] - a[1])
  const sinkPerDelivery = ((await sink.cpu()) - sinkBefore) / Math.max(1, received)

  // 2. Isolation: publish → arrival for healthy configurations, without and with a hanging one.
  const steady = async (withHang: boolean) => {
    const sent = new Map<string, number>()
    const before = await sink.received()
    const ticks = seconds * 10
    for (let tick = 0; tick < ticks; tick++) {
      const batch = Array.from({ length: Math.max(1, Math.round(rate / 10)) }, () =>
        commandFor(healthy[sequence % healthy.length] as EndpointConfiguration),
      )
      if (withHang && tick % 10 === 0) batch.push(commandFor(hanging))
      const at = Date.now()
      await publish(batch)
      for (const c of batch) if (c.configurationId !== hanging.id) sent.set(c.deliveryId, at)
      await sleep(100)
    }
    await until(before + sent.size, 60_000)
    const arrivals = await sink.arrivals()
    const delays = [...sent].flatMap(([id, at]) => (arrivals[id] === undefined ? [] : [arrivals[id] - at]))
    delays.sort((a, b) => a - b)
    const q = (p: number) =>
      delays[Math.min(delays.length - 1, Math.ceil(p * delays.length) - 1)] ?? Number.NaN
    return { p50: q(0.5), p99: q(0.99), delivered: delays.length, expected: sent.size }
  }
  const alone = await steady(false)
  const beside = await steady(true)

  out(
    `\n| figure (${CONFIGURATIONS} webhook configurations, signed, ${eventBytes === undefined ? 'small events' : `events of about ${eventBytes} bytes`}, 2 cores, concurrency ${concurrency}, ${maxInFlight} in flight per configuration, requests ${senderThread ? 'from the http-sender thread' : 'on the event loop'}) | measured | target |\n|---|---|---|`,
  )
  out(
    `| deliveries/s, ${total.toLocaleString('en-US')} at once (after ${warmup.toLocaleString('en-US')} unmeasured) | ${Math.round(throughput).toLocaleString('en-US')} | ≥ 5,000 |`,
  )
  out(`| deliverer CPU per delivery (user + system, this process) | ${Math.round(cpuPerDelivery)} µs | |`)
  out(`| of which its main thread (the event loop) | ${Math.round(threadPerDelivery)} µs | |`)
  out(
    `| the other threads, by name (10 ms ticks) | ${byThread.map(([name, us]) => `${name} ${Math.round(us)}`).join(', ')} µs | |`,
  )
  out(`| webhook sink CPU per delivery (its own process) | ${Math.round(sinkPerDelivery)} µs | |`)
  // The sink's code never changes and it ran on the same cores over the same interval: its CPU
  // per request moves with the machine's speed as the deliverer's does, so this ratio compares
  // runs taken at different speeds (it moved by a fifth from one run to the next on one day).
  out(
    `| deliverer CPU per delivery in sink requests (deliverer ÷ sink CPU per delivery) | ${(cpuPerDelivery / Math.max(1, sinkPerDelivery)).toFixed(2)} | |`,
  )
  out(
    `| its event loop meanwhile: busy; delay p50 / p99 / max | ${Math.round(loopBusy * 100)}%; ${(loopDelay.percentile(50) / 1e6).toFixed(0)} / ${(loopDelay.percentile(99) / 1e6).toFixed(0)} / ${(loopDelay.max / 1e6).toFixed(0)} ms | |`,
  )
  out(
    `| publish → arrival at ${rate}/s, alone: p50 / p99 | ${alone.p50} / ${alone.p99} ms (${alone.delivered}/${alone.expected}) | |`,
  )
  out(
    `| same, one endpoint hanging (15 s timeouts): p50 / p99 | ${beside.p50} / ${beside.p99} ms (${beside.delivered}/${beside.expected}) | p99 within 10% of alone |`,
  )
  out(
    `| p99 added by the hanging endpoint | ${beside.p99 - alone.p99} ms (${(((beside.p99 - alone.p99) / alone.p99) * 100).toFixed(0)}%) | ≤ 10% |`,
  )

  await consumer.stop()
  await engine.stop(0)
} finally {
  await view.close()
  await store.close()
  await log.close()
  await hooks.close()
  await guard.close()
  await sink.stop()
  rmSync(dir, { recursive: true, force: true })
}
