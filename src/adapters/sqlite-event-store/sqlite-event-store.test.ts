import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { filter, firstValueFrom, take, timeout, toArray } from 'rxjs'
import {
  isExpectedRevisionConflict,
  isRetriable,
  isValidationError,
  UnavailableError,
} from '../../errors/index.ts'
import type { EventData } from '../../ports/index.ts'
import { createSqliteEventStore } from './index.ts'

const newEvent = (): EventData => ({ id: randomUUID(), type: 'Tested', data: {} })

const open = (options: { groupCommit?: boolean } = {}) => {
  const store = createSqliteEventStore({ path: ':memory:', ...options })
  after(() => store.close())
  return store
}

// The contract checks what every adapter does; this is what only the embedded one promises.
describe('sqlite event store appendMany', () => {
  it('writes nothing when a later entry conflicts: one transaction, all or nothing', async () => {
    const store = open()
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    await assert.rejects(
      store.appendMany([
        { stream: 'first', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'taken', events: [newEvent()], expectedRevision: 'no_stream' },
      ]),
      (error: unknown) => isExpectedRevisionConflict(error) && error.context.stream === 'taken',
    )
    assert.deepEqual(
      (await store.readAll()).map((e) => e.stream),
      ['taken'],
    )
  })

  it('writes nothing when a later entry reuses ids it cannot be a retry of', async () => {
    const store = open()
    const reused = newEvent()
    await store.append('taken', [reused, newEvent()], { expectedRevision: 'no_stream' })
    await assert.rejects(
      store.appendMany([
        { stream: 'first', events: [newEvent()] },
        { stream: 'taken', events: [reused], expectedRevision: 1 },
      ]),
      isValidationError,
    )
    assert.deepEqual(await store.readStream('first'), [])
  })

  it('stamps every entry with one recording time', async () => {
    let now = 1_700_000_000_000
    const store = createSqliteEventStore({ path: ':memory:', clock: () => now++ })
    after(() => store.close())
    await store.appendMany([
      { stream: 'a', events: [newEvent(), newEvent()] },
      { stream: 'b', events: [newEvent()] },
    ])
    assert.deepEqual(
      (await store.readAll()).map((e) => e.recordedAt),
      [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000],
    )
  })
})

const dir = mkdtempSync(join(tmpdir(), 'herald-store-group-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const newPath = () => join(dir, `${randomUUID()}.sqlite`)

/** What another connection (another process, or this one after a crash) finds committed. */
const committedStreams = (path: string): string[] => {
  const reader = new DatabaseSync(path, { readOnly: true })
  try {
    return (reader.prepare('SELECT DISTINCT stream FROM events').all() as { stream: string }[]).map(
      (r) => r.stream,
    )
  } finally {
    reader.close()
  }
}

describe('sqlite event store deleteStreams', () => {
  it('removes the rows from readAll too, and never hands their positions out again', async () => {
    const store = open()
    await store.append('old', [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
    await store.append('kept', [newEvent()], { expectedRevision: 'no_stream' })
    const before = await store.readAll()
    assert.deepEqual(await store.deleteStreams([{ stream: 'old', expectedRevision: 1 }]), ['deleted'])
    assert.deepEqual(
      (await store.readAll()).map((e) => e.stream),
      ['kept'],
    )
    const again = await store.append('old', [newEvent()], { expectedRevision: 'no_stream' })
    assert.equal(again.nextExpectedRevision, 0)
    assert.ok(again.position > Math.max(...before.map((e) => e.position)))
  })
})

describe('sqlite event store sizes', () => {
  it('refuses an append larger than KurrentDB takes by default, naming its size and the limit, writing nothing', async () => {
    const store = open()
    const big = { ...newEvent(), data: { big: 'x'.repeat(20 * 1_048_576) } }
    await assert.rejects(store.append('big', [newEvent(), big]), (error: unknown) => {
      assert.ok(isValidationError(error))
      assert.deepEqual(error.issues, [
        {
          path: 'events[1]',
          message: `is ${20 * 1_048_576 + 18} bytes, over the 1048576 the event store takes in one append`,
        },
      ])
      return true
    })
    const half = { ...newEvent(), data: { half: 'x'.repeat(600_000) } }
    await assert.rejects(
      store.appendMany([
        { stream: 'fits', events: [newEvent()] },
        { stream: 'together', events: [half, { ...half, id: randomUUID() }] },
      ]),
      (error: unknown) =>
        isValidationError(error) &&
        /^invalid appendMany: appends\[1\]\.events hold \d+ bytes, over the 1048576 the event store takes in one append$/.test(
          error.message,
        ),
    )
    assert.deepEqual(await store.readAll(), [])
  })

  it('ends a catch-up page at pageBytes of data, before pageSize, and reads on at the next turn', async () => {
    const store = createSqliteEventStore({ path: ':memory:', pageBytes: 2_000 })
    after(() => store.close())
    const events = Array.from({ length: 10 }, () => ({ ...newEvent(), data: { pad: 'x'.repeat(990) } }))
    await store.append('padded', events)
    const seen: string[] = []
    const subscription = store.subscribeToAll().subscribe((event) => seen.push(event.id))
    try {
      // The subscription's first read, queued as a microtask when it began, came before this.
      await new Promise<void>((resolve) => queueMicrotask(resolve))
      assert.equal(seen.length, 2)
      for (let waited = 0; seen.length < events.length && waited < 2_000; waited += 10) await sleep(10)
      assert.deepEqual(
        seen,
        events.map((e) => e.id),
      )
    } finally {
      subscription.unsubscribe()
    }
  })
})

describe('sqlite event store group commit', () => {
  it('writes the appends of one turn together, each still succeeding or failing on its own', async () => {
    const store = open({ groupCommit: true })
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    const [first, conflicting, many, last] = await Promise.allSettled([
      store.append('a', [newEvent()], { expectedRevision: 'no_stream' }),
      store.append('taken', [newEvent()], { expectedRevision: 'no_stream' }),
      store.appendMany([
        { stream: 'b', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'c', events: [newEvent(), newEvent()], expectedRevision: 'no_stream' },
      ]),
      // A second append to a stream already appended to in the same group sees the first.
      store.append('a', [newEvent()], { expectedRevision: 0 }),
    ])
    assert.equal(first.status, 'fulfilled')
    assert.ok(conflicting.status === 'rejected' && isExpectedRevisionConflict(conflicting.reason))
    assert.equal(many.status, 'fulfilled')
    assert.ok(last.status === 'fulfilled' && last.value.nextExpectedRevision === 1)
    assert.deepEqual(
      (await store.readAll()).map((e) => `${e.stream}@${e.revision}`),
      ['taken@0', 'a@0', 'b@0', 'c@0', 'c@1', 'a@1'],
    )
  })

  it('keeps an appendMany all or nothing inside a group', async () => {
    const store = open({ groupCommit: true })
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    const [alone, many] = await Promise.allSettled([
      store.append('alone', [newEvent()]),
      store.appendMany([
        { stream: 'first', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'taken', events: [newEvent()], expectedRevision: 'no_stream' },
      ]),
    ])
    assert.equal(alone.status, 'fulfilled')
    assert.ok(many.status === 'rejected' && isExpectedRevisionConflict(many.reason))
    assert.deepEqual(
      (await store.readAll()).map((e) => e.stream),
      ['taken', 'alone'],
    )
  })

  it('without group commit (the default), writes each append within its call', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path })
    after(() => store.close())
    const appended = store.append('at-once', [newEvent()])
    // No turn has ended: a configuration change that appends and reads again sees its write.
    assert.deepEqual(committedStreams(path), ['at-once'])
    await appended
  })

  it('answers no append before its transaction is committed', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true })
    after(() => store.close())
    let answered = false
    let committedWhenAnswered: string[] = []
    const appended = store.append('waiting', [newEvent()]).then((result) => {
      answered = true
      committedWhenAnswered = committedStreams(path)
      return result
    })
    // Every microtask of this turn runs: the group is still open, nothing is on disk, and the
    // caller has not been told otherwise.
    for (let i = 0; i < 10; i++) await Promise.resolve()
    assert.equal(answered, false)
    assert.deepEqual(committedStreams(path), [])
    await appended
    assert.deepEqual(committedWhenAnswered, ['waiting'])
  })

  it('starts a group at once when maxGroupAppends are waiting', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true, maxGroupAppends: 2 })
    after(() => store.close())
    const appends = [store.append('x', [newEvent()]), store.append('y', [newEvent()])]
    // Committed synchronously by the second call, before this turn ends.
    assert.deepEqual(committedStreams(path).sort(), ['x', 'y'])
    await Promise.all(appends)
  })

  it('writes the appends still waiting for their group when closed', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true })
    const appended = store.append('last', [newEvent()])
    await store.close()
    assert.equal((await appended).position, 1)
    assert.deepEqual(committedStreams(path), ['last'])
  })

  for (const mode of ['groupCommit', 'writerThread'] as const)
    it(`loses no acknowledged append when the process is killed in the middle of groups (${mode})`, async () => {
      const path = newPath()
      const moduleUrl = pathToFileURL(join(import.meta.dirname, 'index.ts')).href
      // The child keeps 50 appends waiting at any time and prints each stream once its append
      // resolved: what it printed was acknowledged, and must be there after the kill.
      const script = `
      import { randomUUID } from 'node:crypto'
      import { createSqliteEventStore } from ${JSON.stringify(moduleUrl)}
      const store = createSqliteEventStore({ path: ${JSON.stringify(path)}, ${mode}: true })
      let n = 0
      const one = async () => {
        for (;;) {
          const stream = 's-' + n++
          await store.append(stream, [{ id: randomUUID(), type: 'T', data: { n } }], { expectedRevision: 'no_stream' })
          process.stdout.write(stream + '\\n')
        }
      }
      for (let i = 0; i < 50; i++) void one()
    `
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      const acknowledged: string[] = []
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
      for await (const line of createInterface({ input: child.stdout })) {
        acknowledged.push(line)
        if (acknowledged.length === 2000) child.kill('SIGKILL')
      }
      await exited
      assert.ok(acknowledged.length >= 2000, stderr)
      const store = createSqliteEventStore({ path })
      after(() => store.close())
      const found = new Set((await store.readAll()).map((e) => e.stream))
      assert.deepEqual(
        acknowledged.filter((stream) => !found.has(stream)),
        [],
      )
    })
})

describe('sqlite event store writer thread', () => {
  const openThreaded = (options: { busyTimeoutMs?: number; pollIntervalMs?: number } = {}) => {
    const path = newPath()
    const store = createSqliteEventStore({ path, writerThread: true, ...options })
    after(() => store.close())
    return { store, path }
  }

  it('answers each append on its own, with the errors an inline store throws', async () => {
    const { store } = openThreaded()
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    const reused = newEvent()
    await store.append('reused', [reused, newEvent()])
    const [first, conflicting, many, invalid, last] = await Promise.allSettled([
      store.append('a', [newEvent()], { expectedRevision: 'no_stream' }),
      store.append('taken', [newEvent()], { expectedRevision: 'no_stream' }),
      store.appendMany([
        { stream: 'b', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'c', events: [newEvent(), newEvent()], expectedRevision: 'no_stream' },
      ]),
      store.append('reused', [reused], { expectedRevision: 1 }),
      store.append('a', [newEvent()], { expectedRevision: 0 }),
    ])
    assert.ok(first.status === 'fulfilled' && first.value.nextExpectedRevision === 0)
    assert.ok(
      conflicting.status === 'rejected' &&
        isExpectedRevisionConflict(conflicting.reason) &&
        conflicting.reason.context.stream === 'taken' &&
        conflicting.reason.context.actual === 0,
    )
    assert.ok(many.status === 'fulfilled' && many.value.length === 2)
    assert.ok(
      invalid.status === 'rejected' &&
        isValidationError(invalid.reason) &&
        invalid.reason.issues[0]?.path === 'events[0].id',
    )
    assert.ok(last.status === 'fulfilled' && last.value.nextExpectedRevision === 1)
    assert.deepEqual(
      (await store.readAll()).map((e) => `${e.stream}@${e.revision}`),
      ['taken@0', 'reused@0', 'reused@1', 'a@0', 'b@0', 'c@0', 'c@1', 'a@1'],
    )
    // A retry of an append that was written answers with its original result.
    const retried = await store.append('reused', [reused], { expectedRevision: 'no_stream' })
    assert.equal(retried.nextExpectedRevision, 0)
  })

  it('answers no append before its transaction is committed', async () => {
    const { store, path } = openThreaded()
    const appended = store.append('waiting', [newEvent()]).then((result) => ({
      result,
      committed: committedStreams(path),
    }))
    assert.deepEqual((await appended).committed, ['waiting'])
  })

  it('pushes its own appends to subscribers at once, without waiting for a poll', async () => {
    const { store } = openThreaded({ pollIntervalMs: 60_000 })
    const received = firstValueFrom(
      store.subscribeToAll().pipe(
        filter((e) => e.stream === 'pushed'),
        take(3),
        toArray(),
        timeout({ first: 1000 }),
      ),
    )
    await store.append('pushed', [newEvent()])
    await sleep(50)
    await store.appendMany([{ stream: 'pushed', events: [newEvent(), newEvent()] }])
    assert.deepEqual(
      (await received).map((e) => e.revision),
      [0, 1, 2],
    )
  })

  it('keeps the event loop free while a write waits for the lock, and reports the wait as retriable', async () => {
    const { store, path } = openThreaded({ busyTimeoutMs: 300 })
    const other = new DatabaseSync(path, { timeout: 50 })
    other.exec('BEGIN IMMEDIATE')
    let ticks = 0
    const ticker = setInterval(() => ticks++, 10)
    try {
      await assert.rejects(store.append('locked', [newEvent()]), (error: unknown) => {
        assert.ok(error instanceof UnavailableError)
        assert.ok(isRetriable(error))
        return true
      })
    } finally {
      clearInterval(ticker)
      other.exec('ROLLBACK')
      other.close()
    }
    // Written on this thread, the wait would have blocked every timer for 300 ms.
    assert.ok(ticks >= 10, `${ticks} ticks`)
    await store.append('unlocked', [newEvent()])
    assert.deepEqual(committedStreams(path), ['unlocked'])
  })

  it('writes what was appended before close, and then refuses', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, writerThread: true })
    const appended = store.append('last', [newEvent()])
    await store.close()
    assert.equal((await appended).position, 1)
    assert.deepEqual(committedStreams(path), ['last'])
    await assert.rejects(store.append('after', [newEvent()]))
  })

  it('lets the process exit when nothing is waiting to be written', async () => {
    const moduleUrl = pathToFileURL(join(import.meta.dirname, 'index.ts')).href
    const script = `
      import { randomUUID } from 'node:crypto'
      import { createSqliteEventStore } from ${JSON.stringify(moduleUrl)}
      const store = createSqliteEventStore({ path: ${JSON.stringify(newPath())}, writerThread: true })
      await store.append('s', [{ id: randomUUID(), type: 'T', data: {} }])
      process.stdout.write('appended\\n')
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    const code = await new Promise<number | null>((resolve) =>
      child.on('exit', (exitCode) => resolve(exitCode)),
    )
    clearTimeout(killer)
    assert.equal(out, 'appended\n')
    assert.equal(code, 0)
  })
})

/** The schema of files written before streams were numbered: events indexed by stream name. */
const NAMED_STREAMS_SCHEMA = `
CREATE TABLE events (
  position    INTEGER PRIMARY KEY AUTOINCREMENT,
  stream      TEXT    NOT NULL,
  revision    INTEGER NOT NULL,
  id          TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  metadata    TEXT    NOT NULL,
  recorded_at INTEGER NOT NULL,
  UNIQUE (stream, revision),
  UNIQUE (stream, id)
) STRICT;
`

describe('sqlite event store, a file written before streams were numbered', () => {
  /** Such a file: streams interleaved, and the AUTOINCREMENT counter past the last row (an append that was undone). */
  const namedStreamsFile = () => {
    const path = newPath()
    const db = new DatabaseSync(path)
    db.exec('PRAGMA journal_mode = WAL')
    db.exec(NAMED_STREAMS_SCHEMA)
    const insert = db.prepare(
      'INSERT INTO events (stream, revision, id, type, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    const written = [
      ['delivery-b', 0],
      ['delivery-a', 0],
      ['config-1', 0],
      ['delivery-b', 1],
      ['delivery-a', 1],
      ['delivery-b', 2],
      ['gone', 0],
    ] as const
    for (const [i, [stream, revision]] of written.entries()) {
      const data = JSON.stringify({ i })
      insert.run(stream, revision, `id-${i}`, 'Tested', data, '{"origin":"old"}', 1_700_000_000_000 + i)
    }
    db.exec("DELETE FROM events WHERE stream = 'gone'")
    db.close()
    return path
  }

  it('is migrated when opened: every event kept where it was, appends and retries as before', async () => {
    const path = namedStreamsFile()
    const told: string[] = []
    const store = createSqliteEventStore({
      path,
      writerThread: true,
      onMigration: (progress) => told.push(`${progress.stage} ${progress.events}`),
    })
    after(() => store.close())
    assert.deepEqual(told, ['started 6', 'finished 6'])
    const all = await store.readAll()
    assert.deepEqual(
      all.map((e) => [e.position, e.stream, e.revision, e.id, e.data, e.metadata, e.recordedAt]),
      [
        [1, 'delivery-b', 0, 'id-0', { i: 0 }, { origin: 'old' }, 1_700_000_000_000],
        [2, 'delivery-a', 0, 'id-1', { i: 1 }, { origin: 'old' }, 1_700_000_000_001],
        [3, 'config-1', 0, 'id-2', { i: 2 }, { origin: 'old' }, 1_700_000_000_002],
        [4, 'delivery-b', 1, 'id-3', { i: 3 }, { origin: 'old' }, 1_700_000_000_003],
        [5, 'delivery-a', 1, 'id-4', { i: 4 }, { origin: 'old' }, 1_700_000_000_004],
        [6, 'delivery-b', 2, 'id-5', { i: 5 }, { origin: 'old' }, 1_700_000_000_005],
      ],
    )
    assert.deepEqual(
      (await store.readStream('delivery-b')).map((e) => e.id),
      ['id-0', 'id-3', 'id-5'],
    )
    assert.deepEqual(
      (await store.readAll({ streamPrefixes: ['delivery-'] })).map((e) => e.position),
      [1, 2, 4, 5, 6],
    )
    // The stream's revision holds; a retry of what it holds answers as before.
    await assert.rejects(
      store.append('delivery-a', [newEvent()], { expectedRevision: 0 }),
      isExpectedRevisionConflict,
    )
    const retried = await store.append('delivery-a', [{ id: 'id-4', type: 'Tested', data: { i: 4 } }], {
      expectedRevision: 0,
    })
    assert.deepEqual(retried, { nextExpectedRevision: 1, position: 5 })
    // A position is never handed out twice: 7 went to the undone append.
    const appended = await store.append('delivery-a', [newEvent()], { expectedRevision: 1 })
    assert.deepEqual(appended, { nextExpectedRevision: 2, position: 8 })
    const created = await store.append('delivery-c', [newEvent()], { expectedRevision: 'no_stream' })
    assert.deepEqual(created, { nextExpectedRevision: 0, position: 9 })
    assert.deepEqual(committedStreams(path).sort(), ['config-1', 'delivery-a', 'delivery-b', 'delivery-c'])
  })

  it('is migrated once when the connections of a process open it together', async () => {
    const path = namedStreamsFile()
    const told: string[] = []
    const onMigration = (progress: { stage: string }) => told.push(progress.stage)
    const stores = [
      createSqliteEventStore({ path, writerThread: true, onMigration }),
      createSqliteEventStore({ path, onMigration }),
      createSqliteEventStore({ path, onMigration }),
    ]
    after(() => Promise.all(stores.map((s) => s.close())))
    for (const store of stores)
      assert.deepEqual(
        (await store.readAll()).map((e) => e.position),
        [1, 2, 3, 4, 5, 6],
      )
    assert.deepEqual(told, ['started', 'finished'])
    const reader = new DatabaseSync(path, { readOnly: true })
    try {
      const streams = reader.prepare('SELECT sid, name FROM streams ORDER BY sid').all() as {
        sid: number
        name: string
      }[]
      assert.deepEqual(
        streams.map((s) => [s.sid, s.name]),
        [
          [1, 'delivery-b'],
          [2, 'delivery-a'],
          [3, 'config-1'],
        ],
      )
    } finally {
      reader.close()
    }
  })
})
