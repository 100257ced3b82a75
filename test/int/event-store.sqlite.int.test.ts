import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { filter, firstValueFrom, lastValueFrom, take, timeout, toArray } from 'rxjs'
import {
  createSqliteEventStore,
  type SqliteEventStore,
  type SqliteEventStoreOptions,
} from '../../src/adapters/sqlite-event-store/index.ts'
import {
  ClosedError,
  isExpectedRevisionConflict,
  isRetriable,
  isValidationError,
  UnavailableError,
} from '../../src/errors/index.ts'
import type { EventData, RecordedEvent } from '../../src/ports/index.ts'
import { runEventStoreContract } from '../contracts/event-store.contract.ts'

const dir = mkdtempSync(join(tmpdir(), 'herald-event-store-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const newPath = (): string => join(dir, `${randomUUID()}.sqlite`)
const newStream = (prefix: string): string => `${prefix}-${randomUUID()}`
const newEvent = (data: Record<string, number | string> = {}): EventData => ({
  id: randomUUID(),
  type: 'Tested',
  data,
})
const newEvents = (count: number): EventData[] => Array.from({ length: count }, (_, i) => newEvent({ i }))

/** Opens a store that the file's `after` hook closes, whatever the test's outcome. */
const open = (options: Partial<SqliteEventStoreOptions> = {}): SqliteEventStore => {
  const store = createSqliteEventStore({ path: newPath(), ...options })
  after(() => store.close())
  return store
}

const waitFor = async (condition: () => boolean, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await sleep(5)
  }
}

runEventStoreContract({
  name: 'sqlite (defaults)',
  open: async () => createSqliteEventStore({ path: newPath() }),
})

runEventStoreContract({
  name: 'sqlite (tiny pages, fast polling)',
  open: async () => createSqliteEventStore({ path: newPath(), pageSize: 3, pollIntervalMs: 20 }),
})

runEventStoreContract({
  name: 'sqlite (writer thread, fast polling)',
  open: async () => createSqliteEventStore({ path: newPath(), writerThread: true, pollIntervalMs: 20 }),
})

describe('sqlite event store', () => {
  describe('durability', () => {
    it('keeps appended events across close and reopen', async () => {
      const path = newPath()
      const stream = newStream('durable')
      const first = createSqliteEventStore({ path })
      const appended = await first.append(stream, newEvents(3), { expectedRevision: 'no_stream' })
      const before = await first.readStream(stream)
      await first.close()

      const second = createSqliteEventStore({ path })
      after(() => second.close())
      assert.deepEqual(await second.readStream(stream), before)
      const next = await second.append(stream, [newEvent()], {
        expectedRevision: appended.nextExpectedRevision,
      })
      assert.equal(next.nextExpectedRevision, 3)
      assert.ok(next.position > appended.position)
    })

    it('runs the file in WAL mode', async () => {
      const path = newPath()
      const store = createSqliteEventStore({ path })
      await store.append(newStream('wal'), [newEvent()])
      assert.ok(existsSync(`${path}-wal`))
      const probe = new DatabaseSync(path, { readOnly: true })
      try {
        assert.equal(probe.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal')
      } finally {
        probe.close()
        await store.close()
      }
    })
  })

  describe('append', () => {
    it('returns the original result when an append is retried, even after the stream moved on', async () => {
      const store = open()
      const stream = newStream('original')
      const batch = newEvents(2)
      const original = await store.append(stream, batch, { expectedRevision: 'no_stream' })
      const read = await store.readStream(stream)
      assert.equal(original.position, read.at(-1)?.position)

      await store.append(stream, newEvents(2), { expectedRevision: 1 })
      assert.deepEqual(await store.append(stream, batch, { expectedRevision: 'no_stream' }), original)
      assert.deepEqual(await store.append(stream, batch, { expectedRevision: 'any' }), original)
      const all = await store.readAll()
      assert.equal(all.length, 4)
    })

    it('rejects ids that partly overlap the stream, naming them, and writes nothing', async () => {
      const store = open()
      const stream = newStream('overlap')
      const [a, b, c] = newEvents(3) as [EventData, EventData, EventData]
      await store.append(stream, [a, b], { expectedRevision: 'no_stream' })

      await assert.rejects(store.append(stream, [b, c], { expectedRevision: 1 }), (error: unknown) => {
        assert.ok(isValidationError(error))
        assert.deepEqual(error.issues, [
          { path: 'events[0].id', message: `already appended to ${stream} at revision 1` },
        ])
        return true
      })
      // Out of order is not a retry either.
      await assert.rejects(store.append(stream, [b, a], { expectedRevision: 'any' }), isValidationError)
      // A reused id at the current revision: the expectation holds, so this is not a race but a bug.
      await assert.rejects(store.append(stream, [a], { expectedRevision: 1 }), isValidationError)
      // When the expectation fails too, the conflict wins: re-reading and deciding again is the cure.
      await assert.rejects(store.append(stream, [b, c], { expectedRevision: 0 }), isExpectedRevisionConflict)
      assert.equal((await store.readStream(stream)).length, 2)
    })

    it('treats stream_exists as a retry only of an append that found the stream', async () => {
      const store = open()
      const stream = newStream('exists-retry')
      const created = [newEvent()]
      const extended = [newEvent()]
      await store.append(stream, created, { expectedRevision: 'no_stream' })
      const result = await store.append(stream, extended, { expectedRevision: 'stream_exists' })
      assert.deepEqual(await store.append(stream, extended, { expectedRevision: 'stream_exists' }), result)
      await assert.rejects(
        store.append(stream, created, { expectedRevision: 'stream_exists' }),
        isValidationError,
      )
    })

    it('stamps recordedAt from the injected clock', async () => {
      const store = open({ clock: () => 1_700_000_000_123 })
      const stream = newStream('clock')
      await store.append(stream, newEvents(2))
      assert.deepEqual(
        (await store.readStream(stream)).map((e) => e.recordedAt),
        [1_700_000_000_123, 1_700_000_000_123],
      )
    })

    it('reports a write lock held too long as a retriable UnavailableError', async () => {
      const path = newPath()
      const store = createSqliteEventStore({ path, busyTimeoutMs: 50 })
      after(() => store.close())
      const other = new DatabaseSync(path, { timeout: 50 })
      other.exec('BEGIN IMMEDIATE')
      try {
        await assert.rejects(store.append(newStream('locked'), [newEvent()]), (error: unknown) => {
          assert.ok(error instanceof UnavailableError)
          assert.ok(isRetriable(error))
          assert.ok(error.cause instanceof Error)
          return true
        })
      } finally {
        other.exec('ROLLBACK')
        other.close()
      }
      await store.append(newStream('unlocked'), [newEvent()])
    })
  })

  describe('validation', () => {
    const invalidAppends: ReadonlyArray<readonly [string, unknown, unknown, unknown, string]> = [
      ['an empty stream name', '', [newEvent()], {}, 'stream'],
      ['no events', 's', [], {}, 'events'],
      ['an empty id', 's', [{ id: '', type: 't', data: {} }], {}, 'events[0].id'],
      [
        'a repeated id',
        's',
        [
          { id: 'x', type: 't', data: {} },
          { id: 'x', type: 't', data: {} },
        ],
        {},
        'events[1].id',
      ],
      ['an empty type', 's', [{ id: 'x', type: '', data: {} }], {}, 'events[0].type'],
      ['data that is an array', 's', [{ id: 'x', type: 't', data: [1] }], {}, 'events[0].data'],
      ['an undefined value', 's', [{ id: 'x', type: 't', data: { a: undefined } }], {}, 'events[0].data.a'],
      ['NaN', 's', [{ id: 'x', type: 't', data: { a: [1, Number.NaN] } }], {}, 'events[0].data.a[1]'],
      ['a Date', 's', [{ id: 'x', type: 't', data: { at: new Date() } }], {}, 'events[0].data.at'],
      ['a bigint', 's', [{ id: 'x', type: 't', data: { n: 1n } }], {}, 'events[0].data.n'],
      ['a function', 's', [{ id: 'x', type: 't', data: { f: () => 1 } }], {}, 'events[0].data.f'],
      [
        'bad metadata',
        's',
        [{ id: 'x', type: 't', data: {}, metadata: { m: Symbol('m') } }],
        {},
        'events[0].metadata.m',
      ],
      ['a negative revision', 's', [newEvent()], { expectedRevision: -1 }, 'expectedRevision'],
      ['an unknown expectation', 's', [newEvent()], { expectedRevision: 'latest' }, 'expectedRevision'],
    ]

    for (const [what, stream, events, options, path] of invalidAppends) {
      it(`rejects an append with ${what}`, async () => {
        const store = open()
        // Casts stand for callers outside the type system (JSON bodies, plain JS).
        const attempt = store.append(stream as string, events as EventData[], options as object)
        await assert.rejects(attempt, (error: unknown) => {
          assert.ok(isValidationError(error), String(error))
          assert.equal(error.retriable, false)
          assert.ok(
            error.issues.some((i) => i.path === path),
            `issue at ${path}: ${JSON.stringify(error.issues)}`,
          )
          return true
        })
        assert.deepEqual(await store.readAll(), [])
      })
    }

    it('rejects circular data', async () => {
      const store = open()
      const data: Record<string, unknown> = {}
      data.self = data
      await assert.rejects(
        store.append('s', [{ id: 'x', type: 't', data } as unknown as EventData]),
        (error: unknown) => isValidationError(error) && error.issues[0]?.path === 'events[0].data.self',
      )
    })

    it('rejects bad read and subscribe options', async () => {
      const store = open()
      await assert.rejects(store.readStream(''), isValidationError)
      await assert.rejects(store.readStream('s', { fromRevision: -1 }), isValidationError)
      await assert.rejects(store.readStream('s', { maxCount: 1.5 }), isValidationError)
      await assert.rejects(store.readAll({ after: -2 }), isValidationError)
      await assert.rejects(firstValueFrom(store.subscribeToAll({ after: Number.NaN })), isValidationError)
    })
  })

  describe('readAll', () => {
    it('reads every stream in position order after a checkpoint', async () => {
      const store = open()
      const a = newStream('a')
      const b = newStream('b')
      await store.append(a, newEvents(2))
      await store.append(b, newEvents(2))
      await store.append(a, newEvents(1))
      const all = await store.readAll()
      assert.deepEqual(
        all.map((e) => [e.stream, e.revision]),
        [
          [a, 0],
          [a, 1],
          [b, 0],
          [b, 1],
          [a, 2],
        ],
      )
      const checkpoint = all[1]?.position ?? -1
      assert.deepEqual(await store.readAll({ after: checkpoint, maxCount: 2 }), all.slice(2, 4))
    })
  })

  describe('subscribeToAll', () => {
    it('catches up over many pages, then goes live', async () => {
      const store = open({ pageSize: 4 })
      const stream = newStream('pages')
      await store.append(stream, newEvents(30))
      const received = firstValueFrom(
        store.subscribeToAll().pipe(take(35), toArray(), timeout({ first: 5000 })),
      )
      for (let i = 0; i < 5; i++) await store.append(stream, newEvents(1))
      assert.deepEqual(
        (await received).map((e) => e.revision),
        Array.from({ length: 35 }, (_, i) => i),
      )
    })

    it('delivers events that a subscriber appends in reaction to the events it receives', async () => {
      const store = open()
      const stream = newStream('reaction')
      const delivered: RecordedEvent[] = []
      const subscription = store.subscribeToAll().subscribe((e) => {
        if (e.stream !== stream) return
        delivered.push(e)
        if (e.type === 'Trigger')
          void store.append(stream, [{ id: randomUUID(), type: 'Reaction', data: {} }])
      })
      after(() => subscription.unsubscribe())
      await store.append(
        stream,
        [1, 2, 3].map(() => ({ id: randomUUID(), type: 'Trigger', data: {} })),
      )
      await waitFor(() => delivered.length === 6)
      await sleep(50)
      assert.deepEqual(
        delivered.map((e) => [e.revision, e.type]),
        [
          [0, 'Trigger'],
          [1, 'Trigger'],
          [2, 'Trigger'],
          [3, 'Reaction'],
          [4, 'Reaction'],
          [5, 'Reaction'],
        ],
      )
    })

    it('sees appends of another store on the same file through polling', async () => {
      const path = newPath()
      const here = open({ path, pollIntervalMs: 25 })
      const there = open({ path })
      const stream = newStream('shared')
      const received = firstValueFrom(
        here.subscribeToAll().pipe(
          filter((e) => e.stream === stream),
          take(4),
          toArray(),
          timeout({ first: 5000 }),
        ),
      )
      await there.append(stream, newEvents(2), { expectedRevision: 'no_stream' })
      await sleep(50)
      await here.append(stream, newEvents(1), { expectedRevision: 1 })
      await there.append(stream, newEvents(1), { expectedRevision: 2 })
      assert.deepEqual(
        (await received).map((e) => e.revision),
        [0, 1, 2, 3],
      )
      // A conflict across instances is detected by the file, not by either process's memory.
      await assert.rejects(
        there.append(stream, [newEvent()], { expectedRevision: 2 }),
        isExpectedRevisionConflict,
      )
    })

    it('pushes its own appends at once, without waiting for a poll', async () => {
      const store = open({ pollIntervalMs: 60_000 })
      const stream = newStream('push')
      const received = firstValueFrom(
        store.subscribeToAll().pipe(
          filter((e) => e.stream === stream),
          take(3),
          toArray(),
          timeout({ first: 1000 }),
        ),
      )
      await store.append(stream, newEvents(1))
      await sleep(50) // the subscription is live by now
      await store.append(stream, newEvents(2))
      assert.equal((await received).length, 3)
    })

    it('sees appends of another process, interleaved with its own, once each and in order', async () => {
      const path = newPath()
      const store = open({ path, pollIntervalMs: 20 })
      const mine = newStream('parent')
      const theirs = newStream('child')
      const childCount = 40
      const delivered: RecordedEvent[] = []
      const subscription = store
        .subscribeToAll()
        .subscribe((e) => (e.stream === mine || e.stream === theirs) && delivered.push(e))
      after(() => subscription.unsubscribe())

      const moduleUrl = pathToFileURL(
        join(import.meta.dirname, '../../src/adapters/sqlite-event-store/index.ts'),
      )
      const script = `
        import { randomUUID } from 'node:crypto'
        import { setTimeout as sleep } from 'node:timers/promises'
        const { createSqliteEventStore } = await import(${JSON.stringify(moduleUrl.href)})
        const store = createSqliteEventStore({ path: ${JSON.stringify(path)} })
        let expectedRevision = 'no_stream'
        for (let i = 0; i < ${childCount}; i++) {
          const r = await store.append(${JSON.stringify(theirs)}, [{ id: randomUUID(), type: 'Child', data: { i } }], { expectedRevision })
          expectedRevision = r.nextExpectedRevision
          // After its first append, the child waits until the parent appended after it, so the
          // two interleave however the machine schedules them.
          for (let waited = 0; i === 0 && waited < 10000; waited += 5) {
            const later = await store.readAll({ after: r.position })
            if (later.some((e) => e.stream === ${JSON.stringify(mine)})) break
            await sleep(5)
          }
          await sleep(1)
        }
        await store.close()
      `
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'inherit', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      let childExit: number | null | undefined
      const exited = new Promise<void>((resolve) =>
        child.on('exit', (code) => {
          childExit = code
          resolve()
        }),
      )

      // Keep appending for as long as the child does, so the two really contend for the file.
      let expectedRevision: number | 'no_stream' = 'no_stream'
      let appended = 0
      while (childExit === undefined) {
        expectedRevision = (await store.append(mine, [newEvent({ appended })], { expectedRevision }))
          .nextExpectedRevision
        appended += 1
        await sleep(1)
      }
      await exited
      assert.equal(childExit, 0, stderr)
      await waitFor(() => delivered.length >= appended + childCount)
      await sleep(100)

      assert.equal(delivered.length, appended + childCount)
      for (let i = 1; i < delivered.length; i++) {
        assert.ok((delivered[i - 1]?.position ?? 0) < (delivered[i]?.position ?? 0), `increasing at ${i}`)
      }
      for (const [stream, count] of [
        [mine, appended],
        [theirs, childCount],
      ] as const) {
        assert.deepEqual(
          delivered.filter((e) => e.stream === stream).map((e) => e.revision),
          Array.from({ length: count }, (_, i) => i),
        )
      }
      const childPositions = delivered.filter((e) => e.stream === theirs).map((e) => e.position)
      const [firstChild, lastChild] = [Math.min(...childPositions), Math.max(...childPositions)]
      assert.ok(
        delivered.some((e) => e.stream === mine && e.position > firstChild && e.position < lastChild),
        'the processes interleaved',
      )
    })

    it('stops its timers when the last subscription ends', async () => {
      const timers = (): number =>
        process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length
      const store = open({ pollIntervalMs: 10, pageSize: 2 })
      await store.append(newStream('timers'), newEvents(10))
      const baseline = timers()
      const first = store.subscribeToAll().subscribe()
      const second = store.subscribeToAll().subscribe()
      await sleep(30)
      assert.ok(timers() > baseline)
      first.unsubscribe()
      second.unsubscribe()
      assert.equal(timers(), baseline)
    })
  })

  describe('readiness (ping)', () => {
    for (const writerThread of [false, true]) {
      it(`fails while the last append failed for want of storage, naming the code, and passes once one succeeds${writerThread ? ' (writer thread)' : ''}`, async () => {
        // The schema is made first; then the file may not grow past the pages it has: a real full disk.
        const path = newPath()
        await createSqliteEventStore({ path }).close()
        const store = createSqliteEventStore({ path, writerThread, maxPageCount: 1 })
        try {
          await store.ping()
          await assert.rejects(
            store.append(newStream('full'), [newEvent({ filler: 'x'.repeat(20_000) })]),
            (error: unknown) => error instanceof UnavailableError && /SQLITE_FULL/.test(error.message),
          )
          await assert.rejects(store.ping(), /event store: the last write failed with SQLITE_FULL/)
          // What still fits in the pages the file has is written: the storage takes writes again.
          await store.append(newStream('fits'), [newEvent()])
          await store.ping()
        } finally {
          await store.close()
        }
      })
    }

    // The connections still write, to the files they have open: only the probe can tell. A log
    // deleted holds the appends acknowledged since the last checkpoint, which the next open will
    // not find.
    for (const [what, deleted, expected] of [
      ['file', (path: string) => path, /^UnavailableError: event store: \S+ was deleted while open/],
      [
        'write-ahead log',
        (path: string) => `${path}-wal`,
        /^UnavailableError: event store: its write-ahead log \S+-wal was deleted while open: commits since the last checkpoint would be lost with the process$/,
      ],
    ] as const)
      it(`fails once its ${what} is deleted while open`, async () => {
        const path = newPath()
        const store = createSqliteEventStore({ path, writerThread: true })
        try {
          await store.append(newStream('before'), [newEvent()])
          await store.ping()
          rmSync(deleted(path))
          await store.append(newStream('after'), [newEvent()])
          await assert.rejects(store.ping(), expected)
        } finally {
          await store.close()
        }
      })
  })

  describe('close', () => {
    it('completes open subscriptions and refuses further use', async () => {
      const store = createSqliteEventStore({ path: newPath() })
      const stream = newStream('closing')
      await store.append(stream, newEvents(2))
      const all = lastValueFrom(store.subscribeToAll().pipe(toArray()))
      await sleep(20)
      await store.close()
      assert.equal((await all).length, 2)

      const closed = (error: unknown): boolean => error instanceof ClosedError && error.code === 'closed'
      await assert.rejects(store.append(stream, [newEvent()]), closed)
      await assert.rejects(store.readStream(stream), closed)
      await assert.rejects(store.readAll(), closed)
      await assert.rejects(store.ping(), closed)
      await assert.rejects(firstValueFrom(store.subscribeToAll()), closed)
      await store.close()
    })

    it('answers ping while open', async () => {
      await open().ping()
    })
  })
})
