/**
 * The delivery read model's fold, the `delivery-fold` thread's work (issue 6):
 * `npx node test/bench/delivery-fold.bench.ts [--deliveries N] [--configurations K]
 * [--commit E] [--lag L] [--rounds R]` (defaults 30,000, 100, 40, 1,000, 3).
 * The embedded delivery store (a file) is filled once as the deliverer fills it: requests in
 * batches (`requestMany`), and each delivery's attempt with its success appended together `L`
 * deliveries after its request, one store commit per turn. Each round then folds that log from
 * position 0 into a new read-model file, `E` store events a transaction (live, the fold
 * commits what one store commit appended), on the event loop with the fold thread's settings
 * (it checkpoints its own file between folds). Printed: µs of CPU per delivery (this thread's,
 * and the whole process's), of wall, and the same for reading the log alone in the same pages,
 * which the fold includes. Figures are printed, never asserted.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { lastValueFrom, takeWhile } from 'rxjs'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryLog, createDeliveryReadModel } from '../../src/deliveries/index.ts'
import { deliveryIdFor } from '../../streams/routing/index.ts'

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '30000' },
    configurations: { type: 'string', default: '100' },
    commit: { type: 'string', default: '40' },
    lag: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
})
const DELIVERIES = Number(values.deliveries)
const COMMIT = Number(values.commit)
const LAG = Number(values.lag)
const ROUNDS = Number(values.rounds)
// Requests per store commit: with the attempts and outcomes of as many earlier deliveries,
// about `COMMIT` events.
const BATCH = Math.max(1, Math.round(COMMIT / 3))
const ORIGIN = 'bench-instance'
const configurations = Array.from({ length: Number(values.configurations) }, (_, k) => ({
  id: randomUUID(),
  account: `acct-${k % 10}`,
}))

const requestOf = (n: number) => {
  const configuration = configurations[n % configurations.length] ?? { id: 'cfg', account: 'acme' }
  const event = {
    specversion: '1.0' as const,
    id: randomUUID(),
    source: '/engine/analyzer',
    type: 'user.image.analysis.completed',
    account: configuration.account,
    level: 'info' as const,
    resourcetype: 'image',
    time: new Date().toISOString(),
    data: { digest: `sha256:${'ab'.repeat(32)}` },
  }
  return {
    deliveryId: deliveryIdFor(event, configuration.id),
    account: configuration.account,
    endpoint: 'webhook' as const,
    configurationId: configuration.id,
    event,
    matchedSelectorIds: ['sel-1'],
    createdAt: new Date().toISOString(),
  }
}

const dir = mkdtempSync(join(tmpdir(), 'herald-bench-fold-'))
const storePath = join(dir, 'deliveries.sqlite')
const out = (line: string) => process.stdout.write(`${line}\n`)

/** Appends the log as the deliverer would; resolves with its last position. */
const fill = async (): Promise<number> => {
  const store = createSqliteEventStore({ path: storePath, groupCommit: true })
  const log = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: ORIGIN })
  const ids: string[] = []
  const answer = { ok: true, status: 204, latencyMs: 7, code: null, error: null, response: 'ok' }
  let last = 0
  const attempt = (id: string) =>
    log.record({ deliveryId: id, revision: 0, status: 'pending', attempts: 0, replays: 0 }, answer, {
      outcome: 'sent',
    })
  try {
    for (let n = 0; n < DELIVERIES + LAG; n += BATCH) {
      const batch = Array.from({ length: Math.max(0, Math.min(BATCH, DELIVERIES - n)) }, (_, i) =>
        requestOf(n + i),
      )
      for (const r of batch) ids.push(r.deliveryId)
      // One turn: one store commit of the new requests and the attempts of earlier ones.
      const settled = ids.slice(Math.max(0, n - LAG), Math.max(0, n - LAG + BATCH))
      const positions = await Promise.all([
        batch.length === 0 ? 0 : log.requestMany(batch),
        ...settled.map(async (id) => (await attempt(id)).position),
      ])
      last = Math.max(last, ...positions)
    }
  } finally {
    await store.close()
  }
  return last
}

interface Figures {
  readonly thread: number
  readonly process: number
  readonly wall: number
}

const measure = async (work: () => Promise<void>): Promise<Figures> => {
  const thread = process.threadCpuUsage()
  const all = process.cpuUsage()
  const started = performance.now()
  await work()
  const wall = performance.now() - started
  const t = process.threadCpuUsage(thread)
  const p = process.cpuUsage(all)
  return {
    thread: (t.user + t.system) / DELIVERIES,
    process: (p.user + p.system) / DELIVERIES,
    wall: (wall * 1_000) / DELIVERIES,
  }
}

const show = (f: Figures) =>
  `${f.thread.toFixed(1)} µs CPU (${f.process.toFixed(1)} process), ${f.wall.toFixed(1)} µs wall`

/** Reads the log from the start, `COMMIT` events a page, folding nothing. */
const readOnly = (last: number) => {
  const store = createSqliteEventStore({ path: storePath, pageSize: COMMIT })
  return measure(async () => {
    await lastValueFrom(
      store
        .subscribeToAll({ after: 0, streamPrefixes: ['delivery-'] })
        .pipe(takeWhile((e) => e.position < last, true)),
    )
  }).finally(() => store.close())
}

const fold = async (round: number, last: number): Promise<{ figures: Figures; bytes: number }> => {
  const store = createSqliteEventStore({ path: storePath, pageSize: COMMIT })
  const path = join(dir, `view-${round}.sqlite`)
  const view = createDeliveryReadModel({ path, newId: () => ORIGIN, checkpointHere: true })
  let figures: Figures
  try {
    figures = await measure(async () => {
      view.follow(store)
      await view.waitFor(last)
    })
  } finally {
    await view.close()
    await store.close()
  }
  return { figures, bytes: statSync(path).size }
}

try {
  const filled = performance.now()
  const last = await fill()
  out(
    `\n## Delivery fold: ${DELIVERIES} deliveries, ${configurations.length} configurations, ` +
      `${COMMIT} events a transaction, attempts ${LAG} deliveries behind their requests\n`,
  )
  out(`log filled in ${((performance.now() - filled) / 1_000).toFixed(1)} s, ${last} events`)
  for (let round = 1; round <= ROUNDS; round++) {
    const read = await readOnly(last)
    const { figures, bytes } = await fold(round, last)
    out(
      `round ${round}: fold ${show(figures)} per delivery; reading alone ${show(read)}; ` +
        `view file ${(bytes / 1_048_576).toFixed(1)} MiB`,
    )
  }
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}
