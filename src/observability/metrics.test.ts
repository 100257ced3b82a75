import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createSqliteEventLog } from '../adapters/sqlite-event-log/index.ts'
import { createMetrics, lagOfGroups } from './metrics.ts'

const sample = (text: string, name: string, labels: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('metrics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('reports each consumer group’s lag as the event log has it', async () => {
    const log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 20 })
    try {
      await log.createTopics([{ topic: 'engine.events', partitions: 2 }])
      const value = new TextEncoder().encode('{}')
      await log.publish(
        'engine.events',
        Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value })),
      )
      // Read again at each scrape here; Herald's default serves a read for 5 s.
      const metrics = createMetrics({ lagMaxAgeMs: 0 })
      metrics.watchLag(
        lagOfGroups(log, [
          ['reader', 'engine.events'],
          ['idle', 'engine.events'],
        ]),
      )
      const labels = (group: string) => `group="${group}",topic="engine.events"`
      let text = await metrics.registry.metrics()
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels('reader')), 5)
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels('idle')), 5)

      let seen = 0
      const consumer = await log.consume({ groupId: 'reader', topics: ['engine.events'] }, async (batch) => {
        seen += batch.messages.length
      })
      for (let i = 0; i < 250 && sample(text, 'herald_consumer_lag_messages', labels('reader')) !== 0; i++) {
        await sleep(20)
        text = await metrics.registry.metrics()
      }
      await consumer.stop()
      assert.equal(seen, 5)
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels('reader')), 0)
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels('idle')), 5)
    } finally {
      await log.close()
    }
  })

  it('leaves the lag out of a scrape when the log cannot answer, and still answers the rest', async () => {
    const metrics = createMetrics()
    metrics.up.set(1)
    metrics.watchLag(async () => {
      throw new Error('broker unreachable')
    })
    const text = await metrics.registry.metrics()
    assert.match(text, /^herald_up 1$/m)
    assert.doesNotMatch(text, /^herald_consumer_lag_messages\{/m)
  })

  it('reads the lag once per few seconds whatever the scrapes, never waits long for it, and serves the last values with their age', {
    timeout: 10_000,
  }, async () => {
    const metrics = createMetrics({ lagMaxAgeMs: 200, lagTimeoutMs: 100 })
    let reads = 0
    let hang = false
    metrics.watchLag(async () => {
      reads++
      if (hang) await new Promise(() => undefined)
      return [{ group: 'herald-router', topic: 'engine.events', messages: 7 }]
    })
    const labels = 'group="herald-router",topic="engine.events"'
    const first = await Promise.all([metrics.registry.metrics(), metrics.registry.metrics()])
    assert.equal(reads, 1)
    for (const text of first) {
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels), 7)
      assert.ok((sample(text, 'herald_consumer_lag_age_seconds', '') ?? Number.NaN) < 0.2)
    }
    // Fresh values are served from memory.
    await metrics.registry.metrics()
    assert.equal(reads, 1)

    // The log stops answering: a scrape waits at most the timeout and gets the last values, aged.
    hang = true
    await sleep(250)
    const started = Date.now()
    const stale = await Promise.all([metrics.registry.metrics(), metrics.registry.metrics()])
    assert.ok(Date.now() - started < 1_000, `a scrape took ${Date.now() - started} ms`)
    assert.equal(reads, 2)
    for (const text of stale) {
      assert.equal(sample(text, 'herald_consumer_lag_messages', labels), 7)
      assert.ok((sample(text, 'herald_consumer_lag_age_seconds', '') ?? 0) >= 0.25)
    }
    // The hanging read is the one in flight: later scrapes start no other.
    await sleep(250)
    await metrics.registry.metrics()
    assert.equal(reads, 2)
  })

  it('times every batch a consumer handles, failed ones included, and passes on the failure', async () => {
    const metrics = createMetrics()
    const batch = { topic: 'engine.events', partition: 0, messages: [] }
    const ok = metrics.timeBatches('router', async () => {
      await sleep(30)
    })
    const failing = metrics.timeBatches('projector', async () => {
      throw new Error('warehouse unreachable')
    })
    await ok(batch)
    await ok(batch)
    await assert.rejects(failing(batch), /warehouse unreachable/)
    const text = await metrics.registry.metrics()
    assert.equal(sample(text, 'herald_batch_duration_seconds_count', 'consumer="router"'), 2)
    assert.equal(sample(text, 'herald_batch_duration_seconds_count', 'consumer="projector"'), 1)
    const sum = sample(text, 'herald_batch_duration_seconds_sum', 'consumer="router"') ?? 0
    assert.ok(sum >= 0.055 && sum < 1, `two batches of 30 ms took ${sum} s`)
    assert.equal(sample(text, 'herald_batch_duration_seconds_bucket', 'le="0.01",consumer="router"'), 0)
  })

  it('names no account on /metrics unless asked to, and then at most as many as the limit', async () => {
    const accounts = ['acme', 'globex', 'initech', 'acme', 'umbrella', 'globex']
    const anonymous = createMetrics()
    for (const account of accounts) anonymous.countIngested(account)
    const text = await anonymous.registry.metrics()
    assert.match(text, /^herald_events_ingested_total 6$/m)
    for (const account of new Set(accounts)) assert.ok(!text.includes(account), `${account} is named`)

    const labelled = createMetrics({ accountSeriesLimit: 2 })
    for (const account of accounts) labelled.countIngested(account)
    const series = (await labelled.registry.metrics())
      .split('\n')
      .filter((line) => line.startsWith('herald_events_ingested_total{'))
    assert.deepEqual(series.sort(), [
      'herald_events_ingested_total{account="_other"} 2',
      'herald_events_ingested_total{account="acme"} 2',
      'herald_events_ingested_total{account="globex"} 2',
    ])
  })

  it('carries the process’s own metrics only when asked to', async () => {
    const own = await createMetrics({ process: true }).registry.metrics()
    const rss = /^process_resident_memory_bytes (\d+)/m.exec(own)
    assert.ok(rss !== null && Number(rss[1]) > 10 * 1024 * 1024, 'resident memory in bytes')
    assert.match(own, /^nodejs_heap_size_used_bytes \d+/m)
    assert.match(own, /^nodejs_eventloop_lag_p99_seconds /m)
    assert.doesNotMatch(await createMetrics().registry.metrics(), /process_resident_memory_bytes/)
  })
})
