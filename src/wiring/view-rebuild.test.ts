import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { createDeliveryReadModel, deliveryStream } from '../deliveries/index.ts'
import type { LogFields } from '../observability/index.ts'
import { reportViewRebuild } from './view-rebuild.ts'

describe('reportViewRebuild', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-view-rebuild-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('logs a read model rebuilt from the delivery log as it starts, as it goes and once done, with how far and how long', async () => {
    const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
    // Events of delivery streams (the model passes over ones it cannot read), then one of another.
    for (let i = 0; i < 300; i++)
      await store.append(deliveryStream(randomUUID()), [{ id: randomUUID(), type: 'Unknown', data: {} }])
    await store.append('configuration-1', [{ id: randomUUID(), type: 'Other', data: {} }])
    const path = join(dir, 'view.sqlite')
    const view = createDeliveryReadModel({ path, newId: randomUUID, onInvalidEvent: () => undefined })
    const lines: { event: string; fields: LogFields }[] = []
    const report = reportViewRebuild({
      view,
      store,
      path,
      progressMs: 1,
      logger: (_level, event, fields = {}) => lines.push({ event, fields }),
    })
    view.follow(store)
    await report.done
    const events = lines.map((l) => l.event)
    assert.equal(events[0], 'delivery.view_rebuilding')
    assert.equal(events.at(-1), 'delivery.view_rebuilt')
    assert.deepEqual(lines[0]?.fields, { path, through_position: 300 })
    const done = lines.at(-1)?.fields ?? {}
    assert.equal(done.position, 300)
    assert.equal(typeof done.ms, 'number')
    for (const line of lines.slice(1, -1)) assert.equal(line.event, 'delivery.view_rebuild_progress')
    await view.close()
    await store.close()
  })

  it('logs nothing when the delivery log holds nothing to fold', async () => {
    const store = createSqliteEventStore({ path: join(dir, 'empty.sqlite') })
    await store.append('configuration-1', [{ id: randomUUID(), type: 'Other', data: {} }])
    const view = createDeliveryReadModel({ path: join(dir, 'empty-view.sqlite'), newId: randomUUID })
    const lines: string[] = []
    const report = reportViewRebuild({
      view,
      store,
      path: 'x',
      logger: (_level, event) => lines.push(event),
    })
    view.follow(store)
    await report.done
    assert.deepEqual(lines, [])
    await view.close()
    await store.close()
  })
})
