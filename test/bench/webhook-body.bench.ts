/**
 * A webhook delivery's head read and body (issue 6):
 * `npx node test/bench/webhook-body.bench.ts [--event-bytes 300,4000,16000] [--deliveries N] [--rounds R]`
 * (defaults: those sizes, 2,000, 3).
 * N deliveries of events padded to about each size are requested through the delivery log
 * into a delivery read model (files in a temporary folder). Each round then reads every one
 * as the queue scheduler does (`get`: the row and its request) and makes its webhook body two
 * ways: from the event's stored text (`webhookBody`, what the channel sends), and by parsing
 * the event and writing the payload out (`webhookChannelPayload` through `JSON.stringify`, how
 * the body was made before). Printed: µs of this thread's CPU per delivery for each, the last
 * round's. Figures are printed, never asserted.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createSqliteEventStore } from '../../src/adapters/sqlite-event-store/index.ts'
import {
  createDeliveryLog,
  createDeliveryReadModel,
  type StoredDelivery,
} from '../../src/deliveries/index.ts'
import type { ChannelDelivery } from '../../streams/delivery/channels/channel.ts'
import { anEvent } from '../../streams/delivery/channels/test-fixtures.ts'
import { channelDelivery, webhookBody, webhookChannelPayload } from '../../streams/delivery/index.ts'
import { positiveWholeNumber } from './args.ts'
import { calibrationLine } from './calibration.ts'
import { padded } from './padding.ts'

const { values } = parseArgs({
  options: {
    'event-bytes': { type: 'string', default: '300,4000,16000' },
    deliveries: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
})
const sizes = (values['event-bytes'] ?? '')
  .split(',')
  .map((size) => positiveWholeNumber('--event-bytes', size))
const deliveries = positiveWholeNumber('--deliveries', values.deliveries)
const rounds = positiveWholeNumber('--rounds', values.rounds)
const UI_URL = 'https://herald.example.com/ui/'

/** µs of this thread's CPU per call of `work` over `ids`. */
const cpuPer = (ids: readonly string[], work: (id: string) => number): number => {
  let sink = 0
  const before = process.threadCpuUsage()
  for (const id of ids) sink += work(id)
  const used = process.threadCpuUsage(before)
  if (sink < 0) throw new Error('unreachable')
  return (used.user + used.system) / ids.length
}

process.stdout.write(calibrationLine())
process.stdout.write(
  `\n## A webhook delivery's head read and body, ${deliveries.toLocaleString('en-US')} deliveries, last of ${rounds} rounds\n\n` +
    '| event, bytes of JSON | read + body from the stored text, µs CPU | read + parse + payload written out, µs CPU |\n|---|---|---|\n',
)
for (const bytes of sizes) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-webhook-body-'))
  const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
  const view = createDeliveryReadModel({ path: join(dir, 'deliveries-view.sqlite'), newId: randomUUID })
  try {
    view.follow(store)
    const log = createDeliveryLog({ store, clock: Date.now, newId: randomUUID, origin: view.instanceId })
    const ids: string[] = []
    let position = 0
    for (let i = 0; i < deliveries; i++) {
      const deliveryId = i.toString(16).padStart(64, '0')
      ids.push(deliveryId)
      position = await log.request({
        deliveryId,
        account: 'acme',
        endpoint: 'webhook',
        configurationId: `cfg-${i % 100}`,
        // A small event (about 300 bytes), its data padded out to `bytes`.
        event: padded(anEvent({ id: `evt-${i}`, data: { tag: 'registry.example.com/app:1.0' } }), bytes),
        matchedSelectorIds: ['sel-1'],
        createdAt: new Date().toISOString(),
      })
    }
    await view.waitFor(position)
    const stored = (id: string) => view.get(id) as StoredDelivery
    let spliced = 0
    let writtenOut = 0
    for (let round = 0; round < rounds; round++) {
      spliced = cpuPer(ids, (id) => webhookBody(channelDelivery(stored(id)), UI_URL).length)
      writtenOut = cpuPer(ids, (id) => {
        const delivery = stored(id)
        const parsed: ChannelDelivery = {
          deliveryId: delivery.deliveryId,
          account: delivery.account,
          configurationId: delivery.configurationId,
          event: delivery.event,
          createdAt: delivery.createdAt,
        }
        return JSON.stringify(webhookChannelPayload(parsed, UI_URL)).length
      })
    }
    const size = stored(ids[0] as string).eventText.text.length
    process.stdout.write(
      `| ${size.toLocaleString('en-US')} | ${spliced.toFixed(1)} | ${writtenOut.toFixed(1)} |\n`,
    )
  } finally {
    await view.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
  }
}
