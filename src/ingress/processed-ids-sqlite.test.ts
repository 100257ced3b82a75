import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
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
