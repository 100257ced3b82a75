/**
 * Reading one notification configuration with a long history, as every request about it does
 * (GET, PUT, a selector change, a replay's skip check):
 * `npx node test/bench/configuration-load.bench.ts [--events N] [--loads L] [--updates U]`
 * (defaults 2,000, 1,000, 200).
 *
 * The embedded store on a file, opened as Herald opens it; one webhook configuration whose
 * stream holds N events (its creation, then updates of its description with a selector added
 * every tenth event, written straight to the stream as a long-lived configuration's history
 * reads). Then, through the configuration service: L reads of it one after another, the same
 * L reads after another writer (a second service on the same file, as a second Herald process)
 * appended to it before each one, and U updates, each reading it first. Prints µs of wall and
 * CPU per operation, p50 and p99 of wall. Figures are printed, never asserted.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createNotificationConfigService, type Principal, streamName } from '../../src/notifications/index.ts'
import type { EventData } from '../../src/ports/index.ts'
import { createSecretBox } from '../../src/secrets/index.ts'
import { positiveWholeNumber } from './args.ts'
import { calibrationLine } from './calibration.ts'

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '2000' },
    loads: { type: 'string', default: '1000' },
    updates: { type: 'string', default: '200' },
  },
})
const EVENTS = positiveWholeNumber('--events', values.events)
const LOADS = positiveWholeNumber('--loads', values.loads)
const UPDATES = positiveWholeNumber('--updates', values.updates)
const acme: Principal = { account: 'acme', role: 'read-write' }
const out = (line: string) => process.stdout.write(`${line}\n`)

/** The event at `revision` (≥ 1) of the history: a selector every tenth, else a new description. */
const historyEvent = (configurationId: string, revision: number, at: string): EventData =>
  revision % 10 === 0
    ? {
        id: randomUUID(),
        type: 'SelectorAdded',
        data: {
          selectorId: randomUUID(),
          configurationId,
          account: 'acme',
          scope: 'account',
          event: { level: '*', type: `user.checks.${revision}`, resource_type: '*' },
          pattern: null,
          by: 'acme/read-write',
          at,
        },
      }
    : {
        id: randomUUID(),
        type: 'ConfigurationUpdated',
        data: {
          configurationId,
          account: 'acme',
          settings: { url: 'https://hooks.example.com/a' },
          secrets: {},
          clearedSecrets: [],
          hints: {},
          changed: ['description'],
          description: `revision ${revision}`,
          enabled: true,
          verifyTls: true,
          templates: {},
          digest: { enabled: false, windowSeconds: null },
          by: 'acme/read-write',
          at,
        },
      }

/**
 * µs of wall per operation (mean, p50, p99) and of CPU (mean) over `count` runs of `run`, each
 * after `before` (untimed).
 */
const measure = async (
  count: number,
  run: (i: number) => Promise<unknown>,
  before: (i: number) => Promise<unknown> = async () => {},
) => {
  const walls: number[] = []
  let cpu = 0
  for (let i = 0; i < count; i++) {
    await before(i)
    const used = process.cpuUsage()
    const t = performance.now()
    await run(i)
    walls.push((performance.now() - t) * 1_000)
    const spent = process.cpuUsage(used)
    cpu += spent.user + spent.system
  }
  const mean = walls.reduce((a, b) => a + b, 0) / count
  walls.sort((a, b) => a - b)
  const at = (q: number) => walls[Math.min(walls.length - 1, Math.floor(q * walls.length))] ?? 0
  return { mean, cpu: cpu / count, p50: at(0.5), p99: at(0.99) }
}

const row = (what: string, f: Awaited<ReturnType<typeof measure>>) =>
  out(
    `| ${what} | ${Math.round(f.mean).toLocaleString('en')} µs | ${Math.round(f.cpu).toLocaleString('en')} µs | ${Math.round(f.p50).toLocaleString('en')} µs | ${Math.round(f.p99).toLocaleString('en')} µs |`,
  )

process.stdout.write(calibrationLine())
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-config-'))
const path = join(dir, 'eventstore.sqlite')
const store = createSqliteEventStore({ path })
const other = createSqliteEventStore({ path })
const box = createSecretBox({ current: randomBytes(32).toString('base64') })
const serviceOn = (s: typeof store) =>
  createNotificationConfigService({ store: s, box, clock: Date.now, newId: randomUUID })
const service = serviceOn(store)
const elsewhere = serviceOn(other)
try {
  const created = await service.createConfiguration(acme, 'webhook', {
    fields: { url: 'https://hooks.example.com/a' },
    options: {},
  })
  const id = created.value.id
  const at = new Date().toISOString()
  for (let revision = 1; revision < EVENTS; revision += 500) {
    const events = Array.from({ length: Math.min(500, EVENTS - revision) }, (_, i) =>
      historyEvent(id, revision + i, at),
    )
    await store.append(streamName(id), events, { expectedRevision: revision - 1 })
  }
  const first = await service.getConfiguration('acme', 'webhook', id)
  out(
    `\n## One configuration of ${(first.revision + 1).toLocaleString('en')} events, ${first.value.selectors.length} selectors\n`,
  )
  out('| operation | wall | CPU | wall p50 | wall p99 |')
  out('| --- | --- | --- | --- | --- |')
  row(
    `read (${LOADS.toLocaleString('en')} in a row)`,
    await measure(LOADS, () => service.getConfiguration('acme', 'webhook', id)),
  )
  // The other writer's appends are outside the figure: only the read after each one is timed.
  row(
    `read after another writer's append (${LOADS.toLocaleString('en')})`,
    await measure(
      LOADS,
      () => service.getConfiguration('acme', 'webhook', id),
      (i) =>
        elsewhere.addSelector(acme, 'webhook', id, {
          scope: 'account',
          event: { level: '*', type: `user.other.${i}`, resource_type: '*' },
          pattern: null,
        }),
    ),
  )
  row(
    `update, reading first (${UPDATES.toLocaleString('en')})`,
    await measure(UPDATES, (i) =>
      service.updateConfiguration(acme, 'webhook', id, { fields: {}, options: { description: `u${i}` } }),
    ),
  )
} finally {
  await other.close()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
}
