import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { createMemoryRecentTickets, createSqliteRecentTickets, type RecentTickets } from './recent-tickets.ts'

const behaves = (name: string, open: (keep: number) => RecentTickets & { close?(): void }) =>
  describe(name, () => {
    it('gives each target’s latest issues newest first, the last `keep` of them', () => {
      const tickets = open(3)
      for (const id of [10, 11, 12, 13]) tickets.remember('jira https://a.example SEC', id)
      tickets.remember('jira https://a.example OPS', 99)
      tickets.remember('jira https://a.example SEC', 11) // filed again: now the newest
      assert.deepEqual(tickets.recent('jira https://a.example SEC'), [11, 13, 12])
      assert.deepEqual(tickets.recent('jira https://a.example OPS'), [99])
      assert.deepEqual(tickets.recent('github https://api.github.com acme/x'), [])
      tickets.close?.()
    })

    it('knows a filing whose answer never came, per target and label, until it is settled', () => {
      const tickets = open(3)
      assert.equal(tickets.unanswered('jira https://a.example SEC', 'herald-k1'), undefined)
      tickets.filing('jira https://a.example SEC', 'herald-k1', 1_000)
      tickets.filing('jira https://a.example SEC', 'herald-k1', 2_000) // filed again: the later one counts
      tickets.filing('jira https://a.example OPS', 'herald-k2', 3_000)
      assert.equal(tickets.unanswered('jira https://a.example SEC', 'herald-k1'), 2_000)
      assert.equal(tickets.unanswered('jira https://a.example SEC', 'herald-k2'), undefined)
      tickets.settled('jira https://a.example SEC', 'herald-k1')
      assert.equal(tickets.unanswered('jira https://a.example SEC', 'herald-k1'), undefined)
      assert.equal(tickets.unanswered('jira https://a.example OPS', 'herald-k2'), 3_000)
      tickets.close?.()
    })
  })

behaves('createMemoryRecentTickets', (keep) => createMemoryRecentTickets(keep))

describe('createSqliteRecentTickets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-recent-tickets-'))
  let n = 0
  after(() => rmSync(dir, { recursive: true, force: true }))
  behaves('as a store', (keep) => createSqliteRecentTickets(join(dir, `t${++n}.sqlite`), keep))

  it('keeps them across a restart', () => {
    const path = join(dir, 'restart.sqlite')
    const first = createSqliteRecentTickets(path)
    first.remember('jira https://a.example SEC', 42)
    first.filing('jira https://a.example SEC', 'herald-k1', 1_000)
    first.close()
    const second = createSqliteRecentTickets(path)
    assert.deepEqual(second.recent('jira https://a.example SEC'), [42])
    assert.equal(second.unanswered('jira https://a.example SEC', 'herald-k1'), 1_000)
    second.close()
  })

  it('opens a file of the per-configuration layout, whose rows no target matches, afresh', () => {
    const path = join(dir, 'per-configuration.sqlite')
    const old = new DatabaseSync(path)
    old.exec(`
      CREATE TABLE recent_tickets (configuration_id TEXT NOT NULL, issue_id INTEGER NOT NULL,
        seq INTEGER NOT NULL, PRIMARY KEY (configuration_id, issue_id)) STRICT;
      CREATE TABLE unanswered_filings (configuration_id TEXT NOT NULL, label TEXT NOT NULL,
        at INTEGER NOT NULL, PRIMARY KEY (configuration_id, label)) STRICT;
      INSERT INTO recent_tickets VALUES ('cfg-a', 7, 1);
      INSERT INTO unanswered_filings VALUES ('cfg-a', 'herald-k1', 1000);
    `)
    old.close()
    const tickets = createSqliteRecentTickets(path)
    assert.deepEqual(tickets.recent('cfg-a'), [])
    tickets.remember('jira https://a.example SEC', 8)
    tickets.filing('jira https://a.example SEC', 'herald-k1', 2_000)
    tickets.close()
    const reopened = createSqliteRecentTickets(path)
    assert.deepEqual(reopened.recent('jira https://a.example SEC'), [8], 'a file of the new layout is kept')
    assert.equal(reopened.unanswered('jira https://a.example SEC', 'herald-k1'), 2_000)
    reopened.close()
  })
})
