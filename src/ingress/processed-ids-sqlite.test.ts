import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createSqliteProcessedIds } from './processed-ids-sqlite.ts'

// What every window answers is the contract suite (test/int/processed-ids.int.test.ts).
const dir = mkdtempSync(join(tmpdir(), 'herald-processed-ids-sqlite-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const keys = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)

describe('SQLite processed-id window: a full disk', () => {
  it('fails a record with SQLITE_FULL, writing none of it, and keeps what it held, usable as before', async () => {
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
      await assert.rejects(window.record(refused), (error: Error & { errcode?: number }) => {
        assert.equal(error.errcode, 13, `${error.message} should be SQLITE_FULL`)
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
