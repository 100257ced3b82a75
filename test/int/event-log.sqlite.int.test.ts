import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { partitionForKey } from '../../src/adapters/murmur2.ts'
import {
  createSqliteEventLog,
  type RetentionDeletion,
  type SqliteEventLogOptions,
} from '../../src/adapters/sqlite-event-log/index.ts'
import type { Batch, LogMessage } from '../../src/ports/event-log.ts'
import { runEventLogContract } from '../contracts/event-log.contract.ts'
import { damageTablePage } from '../support/damaged-page.ts'
import { eventually } from '../support/eventually.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-eventlog-'))
after(() => rmSync(dir, { recursive: true, force: true }))

runEventLogContract({
  name: 'embedded SQLite',
  open: async () => createSqliteEventLog({ path: join(dir, 'eventlog.sqlite'), idlePollMs: 100 }),
})

// Consumers read from the file alone, and from a tail a few messages long (most reads cross
// from the file into it).
runEventLogContract({
  name: 'embedded SQLite, no tail',
  open: async () =>
    createSqliteEventLog({ path: join(dir, 'eventlog-no-tail.sqlite'), idlePollMs: 100, tailBytes: 0 }),
})
runEventLogContract({
  name: 'embedded SQLite, a tail of 16 bytes',
  open: async () =>
    createSqliteEventLog({ path: join(dir, 'eventlog-short-tail.sqlite'), idlePollMs: 100, tailBytes: 16 }),
})

describe('embedded SQLite: the tail of what was published', () => {
  it('hands every group the published messages themselves, and what is older than the tail from the file, alike', async () => {
    const path = join(dir, `tail-${randomUUID()}.sqlite`)
    const encoder = new TextEncoder()
    // 20 values of 4 bytes into a tail of 40: past 40 it keeps 30 at most, the last 7 (13-19).
    // Groups read 5 at a time, and a read that starts in the tail is served from it: 15-19.
    const sent = Array.from({ length: 20 }, (_, i) => ({
      key: `k${i % 3}`,
      value: encoder.encode(`m-${String(i).padStart(2, '0')}`),
      headers: { n: String(i) },
    }))
    const log = createSqliteEventLog({ path, idlePollMs: 20, tailBytes: 40 })
    await log.createTopics([{ topic: 'tailed', partitions: 1 }])
    await log.publish('tailed', sent.slice(0, 10))
    await log.publish('tailed', sent.slice(10))
    const readBy = async (from: typeof log, groupId: string) => {
      const read: LogMessage[] = []
      const consumer = await from.consume({ groupId, topics: ['tailed'], maxBatchSize: 5 }, async (batch) => {
        read.push(...batch.messages)
      })
      await eventually(() => assert.equal(read.length, 20))
      await consumer.stop()
      return read
    }
    const [a, b] = [await readBy(log, 'a'), await readBy(log, 'b')]
    await log.close()
    // The same file read back with no tail: what every message must be, wherever it came from.
    const fromFile = createSqliteEventLog({ path, idlePollMs: 20, tailBytes: 0 })
    const expected = await readBy(fromFile, 'c')
    await fromFile.close()

    assert.deepEqual(
      expected.map((m) => [m.offset, m.key, new TextDecoder().decode(m.value), m.headers]),
      sent.map((m, i) => [i, m.key, new TextDecoder().decode(m.value), m.headers]),
    )
    for (const read of [a, b]) {
      assert.deepStrictEqual(
        read.map((m) => ({ ...m, value: [...m.value] })),
        expected.map((m) => ({ ...m, value: [...m.value] })),
      )
      for (const m of read) assert.ok(Object.isFrozen(m.headers), `headers of ${m.offset} are frozen`)
    }
    for (let i = 0; i < 20; i++) {
      const inTail = i >= 15
      assert.equal(a[i] === b[i], inTail, `offset ${i}: one object for both groups only from the tail`)
      assert.equal(
        a[i]?.value === sent[i]?.value,
        inTail,
        `offset ${i}: the published value itself only from the tail`,
      )
    }
  })
})

describe('embedded SQLite: batching by size or time', () => {
  const encoder = new TextEncoder()
  const open = () =>
    createSqliteEventLog({ path: join(dir, `batching-${randomUUID()}.sqlite`), idlePollMs: 100 })
  const collect = () => {
    const batches: number[][] = []
    return {
      batches,
      handler: async (batch: Batch) => {
        batches.push(batch.messages.map((m) => m.offset))
      },
    }
  }
  const publish = (log: ReturnType<typeof open>, n: number) =>
    log.publish(
      'batched',
      Array.from({ length: n }, () => ({ key: 'k', value: encoder.encode('x') })),
    )

  it('holds a partial batch until it fills up or its oldest message has waited maxWaitMs', async () => {
    const log = open()
    await log.createTopics([{ topic: 'batched', partitions: 1 }])
    const c = collect()
    await publish(log, 3)
    const consumer = await log.consume(
      { groupId: 'g', topics: ['batched'], maxBatchSize: 10, maxWaitMs: 5_000 },
      c.handler,
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    await publish(log, 9)
    // Filled to 10 well before the wait ran out; the other 2 wait for more, then go as they are.
    await eventually(() => assert.deepEqual(c.batches[0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), {
      timeoutMs: 4_000,
    })
    const waited = Date.now()
    await eventually(() => assert.deepEqual(c.batches[1], [10, 11]), { timeoutMs: 10_000 })
    assert.ok(Date.now() - waited > 1_000, 'the partial batch waited for more messages')
    await consumer.stop()
    await log.close()
  })

  it('hands over whatever is there without maxWaitMs, and stops promptly while waiting', async () => {
    const log = open()
    await log.createTopics([{ topic: 'batched', partitions: 1 }])
    const c = collect()
    await publish(log, 3)
    const consumer = await log.consume({ groupId: 'g', topics: ['batched'], maxBatchSize: 10 }, c.handler)
    await eventually(() => assert.deepEqual(c.batches[0], [0, 1, 2]))
    await consumer.stop()

    const waiting = collect()
    const second = await log.consume(
      { groupId: 'g2', topics: ['batched'], maxBatchSize: 10, maxWaitMs: 60_000 },
      waiting.handler,
    )
    const stopping = Date.now()
    await second.stop()
    assert.ok(Date.now() - stopping < 5_000)
    await log.close()
  })

  for (const tailBytes of [undefined, 0]) {
    it(`bounds a batch by its values' bytes, one message at least, and hands a batch full by bytes over at once (${tailBytes === 0 ? 'from the file' : 'from the tail'})`, async () => {
      const log = createSqliteEventLog({
        path: join(dir, `batch-bytes-${randomUUID()}.sqlite`),
        idlePollMs: 100,
        ...(tailBytes === undefined ? {} : { tailBytes }),
      })
      await log.createTopics([{ topic: 'batched', partitions: 1 }])
      const sized = (sizes: number[]) =>
        log.publish(
          'batched',
          sizes.map((size) => ({ key: 'k', value: new Uint8Array(size) })),
        )
      await sized([40, 40, 40, 200, 10, 10])
      const c = collect()
      const consumer = await log.consume(
        { groupId: 'g', topics: ['batched'], maxBatchSize: 100, maxBatchBytes: 100, maxWaitMs: 60_000 },
        c.handler,
      )
      try {
        // 40 + 40, then 40 (with the next 200 it would be over), 200 alone, and 10 + 10, which
        // waits for more until 60 more bytes come and the next 50 would not fit.
        await eventually(() => assert.deepEqual(c.batches.slice(0, 3), [[0, 1], [2], [3]]))
        await sized([60, 50])
        await eventually(() => assert.deepEqual(c.batches[3], [4, 5, 6]), { timeoutMs: 10_000 })
      } finally {
        await consumer.stop()
        await log.close()
      }
    })
  }

  it('refuses a batch of no bytes, naming the option', async () => {
    const log = open()
    await log.createTopics([{ topic: 'batched', partitions: 1 }])
    for (const maxBatchBytes of [0, 1.5, Number.NaN])
      await assert.rejects(
        log.consume({ groupId: 'g', topics: ['batched'], maxBatchBytes }, async () => {}),
        (error: Error & { issues?: { path: string }[] }) => error.issues?.[0]?.path === 'maxBatchBytes',
      )
    await log.close()
  })

  it('refuses a negative wait, naming the option', async () => {
    const log = open()
    await log.createTopics([{ topic: 'batched', partitions: 1 }])
    await assert.rejects(
      log.consume({ groupId: 'g', topics: ['batched'], maxWaitMs: -1 }, async () => {}),
      (error: Error & { issues?: { path: string }[] }) => error.issues?.[0]?.path === 'maxWaitMs',
    )
    await log.close()
  })
})

describe('embedded SQLite: a partition whose handler keeps failing', () => {
  it('backs off alone: the member’s other partitions keep flowing, and their successes do not cut its back-off short', async () => {
    const log = createSqliteEventLog({
      path: join(dir, `failing-${randomUUID()}.sqlite`),
      idlePollMs: 100,
      retryBackoffMs: { min: 400, max: 1_600 },
    })
    await log.createTopics([{ topic: 'mixed', partitions: 2 }])
    const keyIn = (partition: number): string => {
      for (let i = 0; ; i++) if (partitionForKey(`k${i}`, 2) === partition) return `k${i}`
    }
    const attempts: number[] = []
    const latencies: number[] = []
    const consumer = await log.consume({ groupId: 'g', topics: ['mixed'] }, async (batch) => {
      if (batch.partition === 0) {
        attempts.push(Date.now())
        throw new Error('poison')
      }
      for (const m of batch.messages) latencies.push(Date.now() - Number(new TextDecoder().decode(m.value)))
    })
    const encoder = new TextEncoder()
    await log.publish('mixed', [{ key: keyIn(0), value: encoder.encode('poison') }])
    await eventually(() => assert.ok(attempts.length >= 1))
    for (let i = 0; i < 24; i++) {
      await log.publish('mixed', [{ key: keyIn(1), value: encoder.encode(String(Date.now())) }])
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    await eventually(() => assert.ok(latencies.length === 24 && attempts.length >= 4), { timeoutMs: 10_000 })
    await consumer.stop()
    await log.close()
    assert.ok(
      Math.max(...latencies) < 300,
      `the healthy partition waited ${Math.max(...latencies)} ms at most`,
    )
    // 400, 800, 1,600 ms between tries, however many batches the other partition handled meanwhile.
    const gaps = attempts.slice(1, 4).map((at, i) => at - (attempts[i] as number))
    assert.ok(
      (gaps[1] as number) >= 700 && (gaps[2] as number) >= 1_400,
      `gaps between tries: ${gaps.join(', ')} ms`,
    )
  })
})

describe('embedded SQLite: lag', () => {
  it('tells when the oldest message a group has not read was appended', async () => {
    let now = 1_700_000_000_000
    const log = createSqliteEventLog({ path: join(dir, `lag-${randomUUID()}.sqlite`), clock: () => now })
    await log.createTopics([{ topic: 'lagging', partitions: 1 }])
    await log.publish('lagging', [{ key: 'k', value: new Uint8Array([1]) }])
    now += 5_000
    await log.publish('lagging', [{ key: 'k', value: new Uint8Array([2]) }])
    assert.deepEqual(await log.lag('g', ['lagging']), [
      { topic: 'lagging', partition: 0, committed: 0, end: 2, oldestAt: 1_700_000_000_000 },
    ])
    await log.close()
  })
})

describe('embedded SQLite: a publish of many messages', () => {
  it('places them as one append per message, in order per partition, across reopening the file', async () => {
    const path = join(dir, `many-${randomUUID()}.sqlite`)
    const encoder = new TextEncoder()
    // More messages than one multi-row insert takes, with a remainder, a shared frozen headers
    // object, per-message headers and keyless messages among them.
    const shared = Object.freeze({ 'content-type': 'application/json' })
    const outgoing = (round: number) =>
      Array.from({ length: 77 }, (_, i) => ({
        key: i % 11 === 0 ? null : `key-${i % 7}`,
        value: encoder.encode(`${round}:${i}`),
        headers: i % 5 === 0 ? { n: String(i) } : shared,
      }))
    const first = createSqliteEventLog({ path })
    await first.createTopics([{ topic: 'many', partitions: 3 }])
    const positions = [...(await first.publish('many', outgoing(1)))]
    await first.close()
    const log = createSqliteEventLog({ path, idlePollMs: 20 })
    positions.push(...(await log.publish('many', outgoing(2))))

    // Offsets of each partition run 0, 1, 2, … in publish order, the second publish going on
    // from where the first (in the earlier connection) ended.
    const byPartition = new Map<number, number[]>()
    for (const p of positions)
      byPartition.set(p.partition, [...(byPartition.get(p.partition) ?? []), p.offset])
    assert.equal(byPartition.size, 3)
    for (const offsets of byPartition.values())
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => i),
      )

    const read = new Map<string, { value: string; headers: Record<string, string> }>()
    const consumer = await log.consume(
      { groupId: 'reader', topics: ['many'], maxBatchSize: 1000 },
      async (batch) => {
        for (const m of batch.messages)
          read.set(`${m.partition}/${m.offset}`, {
            value: new TextDecoder().decode(m.value),
            headers: { ...m.headers },
          })
      },
    )
    await eventually(() => assert.equal(read.size, positions.length))
    await consumer.stop()
    const sent = [...outgoing(1), ...outgoing(2)]
    positions.forEach((p, i) => {
      const message = sent[i] as (typeof sent)[number]
      assert.deepEqual(read.get(`${p.partition}/${p.offset}`), {
        value: new TextDecoder().decode(message.value),
        headers: { ...message.headers },
      })
    })
    assert.deepEqual(
      (await log.lag('reader', ['many'])).map((l) => l.end - l.committed),
      [0, 0, 0],
    )
    await log.close()
  })
})

describe('embedded SQLite: checkpoints', () => {
  it('checkpoints its file in the background, not in its publishes', async () => {
    const path = join(dir, `checkpointed-${randomUUID()}.sqlite`)
    const unchecked = join(dir, `unchecked-${randomUUID()}.sqlite`)
    const logs = [
      createSqliteEventLog({ path, checkpointIntervalMs: 20 }),
      createSqliteEventLog({ path: unchecked, checkpointIntervalMs: 0 }),
    ]
    try {
      const sizes = () => [statSync(path).size, statSync(unchecked).size]
      for (const log of logs) await log.createTopics([{ topic: 'checkpointed', partitions: 1 }])
      const before = sizes()
      const value = new TextEncoder().encode('x'.repeat(1_000))
      for (const log of logs)
        await log.publish(
          'checkpointed',
          Array.from({ length: 100 }, () => ({ key: null, value })),
        )
      await eventually(() => assert.ok((sizes()[0] ?? 0) > (before[0] ?? 0), 'copied into the file'))
      // Below SQLite's own threshold, the other file's publishes left everything in its WAL.
      assert.equal(sizes()[1], before[1])
    } finally {
      for (const log of logs) await log.close()
    }
  })
})

describe('embedded SQLite: storage', () => {
  it('keeps a message of a kilobyte or more with its row, not on a page of its own', async () => {
    const path = join(dir, `stored-${randomUUID()}.sqlite`)
    const log = createSqliteEventLog({ path })
    const value = new TextEncoder().encode('x'.repeat(1_200))
    const count = 2_000
    try {
      await log.createTopics([{ topic: 'stored', partitions: 3 }])
      for (let i = 0; i < count; i += 500)
        await log.publish(
          'stored',
          Array.from({ length: 500 }, (_, j) => ({ key: `k${i + j}`, value })),
        )
    } finally {
      // Closing checkpoints the write-ahead log into the file.
      await log.close()
    }
    // Each message on a page of its own (4 KiB) would take 3.4 times the bytes stored.
    const bytes = statSync(path).size
    assert.ok(
      bytes < 1.6 * count * value.length,
      `${bytes} bytes for ${count * value.length} bytes of values`,
    )
  })
})

describe('embedded SQLite: retention', () => {
  const HOUR = 3_600_000
  const value = new TextEncoder().encode('{}')
  /** A log on a clock the test moves (`advance`), with topic `kept` of `partitions`, recording its deletions. */
  const retaining = async (partitions: number, options: Partial<SqliteEventLogOptions> = {}) => {
    let now = Date.UTC(2026, 10, 22)
    const deletions: RetentionDeletion[] = []
    const log = createSqliteEventLog({
      path: join(dir, `retention-${randomUUID()}.sqlite`),
      idlePollMs: 20,
      clock: () => now,
      onRetention: (deletion) => deletions.push(deletion),
      ...options,
    })
    await log.createTopics([{ topic: 'kept', partitions }])
    return {
      log,
      deletions,
      advance: (ms: number) => {
        now += ms
      },
      now: () => now,
    }
  }
  const publish = (log: ReturnType<typeof createSqliteEventLog>, n: number) =>
    log.publish(
      'kept',
      Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value })),
    )
  const offsetsOf = async (log: ReturnType<typeof createSqliteEventLog>, group: string, expected: number) => {
    const offsets: number[] = []
    const consumer = await log.consume({ groupId: group, topics: ['kept'] }, async (batch) => {
      offsets.push(...batch.messages.map((m) => m.offset))
    })
    await eventually(() => assert.equal(offsets.length, expected))
    await consumer.stop()
    return offsets.sort((a, b) => a - b)
  }

  it('deletes messages past retention, oldest first, and names a group that had not consumed them', async () => {
    const { log, deletions, advance } = await retaining(1, { retentionMs: 24 * HOUR })
    try {
      await publish(log, 6_000) // more than one chunk of deletions
      assert.equal((await offsetsOf(log, 'reader', 6_000)).length, 6_000)
      advance(12 * HOUR)
      await publish(log, 10)
      assert.equal(await log.applyRetention(), 0, 'nothing is a day old yet')

      advance(13 * HOUR)
      assert.equal(await log.applyRetention(), 6_000)
      assert.deepEqual(
        deletions.map(({ topic, partition, deleted, throughOffset }) => ({
          topic,
          partition,
          deleted,
          throughOffset,
        })),
        [{ topic: 'kept', partition: 0, deleted: 6_000, throughOffset: 5_999 }],
      )
      assert.deepEqual(deletions[0]?.unconsumed, [], 'the reader had consumed them all')
      // What is left: the 10 published 12 hours later, whoever reads.
      assert.deepEqual(
        await offsetsOf(log, 'newcomer', 10),
        Array.from({ length: 10 }, (_, i) => 6_000 + i),
      )
      const lag = await log.lag('reader', ['kept'])
      assert.deepEqual(
        lag.map(({ committed, end }) => ({ committed, end })),
        [{ committed: 6_000, end: 6_010 }],
      )
    } finally {
      await log.close()
    }
  })

  it('counts in the lag only what a group can still read once retention deleted what it had not', async () => {
    const { log, advance, now } = await retaining(1, { retentionMs: HOUR })
    try {
      await publish(log, 4)
      assert.equal((await offsetsOf(log, 'early', 4)).length, 4)
      await publish(log, 6)
      advance(2 * HOUR)
      await publish(log, 3)
      const keptAt = now()
      assert.equal(await log.applyRetention(), 10)
      // 'early' committed offset 4 and 'never' nothing; both read from offset 10 now.
      for (const group of ['early', 'never'])
        assert.deepEqual(await log.lag(group, ['kept']), [
          { topic: 'kept', partition: 0, committed: 10, end: 13, oldestAt: keptAt },
        ])
    } finally {
      await log.close()
    }
  })

  it('says how many messages a group had not consumed when retention deleted them', async () => {
    const { log, deletions, advance } = await retaining(1, { retentionMs: HOUR })
    try {
      await publish(log, 4)
      assert.equal((await offsetsOf(log, 'early', 4)).length, 4)
      await publish(log, 6)
      advance(2 * HOUR)
      assert.equal(await log.applyRetention(), 10)
      assert.deepEqual(deletions[0]?.unconsumed, [{ group: 'early', messages: 6 }])
    } finally {
      await log.close()
    }
  })

  it('applies retention by itself every retentionCheckMs', async () => {
    const { log, deletions, advance } = await retaining(2, { retentionMs: HOUR, retentionCheckMs: 20 })
    try {
      await publish(log, 10)
      advance(2 * HOUR)
      await eventually(() =>
        assert.equal(
          deletions.reduce((n, d) => n + d.deleted, 0),
          10,
        ),
      )
      assert.deepEqual(deletions.map((d) => d.partition).sort(), [0, 1])
    } finally {
      await log.close()
    }
  })

  it('keeps every message when retention is off', async () => {
    const { log, advance } = await retaining(1)
    try {
      await publish(log, 3)
      advance(10_000 * HOUR)
      assert.equal(await log.applyRetention(), 0)
      assert.equal((await offsetsOf(log, 'reader', 3)).length, 3)
    } finally {
      await log.close()
    }
  })
})

describe('embedded SQLite: group commit', () => {
  it('acknowledges a publish, and wakes its consumers, only once the log is synced to disk', async () => {
    let hold: (() => void) | undefined
    let held = false
    let syncs = 0
    const log = createSqliteEventLog({
      path: join(dir, `synced-${randomUUID()}.sqlite`),
      idlePollMs: 60_000,
      syncFile: () => {
        syncs++
        return held ? new Promise<void>((resolve) => (hold = resolve)) : Promise.resolve()
      },
    })
    try {
      await log.createTopics([{ topic: 'synced', partitions: 1 }])
      const received: number[] = []
      await log.consume({ groupId: 'g', topics: ['synced'] }, async (batch) => {
        received.push(...batch.messages.map((m) => m.offset))
      })
      held = true
      let acknowledged = false
      const publishing = log.publish('synced', [{ key: 'k', value: new Uint8Array([1]) }]).then(() => {
        acknowledged = true
      })
      await eventually(() => assert.ok(hold !== undefined))
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(acknowledged, false)
      assert.deepEqual(received, [])
      held = false
      hold?.()
      await publishing
      await eventually(() => assert.deepEqual(received, [0]))
      assert.ok(syncs >= 2, `${syncs} syncs`)
    } finally {
      await log.close()
    }
  })
})

describe('embedded SQLite: a killed process', () => {
  it('keeps the offsets it committed, which do not wait for the disk', async () => {
    const path = join(dir, `killed-${randomUUID()}.sqlite`)
    const moduleUrl = new URL('../../src/adapters/sqlite-event-log/index.ts', import.meta.url).href
    // The child publishes 300 messages and reads them in batches of 100 (three offset commits).
    // Once the log reports them committed it says so and waits to be killed, closing nothing;
    // if they are not committed within 10 s it exits by itself.
    const script = `
      const { createSqliteEventLog } = await import(${JSON.stringify(moduleUrl)})
      const log = createSqliteEventLog({ path: ${JSON.stringify(path)}, idlePollMs: 10 })
      await log.createTopics([{ topic: 'kept', partitions: 1 }])
      await log.publish('kept', Array.from({ length: 300 }, (_, i) => ({ key: 'k', value: new Uint8Array([i % 256]) })))
      log.consume({ groupId: 'g', topics: ['kept'], maxBatchSize: 100 }, async () => {})
      const deadline = Date.now() + 10000
      while ((await log.lag('g', ['kept']))[0].committed < 300) {
        if (Date.now() > deadline) process.exit(3)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      process.stdout.write('committed\\n')
      setInterval(() => {}, 1000)
    `
    const child = spawn(process.execPath, ['--input-type=module', '--eval', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = once(child, 'exit')
    // A child that never gets there (its event loop starved, say) is killed all the same.
    const stuck = setTimeout(() => child.kill('SIGKILL'), 20_000)
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('committed')) resolve()
        })
        void exited.then(([code]) => reject(new Error(`the child exited with ${code} before committing`)))
      })
    } finally {
      clearTimeout(stuck)
      child.kill('SIGKILL')
      await exited
    }

    const log = createSqliteEventLog({ path })
    try {
      assert.deepEqual(await log.lag('g', ['kept']), [
        { topic: 'kept', partition: 0, committed: 300, end: 300 },
      ])
    } finally {
      await log.close()
    }
  })
})

/**
 * A log whose file may not grow past the pages it has once its topics exist (`maxPageCount`),
 * so a publish that needs new pages fails with a real SQLITE_FULL, as on a full disk.
 */
const fullLog = async (topics: readonly string[], options: Partial<SqliteEventLogOptions> = {}) => {
  const path = join(dir, `full-${randomUUID()}.sqlite`)
  const setUp = createSqliteEventLog({ path })
  await setUp.createTopics(topics.map((topic) => ({ topic, partitions: 1 })))
  await setUp.close()
  return { path, log: createSqliteEventLog({ path, idlePollMs: 20, ...options, maxPageCount: 1 }) }
}

describe('embedded SQLite: a full disk', () => {
  it('fails a publish with a retriable UnavailableError naming SQLITE_FULL, and writes nothing', async () => {
    const { log } = await fullLog(['t'])
    try {
      await assert.rejects(
        log.publish('t', [{ key: 'k', value: new Uint8Array(20_000) }]),
        (error: Error & { code?: string; retriable?: boolean; context?: { sqliteCode?: number } }) => {
          assert.equal(error.name, 'UnavailableError', error.message)
          assert.equal(error.retriable, true)
          assert.equal(error.context?.sqliteCode, 13)
          assert.match(error.message, /^event log publish: SQLITE_FULL/)
          return true
        },
      )
      assert.deepEqual(await log.lag('g', ['t']), [{ topic: 't', partition: 0, committed: 0, end: 0 }])
    } finally {
      await log.close()
    }
  })
})

describe('embedded SQLite: readiness (ping)', () => {
  it('fails while the last write failed for want of storage, naming the code, and passes once one succeeds', async () => {
    const { log } = await fullLog(['t'])
    try {
      await log.ping()
      await assert.rejects(log.publish('t', [{ key: 'k', value: new Uint8Array(20_000) }]))
      await assert.rejects(log.ping(), /event log: the last write failed with SQLITE_FULL/)
      // What still fits in the pages the file has is written: the storage takes writes again.
      await log.publish('t', [{ key: 'k', value: new Uint8Array(10) }])
      await log.ping()
    } finally {
      await log.close()
    }
  })

  it('fails once its file or its write-ahead log is deleted or replaced while open', async () => {
    for (const [what, change, expected] of [
      ['deleted', (path: string) => unlinkSync(path), /eventlog-\S+ was deleted while open/],
      // After a publish has synced the log, which keeps the descriptor the sync opened.
      [
        'log-deleted',
        (path: string) => unlinkSync(`${path}-wal`),
        /^UnavailableError: event log: its write-ahead log \S+eventlog-log-deleted-\S+\.sqlite-wal was deleted while open: commits since the last checkpoint would be lost with the process$/,
      ],
      [
        'log-replaced',
        (path: string) => {
          writeFileSync(`${path}-wal.new`, '')
          renameSync(`${path}-wal.new`, `${path}-wal`)
        },
        /^UnavailableError: event log: its write-ahead log \S+eventlog-log-replaced-\S+\.sqlite-wal was replaced while open/,
      ],
      [
        'replaced',
        (path: string) => {
          writeFileSync(`${path}.new`, '')
          renameSync(`${path}.new`, path)
        },
        /eventlog-\S+ was replaced while open/,
      ],
    ] as const) {
      const path = join(dir, `eventlog-${what}-${randomUUID()}.sqlite`)
      const log = createSqliteEventLog({ path })
      try {
        await log.createTopics([{ topic: 't', partitions: 1 }])
        await log.publish('t', [{ key: 'k', value: new Uint8Array(1) }])
        await log.ping()
        change(path)
        // The connection still writes, to the file it has open: only the probe can tell.
        await log.publish('t', [{ key: 'k', value: new Uint8Array(1) }])
        await assert.rejects(log.ping(), expected)
      } finally {
        await log.close()
      }
    }
  })
})

describe('embedded SQLite: a failed offset commit', () => {
  it('is reported, the batch handed over again after the back-off, and committed once the disk has room, the consumer running on', async () => {
    const path = join(dir, `commit-${randomUUID()}.sqlite`)
    const setUp = createSqliteEventLog({ path })
    await setUp.createTopics([
      { topic: 'events', partitions: 1 },
      { topic: 'filler', partitions: 1 },
    ])
    await setUp.publish('events', [{ key: 'k', value: new Uint8Array([1]) }])
    await setUp.publish('filler', [{ key: 'f', value: new Uint8Array(50_000) }])
    await setUp.close()

    // The file may not grow past the pages it has (a full disk), and this group's id is longer
    // than a page keeps of a row: its first commit needs a page the file does not have.
    const commitErrors: { error: unknown; offsets: number[] }[] = []
    const log = createSqliteEventLog({
      path,
      idlePollMs: 20,
      retryBackoffMs: { min: 10, max: 40 },
      maxPageCount: 1,
      onCommitError: (error, batch) =>
        commitErrors.push({ error, offsets: batch.messages.map((m) => m.offset) }),
    })
    const groupId = `g-${'x'.repeat(5_000)}`
    const handled: number[][] = []
    const consumer = await log.consume({ groupId, topics: ['events'] }, async (batch) => {
      handled.push(batch.messages.map((m) => m.offset))
    })
    try {
      await eventually(() => assert.ok(commitErrors.length >= 2, `${commitErrors.length} commit errors`))
      const [first] = commitErrors
      assert.deepEqual(first?.offsets, [0])
      assert.ok(first?.error instanceof Error)
      assert.match(first.error.message, /^event log commit: SQLITE_FULL/)
      assert.equal((first.error as Error & { context: { sqliteCode?: number } }).context.sqliteCode, 13)
      // Handed over again, the same batch each time; nothing committed.
      assert.ok(handled.length >= 2)
      for (const offsets of handled) assert.deepEqual(offsets, [0])
      assert.equal((await log.lag(groupId, ['events']))[0]?.committed, 0)
      await assert.rejects(log.ping(), /the last write failed with SQLITE_FULL/)

      // An operator frees space: the next attempt commits, and the log is ready again.
      const other = new DatabaseSync(path)
      other.exec("DELETE FROM messages WHERE topic = 'filler'")
      other.close()
      await eventually(async () => assert.equal((await log.lag(groupId, ['events']))[0]?.committed, 1))
      await log.ping()
      // The consumer runs on.
      await log.publish('events', [{ key: 'k', value: new Uint8Array([2]) }])
      await eventually(async () => assert.equal((await log.lag(groupId, ['events']))[0]?.committed, 2))
      assert.deepEqual(handled.at(-1), [1])
    } finally {
      await consumer.stop()
      await log.close()
    }
  })
})

describe('embedded SQLite: a failed batch read', () => {
  /** A log of three messages whose messages page is then damaged (as by a failing disk) before a log reads it. */
  const damagedLog = async () => {
    const path = join(dir, `read-${randomUUID()}.sqlite`)
    const setUp = createSqliteEventLog({ path })
    await setUp.createTopics([{ topic: 'events', partitions: 1 }])
    await setUp.publish(
      'events',
      [1, 2, 3].map((n) => ({ key: 'k', value: new Uint8Array([n]) })),
    )
    // Closed, the log's last connection copies its write-ahead log into the file.
    await setUp.close()
    const damaged = damageTablePage(path, 'messages')
    const readErrors: { error: unknown; topic: string; partition: number; groupId: string }[] = []
    const log = createSqliteEventLog({
      path,
      idlePollMs: 20,
      retryBackoffMs: { min: 10, max: 40 },
      checkpointIntervalMs: 0,
      onReadError: (error, { topic, partition }, groupId) =>
        readErrors.push({ error, topic, partition, groupId }),
    })
    return { log, damaged, readErrors }
  }

  it('is reported with its SQLite code and read again after the back-off, the consumer running on once the file reads again', async () => {
    const { log, damaged, readErrors } = await damagedLog()
    const handled: number[][] = []
    const consumer = await log.consume({ groupId: 'g', topics: ['events'] }, async (batch) => {
      handled.push(batch.messages.map((m) => m.offset))
    })
    try {
      await eventually(() => assert.ok(readErrors.length >= 2, `${readErrors.length} read errors`))
      const [first] = readErrors
      assert.equal(first?.topic, 'events')
      assert.equal(first?.partition, 0)
      assert.equal(first?.groupId, 'g')
      assert.ok(first?.error instanceof Error)
      assert.match(first.error.message, /^event log read: database disk image is malformed/)
      assert.equal((first.error as Error & { context: { sqliteCode?: number } }).context.sqliteCode, 11)
      assert.deepEqual(handled, [])
      // Meanwhile the log is not ready, naming what it cannot read and why.
      await assert.rejects(log.ping(), {
        code: 'unavailable',
        message:
          'event log: reading events partition 0 for group g failed with SQLITE_CORRUPT (database disk image is malformed) and no read of it has succeeded since',
      })

      damaged.repair()
      await eventually(() => assert.deepEqual(handled, [[0, 1, 2]]))
      await eventually(async () => assert.equal((await log.lag('g', ['events']))[0]?.committed, 3))
      // Read again, the log is ready again.
      await log.ping()
      // The consumer runs on.
      await log.publish('events', [{ key: 'k', value: new Uint8Array([4]) }])
      await eventually(() => assert.deepEqual(handled.at(-1), [3]))
    } finally {
      damaged.close()
      await consumer.stop()
      await log.close()
    }
  })

  it('keeps the log unready only while a consumer that cannot read is running', async () => {
    const { log, damaged, readErrors } = await damagedLog()
    try {
      const consumer = await log.consume({ groupId: 'g', topics: ['events'] }, async () => {})
      await eventually(() => assert.ok(readErrors.length >= 1))
      await assert.rejects(log.ping(), /SQLITE_CORRUPT/)
      // Nothing reads the damaged page any more: no read fails, and nothing says the file is unreadable.
      await consumer.stop()
      await log.ping()
    } finally {
      damaged.close()
      await log.close()
    }
  })
})
