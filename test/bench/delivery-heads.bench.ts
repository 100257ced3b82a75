/**
 * The deliverer's look for due work (issue 6): `npx node test/bench/delivery-heads.bench.ts`.
 * A delivery read model holding one queued delivery for each of 100 configurations, 99 of
 * them busy, asked what the queue scheduler asks at every pump (`dueHeads` for the free slots,
 * then `nextDueAt`), 10,000 times a round for three rounds; prints µs of wall and of CPU per
 * pump. Figures are printed, never asserted.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import { createDeliveryLog, createDeliveryReadModel } from '../../src/deliveries/index.ts'

const CONFIGURATIONS = 100
const PUMPS = 10_000
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-heads-'))
const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
const view = createDeliveryReadModel({ path: join(dir, 'deliveries-view.sqlite'), newId: randomUUID })
view.follow(store)
const log = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId })
try {
  let position = 0
  for (let n = 0; n < CONFIGURATIONS; n++)
    position = await log.request({
      deliveryId: n.toString(16).padStart(64, '0'),
      account: 'acme',
      endpoint: 'webhook',
      configurationId: `cfg-${n}`,
      event: {
        specversion: '1.0',
        id: `evt-${n}`,
        source: '/bench',
        type: 'user.image.analysis.completed',
        account: 'acme',
      },
      matchedSelectorIds: ['sel-1'],
      createdAt: new Date().toISOString(),
    })
  await view.waitFor(position)
  const busy = new Set(Array.from({ length: CONFIGURATIONS - 1 }, (_, n) => `cfg-${n}`))
  process.stdout.write(`\n## Due heads: ${CONFIGURATIONS} queues, ${busy.size} busy, 128 slots\n\n`)
  for (let round = 1; round <= 3; round++) {
    const started = performance.now()
    const cpu = process.cpuUsage()
    for (let i = 0; i < PUMPS; i++) {
      view.dueHeads(Date.now(), busy, 128 - busy.size)
      view.nextDueAt(busy)
    }
    const used = process.cpuUsage(cpu)
    const wall = ((performance.now() - started) * 1_000) / PUMPS
    process.stdout.write(
      `round ${round}: ${wall.toFixed(1)} µs wall, ${((used.user + used.system) / PUMPS).toFixed(1)} µs CPU per pump\n`,
    )
  }
} finally {
  await view.close()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
}
