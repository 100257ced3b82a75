/**
 * The embedded event store under the delivery log's load (issue 6):
 * `npm run bench:event-store [-- --deliveries N] [--in-flight C] [--prefill M]`.
 *
 * The real store on a file with its writer thread, as Herald opens the delivery log: C
 * deliveries at a time, each a new stream (`delivery-<sha256>`, as `deliveryIdFor` names them)
 * getting its request, then its attempt and outcome in one append with the expected revision,
 * as the deliverer appends them. `--prefill M` first writes M deliveries the same way, in large
 * batches, so the timed part runs against a file that has outgrown SQLite's page cache as a
 * running deliverer's does. Prints deliveries/s and the CPU per delivery of the process, every
 * thread (the writer's included). Figures are printed, never asserted.
 */
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import type { EventData, StreamAppend } from '../../src/ports/index.ts'
import { positiveWholeNumber, wholeNumber } from './args.ts'

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '30000' },
    'in-flight': { type: 'string', default: '200' },
    prefill: { type: 'string', default: '0' },
  },
})
const total = positiveWholeNumber('--deliveries', values.deliveries)
const inFlight = positiveWholeNumber('--in-flight', values['in-flight'])
const prefill = wholeNumber('--prefill', values.prefill, 0)

// About the size of a delivery's events: the engine event's metadata in the request.
const engineEvent = {
  specversion: '1.0',
  id: randomUUID(),
  source: 'anchore-engine/policy',
  type: 'com.anchore.policy_eval.failed',
  time: new Date().toISOString(),
  data: { tag: 'docker.io/library/nginx:latest', digest: `sha256:${'a'.repeat(64)}`, result: 'fail' },
}
const requested = (deliveryId: string): EventData => ({
  id: randomUUID(),
  type: 'DeliveryRequested',
  data: {
    deliveryId,
    account: 'acme',
    endpoint: 'webhook',
    configurationId: randomUUID(),
    event: engineEvent,
    matchedSelectorIds: [randomUUID()],
    createdAt: new Date().toISOString(),
    at: new Date().toISOString(),
  },
  metadata: { origin: 'bench' },
})
const outcome = (deliveryId: string): EventData[] => [
  {
    id: randomUUID(),
    type: 'DeliveryAttempted',
    data: {
      deliveryId,
      attempt: 1,
      at: new Date().toISOString(),
      ok: true,
      status: 204,
      latencyMs: 3.2,
      code: null,
      error: null,
      response: 'ok',
    },
    metadata: { origin: 'bench' },
  },
  {
    id: randomUUID(),
    type: 'DeliverySucceeded',
    data: { deliveryId, attempt: 1, at: new Date().toISOString() },
    metadata: { origin: 'bench' },
  },
]
let counter = 0
const nextId = () => createHash('sha256').update(`bench-${counter++}`).digest('hex')

const dir = mkdtempSync(join(tmpdir(), 'herald-store-bench-'))
const path = join(dir, 'deliveries.sqlite')
const store = createSqliteEventStore({ path, writerThread: true })
try {
  for (let done = 0; done < prefill; done += 2000) {
    const ids = Array.from({ length: Math.min(2000, prefill - done) }, nextId)
    await store.appendMany(
      ids.map((id): StreamAppend => ({ stream: `delivery-${id}`, events: [requested(id)] })),
    )
    await store.appendMany(
      ids.map((id): StreamAppend => ({ stream: `delivery-${id}`, events: outcome(id), expectedRevision: 0 })),
    )
  }
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  let next = 0
  const deliver = async (): Promise<void> => {
    while (next < total) {
      next += 1
      const id = nextId()
      const stream = `delivery-${id}`
      await store.append(stream, [requested(id)], { expectedRevision: 'no_stream' })
      await store.append(stream, outcome(id), { expectedRevision: 0 })
    }
  }
  await Promise.all(Array.from({ length: inFlight }, deliver))
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const megabytes = statSync(path).size / 2 ** 20
  console.log(
    `${total.toLocaleString('en')} deliveries (3 events each, ${inFlight} in flight) after ${prefill.toLocaleString('en')} prefilled: ` +
      `${Math.round(total / seconds).toLocaleString('en')} deliveries/s, ` +
      `${Math.round((cpu.user + cpu.system) / total)} µs CPU per delivery (all threads), file ${megabytes.toFixed(0)} MiB`,
  )
} finally {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
}
