/**
 * The delivery log's retention pass (`notifications.delivery.retention_days`) at scale:
 * `npx node test/bench/delivery-retention.bench.ts [--deliveries N] [--keep K] [--batch B]
 * [--event-bytes E]` (defaults 200,000, 20,000, 500; events of about 300 bytes).
 * The embedded delivery store (with its writer thread, as Herald opens it) is filled as the deliverer fills it (`fillDeliveryLog`) and
 * folded into a read model, every outcome marked published; then one pass deletes all but the
 * last `K` deliveries (they were requested after the cutoff), `B` at a time, as Herald's hourly
 * pass does. The read model is folded on the event loop here, so `forget` is timed there; in
 * Herald the fold thread runs it. Printed: the pass's wall time and deliveries deleted per
 * second, CPU per delivery (the event loop's and the process's), the time each part took on
 * the event loop (`prunable`'s query, `forget`) and waiting for the store's writer thread
 * (`deleteStreams`), the event loop's longest stall during the pass (a stall is a turn some
 * other work had to wait for), and the files' sizes before and after (SQLite reuses the freed
 * pages; the files do not shrink). Figures are printed, never asserted.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel, startDeliveryRetention } from '../../src/deliveries/index.ts'
import type { EventStore } from '../../src/ports/index.ts'
import { optionalPositiveWholeNumber, positiveWholeNumber, wholeNumber } from './args.ts'
import { fillDeliveryLog } from './delivery-log-fill.ts'

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '200000' },
    keep: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '500' },
    'event-bytes': { type: 'string' },
  },
})
const DELIVERIES = positiveWholeNumber('--deliveries', values.deliveries)
const KEEP = wholeNumber('--keep', values.keep, 0)
const BATCH = positiveWholeNumber('--batch', values.batch)
const EVENT_BYTES = optionalPositiveWholeNumber('--event-bytes', values['event-bytes'])
const ORIGIN = 'bench-instance'
if (KEEP >= DELIVERIES) throw new Error('--keep must be less than --deliveries')

const out = (line: string) => process.stdout.write(`${line}\n`)
const mib = (path: string) => {
  const size = (suffix: string) => {
    try {
      return statSync(path + suffix).size
    } catch {
      return 0
    }
  }
  return `${((size('') + size('-wal')) / 1_048_576).toFixed(1)} MiB`
}

const dir = mkdtempSync(join(tmpdir(), 'herald-bench-retention-'))
const storePath = join(dir, 'deliveries.sqlite')
const viewPath = join(dir, 'deliveries-view.sqlite')

/** Times each call of `f`, adding its milliseconds to `total.ms`. */
const timed = <A extends unknown[], R>(total: { ms: number }, f: (...args: A) => R) => {
  return (...args: A): R => {
    const started = performance.now()
    const result = f(...args)
    if (result instanceof Promise) {
      return result.finally(() => {
        total.ms += performance.now() - started
      }) as R
    }
    total.ms += performance.now() - started
    return result
  }
}

try {
  const started = performance.now()
  // The first deliveries are requested a day before the last `KEEP`: between the two fills.
  const old = await fillDeliveryLog({
    path: storePath,
    deliveries: DELIVERIES - KEEP,
    configurations: 100,
    commit: 40,
    lag: 1_000,
    eventBytes: EVENT_BYTES,
    origin: ORIGIN,
  })
  await new Promise((resolve) => setTimeout(resolve, 50))
  const cutoff = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const last =
    KEEP === 0
      ? old
      : await fillDeliveryLog({
          path: storePath,
          deliveries: KEEP,
          configurations: 100,
          commit: 40,
          lag: Math.min(1_000, KEEP),
          eventBytes: EVENT_BYTES,
          origin: ORIGIN,
        })
  const store: EventStore = createSqliteEventStore({ path: storePath, groupCommit: true, writerThread: true })
  const view = createDeliveryReadModel({ path: viewPath, newId: () => ORIGIN, checkpointHere: true })
  view.follow(store)
  await view.waitFor(last)
  view.markPublished([last])
  out(
    `\n## Delivery retention: ${DELIVERIES} deliveries, ${DELIVERIES - KEEP} of them past the cutoff, ` +
      `${BATCH} a batch, ${EVENT_BYTES === undefined ? 'events of about 300 bytes' : `events padded to about ${EVENT_BYTES} bytes`}\n`,
  )
  out(
    `filled and folded in ${((performance.now() - started) / 1_000).toFixed(1)} s; ` +
      `store ${mib(storePath)}, read model ${mib(viewPath)}`,
  )

  const parts = { prunable: { ms: 0 }, forget: { ms: 0 }, deleteStreams: { ms: 0 } }
  const retention = startDeliveryRetention({
    store: { deleteStreams: timed(parts.deleteStreams, store.deleteStreams) },
    view: { prunable: timed(parts.prunable, view.prunable), forget: timed(parts.forget, view.forget) },
    retentionMs: 0,
    firstPassMs: 2 ** 31 - 1,
    batchSize: BATCH,
    clock: () => cutoff,
    logger: () => undefined,
  })
  const stalls = monitorEventLoopDelay({ resolution: 5 })
  const thread = process.threadCpuUsage()
  const cpu = process.cpuUsage()
  const passStarted = performance.now()
  stalls.enable()
  const pass = await retention.pass()
  stalls.disable()
  const wall = performance.now() - passStarted
  const t = process.threadCpuUsage(thread)
  const p = process.cpuUsage(cpu)
  await retention.stop()
  const gone = pass.deleted + pass.absent
  out(
    `pass: ${pass.deleted} deleted, ${pass.absent} absent, ${pass.changed} changed in ` +
      `${(wall / 1_000).toFixed(1)} s, ${Math.round(gone / (wall / 1_000))} deliveries/s; ` +
      `${((t.user + t.system) / gone).toFixed(1)} µs CPU per delivery on the event loop ` +
      `(${((p.user + p.system) / gone).toFixed(1)} process)`,
  )
  out(
    `time in prunable ${(parts.prunable.ms / 1_000).toFixed(2)} s, forget ${(parts.forget.ms / 1_000).toFixed(2)} s ` +
      `(both on the event loop), deleteStreams ${(parts.deleteStreams.ms / 1_000).toFixed(2)} s (the writer thread); ` +
      `event loop's longest stall ${(stalls.max / 1e6).toFixed(0)} ms, p99 ${(stalls.percentile(99) / 1e6).toFixed(0)} ms`,
  )
  const left = view.list({ limit: KEEP + 1 }).items.length
  await view.close()
  await store.close()
  out(
    `after: store ${mib(storePath)}, read model ${mib(viewPath)}; ${left} deliveries left (${KEEP} expected)`,
  )
} finally {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
}
