import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { eventually } from '../../test/support/eventually.ts'
import { threadNames } from '../../test/support/threads.ts'
import { sqliteErrorIn } from '../adapters/sqlite-errors.ts'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import { columnsOf } from '../adapters/sqlite-file.ts'
import type { EndpointType } from '../notifications/index.ts'
import { silentLogger } from '../observability/index.ts'
import type { EventStore } from '../ports/index.ts'
import { deliveryStream } from './events.ts'
import { createDeliveryLog, type DeliveryLog } from './log.ts'
import {
  createDeliveryQueries,
  createDeliveryReadModel,
  type DeliveryQuery,
  type DeliveryReadModel,
  type DeliveryReadModelOptions,
  listStatement,
  openDeliveryViewFile,
  type ReadModelUpgradeListener,
  type StoredDelivery,
} from './read-model.ts'
import { createThreadedDeliveryReadModel } from './read-model-thread.ts'
import { startDeliveryRetention } from './retention.ts'

const hex = (n: number) => n.toString(16).padStart(64, '0')

const requestOf = (
  n: number,
  configurationId: string,
  account = 'acme',
  endpoint: EndpointType = 'webhook',
) => ({
  deliveryId: hex(n),
  account,
  endpoint,
  configurationId,
  event: {
    specversion: '1.0' as const,
    id: `evt-${n}`,
    source: '/engine',
    type: n % 2 === 0 ? 'user.image.analysis.completed' : 'user.checks.tag.policy_evaluation.update',
    account,
  },
  matchedSelectorIds: ['sel-1'],
  createdAt: '2026-11-22T10:00:00.000Z',
})

/**
 * The file as version 0 of its schema made it (`user_version` 0): attempts keyed by their
 * delivery id. Copied from the read model as it was; files made by it must open unchanged.
 */
const VERSION_0_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS deliveries (
  delivery_id          TEXT PRIMARY KEY,
  seq                  INTEGER NOT NULL,
  revision             INTEGER NOT NULL,
  account              TEXT NOT NULL,
  endpoint             TEXT NOT NULL,
  configuration_id     TEXT NOT NULL,
  event_id             TEXT NOT NULL,
  event_type           TEXT NOT NULL,
  event                TEXT NOT NULL,
  matched_selector_ids TEXT NOT NULL,
  created_at           TEXT NOT NULL,
  digest               TEXT,
  status               TEXT NOT NULL,
  attempts             INTEGER NOT NULL,
  round_failures       INTEGER NOT NULL,
  next_attempt_at      INTEGER,
  requested_at         INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL,
  replays              INTEGER NOT NULL,
  last_status          INTEGER,
  last_code            TEXT,
  last_error           TEXT,
  last_latency_ms      REAL,
  attempted            INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries (seq);
CREATE INDEX IF NOT EXISTS deliveries_by_account ON deliveries (account, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_configuration ON deliveries (configuration_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id);
CREATE INDEX IF NOT EXISTS deliveries_unsettled ON deliveries (configuration_id, seq)
  WHERE next_attempt_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS heads (
  configuration_id TEXT PRIMARY KEY,
  delivery_id      TEXT NOT NULL,
  next_attempt_at  INTEGER NOT NULL,
  seq              INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS attempts (
  position         INTEGER PRIMARY KEY,
  delivery_id      TEXT NOT NULL,
  account          TEXT NOT NULL,
  endpoint         TEXT NOT NULL,
  configuration_id TEXT NOT NULL,
  event_id         TEXT NOT NULL,
  event_type       TEXT NOT NULL,
  attempt          INTEGER NOT NULL,
  outcome          TEXT NOT NULL,
  status           INTEGER,
  code             TEXT,
  error            TEXT,
  latency_ms       REAL,
  at               INTEGER NOT NULL,
  next_attempt_at  INTEGER,
  publish          INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id, position);
CREATE INDEX IF NOT EXISTS attempts_by_configuration ON attempts (configuration_id, position)
  WHERE outcome != 'skipped';
CREATE INDEX IF NOT EXISTS attempts_unpublished ON attempts (position) WHERE publish = 1;
CREATE TABLE IF NOT EXISTS failing (
  configuration_id TEXT PRIMARY KEY,
  since            INTEGER NOT NULL,
  last_at          INTEGER
) STRICT;
`

/** Version 0's delivery columns, in its order, from a file of today's schema: its deliveries `d` and their requests `r`. */
const VERSION_0_DELIVERY_COLUMNS = `d.delivery_id, d.seq, d.revision, d.account, d.endpoint, d.configuration_id,
  d.event_id, d.event_type, r.event, r.matched_selector_ids, r.created_at, r.digest, d.status, d.attempts,
  d.round_failures, d.next_attempt_at, d.requested_at, d.updated_at, d.replays, d.last_status, d.last_code,
  d.last_error, d.last_latency_ms, d.attempted`

const VERSION_0_ATTEMPT_COLUMNS = `position, delivery_id, account, endpoint, configuration_id, event_id,
  event_type, attempt, outcome, status, code, error, latency_ms, at, next_attempt_at, publish`

/** Rewrites the read model's (closed) file at `path` as version 0 of its schema would have kept the same rows. */
const rewriteAsVersion0 = (path: string): void => {
  const made = `${path}.version-1`
  renameSync(path, made)
  const old = new DatabaseSync(path)
  try {
    old.exec(`PRAGMA journal_mode = WAL; ${VERSION_0_SCHEMA}`)
    old.exec(`
      ATTACH '${made}' AS made;
      INSERT INTO meta SELECT * FROM made.meta;
      INSERT INTO deliveries SELECT ${VERSION_0_DELIVERY_COLUMNS}
        FROM made.deliveries d JOIN made.requests r ON r.seq = d.seq;
      INSERT INTO heads SELECT configuration_id, delivery_id, next_attempt_at, seq FROM made.heads;
      INSERT INTO failing SELECT * FROM made.failing;
      INSERT INTO attempts (${VERSION_0_ATTEMPT_COLUMNS}) SELECT ${VERSION_0_ATTEMPT_COLUMNS} FROM made.attempts;
      DETACH made;
    `)
    assert.equal(old.prepare('PRAGMA user_version').get()?.user_version, 0)
  } finally {
    old.close()
  }
  unlinkSync(made)
}

/** What heads were before version 5: no word of whether they wait for their first attempt. */
const WITHOUT_PENDING_HEADS = `
  DROP INDEX heads_pending_by_due;
  ALTER TABLE heads DROP COLUMN pending;`

/** Rewrites the read model's (closed) file at `path` as version 3 of its schema left it: no configurations, no request times. */
const rewriteAsVersion3 = (path: string): void => {
  const old = new DatabaseSync(path)
  try {
    old.exec(`
      DROP TABLE configurations;
      DELETE FROM meta WHERE key IN ('latest_requested_at', 'request_time_lag');
      ${WITHOUT_PENDING_HEADS}
      PRAGMA user_version = 3;
    `)
  } finally {
    old.close()
  }
}

/** What every query of `view` answers about deliveries 1–`count` and configurations `cfg-a`–`cfg-c`. */
const answersOf = (view: DeliveryReadModel, count: number, now: number) => {
  const ids = Array.from({ length: count }, (_, i) => hex(i + 1))
  const configurations = ['cfg-a', 'cfg-b', 'cfg-c']
  return {
    instanceId: view.instanceId,
    position: view.position(),
    deliveries: ids.map((id) => view.get(id)),
    attempts: ids.map((id) => view.attemptsOf(id)),
    lists: [
      view.list({ limit: 100 }),
      view.list({ account: 'acme', limit: 2 }),
      view.list({ configurationId: 'cfg-a', limit: 100 }),
      view.list({ status: 'retrying', limit: 100 }),
      view.list({ eventId: 'evt-2', limit: 100 }),
      view.list({ endpoint: 'webhook', before: 3, limit: 100 }),
      view.list({ account: 'acme', endpoint: 'webhook', limit: 2 }),
      view.list({ since: now - 1, until: now + 1, limit: 2 }),
      view.list({ endpoint: 'webhook', until: now + 1, before: 4, limit: 100 }),
    ],
    dueHeads: view.dueHeads(now + 3_600_000, new Set(), 10),
    nextDueAt: view.nextDueAt(new Set()),
    heads: configurations.map((c) => view.headOf(c)),
    behind: ids.map((id) => {
      const delivery = view.get(id)
      return delivery === undefined ? undefined : view.nextBehind(delivery, now)
    }),
    recentOutcomes: configurations.map((c) => view.recentOutcomes(c, 20)),
    failingSince: configurations.map((c) => view.failingSince(c)),
    unpublished: view.unpublished(100),
  }
}

const answer = (status: number) => ({
  ok: status < 300,
  status,
  latencyMs: 7,
  code: status < 300 ? null : 'http_status',
  error: status < 300 ? null : `HTTP ${status}`,
  response: status < 300 ? 'ok' : null,
})

/**
 * One suite for both ways of keeping the read model: folded on the event loop, and folded by a
 * thread of its own over the embedded store's file (`inProcess` false), read here either way.
 */
const readModelContract = (
  name: string,
  make: (dir: string, options?: Partial<DeliveryReadModelOptions>) => DeliveryReadModel,
  { inProcess }: { readonly inProcess: boolean },
) =>
  describe(name, () => {
    let dir: string
    let store: EventStore
    let view: DeliveryReadModel
    let deliveries: DeliveryLog
    let now = Date.parse('2026-11-22T10:00:00.000Z')
    const clock = () => now

    const open = (options?: Partial<DeliveryReadModelOptions>) => {
      const opened = make(dir, options)
      opened.follow(store)
      return opened
    }

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'herald-delivery-view-'))
      store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite'), clock })
      view = open()
      deliveries = createDeliveryLog({ store, clock, newId: randomUUID, origin: view.instanceId })
    })
    afterEach(async () => {
      await view.close()
      await store.close()
      // The background checkpointer may still be finishing with the file as it stops.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
    })

    const request = async (n: number, configurationId: string, account?: string, endpoint?: EndpointType) =>
      view.waitFor(await deliveries.request(requestOf(n, configurationId, account, endpoint)))

    /** Records the head's next attempt with `status`, as the deliverer does. */
    const attempt = async (n: number, status: number, retryInMs?: number) => {
      const row = view.get(hex(n))
      assert.ok(row)
      const resolution =
        status < 300
          ? ({ outcome: 'sent' } as const)
          : retryInMs === undefined
            ? ({ outcome: 'rejected', reason: 'http_status' } as const)
            : ({
                outcome: 'failed',
                reason: 'http_status',
                nextAttemptAt: now + retryInMs,
                retryAfterMs: null,
              } as const)
      await view.waitFor((await deliveries.record(row, answer(status), resolution)).position)
    }

    it('lists deliveries newest first, filtered and paged, scoped by account', async () => {
      for (let n = 1; n <= 5; n++) await request(n, n <= 3 ? 'cfg-a' : 'cfg-b', n === 5 ? 'globex' : 'acme')
      await attempt(1, 200)
      await attempt(4, 400)

      const ids = (query: Parameters<DeliveryReadModel['list']>[0]) =>
        view.list(query).items.map((d) => d.eventId)
      assert.deepEqual(ids({ limit: 10 }), ['evt-5', 'evt-4', 'evt-3', 'evt-2', 'evt-1'])
      assert.deepEqual(ids({ account: 'acme', limit: 10 }), ['evt-4', 'evt-3', 'evt-2', 'evt-1'])
      assert.deepEqual(ids({ configurationId: 'cfg-a', limit: 10 }), ['evt-3', 'evt-2', 'evt-1'])
      assert.deepEqual(ids({ status: 'sent', limit: 10 }), ['evt-1'])
      assert.deepEqual(ids({ status: 'rejected', limit: 10 }), ['evt-4'])
      assert.deepEqual(ids({ status: 'pending', account: 'acme', limit: 10 }), ['evt-3', 'evt-2'])
      assert.deepEqual(ids({ eventId: 'evt-2', limit: 10 }), ['evt-2'])

      const first = view.list({ account: 'acme', limit: 3 })
      assert.equal(first.items.length, 3)
      assert.ok(first.next !== null)
      const second = view.list({ account: 'acme', limit: 3, before: first.next })
      assert.deepEqual(
        second.items.map((d) => d.eventId),
        ['evt-1'],
      )
      assert.equal(second.next, null)

      const sent = view.get(hex(1))
      assert.equal(sent?.status, 'sent')
      assert.equal(sent?.attempts, 1)
      assert.deepEqual(sent?.lastAttempt, { status: 200, code: null, error: null, latencyMs: 7 })
      assert.equal(sent?.event.id, 'evt-1')
    })

    /**
     * Requests a second apart as three deliverers would stamp them: every seventh by a clock an
     * hour behind, every eleventh by one 2.5 s ahead, so request times run out of seq order both
     * ways. Resolves with what each request was, by its number.
     */
    const requestSkewed = async (count: number) => {
      const configurations = [
        { id: 'cfg-a', account: 'acme', endpoint: 'webhook' },
        { id: 'cfg-b', account: 'acme', endpoint: 'slack' },
        { id: 'cfg-c', account: 'acme', endpoint: 'webhook' },
        { id: 'cfg-d', account: 'globex', endpoint: 'slack' },
      ] as const
      const start = now
      const requested: { n: number; account: string; endpoint: EndpointType; at: number; sent: boolean }[] =
        []
      for (let n = 1; n <= count; n++) {
        const c = configurations[n % configurations.length] ?? configurations[0]
        now = start + n * 1000 - (n % 7 === 0 ? 3_600_000 : 0) + (n % 11 === 0 ? 2_500 : 0)
        await request(n, c.id, c.account, c.endpoint)
        const sent = n % 5 === 0
        if (sent) await attempt(n, 200)
        requested.push({ n, account: c.account, endpoint: c.endpoint, at: now, sent })
      }
      now = start + (count + 1) * 1000
      return { start, requested }
    }

    it('lists a time window and an endpoint type exactly, page after page, however far request times run out of seq order', async () => {
      const { start, requested } = await requestSkewed(60)
      const queries: Omit<DeliveryQuery, 'limit'>[] = [
        { until: start + 30_500 },
        { since: start + 20_500 },
        { since: start + 10_500, until: start + 40_500 },
        { account: 'acme', until: start + 30_500 },
        { account: 'acme', since: start + 50_500 },
        // Only the requests an hour behind; then none at all.
        { until: start - 1_000_000 },
        { until: start - 4_000_000 },
        { since: start + 58_000 },
        { endpoint: 'slack' },
        { account: 'acme', endpoint: 'slack' },
        { account: 'acme', endpoint: 'webhook', until: start + 40_500 },
        { endpoint: 'webhook', since: start + 5_500, until: start + 45_500 },
        { endpoint: 'webhook', status: 'sent' },
        { account: 'globex', endpoint: 'webhook' },
        { endpoint: 'email' },
      ]
      for (const query of queries) {
        // Newest first by seq, which is the order of the requests here.
        const expected = requested
          .filter(
            (r) =>
              (query.account === undefined || r.account === query.account) &&
              (query.endpoint === undefined || r.endpoint === query.endpoint) &&
              (query.status === undefined || (query.status === 'sent') === r.sent) &&
              (query.since === undefined || r.at >= query.since) &&
              (query.until === undefined || r.at < query.until),
          )
          .map((r) => `evt-${r.n}`)
          .reverse()
        for (const limit of [1, 3, 7, 100]) {
          const listed: string[] = []
          let before: number | undefined
          for (;;) {
            const page = view.list({ ...query, limit, ...(before === undefined ? {} : { before }) })
            assert.ok(page.items.length <= limit)
            listed.push(...page.items.map((d) => d.eventId))
            if (page.next === null) break
            before = page.next
          }
          assert.deepEqual(listed, expected, `${JSON.stringify(query)}, ${limit} a page`)
          // Oldest first (a bulk replay's), each page after the last.
          const forward: string[] = []
          let after: number | undefined
          for (;;) {
            const page = view.list({
              ...query,
              limit,
              oldestFirst: true,
              ...(after === undefined ? {} : { after }),
            })
            assert.ok(page.items.length <= limit)
            forward.push(...page.items.map((d) => d.eventId))
            if (page.next === null) break
            after = page.next
          }
          assert.deepEqual(
            forward,
            [...expected].reverse(),
            `${JSON.stringify(query)}, ${limit} a page, oldest first`,
          )
        }
      }
    })

    it('hands out each configuration’s oldest unsettled delivery, held back while it waits for a retry', async () => {
      await request(1, 'cfg-a')
      await request(2, 'cfg-a')
      await request(3, 'cfg-b')
      const heads = () => view.dueHeads(now, new Set(), 10).map((d) => d.eventId)
      assert.deepEqual(heads(), ['evt-1', 'evt-3'])
      assert.deepEqual(
        view.dueHeads(now, new Set(['cfg-a']), 10).map((d) => d.eventId),
        ['evt-3'],
      )

      await attempt(1, 503, 5_000)
      // evt-1 waits for its retry and evt-2 waits behind it: cfg-a's order is kept.
      assert.deepEqual(heads(), ['evt-3'])
      assert.equal(view.nextDueAt(new Set(['cfg-b'])), now + 5_000)
      // Due or not, it is the head (a configuration disabled meanwhile settles it now).
      assert.equal(view.headOf('cfg-a')?.eventId, 'evt-1')
      assert.equal(view.headOf('cfg-none'), undefined)
      assert.deepEqual(view.queuedConfigurations(), ['cfg-a', 'cfg-b'])
      now += 5_000
      // Earliest due first: evt-3 has waited since it was requested.
      assert.deepEqual(heads(), ['evt-3', 'evt-1'])
      assert.equal(view.get(hex(1))?.roundFailures, 1)

      await attempt(1, 200)
      assert.deepEqual(heads(), ['evt-2', 'evt-3'])
      await attempt(2, 200)
      await attempt(3, 200)
      assert.deepEqual(heads(), [])
      assert.equal(view.nextDueAt(new Set()), undefined)
      assert.equal(view.headOf('cfg-a'), undefined)
      assert.deepEqual(view.queuedConfigurations(), [])
    })

    it('hands out a delivery waiting for its first attempt whatever the clock says of its time, a retry only once due', async () => {
      const before = now
      try {
        await request(1, 'cfg-a')
        await request(2, 'cfg-a')
        await request(3, 'cfg-b')
        await request(4, 'cfg-c')
        await attempt(3, 503, 5_000)
        await view.waitFor(await deliveries.replay(hex(3), 'acme/admin'))
        await request(5, 'cfg-d')
        await attempt(5, 503, 5_000)
        // The wall clock steps back ten minutes: every time recorded is ten minutes ahead of it.
        now -= 600_000
        const heads = (exclude: string[] = [], limit = 10) =>
          view.dueHeads(now, new Set(exclude), limit).map((d) => d.eventId)
        assert.deepEqual(
          heads(),
          ['evt-1', 'evt-3', 'evt-4'],
          'requested or replayed: due at once; evt-5 waits',
        )
        assert.deepEqual(heads(['cfg-a']), ['evt-3', 'evt-4'])
        assert.deepEqual(heads([], 2), ['evt-1', 'evt-3'])
        const first = view.get(hex(1))
        assert.ok(first)
        const behind = view.nextBehind(first, now)
        assert.ok(behind !== undefined && 'due' in behind, 'the one behind it, never tried, is due too')
        assert.equal(behind.due.eventId, 'evt-2')
        await attempt(1, 503, 5_000)
        assert.deepEqual(heads(), ['evt-3', 'evt-4'], 'a retry waits for its time')
      } finally {
        now = before + 600_000
      }
    })

    it('gives the unsettled delivery queued behind another, settled yet or not', async () => {
      await request(1, 'cfg-a')
      await request(2, 'cfg-b')
      await request(3, 'cfg-a')
      await request(4, 'cfg-a')
      const first = view.get(hex(1))
      assert.ok(first)
      const behind = (after: { configurationId: string; seq: number }) => {
        const next = view.nextBehind(after, now)
        return next === undefined ? undefined : 'due' in next ? next.due.eventId : next.dueAt
      }
      assert.equal(behind(first), 'evt-3', 'behind an unsettled head, of its own configuration')
      await attempt(1, 200)
      assert.equal(behind(first), 'evt-3', 'behind it once it is settled too')
      await attempt(3, 503, 5_000)
      assert.equal(behind(first), now + 5_000, 'one waiting for its retry is not due, and not skipped')
      assert.equal(view.get(hex(3))?.event.id, 'evt-3')
      await attempt(3, 200)
      assert.equal(behind(first), 'evt-4')
      const fourth = view.get(hex(4))
      assert.ok(fourth)
      assert.equal(behind(fourth), undefined, 'nothing queued behind the last')
    })

    it('gives a delivery replayed before the one handed out last first, unless its attempt is open', async () => {
      for (let n = 1; n <= 4; n++) await request(n, 'cfg-a')
      await attempt(1, 200)
      await attempt(2, 200)
      const third = view.get(hex(3))
      assert.ok(third)
      // The queue handed out evt-3 last, its attempt still open, and evt-1 is replayed meanwhile.
      await view.waitFor(await deliveries.replay(hex(1), 'acme/admin'))
      const first = view.get(hex(1))
      assert.ok(first)
      const next = (after: StoredDelivery, open: readonly StoredDelivery[]) => {
        const found = view.nextBehind(after, now, new Set(open))
        return found === undefined ? undefined : 'due' in found ? found.due.eventId : found.dueAt
      }
      assert.equal(next(third, [third]), 'evt-1', 'the replay first')
      assert.equal(
        next(first, [third, first]),
        'evt-4',
        'then on behind it, past evt-3, whose attempt is open',
      )
      assert.equal(next(third, [first, third]), 'evt-4', 'the replay not again while its attempt is open')
      assert.equal(next(third, []), 'evt-1', 'the earliest unsettled, once no attempt is open')
    })

    it('derives health and failure streaks from recent outcomes, skips left out', async () => {
      await request(1, 'cfg-a')
      await request(2, 'cfg-a')
      assert.deepEqual(view.recentOutcomes('cfg-a', 20), [])
      assert.equal(view.failingSince('cfg-a'), null)

      const start = now
      await attempt(1, 503, 0)
      now += 1000
      await attempt(1, 503, 0)
      assert.equal(view.failingSince('cfg-a'), start)
      await attempt(1, 200)
      assert.equal(view.failingSince('cfg-a'), null)
      const row = view.get(hex(2))
      assert.ok(row)
      await view.waitFor(
        (await deliveries.record(row, null, { outcome: 'skipped', reason: 'configuration_disabled' }))
          .position,
      )
      assert.deepEqual(
        view.recentOutcomes('cfg-a', 20).map((o) => o.ok),
        [false, false, true],
      )
      assert.deepEqual(
        view.recentOutcomes('cfg-a', 2).map((o) => o.ok),
        [false, true],
      )
      assert.deepEqual(
        view.attemptsOf(hex(2)).map((a) => [a.outcome, a.error]),
        [['skipped', 'configuration_disabled']],
      )
    })

    it('starts a failure streak again after a gap with no attempts: one failure a day is no sustained failure', async () => {
      for (let n = 1; n <= 4; n++) await request(n, 'cfg-a')
      const first = now
      await attempt(1, 400)
      now += 12 * 3_600_000 // within the default gap (13 h): the same streak
      await attempt(2, 503, 0)
      assert.equal(view.failingSince('cfg-a'), first)
      now += 2 * 86_400_000 // days without an attempt
      const later = now
      await attempt(2, 503, 0)
      assert.equal(view.failingSince('cfg-a'), later)
      now += 60_000
      await attempt(2, 200)
      assert.equal(view.failingSince('cfg-a'), null)
    })

    it('hands out heads in order from a file made before heads carried their seq', async () => {
      // Same due time, so the order is the request order (seq): cfg-b's request came first.
      await request(1, 'cfg-b')
      await request(2, 'cfg-a')
      await request(3, 'cfg-a')
      await view.close()
      // As an older version left it: heads without seq, ordered through their deliveries, and no
      // schema version kept.
      const db = new DatabaseSync(join(dir, 'view.sqlite'))
      db.exec(`
      ${WITHOUT_PENDING_HEADS}
      DROP INDEX heads_by_due_seq;
      ALTER TABLE heads DROP COLUMN seq;
      CREATE INDEX heads_by_due ON heads (next_attempt_at);
      PRAGMA user_version = 0;
    `)
      db.close()
      view = open()
      const heads = () => view.dueHeads(now, new Set(), 10).map((d) => d.eventId)
      assert.deepEqual(heads(), ['evt-1', 'evt-2'])
      await attempt(1, 200)
      await attempt(2, 200)
      assert.deepEqual(heads(), ['evt-3'])
      const reader = new DatabaseSync(join(dir, 'view.sqlite'), { readOnly: true })
      try {
        assert.deepEqual(
          reader
            .prepare(
              "SELECT name FROM sqlite_master WHERE tbl_name = 'heads' AND type = 'index' AND sql IS NOT NULL",
            )
            .all()
            .map((r) => r.name),
          ['heads_by_due_seq', 'heads_pending_by_due'],
        )
        assert.equal(reader.prepare('PRAGMA user_version').get()?.user_version, 5)
      } finally {
        reader.close()
      }
    })

    it('gives heads their seq in the same transaction as its version: a full disk leaves the file as it was', async () => {
      await request(1, 'cfg-b')
      await request(2, 'cfg-a')
      await view.close()
      const path = join(dir, 'view.sqlite')
      const db = new DatabaseSync(path)
      db.exec(`
      ${WITHOUT_PENDING_HEADS}
      DROP INDEX heads_by_due_seq;
      ALTER TABLE heads DROP COLUMN seq;
      PRAGMA user_version = 0;
      VACUUM;
    `)
      const pages = Number(db.prepare('PRAGMA page_count').get()?.page_count)
      db.close()
      const shape = () => {
        const reader = new DatabaseSync(path, { readOnly: true })
        try {
          return {
            version: reader.prepare('PRAGMA user_version').get()?.user_version,
            columns: reader
              .prepare('PRAGMA table_info(heads)')
              .all()
              .map((c) => c.name),
          }
        } finally {
          reader.close()
        }
      }
      const before = shape()
      assert.deepEqual(before, {
        version: 0,
        columns: ['configuration_id', 'delivery_id', 'next_attempt_at'],
      })
      assert.throws(() => openDeliveryViewFile(path, randomUUID, { maxPageCount: pages }), /full/)
      assert.deepEqual(shape(), before)
      view = open()
      assert.deepEqual(
        view.dueHeads(now, new Set(), 10).map((d) => d.eventId),
        ['evt-1', 'evt-2'],
      )
      assert.deepEqual(shape(), { version: 5, columns: [...before.columns, 'seq', 'pending'] })
    })

    it('tells the heads of a file of schema version 4 waiting for their first attempt, due whatever their time says', async () => {
      const before = now
      try {
        await request(1, 'cfg-a')
        await request(2, 'cfg-b')
        await attempt(2, 503, 5_000)
        await view.close()
        const db = new DatabaseSync(join(dir, 'view.sqlite'))
        db.exec(`${WITHOUT_PENDING_HEADS} PRAGMA user_version = 4;`)
        db.close()
        view = open()
        now -= 600_000
        assert.deepEqual(
          view.dueHeads(now, new Set(), 10).map((d) => d.eventId),
          ['evt-1'],
        )
      } finally {
        now = before + 600_000
      }
    })

    it('keeps the start of a streak in a file made before streaks ended at a gap', async () => {
      await request(1, 'cfg-a')
      const start = now
      await attempt(1, 503, 0)
      await view.close()
      // As an older version left it: no column for the last failure.
      const db = new DatabaseSync(join(dir, 'view.sqlite'))
      db.exec(`
      CREATE TABLE failing_old (configuration_id TEXT PRIMARY KEY, since INTEGER NOT NULL) STRICT;
      INSERT INTO failing_old SELECT configuration_id, since FROM failing;
      DROP TABLE failing;
      ALTER TABLE failing_old RENAME TO failing;
      PRAGMA user_version = 0;
    `)
      db.close()
      view = open()
      assert.equal(view.failingSince('cfg-a'), start)
      now += 2 * 86_400_000
      await attempt(1, 503, 0)
      assert.equal(view.failingSince('cfg-a'), start)
      now += 2 * 86_400_000
      await attempt(1, 503, 0)
      assert.equal(view.failingSince('cfg-a'), now, 'a gap after the last failure it knows of starts again')
    })

    it('is the outbox of this instance’s outcomes only', async () => {
      await request(1, 'cfg-a')
      await attempt(1, 503, 0)
      await attempt(1, 200)
      // Another deliverer's attempt on the same log: its instance publishes it, not this one.
      const other = createDeliveryLog({ store, clock, newId: randomUUID, origin: 'another-instance' })
      await request(2, 'cfg-b')
      const row = view.get(hex(2))
      assert.ok(row)
      await view.waitFor((await other.record(row, answer(200), { outcome: 'sent' })).position)

      const waiting = view.unpublished(10)
      assert.deepEqual(
        waiting.map((a) => [a.eventId, a.attempt, a.outcome]),
        [
          ['evt-1', 1, 'failed'],
          ['evt-1', 2, 'sent'],
        ],
      )
      view.markPublished(waiting.map((a) => a.position))
      assert.deepEqual(view.unpublished(10), [])
      assert.equal(view.attemptsOf(hex(2)).length, 1)

      // Published stays published when the file is opened again; what follows is still to publish.
      await view.close()
      view = open()
      assert.deepEqual(view.unpublished(10), [])
      await request(3, 'cfg-a')
      await attempt(3, 200)
      assert.deepEqual(
        view.unpublished(10).map((a) => a.eventId),
        ['evt-3'],
      )
    })

    it('keeps the outbox of a file that marked each published row, from before it kept a watermark', async () => {
      await request(1, 'cfg-a')
      await attempt(1, 503, 0)
      await attempt(1, 200)
      const [published] = view.unpublished(10)
      assert.ok(published)
      await view.close()
      // As such a file was left: the first outcome published (its row marked 0), the second not.
      const db = new DatabaseSync(join(dir, 'view.sqlite'))
      db.prepare('UPDATE attempts SET publish = 0 WHERE position = ?').run(published.position)
      db.close()
      view = open()
      assert.deepEqual(
        view.unpublished(10).map((a) => [a.eventId, a.outcome]),
        [['evt-1', 'sent']],
      )
    })

    it('hands retention the old settled deliveries, and forgets those whose streams it deleted', async () => {
      const day = 86_400_000
      // 1 sent, 2 rejected, 3 retrying, 4 pending, 5 sent (and replayed as retention deletes),
      // 7 sent with its outcome not yet published: all requested 31 days ago.
      for (const n of [1, 2, 3, 4, 5, 7]) await request(n, `cfg-${n}`)
      await attempt(1, 200)
      await attempt(2, 400)
      await attempt(3, 503, 60 * day)
      await attempt(5, 200)
      view.markPublished([view.unpublished(100).at(-1)?.position ?? 0])
      await attempt(7, 200)
      now += 31 * day
      await request(6, 'cfg-6')
      await attempt(6, 200)

      let replayed = false
      const retention = startDeliveryRetention({
        store: {
          deleteStreams: async (deletes) => {
            if (!replayed && deletes.some((d) => d.stream === deliveryStream(hex(5)))) {
              replayed = true
              await view.waitFor(await deliveries.replay(hex(5), 'acme/admin'))
            }
            return store.deleteStreams(deletes)
          },
        },
        view,
        retentionMs: 30 * day,
        batchSize: 2,
        firstPassMs: 3_600_000,
        clock,
        logger: silentLogger,
      })
      try {
        assert.deepEqual(await retention.pass(), { deleted: 2, absent: 0, changed: 1 })
        await eventually(() => assert.equal(view.get(hex(1)), undefined))
        assert.equal(view.get(hex(2)), undefined)
        assert.deepEqual(view.attemptsOf(hex(1)), [])
        assert.deepEqual(await store.readStream(deliveryStream(hex(1))), [])
        assert.deepEqual(await store.readStream(deliveryStream(hex(2))), [])
        // Kept: retrying, pending, replayed (pending again), not yet published, recent.
        assert.deepEqual(
          [3, 4, 5, 7, 6].map((n) => view.get(hex(n))?.status),
          ['retrying', 'pending', 'pending', 'sent', 'sent'],
        )
        assert.deepEqual(
          view.list({ limit: 10 }).items.map((d) => d.eventId),
          ['evt-6', 'evt-7', 'evt-5', 'evt-4', 'evt-3'],
        )

        // A stream deleted by someone else (another process, a pass that stopped short) is forgotten too.
        view.markPublished([view.unpublished(100).at(-1)?.position ?? 0])
        assert.deepEqual(
          await store.deleteStreams([{ stream: deliveryStream(hex(7)), expectedRevision: 2 }]),
          ['deleted'],
        )
        assert.deepEqual(await retention.pass(), { deleted: 0, absent: 1, changed: 0 })
        await eventually(() => assert.equal(view.get(hex(7)), undefined))
      } finally {
        await retention.stop()
      }
    })

    it('keeps a delivery requested again while retention deletes its stream: its new request is its row', async () => {
      const day = 86_400_000
      await request(1, 'cfg-1')
      await attempt(1, 200)
      view.markPublished([view.unpublished(100).at(-1)?.position ?? 0])
      const old = view.get(hex(1))
      assert.ok(old)
      now += 31 * day

      // The same command comes again (redelivered, routed again) between the store's delete and
      // the read model's forget: the log starts the delivery's stream again.
      let requestedAgain = 0
      const retention = startDeliveryRetention({
        store: {
          deleteStreams: async (deletes) => {
            const outcomes = await store.deleteStreams(deletes)
            requestedAgain = await deliveries.request(requestOf(1, 'cfg-1'))
            await view.waitFor(requestedAgain)
            return outcomes
          },
        },
        view,
        retentionMs: 30 * day,
        firstPassMs: 3_600_000,
        clock,
        logger: silentLogger,
      })
      try {
        assert.deepEqual(await retention.pass(), { deleted: 1, absent: 0, changed: 0 })
        // Forgotten, or replaced: the old row is gone either way.
        await eventually(() => assert.notEqual(view.get(hex(1))?.seq, old.seq))
        // Whatever the forget met has been done by the time a later request is folded.
        await request(2, 'cfg-2')
        const again = view.get(hex(1))
        assert.equal(again?.seq, requestedAgain)
        assert.equal(again?.status, 'pending')
        assert.equal(again?.attempts, 0)
        assert.deepEqual(view.attemptsOf(hex(1)), [])
        assert.deepEqual(
          (await store.readStream(deliveryStream(hex(1)))).map((e) => e.type),
          ['DeliveryRequested'],
        )
        assert.deepEqual(
          view.dueHeads(now, new Set(), 10).map((d) => d.eventId),
          ['evt-1', 'evt-2'],
        )
        assert.deepEqual(
          view.list({ configurationId: 'cfg-1', limit: 10 }).items.map((d) => [d.eventId, d.status]),
          [['evt-1', 'pending']],
        )
        // Not old enough to prune: the next pass keeps it.
        assert.deepEqual(await retention.pass(), { deleted: 0, absent: 0, changed: 0 })
      } finally {
        await retention.stop()
      }
    })

    it('forgets a delivery retention deleted only at the revision it deleted', async () => {
      await request(1, 'cfg-1')
      await attempt(1, 200)
      const row = view.get(hex(1))
      assert.ok(row)
      view.forget([{ seq: row.seq, revision: row.revision - 1 }])
      await request(2, 'cfg-2')
      assert.equal(view.get(hex(1))?.status, 'sent')
      view.forget([{ seq: row.seq, revision: row.revision }])
      await eventually(() => assert.equal(view.get(hex(1)), undefined))
      assert.deepEqual(view.attemptsOf(hex(1)), [])
    })

    it('opens a file of schema version 0 with everything it held, attempts found by their delivery’s seq', async () => {
      await request(1, 'cfg-a')
      await request(2, 'cfg-b')
      await request(3, 'cfg-a')
      await request(4, 'cfg-c', 'globex')
      await request(5, 'cfg-a')
      await attempt(1, 200)
      await attempt(2, 400)
      await attempt(3, 503, 60_000)
      await attempt(4, 503, 0)
      await attempt(4, 200)
      await view.waitFor(await deliveries.replay(hex(4), 'globex/admin'))
      view.markPublished([view.unpublished(1)[0]?.position ?? 0])
      const before = answersOf(view, 5, now)
      await view.close()

      // The same rows in a file of version 0, as that version would have folded them.
      const path = join(dir, 'view.sqlite')
      rewriteAsVersion0(path)

      const told: Parameters<ReadModelUpgradeListener>[0][] = []
      view = open({ onUpgrade: (progress) => told.push(progress) })
      assert.deepEqual(answersOf(view, 5, now), before)
      // The copy is told of before and after, once, by the connection that made it.
      assert.deepEqual(
        told.map(({ stage, fromVersion, deliveries, attempts }) => ({
          stage,
          fromVersion,
          deliveries,
          attempts,
        })),
        [
          { stage: 'started', fromVersion: 0, deliveries: 5, attempts: 5 },
          { stage: 'finished', fromVersion: 0, deliveries: 5, attempts: 5 },
        ],
      )
      assert.equal(before.attempts.flat().length, 5)
      assert.equal(before.unpublished.length, 4)
      const reader = new DatabaseSync(path, { readOnly: true })
      try {
        assert.equal(reader.prepare('PRAGMA user_version').get()?.user_version, 5)
        assert.deepEqual(
          reader
            .prepare('PRAGMA index_info(attempts_by_delivery)')
            .all()
            .map((c) => c.name),
          ['delivery_seq', 'position'],
        )
        // Each request in a row of its own, out of its delivery's.
        assert.ok(!columnsOf(reader, 'deliveries').includes('event'))
        assert.equal(reader.prepare('SELECT count(*) AS n FROM requests').get()?.n, 5)
      } finally {
        reader.close()
      }
      // It folds on where it stopped.
      now += 60_000
      await attempt(3, 200)
      assert.deepEqual(
        view.attemptsOf(hex(3)).map((a) => [a.attempt, a.outcome]),
        [
          [1, 'failed'],
          [2, 'sent'],
        ],
      )
      assert.equal(view.headOf('cfg-a')?.eventId, 'evt-5')
    })

    it('opens a file of schema version 3 with its configurations and request times’ lag read from its deliveries', async () => {
      const { start } = await requestSkewed(30)
      const lists = () => [
        view.list({ endpoint: 'slack', limit: 100 }),
        view.list({ account: 'acme', endpoint: 'webhook', until: start + 20_500, limit: 5 }),
        view.list({ since: start + 10_500, limit: 100 }),
        view.list({ until: start - 1_000_000, limit: 100 }),
      ]
      const before = lists()
      await view.close()
      const path = join(dir, 'view.sqlite')
      const lag = () => {
        const reader = new DatabaseSync(path, { readOnly: true })
        try {
          return {
            version: reader.prepare('PRAGMA user_version').get()?.user_version,
            lag: reader.prepare("SELECT value FROM meta WHERE key = 'request_time_lag'").get()?.value,
          }
        } finally {
          reader.close()
        }
      }
      // The fourteenth request, an hour behind, came after the eleventh, 2.5 s ahead.
      assert.deepEqual(lag(), { version: 5, lag: String(3_600_000 - 500) })
      rewriteAsVersion3(path)

      // Read, not copied: no upgrade to tell of.
      view = open({ onUpgrade: (progress) => assert.fail(`told of an upgrade: ${JSON.stringify(progress)}`) })
      assert.deepEqual(lists(), before)
      assert.deepEqual(lag(), { version: 5, lag: String(3_600_000 - 500) })
      // It catalogues on where it stopped.
      await request(31, 'cfg-e', 'acme', 'email')
      assert.deepEqual(
        view.list({ endpoint: 'email', limit: 10 }).items.map((d) => d.eventId),
        ['evt-31'],
      )
    })

    it('resumes from its checkpoint when reopened, keeping its instance id', async () => {
      await request(1, 'cfg-a')
      const id = view.instanceId
      await view.close()
      // Appended while no read model was running.
      await deliveries.request(requestOf(2, 'cfg-a'))
      const row = {
        ...requestOf(1, 'cfg-a'),
        revision: 0,
        status: 'pending' as const,
        attempts: 0,
        replays: 0,
      }
      const { position } = await deliveries.record(row, answer(200), { outcome: 'sent' })

      // A file of the current version is opened as it is: no upgrade to tell of.
      view = open({ onUpgrade: (progress) => assert.fail(`told of an upgrade: ${JSON.stringify(progress)}`) })
      assert.equal(view.instanceId, id)
      await view.waitFor(position)
      assert.deepEqual(
        view.list({ limit: 10 }).items.map((d) => [d.eventId, d.status]),
        [
          ['evt-2', 'pending'],
          ['evt-1', 'sent'],
        ],
      )
      assert.equal(view.attemptsOf(hex(1)).length, 1)
      assert.equal(
        view.unpublished(10).length,
        1,
        'its own outcome, recorded while it was closed, is still published',
      )
    })

    it('folds each event once: a checkpoint lagging its rows (a crash between them) changes nothing', async () => {
      await request(1, 'cfg-a')
      await attempt(1, 503, 60_000)
      const replayed = await deliveries.replay(hex(1), 'acme/read-write')
      await view.waitFor(replayed)
      await attempt(1, 200)
      const before = { delivery: view.get(hex(1)), attempts: view.attemptsOf(hex(1)) }
      await view.close()
      const file = new DatabaseSync(join(dir, 'view.sqlite'))
      file.exec(`UPDATE meta SET value = '0' WHERE key = 'checkpoint'`)
      file.close()

      view = open()
      await view.waitFor((await store.readAll()).at(-1)?.position ?? 0)
      assert.deepEqual({ delivery: view.get(hex(1)), attempts: view.attemptsOf(hex(1)) }, before)
      assert.equal(before.delivery?.replays, 1)
      assert.equal(before.delivery?.status, 'sent')
      assert.deepEqual(view.dueHeads(now, new Set(), 10), [])
    })

    it('folds an attempt the same whether its outcome comes with it, after it, or after a crash between them', async () => {
      // Delivery 1 the deliverer's way: the attempt and its outcome in one append.
      await request(1, 'cfg-a')
      await attempt(1, 503, 60_000)
      // Delivery 2 by hand: the attempt alone, folded and committed; then its outcome.
      await request(2, 'cfg-b')
      const stream = `delivery-${hex(2)}`
      const at = new Date(now).toISOString()
      const metadata = { origin: view.instanceId }
      const attempted = await store.append(
        stream,
        [
          {
            id: 'attempt-1-DeliveryAttempted',
            type: 'DeliveryAttempted',
            data: {
              deliveryId: hex(2),
              attempt: 1,
              at,
              ok: false,
              status: 503,
              latencyMs: 7,
              code: 'http_status',
              error: 'HTTP 503',
              response: null,
            },
            metadata,
          },
        ],
        { expectedRevision: 0 },
      )
      await view.waitFor(attempted.position)
      assert.equal(view.get(hex(2))?.status, 'pending')
      assert.deepEqual(view.get(hex(2))?.lastAttempt, {
        status: 503,
        code: 'http_status',
        error: 'HTTP 503',
        latencyMs: 7,
      })
      const failed = await store.append(
        stream,
        [
          {
            id: 'attempt-1-DeliveryFailed',
            type: 'DeliveryFailed',
            data: {
              deliveryId: hex(2),
              attempt: 1,
              at,
              outcome: 'failed',
              reason: 'http_status',
              nextAttemptAt: new Date(now + 60_000).toISOString(),
              retryAfterMs: null,
            },
            metadata,
          },
        ],
        { expectedRevision: 1 },
      )
      await view.waitFor(failed.position)
      const shape = (n: number) => {
        const row = view.get(hex(n))
        assert.ok(row)
        const { deliveryId, seq, eventId, eventType, configurationId, event, eventText, ...rest } = row
        const attempts = view
          .attemptsOf(hex(n))
          .map(({ position, deliveryId, eventId, eventType, configurationId, ...a }) => a)
        return { ...rest, attempts }
      }
      const byHand = shape(2)
      assert.deepEqual(byHand, shape(1))
      assert.equal(byHand.status, 'retrying')

      // A crash after the attempt's row was written but before the checkpoint passed it: both
      // are folded again, and the row comes out the same.
      await view.close()
      const file = new DatabaseSync(join(dir, 'view.sqlite'))
      file.exec(
        `UPDATE deliveries SET revision = 1, status = 'pending', next_attempt_at = requested_at, round_failures = 0 WHERE delivery_id = '${hex(2)}'`,
      )
      file.exec(`DELETE FROM attempts WHERE delivery_id = '${hex(2)}'`)
      file.exec(`UPDATE meta SET value = '${attempted.position - 1}' WHERE key = 'checkpoint'`)
      file.close()
      view = open()
      await view.waitFor(failed.position)
      assert.deepEqual(shape(2), byHand)
    })

    it('reports a write that fails for want of storage with its SQLite code, fails ping until one succeeds, and folds it again once there is room', async () => {
      // A file that may not grow past its pages (as on a full disk), one of its tables a filler
      // an operator can drop to make room.
      const path = join(dir, 'full-view.sqlite')
      await make(dir, { path }).close()
      const filler = new DatabaseSync(path)
      filler.exec('CREATE TABLE filler (v BLOB)')
      filler.prepare('INSERT INTO filler VALUES (?)').run(new Uint8Array(50_000))
      filler.close()
      const errors: unknown[] = []
      const full = make(dir, {
        path,
        maxPageCount: 1,
        resubscribeMs: 20,
        onFollowError: (e) => errors.push(e),
      })
      full.follow(store)
      try {
        // A delivery that fits in the pages the file has.
        await full.waitFor(await deliveries.request(requestOf(1, 'cfg-a')))
        await full.ping()
        // An attempt alone (its outcome still to come) is written by the commit, which runs on
        // a timer: its error, too long for the room left, fails that commit.
        const error = `HTTP 503: ${'x'.repeat(20_000)}`
        const attempted = await store.append(
          `delivery-${hex(1)}`,
          [
            {
              id: 'attempt-1-DeliveryAttempted',
              type: 'DeliveryAttempted',
              data: {
                deliveryId: hex(1),
                attempt: 1,
                at: new Date(now).toISOString(),
                ok: false,
                status: 503,
                latencyMs: 7,
                code: 'http_status',
                error,
                response: null,
              },
              metadata: { origin: full.instanceId },
            },
          ],
          { expectedRevision: 0 },
        )
        let folded = false
        const waiting = full.waitFor(attempted.position).then(() => {
          folded = true
        })
        await eventually(() => assert.ok(errors.length >= 2, `${errors.length} errors`))
        const [first] = errors
        assert.ok(first instanceof Error)
        assert.match(first.message, /^delivery read model commit: SQLITE_FULL \(database or disk is full\)$/)
        assert.equal(sqliteErrorIn(first)?.errcode, 13)
        await assert.rejects(full.ping(), /delivery read model: the last write failed with SQLITE_FULL/)
        assert.equal(folded, false, 'a waiter waits for a commit that covers it')
        assert.equal(full.get(hex(1))?.lastAttempt, null)

        // Room again: the attempt is folded in, the waiter answered, and the file ready.
        const other = new DatabaseSync(path)
        other.exec('DROP TABLE filler')
        other.close()
        await waiting
        assert.equal(full.get(hex(1))?.lastAttempt?.error, error)
        await eventually(() => full.ping())
      } finally {
        await full.close()
      }
    })

    it('fails ping once its file is deleted or replaced while open', async () => {
      for (const [what, change] of [
        ['deleted', (path: string) => unlinkSync(path)],
        [
          'replaced',
          (path: string) => {
            writeFileSync(`${path}.new`, '')
            renameSync(`${path}.new`, path)
          },
        ],
      ] as const) {
        const path = join(dir, `${what}-view.sqlite`)
        const opened = make(dir, { path })
        try {
          await opened.ping()
          change(path)
          await assert.rejects(
            opened.ping(),
            new RegExp(`delivery read model: \\S+${what}-view.sqlite was ${what} while open`),
          )
        } finally {
          await opened.close()
        }
      }
    })

    // The two below are about the fold on the event loop: the threaded model has no such fold.
    const inProcessOnly = inProcess ? it : () => undefined
    const threadedOnly = inProcess ? () => undefined : it

    threadedOnly('checkpoints its file from the fold thread, starting no checkpoint thread', async () => {
      const path = join(dir, 'folded.sqlite')
      const folded = createThreadedDeliveryReadModel({
        path,
        newId: randomUUID,
        storePath: join(dir, 'deliveries.sqlite'),
        checkpointIntervalMs: 20,
      })
      try {
        const before = statSync(path).size
        folded.follow(store)
        let last = 0
        for (let n = 1; n <= 50; n++) last = await deliveries.request(requestOf(n, `cfg-${n % 7}`))
        await folded.waitFor(last)
        const deadline = Date.now() + 5_000
        while (statSync(path).size === before && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20))
        assert.ok(statSync(path).size > before, 'checkpointed into the file')
        assert.ok(threadNames().includes('delivery-fold'))
        assert.ok(!threadNames().includes('wal-checkpoint'), `threads: ${threadNames().join(', ')}`)
      } finally {
        await folded.close()
      }
    })

    it('checkpoints its own connection while it catches up, so the WAL stays far below the log', async () => {
      // 10,000 requests folded page after page: each page's transaction begins in the turn the
      // last one commits, so a timer that checkpoints only between transactions never would.
      for (let n = 0; n < 10_000; n += 500)
        await deliveries.requestMany(
          Array.from({ length: 500 }, (_, k) => requestOf(n + k + 1, `cfg-${(n + k) % 100}`)),
        )
      const last = (await store.readAll()).at(-1)?.position ?? 0
      const path = join(dir, 'caught-up.sqlite')
      const caughtUp = make(dir, {
        path,
        checkpointIntervalMs: 10,
        ...(inProcess ? { checkpointHere: true } : {}),
      })
      let largestWal = 0
      const sampler = setInterval(() => {
        if (existsSync(`${path}-wal`)) largestWal = Math.max(largestWal, statSync(`${path}-wal`).size)
      }, 2)
      try {
        caughtUp.follow(store)
        await caughtUp.waitFor(last)
        clearInterval(sampler)
        const file = statSync(path).size
        assert.ok(file > largestWal, `the file holds ${file} bytes, its WAL reached ${largestWal}`)
        assert.equal(caughtUp.get(hex(10_000))?.eventId, 'evt-10000')
      } finally {
        clearInterval(sampler)
        await caughtUp.close()
      }
    })

    inProcessOnly('checkpoints its file in the background, not in its commits', async () => {
      const path = join(dir, 'checkpointed.sqlite')
      const checkpointed = createDeliveryReadModel({ path, newId: randomUUID, checkpointIntervalMs: 20 })
      const unchecked = createDeliveryReadModel({
        path: join(dir, 'unchecked.sqlite'),
        newId: randomUUID,
        checkpointIntervalMs: 0,
      })
      try {
        const sizes = () => [statSync(path).size, statSync(join(dir, 'unchecked.sqlite')).size]
        const before = sizes()
        checkpointed.follow(store)
        unchecked.follow(store)
        let last = 0
        for (let n = 1; n <= 50; n++) last = await deliveries.request(requestOf(n, `cfg-${n % 7}`))
        await Promise.all([checkpointed.waitFor(last), unchecked.waitFor(last)])
        // The rows are in the WAL; the background thread copies them into the file.
        const deadline = Date.now() + 5_000
        while (sizes()[0] === before[0] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
        const [after, uncheckedAfter] = sizes()
        assert.ok((after ?? 0) > (before[0] ?? 0), 'checkpointed into the file')
        // Its commits did not: below SQLite's own threshold, the other file is only its WAL.
        assert.equal(uncheckedAfter, before[1])
        assert.equal(checkpointed.get(hex(50))?.eventId, 'evt-50')
      } finally {
        checkpointed.close()
        unchecked.close()
      }
    })

    inProcessOnly(
      'answers a waiter once what it waits for is committed, in the same turn it was folded in',
      async () => {
        const position = await deliveries.request(requestOf(1, 'cfg-a'))
        let answered = false
        void view.waitFor(position).then(() => {
          answered = true
        })
        // Microtasks only: no later turn of the event loop (where a burst's commit would happen) runs.
        for (let i = 0; i < 20 && !answered; i++) await Promise.resolve()
        assert.equal(answered, true, 'answered without waiting for the next turn of the event loop')
        const reader = new DatabaseSync(join(dir, 'view.sqlite'), { readOnly: true })
        try {
          const rows = reader.prepare('SELECT delivery_id FROM deliveries').all()
          assert.deepEqual(
            rows.map((r) => r.delivery_id),
            [hex(1)],
          )
        } finally {
          reader.close()
        }
      },
    )
  })

readModelContract(
  'delivery read model',
  (dir, options) =>
    createDeliveryReadModel({ path: join(dir, 'view.sqlite'), newId: randomUUID, ...options }),
  { inProcess: true },
)
readModelContract(
  'delivery read model folded by its own thread',
  (dir, options) =>
    createThreadedDeliveryReadModel({
      path: join(dir, 'view.sqlite'),
      newId: randomUUID,
      storePath: join(dir, 'deliveries.sqlite'),
      ...options,
    }),
  { inProcess: false },
)

/** What SQLite does for each statement `list` runs for a query, joined. */
const planOf = (db: DatabaseSync) => {
  const queries = createDeliveryQueries(db)
  return (query: DeliveryQuery): string => {
    const { sql, params } = listStatement(query, queries.listShape(query))
    const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]
    return rows.map((r) => r.detail).join('; ')
  }
}

describe('the delivery read model’s file', () => {
  it('reads a time window between seq bounds and an endpoint type from its configurations’ index, not every delivery in scope', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-delivery-view-'))
    const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
    const path = join(dir, 'view.sqlite')
    let now = Date.parse('2026-11-22T10:00:00.000Z')
    try {
      const view = createDeliveryReadModel({ path, newId: randomUUID })
      view.follow(store)
      const deliveries = createDeliveryLog({
        store,
        clock: () => now,
        newId: randomUUID,
        origin: view.instanceId,
      })
      for (let n = 1; n <= 10; n++) {
        now += 1000
        const [configurationId, endpoint] = n % 2 === 0 ? ['cfg-a', 'webhook'] : ['cfg-b', 'slack']
        await view.waitFor(
          await deliveries.request(requestOf(n, configurationId, 'acme', endpoint as EndpointType)),
        )
      }
      await view.close()
      const { db } = openDeliveryViewFile(path, randomUUID)
      const plan = planOf(db)
      const middle = now - 4_500
      const expect = (query: Omit<DeliveryQuery, 'limit'>, pattern: RegExp) => {
        const detail = plan({ ...query, limit: 100 })
        assert.match(detail, pattern, JSON.stringify(query))
        assert.doesNotMatch(detail, /SCAN/, JSON.stringify(query))
      }
      expect({ account: 'acme', until: middle }, /deliveries_by_account \(account=\? AND seq<\?\)/)
      expect({ account: 'acme', since: middle }, /deliveries_by_account \(account=\? AND seq>\?\)/)
      expect(
        { account: 'acme', since: middle - 2_000, until: middle },
        /\(account=\? AND seq>\? AND seq<\?\)/,
      )
      expect({ until: middle }, /INTEGER PRIMARY KEY \(rowid<\?\)/)
      expect({ since: middle }, /INTEGER PRIMARY KEY \(rowid>\?\)/)
      expect(
        { account: 'acme', endpoint: 'slack' },
        /deliveries_by_configuration \(configuration_id=\? AND seq<\?\)/,
      )
      expect(
        { endpoint: 'slack', until: middle },
        /deliveries_by_configuration \(configuration_id=\? AND seq<\?\)/,
      )
      // Oldest first (a bulk replay's pages), read forward from the same indexes, never sorted.
      const forward = (query: Omit<DeliveryQuery, 'limit'>, pattern: RegExp) => {
        expect({ ...query, oldestFirst: true }, pattern)
        assert.doesNotMatch(plan({ ...query, oldestFirst: true, limit: 100 }), /TEMP B-TREE/)
      }
      forward({ account: 'acme', after: 3 }, /deliveries_by_account \(account=\? AND seq>\?\)/)
      forward({ account: 'acme', status: 'dead_lettered', after: 3 }, /USING INDEX deliveries_few/)
      forward({ after: 3, until: middle }, /INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/)
      forward(
        { account: 'acme', endpoint: 'slack', after: 3 },
        /deliveries_by_configuration \(configuration_id=\? AND seq>\?\)/,
      )
      db.close()
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
    }
  })

  it('lists the statuses few deliveries have from an index of just those, not every delivery of the account', () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-delivery-view-'))
    try {
      const { db } = openDeliveryViewFile(join(dir, 'view.sqlite'), randomUUID)
      const plan = planOf(db)
      for (const status of ['dead_lettered', 'rejected', 'skipped', 'retrying'] as const) {
        // Either partial index: the planner picks by what it knows of the rows.
        assert.match(plan({ account: 'acme', status, limit: 100 }), /USING INDEX deliveries_few/, status)
        assert.match(plan({ status, limit: 100 }), /USING INDEX deliveries_few/, status)
      }
      // Sent and pending are most deliveries: read newest first by account, as before.
      assert.match(plan({ account: 'acme', status: 'sent', limit: 100 }), /USING INDEX deliveries_by_account/)
      db.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is left as it was when it cannot be brought up to date (a full disk), and brought up at the next open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-delivery-view-'))
    const store = createSqliteEventStore({ path: join(dir, 'deliveries.sqlite') })
    const path = join(dir, 'view.sqlite')
    try {
      const view = createDeliveryReadModel({ path, newId: randomUUID })
      view.follow(store)
      const deliveries = createDeliveryLog({
        store,
        clock: Date.now,
        newId: randomUUID,
        origin: view.instanceId,
      })
      for (let n = 1; n <= 20; n++) {
        await deliveries.request(requestOf(n, `cfg-${n % 3}`))
        const row = {
          ...requestOf(n, `cfg-${n % 3}`),
          revision: 0,
          status: 'pending' as const,
          attempts: 0,
          replays: 0,
        }
        await view.waitFor((await deliveries.record(row, answer(200), { outcome: 'sent' })).position)
      }
      await view.close()
      rewriteAsVersion0(path)
      // An attempt whose delivery is missing (none such is folded): kept, without a delivery.
      const writer = new DatabaseSync(path)
      writer.exec(`
        INSERT INTO attempts (${VERSION_0_ATTEMPT_COLUMNS}) VALUES (1000000, 'orphan', 'acme', 'webhook', 'cfg-0',
          'evt-0', 'user.image.analysis.completed', 1, 'failed', 503, 'http_status', 'HTTP 503', 7, 0, NULL, 1)`)
      writer.close()
      const file = () => new DatabaseSync(path, { readOnly: true })
      const before = file()
      const pages = Number(before.prepare('PRAGMA page_count').get()?.page_count)
      const attempts = before.prepare('SELECT * FROM attempts ORDER BY position').all()
      before.close()
      assert.equal(attempts.length, 21)

      assert.throws(() => openDeliveryViewFile(path, randomUUID, { maxPageCount: pages }), /full/)
      const after = file()
      try {
        assert.equal(after.prepare('PRAGMA user_version').get()?.user_version, 0)
        assert.deepEqual(after.prepare('SELECT * FROM attempts ORDER BY position').all(), attempts)
      } finally {
        after.close()
      }

      const reopened = createDeliveryReadModel({ path, newId: randomUUID })
      try {
        for (let n = 1; n <= 20; n++)
          assert.deepEqual(
            reopened.attemptsOf(hex(n)).map((a) => [a.deliveryId, a.outcome]),
            [[hex(n), 'sent']],
          )
        assert.deepEqual(
          reopened.unpublished(100).map((a) => a.deliveryId),
          [...Array.from({ length: 20 }, (_, n) => hex(n + 1)), 'orphan'],
        )
        assert.deepEqual(reopened.recentOutcomes('cfg-0', 100).at(-1), { ok: false, at: 0 })
      } finally {
        await reopened.close()
      }
    } finally {
      await store.close()
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 })
    }
  })
})
