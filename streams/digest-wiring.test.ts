import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { createSqliteEventLog } from '../src/adapters/sqlite-event-log/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { encodeLogEvent } from '../src/events/index.ts'
import { createMetrics } from '../src/observability/index.ts'
import { startRouter, wireIngress } from '../src/wiring/ingress.ts'
import { eventually } from '../test/support/eventually.ts'
import {
  buildSelectorIndex,
  type DeliveryCommand,
  decodeDeliveryCommand,
  digestDeliveryIdFor,
} from './routing/index.ts'
import { aConfiguration, anEvent, aSelector, aSelectorSet } from './routing/test-fixtures.ts'

/** The embedded deployment never touches the warehouse for routing. */
const noWarehouse = {
  command: async () => assert.fail('the warehouse is not used'),
  query: async () => assert.fail('the warehouse is not used'),
  insert: async () => assert.fail('the warehouse is not used'),
}

describe('storm control as Herald wires it', () => {
  it('buffers in data_dir, and flushes at start-up the windows that closed while the router was down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-digest-wiring-'))
    const config = loadConfig({
      env: { HERALD_DATA_DIR: dir, HERALD_NOTIFICATIONS__CYCLE_TIMERS__NOTIFICATIONS: '60' },
      cwd: dir,
    })
    const { topics } = config.event_log
    const log = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 20 })
    const ingress = await wireIngress({ config, warehouse: noWarehouse, logger: () => {} })
    try {
      await log.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 3 })))
      const index = buildSelectorIndex(
        aSelectorSet(
          // No window of its own: `notifications.cycle_timers.notifications` (60 s) applies.
          [
            aConfiguration({
              id: 'cfg-storm',
              endpoint: 'teams',
              digest: { enabled: true, windowSeconds: null },
            }),
          ],
          [aSelector({ type: 'user.image.*' }, { id: 's1', configurationId: 'cfg-storm' })],
        ),
      )
      let now = Date.UTC(2026, 10, 22, 10, 0, 10)
      const options = {
        config,
        log,
        ingress,
        metrics: createMetrics(),
        logger: () => {},
        clock: () => now,
        getIndex: () => index,
        route: true,
      }
      const delivered: DeliveryCommand[] = []
      const reader = await log.consume(
        { groupId: 'test-reader', topics: [topics.deliveries] },
        async (batch) => {
          for (const m of batch.messages) {
            const command = decodeDeliveryCommand(m)
            assert.ok(command.ok)
            delivered.push(command.value)
          }
        },
      )

      const router = await startRouter(options)
      const events = Array.from({ length: 20 }, (_, i) =>
        anEvent({
          id: `done-${i}`,
          type: 'user.image.analysis.completed',
          resourcetype: 'image',
          data: { full_tag: 'docker.io/library/nginx:1.27', digest: `sha256:${'a'.repeat(64)}` },
        }),
      )
      await log.publish(topics.events, events.map(encodeLogEvent))
      await eventually(async () =>
        assert.equal((await ingress.digests.due(Number.MAX_SAFE_INTEGER))[0]?.total, 20),
      )
      await router.stop()
      assert.ok(existsSync(join(dir, 'digests.sqlite')))
      assert.equal(delivered.length, 0, 'held while the window is open')

      // Down past the window's end; the next start flushes it at once.
      now = Date.UTC(2026, 10, 22, 10, 5, 0)
      const restarted = await startRouter(options)
      await eventually(() => assert.equal(delivered.length, 1))
      await restarted.stop()
      await reader.stop()
      const [digest] = delivered
      assert.equal(digest?.deliveryId, digestDeliveryIdFor('cfg-storm', '2026-11-22T10:00:00.000Z'))
      assert.equal(digest?.endpoint, 'teams')
      assert.equal(digest?.digest?.windowEnd, '2026-11-22T10:01:00.000Z')
      assert.equal(digest?.digest?.total, 20)
    } finally {
      await ingress.close()
      await log.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
