import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { damageTablePage } from '../../test/support/damaged-page.ts'
import { HeraldError, UnavailableError } from '../errors/index.ts'
import { createSqliteProcessedIds } from './processed-ids-sqlite.ts'

// What every window answers is the contract suite (test/int/processed-ids.int.test.ts).
const dir = mkdtempSync(join(tmpdir(), 'herald-processed-ids-sqlite-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const keys = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)

describe('SQLite processed-id window: a full disk', () => {
  it('fails a record with a retriable UnavailableError naming SQLITE_FULL, writing none of it, and keeps what it held, usable as before', async () => {
    const path = join(dir, 'full.sqlite')
    // Enough to nearly fill the one page the journal has.
    const earlier = keys('earlier', 120)
    const setUp = createSqliteProcessedIds({ path })
    await setUp.record(earlier)
    await setUp.close()

    // The file may not grow past the pages it has, and these keys need another one. Fewer than
    // the 64 written per statement, they go one row per statement, and SQLite then ends the
    // whole transaction itself on SQLITE_FULL, not only the statement that failed.
    const window = createSqliteProcessedIds({ path, maxPageCount: 1 })
    const refused = keys('refused', 60)
    try {
      await assert.rejects(window.record(refused), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.equal(error.message, 'processed-id window record: SQLITE_FULL (database or disk is full)')
        assert.deepEqual(error.context, { operation: 'record', sqliteCode: 13 })
        // What SQLite said, for whoever reads the cause.
        assert.equal((error.cause as { errcode?: number }).errcode, 13)
        return true
      })
      assert.equal((await window.seen(earlier)).size, earlier.length)
      assert.equal((await window.seen(refused)).size, 0, 'a key whose write was rolled back is not held')
      // What fits in the pages the file has is recorded.
      await window.record(['fits'])
      assert.deepEqual([...(await window.seen(['fits']))], ['fits'])
    } finally {
      await window.close()
    }

    // The file holds what the window said it held, and nothing of the failed write.
    const reopened = createSqliteProcessedIds({ path })
    try {
      assert.equal((await reopened.seen(earlier)).size, earlier.length)
      assert.deepEqual([...(await reopened.seen(['fits']))], ['fits'])
      assert.equal((await reopened.seen(refused)).size, 0)
    } finally {
      await reopened.close()
    }
  })
})

describe('SQLite processed-id window: a file it cannot open', () => {
  it('fails to open a path it cannot open as a file with a retriable UnavailableError naming SQLITE_CANTOPEN', () => {
    const path = join(dir, 'a-folder.sqlite')
    mkdirSync(path)
    assert.throws(
      () => createSqliteProcessedIds({ path }),
      (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.equal(
          error.message,
          'processed-id window open: SQLITE_CANTOPEN (unable to open database file)',
        )
        assert.deepEqual(error.context, { operation: 'open', sqliteCode: 14 })
        return true
      },
    )
  })

  it('fails to open a damaged journal with a processed_id_window_failed error, not retried, and opens it whole once repaired', async () => {
    const path = join(dir, 'damaged.sqlite')
    const held = keys('held', 120)
    const setUp = createSqliteProcessedIds({ path })
    await setUp.record(held)
    await setUp.close()

    // The journal's page is unreadable, as on a failing disk: rebuilding the window reads it.
    const damaged = damageTablePage(path, 'processed_ids')
    try {
      assert.throws(
        () => createSqliteProcessedIds({ path }),
        (error: unknown) => {
          assert.ok(error instanceof HeraldError, String(error))
          assert.equal(error.code, 'processed_id_window_failed')
          assert.equal(error.retriable, false)
          assert.equal(error.message, 'processed-id window open: database disk image is malformed')
          assert.deepEqual(error.context, { operation: 'open', sqliteCode: 11 })
          return true
        },
      )
      damaged.repair()
    } finally {
      damaged.close()
    }

    // The failed open left the file as it was: repaired, it holds every key.
    const reopened = createSqliteProcessedIds({ path })
    try {
      assert.equal((await reopened.seen(held)).size, held.length)
      await reopened.record(['after'])
      assert.deepEqual([...(await reopened.seen(['after']))], ['after'])
    } finally {
      await reopened.close()
    }
  })
})

describe('SQLite processed-id window: closed', () => {
  it('refuses calls once closed, and a record that was under way stops between two chunks, keeping those it journaled', async () => {
    const path = join(dir, 'closed.sqlite')
    const window = createSqliteProcessedIds({ path })
    await window.record(['before'])
    // Enough keys for many chunks, so the record yields to the event loop between two.
    const many = keys('many', 200_000)
    const recording = window.record(many)
    await window.close()
    await assert.rejects(recording, { code: 'closed', message: 'processed-id window is closed' })
    await assert.rejects(window.seen(['before']), { code: 'closed' })
    await assert.rejects(window.record(['later']), { code: 'closed' })

    // Whatever chunks went in before the close are a prefix of `many`, each whole.
    const reopened = createSqliteProcessedIds({ path })
    try {
      assert.equal((await reopened.seen(['before'])).size, 1)
      const seen = await reopened.seen(many)
      // The first chunk goes in before the record first yields, so before the close.
      assert.ok(seen.size >= 4_096 && seen.size < many.length, `${seen.size} keys journaled`)
      assert.equal(seen.size % 4_096, 0, `${seen.size} keys is not a number of whole chunks`)
      assert.deepEqual(seen, new Set(many.slice(0, seen.size)))
      assert.equal((await reopened.seen(['later'])).size, 0)
    } finally {
      await reopened.close()
    }
  })
})

describe('SQLite processed-id window: readiness (ping)', () => {
  it('fails while the last write failed for want of storage, naming the window and SQLITE_FULL, and passes once a write succeeds', async () => {
    const path = join(dir, 'ping-full.sqlite')
    const earlier = keys('earlier', 120)
    const setUp = createSqliteProcessedIds({ path })
    await setUp.record(earlier)
    await setUp.close()

    // As in the full disk's test above: these keys need a page the file may not have.
    const window = createSqliteProcessedIds({ path, maxPageCount: 1, name: 'router processed-id window' })
    try {
      await window.ping()
      await assert.rejects(window.record(keys('refused', 60)), {
        message: 'router processed-id window record: SQLITE_FULL (database or disk is full)',
      })
      const down = (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.equal(error.retriable, true)
        assert.equal(
          error.message,
          'router processed-id window: the last write failed with SQLITE_FULL (database or disk is full) and none has succeeded since',
        )
        assert.deepEqual(error.context, { path, failure: 'SQLITE_FULL' })
        return true
      }
      await assert.rejects(window.ping(), down)
      // Lookups still answer: only writes are refused.
      assert.equal((await window.seen(earlier)).size, earlier.length)
      // Keys it holds already are not journaled again: no write, so nothing learnt of the disk.
      await window.record(earlier.slice(0, 3))
      await assert.rejects(window.ping(), down)

      // What fits in the pages the file has is written: the storage takes writes again.
      await window.record(['fits'])
      await window.ping()
    } finally {
      await window.close()
    }
  })

  it('fails once its file or its write-ahead log is deleted or replaced while open, though its writes still succeed', async () => {
    const replace = (path: string) => {
      writeFileSync(`${path}.new`, '')
      renameSync(`${path}.new`, path)
    }
    for (const [what, change, expected] of [
      [
        'file-deleted',
        (path: string) => unlinkSync(path),
        /^projector processed-id window: \S+ping-file-deleted\.sqlite was deleted while open/,
      ],
      [
        'file-replaced',
        replace,
        /^projector processed-id window: \S+ping-file-replaced\.sqlite was replaced while open/,
      ],
      [
        'log-deleted',
        (path: string) => unlinkSync(`${path}-wal`),
        /^projector processed-id window: its write-ahead log \S+ping-log-deleted\.sqlite-wal was deleted while open: commits since the last checkpoint would be lost with the process$/,
      ],
      [
        'log-replaced',
        (path: string) => replace(`${path}-wal`),
        /^projector processed-id window: its write-ahead log \S+ping-log-replaced\.sqlite-wal was replaced while open/,
      ],
    ] as const) {
      const path = join(dir, `ping-${what}.sqlite`)
      const window = createSqliteProcessedIds({ path, name: 'projector processed-id window' })
      try {
        await window.record(['before'])
        await window.ping()
        change(path)
        // SQLite writes on to the files it has open, without an error: only the probe can tell,
        // and no write that succeeds makes it pass again.
        await window.record(['after'])
        assert.deepEqual([...(await window.seen(['before', 'after']))], ['before', 'after'])
        await assert.rejects(window.ping(), (error: unknown) => {
          assert.ok(error instanceof UnavailableError, `${what}: ${String(error)}`)
          assert.match(error.message, expected)
          return true
        })
      } finally {
        await window.close()
      }
    }
  })

  it('names the window in the errors of its open and once closed', async () => {
    const path = join(dir, 'named-folder.sqlite')
    mkdirSync(path)
    assert.throws(() => createSqliteProcessedIds({ path, name: 'projector processed-id window' }), {
      code: 'unavailable',
      message: 'projector processed-id window open: SQLITE_CANTOPEN (unable to open database file)',
    })
    const window = createSqliteProcessedIds({
      path: join(dir, 'named.sqlite'),
      name: 'projector processed-id window',
    })
    await window.close()
    await assert.rejects(window.ping(), {
      code: 'closed',
      message: 'projector processed-id window is closed',
    })
  })
})
