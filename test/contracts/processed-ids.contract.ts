import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { type ProcessedIds, processedKey } from '../../src/ingress/index.ts'

/**
 * The ProcessedIds contract: the router's processed-event window behaves the same on every
 * store (memory, SQLite, ClickHouse). Each test opens its own window.
 */
export interface ProcessedIdsContractOptions {
  readonly name: string
  /** A fresh, empty window with this clock and retention. */
  readonly open: (options: {
    clock: () => number
    retentionMs: number
    maxEntries?: number
  }) => Promise<ProcessedIds>
  /** Opens the same window again after close(), for stores that persist. */
  readonly reopen?: (options: { clock: () => number; retentionMs: number }) => Promise<ProcessedIds>
  /** Whether the store bounds the window by count as well as by time. */
  readonly boundedByCount: boolean
}

const key = (id: string, account = 'acme', source = '/engine') => processedKey({ account, source, id })

export const runProcessedIdsContract = ({
  name,
  open,
  reopen,
  boundedByCount,
}: ProcessedIdsContractOptions) => {
  describe(`ProcessedIds contract: ${name}`, () => {
    const HOUR = 3_600_000
    // Starts from the real time: the ClickHouse table's TTL, which only collects garbage a day
    // after the retention, is evaluated by the server's clock, so a test clock fixed at some
    // past day would see every row it writes dropped once that day is over.
    let now = Math.floor(Date.now() / HOUR) * HOUR
    const clock = () => now

    it('knows only what was recorded', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      try {
        assert.equal((await window.seen([])).size, 0)
        const [a, b, c] = [key(randomUUID()), key(randomUUID()), key(randomUUID())]
        assert.equal((await window.seen([a, b])).size, 0)
        await window.record([a, b])
        await window.record([a])
        assert.deepEqual([...(await window.seen([a, c, b]))].sort(), [a, b].sort())
      } finally {
        await window.close()
      }
    })

    it('tells apart the same id under another account or source', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      try {
        const id = randomUUID()
        await window.record([key(id)])
        const seen = await window.seen([key(id), key(id, 'globex'), key(id, 'acme', '/other')])
        assert.deepEqual([...seen], [key(id)])
      } finally {
        await window.close()
      }
    })

    it('forgets keys older than the retention', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      try {
        const old = key(randomUUID())
        await window.record([old])
        now += HOUR / 2
        const recent = key(randomUUID())
        await window.record([recent])
        now += HOUR / 2 + 1_000
        assert.deepEqual([...(await window.seen([old, recent]))], [recent])
      } finally {
        await window.close()
      }
    })

    it('remembers a key recorded again after its retention from that second time', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      try {
        const again = key(randomUUID())
        await window.record([again])
        now += HOUR + 1_000
        // Past the retention, and nothing recorded since that would have evicted it.
        assert.equal((await window.seen([again])).size, 0)
        await window.record([again])
        now += HOUR / 2
        assert.deepEqual([...(await window.seen([again]))], [again])
        if (reopen !== undefined) {
          await window.close()
          const reopened = await reopen({ clock, retentionMs: HOUR })
          try {
            assert.deepEqual([...(await reopened.seen([again]))], [again])
          } finally {
            await reopened.close()
          }
        }
      } finally {
        await window.close()
      }
    })

    it('handles a batch of tens of thousands of keys, repeats included', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      try {
        // A projector batch's worth: more than one of the SQLite window's transactions.
        const keys = Array.from({ length: 24_000 }, () => key(randomUUID()))
        const recorded = keys.slice(0, 12_000)
        await window.record([...recorded, recorded[0] as string, recorded[4_096] as string])
        const seen = await window.seen(keys)
        assert.equal(seen.size, 12_000)
        assert.ok(recorded.every((k) => seen.has(k)))
        if (reopen !== undefined) {
          await window.close()
          const again = await reopen({ clock, retentionMs: HOUR })
          try {
            assert.equal((await again.seen(keys)).size, 12_000)
          } finally {
            await again.close()
          }
        }
      } finally {
        await window.close()
      }
    })

    it('answers a ping while open, and refuses every call once closed', async () => {
      const window = await open({ clock, retentionMs: HOUR })
      await window.ping()
      await window.record([key(randomUUID())])
      await window.ping()
      await window.close()
      await assert.rejects(window.ping(), { code: 'closed' })
      await assert.rejects(window.seen([key(randomUUID())]), { code: 'closed' })
      await assert.rejects(window.record([key(randomUUID())]), { code: 'closed' })
    })

    if (boundedByCount) {
      it('forgets the oldest keys beyond its capacity', async () => {
        const window = await open({ clock, retentionMs: HOUR, maxEntries: 100 })
        try {
          const keys = Array.from({ length: 150 }, () => key(randomUUID()))
          for (const k of keys) {
            now += 1
            await window.record([k])
          }
          now += 60_000
          await window.record([key(randomUUID())])
          const seen = await window.seen(keys)
          assert.ok(!seen.has(keys[0] as string), 'the oldest is forgotten')
          assert.ok(seen.has(keys.at(-1) as string), 'the newest is kept')
          assert.ok(seen.size <= 100)
        } finally {
          await window.close()
        }
      })
    }

    if (reopen !== undefined) {
      it('remembers across a restart', async () => {
        const first = await open({ clock, retentionMs: HOUR })
        const k = key(randomUUID())
        await first.record([k])
        await first.close()
        const second = await reopen({ clock, retentionMs: HOUR })
        try {
          assert.ok((await second.seen([k])).has(k))
        } finally {
          await second.close()
        }
      })
    }
  })
}
