import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createMemoryRecentTickets, createSqliteRecentTickets, type RecentTickets } from './recent-tickets.ts'

const behaves = (name: string, open: (keep: number) => RecentTickets & { close?(): void }) =>
  describe(name, () => {
    it('gives each configuration’s latest issues newest first, the last `keep` of them', () => {
      const tickets = open(3)
      for (const id of [10, 11, 12, 13]) tickets.remember('cfg-a', id)
      tickets.remember('cfg-b', 99)
      tickets.remember('cfg-a', 11) // filed again: now the newest
      assert.deepEqual(tickets.recent('cfg-a'), [11, 13, 12])
      assert.deepEqual(tickets.recent('cfg-b'), [99])
      assert.deepEqual(tickets.recent('cfg-c'), [])
      tickets.close?.()
    })

    it('knows a filing whose answer never came, per configuration and label, until it is settled', () => {
      const tickets = open(3)
      assert.equal(tickets.unanswered('cfg-a', 'herald-k1'), undefined)
      tickets.filing('cfg-a', 'herald-k1', 1_000)
      tickets.filing('cfg-a', 'herald-k1', 2_000) // filed again: the later one counts
      tickets.filing('cfg-b', 'herald-k2', 3_000)
      assert.equal(tickets.unanswered('cfg-a', 'herald-k1'), 2_000)
      assert.equal(tickets.unanswered('cfg-a', 'herald-k2'), undefined)
      tickets.settled('cfg-a', 'herald-k1')
      assert.equal(tickets.unanswered('cfg-a', 'herald-k1'), undefined)
      assert.equal(tickets.unanswered('cfg-b', 'herald-k2'), 3_000)
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
    first.remember('cfg-a', 42)
    first.filing('cfg-a', 'herald-k1', 1_000)
    first.close()
    const second = createSqliteRecentTickets(path)
    assert.deepEqual(second.recent('cfg-a'), [42])
    assert.equal(second.unanswered('cfg-a', 'herald-k1'), 1_000)
    second.close()
  })
})
