import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createFileInserter, infileInsertSql, serialiseRows } from './file-insert.ts'

describe('serialiseRows', () => {
  it('writes flat rows as TabSeparated, escaping what would end a field or a row', () => {
    const rows = serialiseRows([
      { id: 'a\tb\nc\\d\re', n: 1.5, big: 2n ** 63n, ok: true, none: null, at: new Date(0) },
      { id: '\\N', n: -2, big: 0n, ok: false, none: 'x', at: new Date(1) },
    ])
    assert.equal(rows.format, 'TabSeparated')
    assert.deepEqual(rows.columns, ['id', 'n', 'big', 'ok', 'none', 'at'])
    assert.equal(
      rows.body,
      'a\\tb\\nc\\\\d\\re\t1.5\t9223372036854775808\t1\t\\N\t1970-01-01T00:00:00.000Z\n' +
        '\\\\N\t-2\t0\t0\tx\t1970-01-01T00:00:00.001Z\n',
    )
  })

  it('falls back to JSONEachRow for nested values, differing keys and values text cannot hold', () => {
    for (const rows of [
      [{ id: 'a', reasons: [{ gate: 'g' }] }],
      [{ id: 'a', tuple: { x: 1 } }],
      [{ id: 'a' }, { id: 'b', extra: 1 }],
      [{ id: 'a', n: 1 }, { id: 'b' }],
      [{ id: 'a', n: undefined }],
      [{ id: 'a', n: Number.NaN }],
    ]) {
      const out = serialiseRows(rows)
      assert.equal(out.format, 'JSONEachRow', JSON.stringify(rows))
      assert.equal(out.columns, undefined)
      assert.equal(out.body, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`)
    }
  })
})

describe('infileInsertSql', () => {
  it('quotes the file, the token and the columns, and scopes its settings to the statement', () => {
    const sql = infileInsertSql(
      'events',
      "/tmp/it's\\here/1.tsv",
      { format: 'TabSeparated', columns: ['id', 'we`ird'], body: '' },
      { deduplicationToken: "topic/0/1-2/a'b\\c/events", optimizeOnInsert: false },
    )
    assert.equal(
      sql,
      "INSERT INTO events (`id`, `we\\`ird`) FROM INFILE '/tmp/it\\'s\\\\here/1.tsv' SETTINGS async_insert = 0, insert_deduplication_token = 'topic/0/1-2/a\\'b\\\\c/events', optimize_on_insert = 0, date_time_input_format = 'best_effort', input_format_skip_unknown_fields = 0 FORMAT TabSeparated",
    )
  })
})

describe('createFileInserter', () => {
  it('has the engine load the file before the event loop turns, all of it however many chunks', async () => {
    // The block of a table with thousands of chunks (more than one writev takes).
    const chunks = Array.from({ length: 3000 }, (_, i) => Buffer.from(`chunk ${i};`))
    const seen: { sql: string; file: string; turned: boolean }[] = []
    let turned = false
    const inserter = createFileInserter(async (sql) => {
      const file = /FROM INFILE '([^']+)'/.exec(sql)?.[1] as string
      seen.push({ sql, file: readFileSync(file, 'latin1'), turned })
    })
    try {
      setImmediate(() => {
        turned = true
      })
      await inserter.insertNative(
        'events',
        { columns: ['id'], rows: 1, body: chunks },
        { deduplicationToken: 't', optimizeOnInsert: false },
      )
      assert.equal(seen.length, 1)
      // Asynchronous writes would have waited for the loop to turn (open, write, close) while
      // the caller kept it busy.
      assert.equal(seen[0]?.turned, false)
      assert.equal(seen[0]?.file, Buffer.concat(chunks).toString('latin1'))
      assert.match(seen[0]?.sql ?? '', /FORMAT Native$/)
    } finally {
      inserter.close()
    }
  })
})
