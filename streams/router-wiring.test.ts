import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { createSqliteEventLog } from '../src/adapters/sqlite-event-log/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { encodeLogEvent } from '../src/events/index.ts'
import { generateActivity } from '../src/generator/index.ts'
import { createMetrics } from '../src/observability/index.ts'
import type { EventLog } from '../src/ports/event-log.ts'
import { startRouter, wireIngress } from '../src/wiring/ingress.ts'
import { eventually } from '../test/support/eventually.ts'
import { ROUTER_MAX_BATCH } from './router.ts'
import { buildSelectorIndex } from './routing/index.ts'
import { aConfiguration, aSelector, aSelectorSet } from './routing/test-fixtures.ts'

const noWarehouse = {
  command: async () => assert.fail('the warehouse is not used'),
  query: async () => assert.fail('the warehouse is not used'),
  insert: async () => assert.fail('the warehouse is not used'),
}

it('routes a backlog in batches of ROUTER_MAX_BATCH, every event once and in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-router-wiring-'))
  const config = loadConfig({ env: { HERALD_DATA_DIR: dir }, cwd: dir })
  const { topics } = config.event_log
  const sqlite = createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 20 })
  // The real log, with the router's batches observed on their way to its handler.
  const batches: number[] = []
  const log: EventLog = {
    ...sqlite,
    consume: (options, handler) =>
      sqlite.consume(options, async (batch) => {
        if (options.groupId === 'herald-router') batches.push(batch.messages.length)
        await handler(batch)
      }),
  }
  const ingress = await wireIngress({ config, warehouse: noWarehouse, logger: () => {} })
  try {
    // One partition, so the backlog is one queue the router works off batch by batch.
    await log.createTopics(Object.values(topics).map((topic) => ({ topic, partitions: 1 })))
    const index = buildSelectorIndex(
      aSelectorSet(
        [aConfiguration({ id: 'cfg-all' })],
        [aSelector({ type: '*' }, { configurationId: 'cfg-all', scope: 'global' })],
      ),
    )
    const count = 2 * ROUTER_MAX_BATCH + 123
    const events = [
      ...generateActivity({ seed: 5, accounts: ['acme'], count, clock: () => Date.UTC(2026, 10, 22) }),
    ]
    await log.publish(topics.events, events.map(encodeLogEvent))

    const router = await startRouter({
      config,
      log,
      ingress,
      metrics: createMetrics(),
      logger: () => {},
      clock: Date.now,
      getIndex: () => index,
      route: true,
    })
    await eventually(async () => {
      const [lag] = await log.lag('herald-router', [topics.events])
      assert.equal(lag?.committed, count)
    })
    await router.stop()

    assert.deepEqual(batches, [ROUTER_MAX_BATCH, ROUTER_MAX_BATCH, 123])
    const ids: string[] = []
    const reader = await log.consume(
      { groupId: 'test-reader', topics: [topics.deliveries] },
      async (batch) => {
        for (const m of batch.messages)
          ids.push((JSON.parse(new TextDecoder().decode(m.value)) as { event: { id: string } }).event.id)
      },
    )
    await eventually(() => assert.equal(ids.length, count))
    await reader.stop()
    assert.deepEqual(
      ids,
      events.map((e) => e.id),
    )
  } finally {
    await ingress.close()
    await log.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

it('keeps what the decoder decodes on the embedded log only, whose consumers are handed the same values', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-router-wiring-'))
  const [event] = [...generateActivity({ seed: 7, accounts: 1, count: 1, clock: () => 0 })]
  const published = encodeLogEvent(event as NonNullable<typeof event>)
  const message = {
    ...published,
    headers: published.headers ?? {},
    topic: 'engine.events',
    partition: 0,
    offset: 0,
    timestamp: 0,
  }
  const decodedTwice = async (env: Record<string, string>) => {
    const config = loadConfig({ env: { HERALD_DATA_DIR: dir, ...env }, cwd: dir })
    const ingress = await wireIngress({ config, warehouse: noWarehouse, logger: () => {} })
    try {
      const [first] = await ingress.decoder.decodeBatch([message])
      const [second] = await ingress.decoder.decodeBatch([{ ...message }])
      assert.ok(first?.ok && second?.ok)
      return first === second
    } finally {
      await ingress.close()
    }
  }
  try {
    assert.equal(await decodedTwice({}), true, 'embedded: the router and the projector share one result')
    assert.equal(
      await decodedTwice({
        HERALD_EVENT_LOG__KIND: 'kafka',
        HERALD_EVENT_LOG__KAFKA__BROKERS: 'localhost:9',
      }),
      false,
      'Kafka: each value read by its own consumer',
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
