/**
 * Report freshness (issue 7): `npm run bench:freshness [-- --rates 1000,2500,5000,10000]
 * [--seconds 20] [--in-flight 10] [--herald-env KEY=VALUE,...]`. How long an event takes from being published to being visible in GraphQL,
 * in a real Herald process on its embedded defaults (`npm start`: router, deliverer, projector
 * and API in one process, chDB in it, no selectors configured).
 *
 * For each rate, the generator's mix is published through `POST /v1/events` (batches every
 * 100 ms, in requests of at most 250 events) for `--seconds`, each batch when it falls due
 * rather than when the one before was answered, as independent producers would send them (with
 * `--in-flight` batches unanswered the rig waits, so the rate it reached is printed), and every 500 ms one probe goes
 * with it: an image analysed for the account `freshness-probe`, with a vulnerability id of its
 * own. A poller asks GraphQL (`imagesByVulnerability` of that account) which probe
 * vulnerabilities it shows, again 100 ms after each answer; a probe's freshness is from the 202
 * that published it to the first answer that lists it, so it includes that answer's own time,
 * which is printed too (p50/p99 over the rate's polls). Prints the rate reached, the p50/p99 of
 * the probes and how many were still not visible when the rate's run ended, against the target
 * of p99 ≤ 2 s at 10,000 events/s, and Herald's CPU per published event from the first publish
 * until the last probe is visible (`/proc`): its event loop's and all its threads' (worker
 * threads, chDB), the steadier figures on a machine that runs other work too, the rig's own
 * (this process: it shares the two cores, so it writes each rate's requests out before the
 * rate's run starts, and only sends them and polls while it runs), and its resident
 * memory when the rate's run ended and at its peak so far (`/proc`), and its event loop's delay
 * over the run (p99 and max, from its `/metrics`: the longest stretch any request or batch
 * waited behind other work). Figures are printed, never asserted.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { EngineEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import { heraldApi } from '../support/herald-api.ts'
import { startHeraldProcess } from '../support/herald-process.ts'
import { positiveWholeNumber } from './args.ts'
import { calibrationLine } from './calibration.ts'
import { processStats } from './kafka-rig.ts'
import { envList } from './kafka-routing.bench.ts'
import { procStat } from './proc.ts'

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '1000,2500,5000,10000' },
    seconds: { type: 'string', default: '20' },
    'herald-env': { type: 'string' },
    // Ticks sent and not yet answered before the rig waits (1: each tick waits for the one before).
    'in-flight': { type: 'string', default: '10' },
  },
})
const rates = (values.rates ?? '').split(',').map(Number)
const seconds = Number(values.seconds)
const ticksInFlight = positiveWholeNumber('--in-flight', values['in-flight'])
if (rates.some((r) => !Number.isInteger(r) || r < 10) || !(seconds > 0))
  throw new Error('--rates: whole numbers of events/s, at least 10 each; --seconds: a positive number')

const TICK_MS = 100
const PER_REQUEST = 250
const PROBE_EVERY_TICKS = 5
const POLL_MS = 100
const PROBE_ACCOUNT = 'freshness-probe'
const out = (line = '') => process.stdout.write(`${line}\n`)
process.stdout.write(calibrationLine())
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quantile = (sorted: readonly number[], q: number) =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number)

const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-freshness-'))
const adminToken = `bench-${randomUUID()}`
const herald = await startHeraldProcess({
  HERALD_DATA_DIR: dataDir,
  HERALD_ADMIN_TOKEN: adminToken,
  HERALD_LOG_LEVEL: 'info',
  ...envList(values['herald-env']),
})

try {
  const admin = heraldApi(herald.url, adminToken)
  const prober = heraldApi(herald.url, await admin.issueToken(PROBE_ACCOUNT, 'read-only'))
  const activity = generateActivity({
    seed: 'freshness',
    accounts: 20,
    count: Number.MAX_SAFE_INTEGER,
    clock: Date.now,
  })
  const nextEvents = (n: number): EngineEvent[] => {
    const events: EngineEvent[] = []
    for (let next = activity.next(); !next.done; next = activity.next()) {
      events.push(next.value)
      if (events.length === n) break
    }
    return events
  }
  let probes = 0
  const probeEvent = (vulnerabilityId: string) => {
    const digest = `sha256:${randomBytes(32).toString('hex')}`
    return {
      specversion: '1.0',
      id: randomUUID(),
      source: '/bench/freshness',
      type: 'herald.report.image.analyzed',
      account: PROBE_ACCOUNT,
      subject: digest,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: {
        digest,
        registry: 'registry.example.com',
        repository: 'bench/probe',
        image_id: randomBytes(32).toString('hex'),
        distro: { name: 'debian', version: '12' },
        package_count: 1,
        analyzed_at: new Date().toISOString(),
        findings: [
          {
            id: vulnerabilityId,
            severity: 'high',
            package: 'openssl',
            version: '3.0.1',
            type: 'dpkg',
            fix_version: null,
            kev: false,
            cvss: 7.5,
          },
        ],
      },
    }
  }
  // The requests of each tick, written out before the run: the rig shares the two cores with
  // Herald, so generating and serialising the load while it runs would take from Herald's share.
  const tickBodies = (perTick: number): string[] => {
    const events = nextEvents(perTick)
    const bodies: string[] = []
    for (let i = 0; i < events.length; i += PER_REQUEST)
      bodies.push(JSON.stringify(events.slice(i, i + PER_REQUEST)))
    return bodies
  }
  /** `body` (a JSON array) with `event` added at its end. */
  const withEvent = (body: string, event: unknown): string =>
    body === '[]' ? `[${JSON.stringify(event)}]` : `${body.slice(0, -1)},${JSON.stringify(event)}]`
  // heraldApi sends application/json; a batch goes with its own content type.
  const publishBatch = async (body: string) => {
    const response = await fetch(`${herald.url}/v1/events`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${adminToken}`,
        'content-type': 'application/cloudevents-batch+json',
      },
      body,
    })
    const text = await response.text()
    if (response.status !== 202) throw new Error(`POST /v1/events: ${response.status} ${text.slice(0, 300)}`)
  }
  // prom-client's event-loop delay histogram starts afresh at each scrape.
  const loopDelay = async (): Promise<string> => {
    const text = await (await fetch(`${herald.url}/metrics`)).text()
    const seconds = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1])
    const ms = (name: string) => fmt(seconds(name) * 1_000)
    return `${ms('nodejs_eventloop_lag_p99_seconds')} / ${ms('nodejs_eventloop_lag_max_seconds')}`
  }
  // How long each poll took to answer, for the rate being run.
  const answerMs: number[] = []
  const visible = async (): Promise<Set<string>> => {
    const asked = performance.now()
    const answer = await prober.call('POST', '/v1/reports/graphql', {
      query: `{ imagesByVulnerability(limit: 1000) { results { vulnerability { vulnerabilityId } } } }`,
    })
    const data = answer.json.data as
      | { imagesByVulnerability: { results: { vulnerability: { vulnerabilityId: string } }[] } }
      | undefined
    if (data === undefined) throw new Error(`GraphQL: ${answer.text.slice(0, 300)}`)
    answerMs.push(performance.now() - asked)
    return new Set(data.imagesByVulnerability.results.map((r) => r.vulnerability.vulnerabilityId))
  }

  out(
    `\n## Freshness: published (202) → visible in GraphQL, Herald on its embedded defaults (probe every ${PROBE_EVERY_TICKS * TICK_MS} ms, GraphQL asked again ${POLL_MS} ms after each answer)\n`,
  )
  out(
    '| offered events/s | published events/s | probes | p50 | p99 | max | not visible at the end | GraphQL answer p50 / p99 | Herald CPU µs per event: event loop / all threads | rig (this process) CPU µs per event | Herald event loop delay p99 / max (ms) | Herald RSS at the end / peak (MiB) | target |',
  )
  out('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  const pid = herald.child.pid as number
  for (const rate of rates) {
    const publishedAt = new Map<string, number>()
    const freshness: number[] = []
    let polling = true
    let stoppedAt = Number.POSITIVE_INFINITY
    const poller = (async () => {
      while (polling || publishedAt.size > 0) {
        const seen = await visible()
        const now = performance.now()
        for (const [id, at] of publishedAt) {
          if (!seen.has(id)) continue
          freshness.push(now - at)
          publishedAt.delete(id)
        }
        if (!polling && performance.now() - stoppedAt > 60_000) break
        await sleep(POLL_MS)
      }
    })()
    const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1_000))
    const ticks = Math.round((seconds * 1_000) / TICK_MS)
    const load = Array.from({ length: ticks }, () => tickBodies(perTick))
    const started = performance.now()
    await loopDelay()
    const cpuAtStart = {
      loop: procStat(`/proc/${pid}/task/${pid}/stat`).cpuMs,
      all: procStat(`/proc/${pid}/stat`).cpuMs,
    }
    const rigAtStart = process.cpuUsage()
    let sent = 0
    const inFlight = new Set<Promise<void>>()
    let failure: unknown
    for (let tick = 0; tick < ticks; tick++) {
      const due = started + tick * TICK_MS
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const bodies = load[tick] as string[]
      load[tick] = []
      const probeId = tick % PROBE_EVERY_TICKS === 0 ? `CVE-2099-${++probes}` : undefined
      // The probe goes in the tick's last request, after that tick's events.
      if (probeId !== undefined) bodies.push(withEvent(bodies.pop() ?? '[]', probeEvent(probeId)))
      // A tick is sent when it falls due, whether or not the ticks before it were answered, as
      // independent producers would; only when `--in-flight` ticks wait does the rig wait too.
      while (inFlight.size >= ticksInFlight) await Promise.race(inFlight)
      const answered = Promise.all(bodies.map(publishBatch)).then(() => {
        if (probeId !== undefined) publishedAt.set(probeId, performance.now())
      })
      const tracked: Promise<void> = answered.then(
        () => void inFlight.delete(tracked),
        (error: unknown) => {
          inFlight.delete(tracked)
          failure ??= error
        },
      )
      inFlight.add(tracked)
      sent += perTick + (probeId === undefined ? 0 : 1)
      if (failure !== undefined) break
    }
    await Promise.all(inFlight)
    if (failure !== undefined) throw failure
    const publishedRate = (sent / (performance.now() - started)) * 1_000
    polling = false
    stoppedAt = performance.now()
    const probesSent = freshness.length + publishedAt.size
    await poller
    const perEvent = (ms: number) => fmt((ms * 1_000) / sent)
    const cpu = `${perEvent(procStat(`/proc/${pid}/task/${pid}/stat`).cpuMs - cpuAtStart.loop)} / ${perEvent(procStat(`/proc/${pid}/stat`).cpuMs - cpuAtStart.all)}`
    const rigUsed = process.cpuUsage(rigAtStart)
    const delay = await loopDelay()
    const notVisible = publishedAt.size
    const memory = processStats(pid)
    const rss = `${fmt(memory.rssKb / 1_024)} / ${fmt(memory.peakKb / 1_024)}`
    freshness.sort((a, b) => a - b)
    const answers = answerMs.splice(0).sort((a, b) => a - b)
    const ms = (v: number) => (Number.isNaN(v) ? '—' : `${fmt(v)} ms`)
    out(
      `| ${fmt(rate)} | ${fmt(publishedRate)} | ${probesSent} | ${ms(quantile(freshness, 0.5))} | ${ms(quantile(freshness, 0.99))} | ${ms(freshness.at(-1) ?? Number.NaN)} | ${notVisible} | ${ms(quantile(answers, 0.5))} / ${ms(quantile(answers, 0.99))} | ${cpu} | ${perEvent((rigUsed.user + rigUsed.system) / 1_000)} | ${delay} | ${rss} | p99 ≤ 2,000 ms at 10,000/s |`,
    )
  }
} finally {
  await herald.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
