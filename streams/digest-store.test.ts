import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { HeraldError, UnavailableError } from '../src/errors/index.ts'
import type { CloudEvent } from '../src/events/index.ts'
import { processedKey } from '../src/ingress/index.ts'
import { damageTablePage } from '../test/support/damaged-page.ts'
import type { DigestEntry } from './digest-store.ts'
import { createDigestStore } from './digest-store-sqlite.ts'
import { anEvent } from './routing/test-fixtures.ts'

const T0 = Date.UTC(2026, 10, 22, 10, 0, 0)
const WINDOW = 30_000

const entry = (event: CloudEvent, overrides: Partial<DigestEntry> = {}): DigestEntry => ({
  configurationId: 'cfg-1',
  account: 'acme',
  endpoint: 'slack',
  eventKey: processedKey(event),
  event,
  matchedSelectorIds: ['s1'],
  windowMs: WINDOW,
  ...overrides,
})

const events = (count: number, overrides: Partial<CloudEvent> = {}) =>
  Array.from({ length: count }, (_, i) => anEvent({ id: `e${i}`, ...overrides }))

describe('SQLite digest store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-digests-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  let files = 0
  const aStore = (options: { keepEvents?: number; retainFlushedMs?: number } = {}) =>
    createDigestStore({ path: join(dir, `digests-${files++}.sqlite`), ...options })

  it('holds a window aligned to its length until it has ended, then gives its counts and first events', async () => {
    const store = aStore({ keepEvents: 3 })
    const info = events(4)
    const failed = anEvent({ id: 'f1', type: 'system.feeds.sync.failed', level: 'error' })
    await store.record(
      info.slice(0, 2).map((e) => entry(e)),
      T0 + 5_000,
    )
    await store.record(
      [entry(failed, { matchedSelectorIds: ['s2'] }), ...info.slice(2).map((e) => entry(e))],
      T0 + 29_999,
    )

    assert.deepEqual(await store.due(T0 + 29_999), [], 'not before the window ends')
    const [digest, ...rest] = await store.due(T0 + 30_000)
    assert.deepEqual(rest, [])
    assert.deepEqual(digest, {
      configurationId: 'cfg-1',
      account: 'acme',
      endpoint: 'slack',
      windowStart: T0,
      windowEnd: T0 + WINDOW,
      total: 5,
      counts: [
        { type: 'user.checks.tag.vulnerabilities.update', level: 'info', count: 4 },
        { type: 'system.feeds.sync.failed', level: 'error', count: 1 },
      ],
      events: [info[0], info[1], failed],
      matchedSelectorIds: ['s1', 's2'],
      unreadable: 0,
      attempts: 0,
    })
    await store.close()
  })

  it('counts an event once per configuration, also when a redelivered batch records it again', async () => {
    const store = aStore()
    const [a, b] = events(2)
    if (a === undefined || b === undefined) assert.fail()
    await store.record([entry(a), entry(a), entry(b)], T0)
    // The batch comes back after a crash, in a later window: nothing is counted twice, and no empty window is opened.
    await store.record([entry(a), entry(b)], T0 + 40_000)
    // The same event for another configuration is another entry.
    await store.record([entry(a, { configurationId: 'cfg-2' })], T0 + 1_000)
    const due = await store.due(T0 + 120_000)
    assert.deepEqual(
      due.map((d) => [d.configurationId, d.windowStart, d.total]),
      [
        ['cfg-1', T0, 2],
        ['cfg-2', T0, 1],
      ],
    )
    await store.close()
  })

  it('keeps entries through a restart, and forgets a window only once it is marked flushed', async () => {
    const path = join(dir, 'restart.sqlite')
    const before = createDigestStore({ path })
    await before.record(
      events(3).map((e) => entry(e)),
      T0,
    )
    await before.close()

    const after = createDigestStore({ path })
    const due = await after.due(T0 + WINDOW)
    assert.equal(due[0]?.total, 3)
    // Published but not marked (a crash in between): still due, the same window.
    assert.deepEqual(
      (await after.due(T0 + WINDOW)).map((d) => d.windowStart),
      [T0],
    )
    await after.markFlushed(due, T0 + WINDOW)
    await after.markFlushed(due, T0 + WINDOW + 1)
    assert.deepEqual(await after.due(T0 + 10 * WINDOW), [])
    await after.close()
  })

  it('opens the next window once one has ended, also while it waits to be flushed', async () => {
    const store = aStore()
    const [a, b, c] = events(3)
    if (a === undefined || b === undefined || c === undefined) assert.fail()
    await store.record([entry(a)], T0 + 10_000)
    await store.record([entry(b)], T0 + 45_000)
    await store.record([entry(c)], T0 + 50_000)
    assert.deepEqual(
      (await store.due(T0 + 60_000)).map((d) => [d.windowStart, d.windowEnd, d.events.map((e) => e.id)]),
      [
        [T0, T0 + 30_000, ['e0']],
        [T0 + 30_000, T0 + 60_000, ['e1', 'e2']],
      ],
    )
    await store.close()
  })

  it('never opens a window over an earlier one, when the length changed or the clock went back', async () => {
    const store = aStore()
    const [a, b, c] = events(3)
    if (a === undefined || b === undefined || c === undefined) assert.fail()
    await store.record([entry(a, { windowMs: 60_000 })], T0 + 1_000) // [T0, T0+60s)
    await store.markFlushed(await store.due(T0 + 60_000), T0 + 60_000)
    // Now 45 s windows: the aligned one containing T0+61s starts at T0+45s, inside the flushed window.
    await store.record([entry(b, { windowMs: 45_000 })], T0 + 61_000)
    // And a clock 50 s behind.
    await store.record([entry(c, { windowMs: 45_000 })], T0 + 11_000)
    const due = await store.due(T0 + 200_000)
    // It starts where the flushed one ended and ends at the next 45 s boundary (T0 is one).
    assert.deepEqual(
      due.map((d) => [d.windowStart - T0, d.windowEnd - T0, d.total]),
      [[60_000, 90_000, 2]],
    )
    await store.close()
  })

  it('aligns windows to a changed length from the first window it opens, under steady traffic', async () => {
    const store = aStore()
    const windows: number[][] = []
    // An event every 10 s, flushed as a flusher would; the length goes from 60 s to 45 s after a minute.
    for (let at = 1_000; at < 300_000; at += 10_000) {
      const due = await store.due(T0 + at)
      windows.push(...due.map((d) => [d.windowStart - T0, d.windowEnd - T0]))
      await store.markFlushed(due, T0 + at)
      await store.record(
        [entry(anEvent({ id: `s${at}` }), { windowMs: at < 60_000 ? 60_000 : 45_000 })],
        T0 + at,
      )
    }
    // The first 45 s window starts where the 60 s one ended and ends at the next 45 s boundary
    // (T0 is one); every later one is aligned.
    assert.deepEqual(windows, [
      [0, 60_000],
      [60_000, 90_000],
      [90_000, 135_000],
      [135_000, 180_000],
      [180_000, 225_000],
      [225_000, 270_000],
    ])
    await store.close()
  })

  it('gives due windows earliest end first, at most `limit` at a time', async () => {
    const store = aStore()
    for (let i = 0; i < 5; i++)
      await store.record(
        [entry(anEvent({ id: `x${i}` }), { configurationId: `cfg-${i}`, windowMs: (5 - i) * 1_000 })],
        T0,
      )
    const due = await store.due(T0 + 10_000, 3)
    assert.deepEqual(
      due.map((d) => d.configurationId),
      ['cfg-4', 'cfg-3', 'cfg-2'],
    )
    await store.close()
  })

  it('holds back a window that failed until its retry, counting its attempts, and keeps it through restarts and prunes', async () => {
    const path = join(dir, 'failed.sqlite')
    const store = createDigestStore({ path, retainFlushedMs: 1_000 })
    const [a, b] = events(2)
    if (a === undefined || b === undefined) assert.fail()
    await store.record([entry(a), entry(b, { configurationId: 'cfg-2' })], T0)
    const [first] = await store.due(T0 + WINDOW)
    assert.equal(first?.attempts, 0)
    await store.markFailed([{ configurationId: 'cfg-1', windowStart: T0, retryAt: T0 + WINDOW + 5_000 }])
    assert.deepEqual(
      (await store.due(T0 + WINDOW + 4_999)).map((d) => d.configurationId),
      ['cfg-2'],
      'not before its retry; the others as before',
    )
    // Flushing the others prunes what was flushed long ago, never a window still to go out.
    await store.markFlushed(await store.due(T0 + WINDOW + 4_999), T0 + WINDOW + 100_000)
    await store.markFlushed([], T0 + WINDOW + 200_000)
    await store.close()

    const again = createDigestStore({ path })
    const [retried, ...rest] = await again.due(T0 + WINDOW + 5_000)
    assert.deepEqual(rest, [])
    assert.deepEqual([retried?.configurationId, retried?.attempts, retried?.total], ['cfg-1', 1, 1])
    await again.markFailed([{ configurationId: 'cfg-1', windowStart: T0, retryAt: T0 + WINDOW + 10_000 }])
    assert.equal((await again.due(T0 + WINDOW + 10_000))[0]?.attempts, 2)
    // Once it goes out, a failure marked late changes nothing.
    await again.markFlushed([{ configurationId: 'cfg-1', windowStart: T0 }], T0 + WINDOW + 10_000)
    await again.markFailed([{ configurationId: 'cfg-1', windowStart: T0, retryAt: T0 }])
    assert.deepEqual(await again.due(T0 + 1_000_000), [])
    await again.close()
  })

  it('leaves out and counts the stored events and selector lists it cannot read back, and gives the rest', async () => {
    const path = join(dir, 'unreadable.sqlite')
    const store = createDigestStore({ path })
    const [a, b, c] = events(3)
    if (a === undefined || b === undefined || c === undefined) assert.fail()
    await store.record(
      [entry(a), entry(b, { matchedSelectorIds: ['s2'] }), entry(c, { matchedSelectorIds: ['s3'] })],
      T0,
    )
    const other = new DatabaseSync(path)
    other.prepare("UPDATE digest_entries SET event = 'null' WHERE position = 0").run()
    other.prepare('UPDATE digest_entries SET event = \'{"id":\' WHERE position = 1').run()
    other.prepare('UPDATE digest_entries SET selectors = \'["s2",\' WHERE position = 1').run()
    other.close()
    const [digest] = await store.due(T0 + WINDOW)
    assert.deepEqual(
      digest?.events.map((e) => e.id),
      ['e2'],
    )
    assert.deepEqual(digest?.matchedSelectorIds, ['s1', 's3'])
    assert.equal(digest?.unreadable, 3)
    assert.equal(digest?.total, 3, 'still counted')
    await store.close()
  })

  it('opens a buffer written before windows could fail, its windows due as they were', async () => {
    const path = join(dir, 'older.sqlite')
    const older = new DatabaseSync(path)
    older.exec(`
      CREATE TABLE digest_windows (
        id INTEGER PRIMARY KEY, configuration_id TEXT NOT NULL, account TEXT NOT NULL, endpoint TEXT NOT NULL,
        window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, total INTEGER NOT NULL, flushed_at INTEGER,
        UNIQUE (configuration_id, window_start)
      );
      CREATE TABLE digest_entries (
        key BLOB PRIMARY KEY, window_id INTEGER NOT NULL, position INTEGER NOT NULL, type TEXT NOT NULL,
        level TEXT NOT NULL, selectors TEXT NOT NULL, event TEXT
      ) WITHOUT ROWID;
      CREATE TABLE digest_store (id INTEGER PRIMARY KEY CHECK (id = 1), instance_id TEXT NOT NULL);
    `)
    const [a] = events(1)
    older
      .prepare("INSERT INTO digest_windows VALUES (1, 'cfg-1', 'acme', 'slack', ?, ?, 1, NULL)")
      .run(T0, T0 + WINDOW)
    older
      .prepare(
        "INSERT INTO digest_entries VALUES (x'00', 1, 0, 'user.checks.tag.vulnerabilities.update', 'info', '[\"s1\"]', ?)",
      )
      .run(JSON.stringify(a))
    older.close()
    const store = createDigestStore({ path })
    const [digest] = await store.due(T0 + WINDOW)
    assert.deepEqual([digest?.configurationId, digest?.attempts, digest?.events[0]?.id], ['cfg-1', 0, 'e0'])
    await store.markFailed([{ configurationId: 'cfg-1', windowStart: T0, retryAt: T0 + WINDOW + 1_000 }])
    assert.deepEqual(await store.due(T0 + WINDOW), [])
    await store.close()
  })

  it('keeps whole only the first events of a storm, and counts the rest', async () => {
    const store = aStore({ keepEvents: 10 })
    const storm = events(2_000, { type: 'user.image.analysis.failed', level: 'error' })
    for (let i = 0; i < storm.length; i += 500)
      await store.record(
        storm.slice(i, i + 500).map((e) => entry(e)),
        T0 + i,
      )
    const [digest] = await store.due(T0 + WINDOW)
    assert.equal(digest?.total, 2_000)
    assert.deepEqual(digest?.counts, [{ type: 'user.image.analysis.failed', level: 'error', count: 2_000 }])
    assert.deepEqual(
      digest?.events.map((e) => e.id),
      storm.slice(0, 10).map((e) => e.id),
    )
    await store.close()
  })

  it('forgets flushed windows after the retention, so their events could be counted again', async () => {
    const store = aStore({ retainFlushedMs: 60_000 })
    const [a] = events(1)
    if (a === undefined) assert.fail()
    await store.record([entry(a)], T0)
    await store.markFlushed(await store.due(T0 + WINDOW), T0 + WINDOW)
    await store.record([entry(a)], T0 + 40_000)
    assert.deepEqual(await store.due(T0 + 1_000_000), [], 'still remembered')
    // A later flush prunes what was flushed more than a minute before.
    await store.markFlushed([], T0 + WINDOW + 120_000)
    await store.record([entry(a)], T0 + 200_000)
    assert.equal((await store.due(T0 + 1_000_000))[0]?.total, 1)
    await store.close()
  })

  it('keeps one instance id per file, across restarts', async () => {
    const path = join(dir, 'instance.sqlite')
    const first = createDigestStore({ path })
    const id = first.instanceId
    await first.close()
    const again = createDigestStore({ path })
    assert.equal(again.instanceId, id)
    assert.match(id, /^[0-9a-f-]{36}$/)
    const other = aStore()
    assert.notEqual(other.instanceId, id)
    await again.close()
    await other.close()
  })

  it('fails a record on a full disk with a retriable UnavailableError naming SQLITE_FULL, writing none of it, and keeps its windows, usable as before', async () => {
    const path = join(dir, 'full.sqlite')
    const setUp = createDigestStore({ path })
    await setUp.record(
      events(3).map((e) => entry(e)),
      T0,
    )
    await setUp.close()

    // The file may not grow past the pages it has: an event this large needs new ones.
    const store = createDigestStore({ path, maxPageCount: 1 })
    const large = anEvent({ id: 'large', data: { report: 'x'.repeat(20_000) } })
    const other = anEvent({ id: 'other' })
    try {
      await assert.rejects(store.record([entry(other), entry(large)], T0 + 1_000), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.match(error.message, /^digest store record: SQLITE_FULL \(database or disk is full\)/)
        assert.equal(error.context.sqliteCode, 13)
        return true
      })
      const [before] = await store.due(T0 + WINDOW)
      assert.equal(before?.total, 3, 'neither entry of the failed record is counted')
      assert.deepEqual(
        before?.events.map((e) => e.id),
        ['e0', 'e1', 'e2'],
      )
      // What fits in the pages the file has is recorded, and flushed.
      await store.record([entry(other)], T0 + 2_000)
      const [after] = await store.due(T0 + WINDOW)
      assert.ok(after)
      assert.equal(after.total, 4)
      await store.markFlushed([after], T0 + WINDOW)
      assert.deepEqual(await store.due(T0 + WINDOW), [])
    } finally {
      await store.close()
    }
  })

  it('fails a record whose write-ahead log cannot be synced with a retriable UnavailableError naming the code', async () => {
    const path = join(dir, 'unsynced.sqlite')
    const store = createDigestStore({ path })
    // The log file is deleted before the first sync opens it: SQLite writes on to the file it
    // has open, and the sync finds nothing at the path (ENOENT), as after any failed sync.
    unlinkSync(`${path}-wal`)
    try {
      await assert.rejects(store.record([entry(anEvent())], T0), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.equal(
          error.message,
          'digest store record: the write-ahead log could not be synced to disk (ENOENT)',
        )
        assert.equal(error.context.code, 'ENOENT')
        return true
      })
    } finally {
      await store.close()
    }
  })

  it('fails to open a path it cannot open as a file with a retriable UnavailableError naming SQLITE_CANTOPEN', () => {
    const path = join(dir, 'a-folder.sqlite')
    mkdirSync(path)
    assert.throws(
      () => createDigestStore({ path }),
      (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.equal(error.message, 'digest store open: SQLITE_CANTOPEN (unable to open database file)')
        assert.deepEqual(error.context, { operation: 'open', sqliteCode: 14 })
        return true
      },
    )
  })

  it('fails to open a damaged file with a digest_store_failed error, not retried, and opens it whole once repaired', async () => {
    const path = join(dir, 'damaged.sqlite')
    const setUp = createDigestStore({ path })
    const { instanceId } = setUp
    await setUp.record(
      events(3).map((e) => entry(e)),
      T0,
    )
    await setUp.close()

    // The page holding the instance id is unreadable, as on a failing disk: the open reads it.
    const damaged = damageTablePage(path, 'digest_store')
    try {
      assert.throws(
        () => createDigestStore({ path }),
        (error: unknown) => {
          assert.ok(error instanceof HeraldError, String(error))
          assert.equal(error.code, 'digest_store_failed')
          assert.equal(error.retriable, false)
          assert.equal(error.message, 'digest store open: database disk image is malformed')
          assert.deepEqual(error.context, { operation: 'open', sqliteCode: 11 })
          return true
        },
      )
      damaged.repair()
    } finally {
      damaged.close()
    }

    // The failed open left the file as it was: repaired, it holds its id and its window.
    const reopened = createDigestStore({ path })
    try {
      assert.equal(reopened.instanceId, instanceId)
      assert.deepEqual(
        (await reopened.due(T0 + WINDOW)).map((d) => d.total),
        [3],
      )
      await reopened.record([entry(anEvent({ id: 'after' }))], T0 + 1_000)
      await reopened.ping()
    } finally {
      await reopened.close()
    }
  })

  it('refuses to keep no event, since a digest carries its first', () => {
    assert.throws(() => createDigestStore({ path: ':memory:', keepEvents: 0 }), TypeError)
  })

  it('refuses calls once closed', async () => {
    const store = aStore()
    await store.close()
    await assert.rejects(store.record([entry(anEvent())], T0), { code: 'closed' })
    await assert.rejects(store.due(T0), { code: 'closed' })
    await assert.rejects(store.ping(), { code: 'closed' })
  })

  describe('readiness (ping)', () => {
    it('fails while the last write failed for want of storage, naming SQLITE_FULL, and passes once a write succeeds', async () => {
      const path = join(dir, 'ping-full.sqlite')
      const setUp = createDigestStore({ path })
      await setUp.record(
        events(3).map((e) => entry(e)),
        T0,
      )
      await setUp.close()

      // The file may not grow past the pages it has: a large event needs new ones.
      const store = createDigestStore({ path, maxPageCount: 1 })
      try {
        await store.ping()
        const large = anEvent({ id: 'large', data: { report: 'x'.repeat(20_000) } })
        await assert.rejects(store.record([entry(large)], T0 + 1_000), /SQLITE_FULL/)
        await assert.rejects(store.ping(), (error: unknown) => {
          assert.ok(error instanceof UnavailableError, String(error))
          assert.equal(error.retriable, true)
          assert.match(
            error.message,
            /^digest store: the last write failed with SQLITE_FULL \(database or disk is full\) and none has succeeded since$/,
          )
          assert.equal(error.context.failure, 'SQLITE_FULL')
          return true
        })
        // A read still answers: only writes are refused.
        assert.deepEqual(
          (await store.due(T0 + WINDOW)).map((d) => d.total),
          [3],
        )
        await assert.rejects(store.ping(), /SQLITE_FULL/)

        // What fits in the pages the file has is written: the storage takes writes again.
        await store.record([entry(anEvent({ id: 'small' }))], T0 + 2_000)
        await store.ping()
        assert.deepEqual(
          (await store.due(T0 + WINDOW)).map((d) => d.total),
          [4],
        )
      } finally {
        await store.close()
      }
    })

    it('fails while its write-ahead log is gone, before a write and after the writes it fails', async () => {
      const path = join(dir, 'ping-unsynced.sqlite')
      const store = createDigestStore({ path })
      // The log file is deleted before the first sync opens it: every sync finds nothing (ENOENT).
      unlinkSync(`${path}-wal`)
      const logDeleted =
        /^digest store: its write-ahead log \S+ping-unsynced\.sqlite-wal was deleted while open: commits since the last checkpoint would be lost with the process$/
      const namesLog = (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.match(error.message, logDeleted)
        return true
      }
      try {
        await assert.rejects(store.ping(), namesLog)
        await assert.rejects(store.record([entry(anEvent())], T0), /ENOENT/)
        await assert.rejects(store.ping(), namesLog)
        // A flush is a write too, and fails the same way.
        await assert.rejects(store.markFlushed([{ configurationId: 'cfg-1', windowStart: T0 }], T0), /ENOENT/)
        await assert.rejects(store.ping(), namesLog)
      } finally {
        await store.close()
      }
    })

    it('fails once its file or its write-ahead log is deleted or replaced while open', async () => {
      for (const [what, change, expected] of [
        [
          'log-deleted',
          (path: string) => unlinkSync(`${path}-wal`),
          /^digest store: its write-ahead log \S+ping-log-deleted\.sqlite-wal was deleted while open: commits since the last checkpoint would be lost with the process$/,
        ],
        [
          'log-replaced',
          (path: string) => {
            writeFileSync(`${path}-wal.new`, '')
            renameSync(`${path}-wal.new`, `${path}-wal`)
          },
          /^digest store: its write-ahead log \S+ping-log-replaced\.sqlite-wal was replaced while open/,
        ],
        [
          'deleted',
          (path: string) => unlinkSync(path),
          /^digest store: \S+ping-deleted\.sqlite was deleted while open/,
        ],
        [
          'replaced',
          (path: string) => {
            writeFileSync(`${path}.new`, '')
            renameSync(`${path}.new`, path)
          },
          /^digest store: \S+ping-replaced\.sqlite was replaced while open/,
        ],
      ] as const) {
        const path = join(dir, `ping-${what}.sqlite`)
        const store = createDigestStore({ path })
        try {
          // Once a write has synced the log, which keeps the descriptor the sync opened.
          await store.record([entry(anEvent())], T0)
          await store.ping()
          change(path)
          // The connection still writes, to the file it has open: only the probe can tell.
          await store.record([entry(anEvent())], T0)
          await assert.rejects(store.ping(), (error: unknown) => {
            assert.ok(error instanceof UnavailableError, String(error))
            assert.match(error.message, expected)
            return true
          })
        } finally {
          await store.close()
        }
      }
    })
  })
})
