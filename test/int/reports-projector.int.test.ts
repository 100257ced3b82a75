import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { eventsTable, migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import {
  createProjectorHandler,
  openSharedProjectedIds,
  type RebuildProgress,
  startRebuild,
} from '../../projections/projector/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { type EngineEvent, encodeLogEvent } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  createIngressDecoder,
  createSqliteProcessedIds,
  decodeEvent,
  type IngressEvent,
  type ProcessedIds,
} from '../../src/ingress/index.ts'
import { type LogFields, silentLogger } from '../../src/observability/index.ts'
import type { Batch, LogMessage } from '../../src/ports/event-log.ts'
import type { InsertOptions, Warehouse } from '../../src/ports/warehouse.ts'
import { createRebuildRunner, type RebuildStatus, settleRebuildLeftovers } from '../../src/reports/index.ts'
import { sharesProcessedIds } from '../../src/wiring/ingress.ts'
import { eventually } from '../support/eventually.ts'

const T0 = Date.UTC(2026, 10, 22, 10)
const TABLES = [
  'events',
  'images',
  'tag_history',
  'tags_current',
  'image_vulnerabilities',
  'finding_lifecycle',
  'policy_evaluations',
  'policy_evaluation_latest',
] as const

/** Log messages for events, as the embedded log would deliver them: offsets from 0. */
const toMessages = (events: readonly EngineEvent[], topic: string, partition = 0): LogMessage[] =>
  events.map((event, offset) => ({
    ...encodeLogEvent(event),
    headers: { 'content-type': 'application/cloudevents+json' },
    topic,
    partition,
    offset,
    timestamp: Date.parse(event.time as string),
  }))

const chop = (messages: readonly LogMessage[], sizes: readonly number[]): Batch[] => {
  const batches: Batch[] = []
  for (let start = 0, i = 0; start < messages.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length] ?? 100)
    const slice = messages.slice(start, start + size)
    batches.push({ topic: slice[0]?.topic ?? '', partition: slice[0]?.partition ?? 0, messages: slice })
    start += size
  }
  return batches
}

const activity = (seed: number, accounts: string[], count: number): EngineEvent[] => [
  ...generateActivity({ seed, accounts, count, clock: () => T0, systemEvents: false }),
]

/**
 * The oracle: what the report tables must say, computed by the plainest fold over the same
 * events, in memory, with none of the projector's rows, offsets or state reads. An event older
 * than what it would change (an image's last analysis, where a tag was pointed, or when either
 * was deleted or reconciled away) arrived late and changes nothing; an inventory reconciles as
 * of when it was taken, but never after its own time, and leaves alone what changed after.
 */
const expected = (events: readonly EngineEvent[]) => {
  type Account = {
    images: Map<string, Map<string, string>>
    tags: Map<string, string>
    /**
     * When each image (`image <digest>`) was last analysed or ended, each tag (`tag <name>`)
     * pointed or ended.
     */
    since: Map<string, number>
    tagPeriods: number
    episodes: number
    resolved: number
    evaluations: number
    latest: Map<string, { status: string; at: number }>
    /** How periods ended, as `tag:<reason>` and `image:<reason>`. */
    endings: Map<string, number>
  }
  const accounts = new Map<string, Account>()
  const of = (name: string): Account => {
    let a = accounts.get(name)
    if (a === undefined) {
      a = {
        images: new Map(),
        tags: new Map(),
        since: new Map(),
        tagPeriods: 0,
        episodes: 0,
        resolved: 0,
        evaluations: 0,
        latest: new Map(),
        endings: new Map(),
      }
      accounts.set(name, a)
    }
    return a
  }
  const tagName = (t: { registry: string; repository: string; tag: string }) =>
    `${t.registry}/${t.repository}:${t.tag}`
  const ended = (a: Account, what: string) => a.endings.set(what, (a.endings.get(what) ?? 0) + 1)
  const late = (a: Account, what: string, at: number) => at < (a.since.get(what) ?? Number.NEGATIVE_INFINITY)
  const point = (a: Account, key: string, digest: string, reason: string, at: number) => {
    const current = a.tags.get(key)
    if (current === digest || late(a, `tag ${key}`, at)) return
    if (current !== undefined) ended(a, `tag:${reason}`)
    a.tags.set(key, digest)
    a.since.set(`tag ${key}`, at)
    a.tagPeriods++
  }
  const untag = (a: Account, key: string, reason: string, at: number) => {
    if (late(a, `tag ${key}`, at) || !a.tags.delete(key)) return
    ended(a, `tag:${reason}`)
    a.since.set(`tag ${key}`, at)
  }
  const drop = (a: Account, digest: string, reason: string, at: number) => {
    const findings = a.images.get(digest)
    if (findings === undefined || late(a, `image ${digest}`, at)) return
    a.resolved += findings.size
    a.images.delete(digest)
    a.since.set(`image ${digest}`, at)
    ended(a, `image:${reason}`)
  }
  for (const event of events) {
    const a = of(event.account)
    const at = Date.parse(event.time as string)
    switch (event.type) {
      case 'herald.report.image.analyzed': {
        if (late(a, `image ${event.data.digest}`, at)) break
        const before = a.images.get(event.data.digest)
        const after = new Map(
          event.data.findings.map((f) => [`${f.id} ${f.package} ${f.version}`, f.severity]),
        )
        // Each analysis of an active image ends its period and begins the next.
        if (before !== undefined) ended(a, 'image:analyzed')
        for (const k of before?.keys() ?? []) if (!after.has(k)) a.resolved++
        for (const k of after.keys()) if (!before?.has(k)) a.episodes++
        a.images.set(event.data.digest, after)
        a.since.set(`image ${event.data.digest}`, at)
        break
      }
      case 'herald.report.image.deleted':
        drop(a, event.data.digest, 'deleted', at)
        break
      case 'herald.report.tag.digest_changed':
        point(a, tagName(event.data), event.data.digest, 'moved', at)
        break
      case 'herald.report.tag.deleted':
        untag(a, tagName(event.data), 'deleted', at)
        break
      case 'herald.report.inventory.snapshot': {
        const taken = Math.min(Date.parse(event.data.taken_at), at)
        const images = new Set(event.data.images.map((i) => i.digest))
        for (const digest of [...a.images.keys()])
          if (!images.has(digest)) drop(a, digest, 'inventory', taken)
        const tags = new Set(event.data.tags.map(tagName))
        for (const key of [...a.tags.keys()]) if (!tags.has(key)) untag(a, key, 'inventory', taken)
        for (const t of event.data.tags) point(a, tagName(t), t.digest, 'inventory', taken)
        break
      }
      case 'herald.report.policy.evaluated': {
        a.evaluations++
        const evaluated = event.data.evaluated_at === undefined ? at : Date.parse(event.data.evaluated_at)
        const kept = a.latest.get(tagName(event.data))
        if (kept === undefined || evaluated >= kept.at)
          a.latest.set(tagName(event.data), { status: event.data.status, at: evaluated })
        break
      }
      default:
    }
  }
  return accounts
}

/**
 * The events in the order a log holds them when some were delivered late: each `[index, by]`
 * moves the event at `index` `by` positions later, its time unchanged.
 */
const deliveredLate = (events: readonly EngineEvent[], delays: readonly (readonly [number, number])[]) => {
  const order = [...events]
  for (const [index, by] of delays) {
    const from = index % order.length
    const [moved] = order.splice(from, 1)
    if (moved !== undefined) order.splice(Math.min(order.length, from + by), 0, moved)
  }
  return order
}

/** The image or tag a report event names, to tell which events concern the same one. */
const entityOf = (event: EngineEvent): string | undefined => {
  switch (event.type) {
    case 'herald.report.image.analyzed':
    case 'herald.report.image.deleted':
      return `${event.account} ${event.data.digest}`
    case 'herald.report.tag.digest_changed':
    case 'herald.report.tag.deleted':
      return `${event.account} ${event.data.registry}/${event.data.repository}:${event.data.tag}`
    default:
      return undefined
  }
}

/**
 * The events with some delivered after the deletion of what they name: for each pick, a
 * deletion (the pick-th, round the list) and the last analysis or move of its image or tag
 * before it, moved to right after it, its time unchanged: older than the deletion.
 */
const deliveredAfterDeletion = (events: readonly EngineEvent[], picks: readonly number[]) => {
  const order = [...events]
  const deleted = (e: EngineEvent) =>
    e.type === 'herald.report.image.deleted' || e.type === 'herald.report.tag.deleted'
  for (const pick of picks) {
    const deletions = order.flatMap((e, i) => (deleted(e) ? [i] : []))
    const at = deletions[pick % Math.max(1, deletions.length)]
    if (at === undefined) break
    const entity = entityOf(order[at] as EngineEvent)
    const before = order.findLastIndex((e, i) => i < at && !deleted(e) && entityOf(e) === entity)
    if (before < 0) continue
    const [moved] = order.splice(before, 1)
    if (moved !== undefined) order.splice(at, 0, moved)
  }
  return order
}

// chDB opens one data directory per process at a time: each suite opens its own and closes it.
const dir = mkdtempSync(join(tmpdir(), 'herald-reports-projector-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('warehouse migrations on chDB', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'legacy') })
  })
  after(async () => {
    await warehouse.close()
  })

  it('moves an existing MergeTree events table to ReplacingMergeTree, keeping its rows, safely re-run', async () => {
    const [first] = warehouseMigrations
    assert.ok(first !== undefined)
    await migrate(warehouse, [first])
    await warehouse.command(`INSERT INTO events (id, account, time, data) VALUES
      ('old-1', 'legacy', '2026-01-01 00:00:00.000', '{}'),
      ('old-1', 'legacy', '2026-01-01 00:00:00.000', '{}'),
      ('old-2', 'legacy', '2026-01-01 00:00:01.000', '{}')`)
    const { applied } = await migrate(warehouse, warehouseMigrations)
    assert.deepEqual(applied, [2, 3, 4, 5, 6, 7, 8, 9, 10])
    const engines = await warehouse.query<{ name: string; engine: string }>(
      `SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE 'events%' ORDER BY name`,
    )
    assert.deepEqual(engines, [{ name: 'events', engine: 'ReplacingMergeTree' }])
    const ids = await warehouse.query<{ id: string }>(
      `SELECT id FROM events FINAL WHERE account = 'legacy' ORDER BY id`,
    )
    assert.deepEqual(ids, [{ id: 'old-1' }, { id: 'old-2' }])
    // Rows from before the attributes column read back with none.
    const attributes = await warehouse.query<{ attributes: string }>(
      `SELECT DISTINCT attributes FROM events FINAL WHERE account = 'legacy'`,
    )
    assert.deepEqual(attributes, [{ attributes: '{}' }])

    // A crash after the swap but before the drop leaves the old table beside the new one;
    // running the step again drops it and touches nothing else.
    await warehouse.command('CREATE TABLE events_replacing (id String) ENGINE = MergeTree ORDER BY id')
    await warehouseMigrations[1]?.apply?.(warehouse, () => {})
    const after = await warehouse.query<{ name: string }>(
      `SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'events%'`,
    )
    assert.deepEqual(after, [{ name: 'events' }])
    assert.equal((await warehouse.query(`SELECT id FROM events FINAL WHERE account = 'legacy'`)).length, 2)
  })
})

describe('the events sorting key migration on chDB', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'version-6') })
  })
  after(async () => {
    await warehouse.close()
  })

  const row = (id: string, source: string, offset: number, at: number, attributes = '{}') => ({
    id,
    source,
    type: 'user.image.analysis.completed',
    subject: 'docker.io/library/alpine:3.20',
    account: 'keyed',
    level: 'info',
    resource_type: 'image_digest',
    subtype: '',
    time: new Date(at).toISOString(),
    data: JSON.stringify({ digest: `sha256:${id}` }),
    attributes,
    ingested_at: new Date(at + 1_000).toISOString(),
    log_topic: 'engine.events',
    log_partition: 0,
    log_offset: offset,
  })
  /** Every stored row, without FINAL: each must be there once, not only once merged. */
  const stored = () =>
    warehouse.query(`SELECT * FROM events WHERE account = 'keyed' ORDER BY id, source, time`)
  const eventsTables = async () =>
    (
      await warehouse.query<{ name: string; sorting_key: string }>(
        `SELECT name, sorting_key FROM system.tables
          WHERE database = currentDatabase() AND name LIKE 'events%' ORDER BY name`,
      )
    ).map((t) => `${t.name}: ${t.sorting_key}`)

  it('adds source to the key of a populated events table, keeping every row, and is safe to run again from any step', async () => {
    const seven = warehouseMigrations.find((m) => m.version === 7)
    assert.ok(seven?.apply !== undefined)
    await migrate(
      warehouse,
      warehouseMigrations.filter((m) => m.version <= 6),
    )
    // Two sources' events with one id and time, in two parts not merged yet: the old key would
    // collapse them in the next merge, the copy keeps both. The rest span months (partitions).
    await warehouse.command('SYSTEM STOP MERGES events')
    await warehouse.insert('events', [
      row('e1', '/scanner-a', 0, T0, JSON.stringify({ datacontenttype: 'application/json', trace: 'a' })),
      row('e2', '/scanner-a', 1, T0 + 1),
      row('e3', '/scanner-a', 2, T0 - 400 * 86_400_000, JSON.stringify({ time: null })),
    ])
    await warehouse.insert('events', [row('e1', '/scanner-b', 3, T0, JSON.stringify({ trace: 'b' }))])
    const before = await stored()
    assert.equal(before.length, 4)
    assert.deepEqual(await eventsTables(), ['events: account, time, id'])

    // A crash during the copy: `events` as it was, beside part of a copy. The copy is made
    // again, whole: the stray row is not kept, no row is there twice.
    await warehouse.command(eventsTable('events_by_source'))
    await warehouse.insert('events_by_source', [
      row('e2', '/scanner-a', 1, T0 + 1),
      row('stray', '/x', 4, T0),
    ])
    const progress: Record<string, unknown>[] = []
    const log = (event: string, fields: Readonly<Record<string, unknown>>) => {
      if (event === 'migrations.progress' && fields.version === 7) progress.push({ ...fields })
    }
    assert.deepEqual((await migrate(warehouse, warehouseMigrations, { log })).applied, [7, 8, 9, 10])
    assert.deepEqual(await eventsTables(), ['events: account, time, id, source'])
    assert.deepEqual(await stored(), before)
    // Copied a month at a time, each logged with how far the copy got.
    assert.deepEqual(
      progress.map(({ step, partitions, rows }) => [step, partitions, rows]),
      [
        ['copy', '1/2', '1/4'],
        ['copy', '2/2', '4/4'],
      ],
    )
    assert.ok(progress.every((p) => p.version === 7 && p.name === 'events-source-key'))
    await warehouse.command('OPTIMIZE TABLE events FINAL')
    assert.deepEqual(await stored(), before, 'merged, both sources stay')

    // A crash after the exchange: the old table under the copy's name. Dropping it is all
    // that runs.
    await warehouse.command(
      'CREATE TABLE events_by_source (id String) ENGINE = ReplacingMergeTree ORDER BY (id)',
    )
    await seven.apply(warehouse, () => {})
    assert.deepEqual(await eventsTables(), ['events: account, time, id, source'])
    assert.deepEqual(await stored(), before)

    // A crash after the drop, before the version was recorded: it runs again, changing nothing.
    // (The migrations after it run again too.)
    await warehouse.command('DELETE FROM schema_migrations WHERE version >= 7')
    assert.deepEqual((await migrate(warehouse, warehouseMigrations)).applied, [7, 8, 9, 10])
    assert.deepEqual((await migrate(warehouse, warehouseMigrations)).applied, [])
    assert.deepEqual(await eventsTables(), ['events: account, time, id, source'])
    assert.deepEqual(await stored(), before)

    // Migration 8: the id index, which a lookup by id uses; 10: the log position index, which
    // the projector's check for a reset log uses.
    assert.deepEqual(
      await warehouse.query(
        `SELECT name, type_full FROM system.data_skipping_indices
          WHERE database = currentDatabase() AND table = 'events' ORDER BY name`,
      ),
      [
        { name: 'events_id', type_full: 'bloom_filter(0.0001)' },
        { name: 'events_log_offset', type_full: 'minmax' },
      ],
    )
    const plan = await warehouse.query<{ explain: string }>(
      `EXPLAIN indexes = 1 SELECT source FROM events WHERE account = 'keyed' AND id IN ['e1']`,
    )
    assert.match(plan.map((line) => line.explain).join('\n'), /Name: events_id/)
    const positions = await warehouse.query<{ explain: string }>(
      `EXPLAIN indexes = 1 SELECT id FROM events
        WHERE log_topic = 'engine.events' AND log_partition = 0 AND log_offset BETWEEN 1 AND 2`,
    )
    assert.match(positions.map((line) => line.explain).join('\n'), /Name: events_log_offset/)
  })
})

describe('the latest policy evaluation migration on chDB', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'version-8') })
  })
  after(async () => {
    await warehouse.close()
  })

  const evaluation = (tag: string, second: number, status: 'pass' | 'fail', offset: number) => ({
    account: 'evaluated',
    registry: 'docker.io',
    repository: 'acme/api',
    tag,
    evaluated_at: new Date(T0 + second * 1_000).toISOString(),
    event_id: `e-${offset}`,
    digest: `sha256:${'d'.repeat(64)}`,
    evaluation_id: `ev-${offset}`,
    bundle_id: 'default',
    bundle_digest: 'sha256:bundle',
    status,
    final_action: status === 'fail' ? 'stop' : 'go',
    reasons: [{ gate: 'vulnerabilities', trigger: 'package', action: 'stop', message: `at ${second}` }],
    log_offset: offset,
  })
  const latest = () =>
    warehouse.query<{ tag: string; status: string; version: number }>(
      `SELECT tag, status, version FROM policy_evaluation_latest FINAL WHERE account = 'evaluated' ORDER BY tag`,
    )
  const tables = async () =>
    (
      await warehouse.query<{ name: string; engine_full: string }>(
        `SELECT name, engine_full FROM system.tables
          WHERE database = currentDatabase() AND name LIKE 'policy_evaluation_latest%' ORDER BY name`,
      )
    ).map((t) => `${t.name}: ${t.engine_full.split(' ORDER BY')[0]}`)

  it('keeps each tag’s latest evaluation by evaluated_at, repairing what the table held, and is safe to run again from any step', async () => {
    const nine = warehouseMigrations.find((m) => m.version === 9)
    assert.ok(nine?.apply !== undefined)
    await migrate(
      warehouse,
      warehouseMigrations.filter((m) => m.version <= 8),
    )
    // As the projector left them before: `late`'s newer evaluation (a fail at 5 s) was
    // received first, and the older pass (1 s) that came after it took its place.
    const history = [
      evaluation('late', 5, 'fail', 1),
      evaluation('late', 1, 'pass', 2),
      evaluation('tie', 5, 'pass', 3),
      evaluation('tie', 5, 'fail', 4),
      evaluation('once', 2, 'pass', 5),
    ]
    await warehouse.insert('policy_evaluations', history)
    await warehouse.insert(
      'policy_evaluation_latest',
      [history[1], history[3], history[4]].map((row) => {
        const { log_offset, ...rest } = row as (typeof history)[number]
        return { ...rest, version: log_offset }
      }),
    )
    assert.deepEqual(await latest(), [
      { tag: 'late', status: 'pass', version: 2 },
      { tag: 'once', status: 'pass', version: 5 },
      { tag: 'tie', status: 'fail', version: 4 },
    ])
    const repaired = [
      { tag: 'late', status: 'fail', version: 1 },
      { tag: 'once', status: 'pass', version: 5 },
      { tag: 'tie', status: 'fail', version: 4 },
    ]

    // A crash during the copy: a partial copy beside the live table, made again whole.
    await warehouse.command(
      `CREATE TABLE policy_evaluation_latest_by_evaluation (account String) ENGINE = MergeTree ORDER BY account`,
    )
    await warehouse.insert('policy_evaluation_latest_by_evaluation', [{ account: 'stray' }])
    assert.deepEqual((await migrate(warehouse, warehouseMigrations)).applied, [9, 10])
    assert.deepEqual(await tables(), ['policy_evaluation_latest: ReplacingMergeTree(recency)'])
    assert.deepEqual(await latest(), repaired)
    // Every column of the evaluation kept, not only its status.
    const [kept] = await warehouse.query(
      `SELECT * FROM policy_evaluation_latest FINAL WHERE account = 'evaluated' AND tag = 'late'`,
    )
    const { log_offset, ...expectedRow } = history[0] as (typeof history)[number]
    assert.deepEqual(kept, {
      ...expectedRow,
      evaluated_at: '2026-11-22 10:00:05.000',
      version: log_offset,
    })

    // From now on the table itself keeps the later evaluation, received in any order, merged or not.
    await warehouse.insert('policy_evaluation_latest', [
      { ...expectedRow, tag: 'once', status: 'fail', evaluated_at: new Date(T0).toISOString(), version: 9 },
    ])
    assert.deepEqual(await latest(), repaired)
    await warehouse.command('OPTIMIZE TABLE policy_evaluation_latest FINAL')
    assert.deepEqual(await latest(), repaired)

    // A crash after the exchange: the old table under the copy's name, which is all that is dropped.
    await warehouse.command(
      'CREATE TABLE policy_evaluation_latest_by_evaluation (account String) ENGINE = ReplacingMergeTree ORDER BY account',
    )
    await nine.apply(warehouse, () => {})
    assert.deepEqual(await tables(), ['policy_evaluation_latest: ReplacingMergeTree(recency)'])
    assert.deepEqual(await latest(), repaired)

    // A crash before the version was recorded: it runs again, changing nothing.
    await warehouse.command('DELETE FROM schema_migrations WHERE version >= 9')
    assert.deepEqual((await migrate(warehouse, warehouseMigrations)).applied, [9, 10])
    assert.deepEqual(await tables(), ['policy_evaluation_latest: ReplacingMergeTree(recency)'])
    assert.deepEqual(await latest(), repaired)
  })
})

describe('report projection on chDB', () => {
  let warehouse: Warehouse
  const handler = () => createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })

  /** Every table's rows as the reports read them (FINAL), for the given accounts. */
  const dump = async (accounts: readonly string[]) => {
    const out: Record<string, unknown[]> = {}
    for (const table of TABLES) {
      // When the projector ran and which test topic carried the events are not answers.
      const columns = table === 'events' ? '* EXCEPT (ingested_at, log_topic)' : '*'
      const rows = await warehouse.query<Record<string, unknown>>(
        `SELECT ${columns} FROM ${table} FINAL WHERE account IN {accounts:Array(String)}`,
        { accounts },
      )
      out[table] = rows.map((r) => JSON.stringify(r)).sort()
    }
    return out
  }
  const rawCounts = async (accounts: readonly string[]) => {
    const counts: Record<string, number> = {}
    for (const table of TABLES) {
      const [row] = await warehouse.query<{ n: number }>(
        `SELECT count() AS n FROM ${table} WHERE account IN {accounts:Array(String)}`,
        { accounts },
      )
      counts[table] = row?.n ?? -1
    }
    return counts
  }

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
  })
  after(async () => {
    await warehouse.close()
  })

  it('writes nothing twice when the same batches are delivered again', async () => {
    const accounts = ['replay-a', 'replay-b']
    const batches = chop(toMessages(activity(7, accounts, 900), `topic-${randomUUID()}`), [150])
    const project = handler()
    for (const batch of batches) await project(batch)
    const answers = await dump(accounts)
    // Background merges would collapse rows between the two counts and hide a stored copy.
    for (const table of TABLES) await warehouse.command(`SYSTEM STOP MERGES ${table}`)
    try {
      const counts = await rawCounts(accounts)
      assert.ok((counts.image_vulnerabilities ?? 0) > 100, JSON.stringify(counts))
      for (const batch of batches) await project(batch)
      // The tokens drop exact replays before they are stored: not even an unmerged copy exists.
      assert.deepEqual(await rawCounts(accounts), counts)
    } finally {
      for (const table of TABLES) await warehouse.command(`SYSTEM START MERGES ${table}`)
    }
    assert.deepEqual(await dump(accounts), answers)
  })

  it('leaves the engine no block to collapse when a batch’s events are distinct, and collapses a message delivered twice', async () => {
    const accounts = ['distinct-a']
    const messages = toMessages(activity(12, accounts, 300), `topic-${randomUUID()}`)
    const evaluations = messages.filter((m) => new TextDecoder().decode(m.value).includes('policy.evaluated'))
    assert.ok(evaluations.length > 0)
    // The real warehouse, its inserts' options recorded on the way.
    const optionsOf = new Map<string, (boolean | undefined)[]>()
    const record = (table: string, options?: InsertOptions) =>
      optionsOf.set(table, [...(optionsOf.get(table) ?? []), options?.distinctKeys])
    const recording: Warehouse = {
      ...warehouse,
      insert: (table, rows, options) => {
        record(table, options)
        return warehouse.insert(table, rows, options)
      },
      insertNative: (table, block, options) => {
        record(table, options)
        return (warehouse.insertNative as NonNullable<Warehouse['insertNative']>)(table, block, options)
      },
    }
    const project = createProjectorHandler({ warehouse: recording, clock: Date.now, logger: silentLogger })
    const topic = messages[0]?.topic as string
    await project({ topic, partition: 0, messages: messages.slice(0, 150) })
    assert.deepEqual(optionsOf.get('events'), [true])
    assert.deepEqual(optionsOf.get('policy_evaluations'), [true])
    // A batch holding one message twice (at-least-once delivery) and no window to skip it.
    const twice = messages.slice(150)
    const evaluation = twice.find((m) => evaluations.includes(m)) as LogMessage
    for (const table of TABLES) await warehouse.command(`SYSTEM STOP MERGES ${table}`)
    try {
      await project({ topic, partition: 0, messages: [...twice, evaluation] })
      assert.deepEqual(optionsOf.get('events'), [true, false])
      assert.deepEqual(optionsOf.get('policy_evaluations'), [true, false])
      // Collapsed as it was stored: not even an unmerged copy.
      const counts = await rawCounts(accounts)
      assert.equal(counts.events, messages.length)
      assert.equal(counts.policy_evaluations, evaluations.length)
    } finally {
      for (const table of TABLES) await warehouse.command(`SYSTEM START MERGES ${table}`)
    }
  })

  it('stores the raw events from a Native block exactly as from rows, and as rows when a time has no Native form', async () => {
    const base = activity(13, ['block'], 200)
    // A system event of the mix with its envelope and data stretched: non-ASCII and control
    // characters, a data JSON longer than 65,535 bytes, no time, extension attributes.
    const template = base.find((e) => e.type.startsWith('system.')) as EngineEvent
    const data: Record<string, unknown> = {
      ...(template.data as Record<string, unknown>),
      text: `tab\there, new\nline, ✓ ${'é'.repeat(200)}`,
      long: 'x'.repeat(70_000),
    }
    const extra = (n: number, fields: Record<string, unknown>): EngineEvent =>
      ({
        ...template,
        id: `edge-${n}`,
        source: '/engine/ünïcode',
        time: new Date(T0 + n).toISOString(),
        data,
        ...fields,
      }) as EngineEvent
    const edges = [
      extra(1, { time: undefined }),
      extra(2, { datacontenttype: 'application/json', traceparent: '00-abc' }),
      extra(3, { subject: 'a subject', level: 'error', resourcetype: 'image', subtype: 'x' }),
    ]
    const early = extra(4, { time: '1969-12-31T23:59:59.999Z' })
    const rename = (events: readonly EngineEvent[], account: string) =>
      events.map((e) => ({ ...e, account }) as EngineEvent)
    const messagesOf = (events: readonly EngineEvent[]) =>
      toMessages(events, `topic-${randomUUID()}`).map((m, i) =>
        // An append time with a fraction of a millisecond, as the rows path truncates it.
        i === 0 ? { ...m, timestamp: T0 + 0.75 } : m,
      )
    const rowsOnly: Warehouse = { ...warehouse, insertNative: undefined }
    const project = async (target: Warehouse, events: readonly EngineEvent[]) => {
      const handle = createProjectorHandler({
        warehouse: target,
        clock: () => T0 + 0.5,
        logger: silentLogger,
      })
      for (const batch of chop(messagesOf(events), [60])) await handle(batch)
    }
    // chDB's warehouse, its raw event inserts counted by the way they went.
    const ways: string[] = []
    const counting: Warehouse = {
      ...warehouse,
      insert: (table, rows, options) => {
        if (table === 'events') ways.push('rows')
        return warehouse.insert(table, rows, options)
      },
      insertNative: (table, block, options) => {
        if (table === 'events') ways.push('native')
        return (warehouse.insertNative as NonNullable<Warehouse['insertNative']>)(table, block, options)
      },
    }
    const all = [...edges, ...base]
    await project(counting, rename(all, 'block-native'))
    assert.deepEqual(ways, ['native', 'native', 'native', 'native'])
    await project(rowsOnly, rename(all, 'block-rows'))
    // A batch holding an event before 1970 goes as rows on chDB too.
    await project(counting, rename([...edges, early], 'block-early-native'))
    assert.deepEqual(ways.slice(4), ['rows'])
    await project(rowsOnly, rename([...edges, early], 'block-early-rows'))
    const events = async (account: string) =>
      (
        await warehouse.query<Record<string, unknown>>(
          'SELECT * EXCEPT (account, log_topic) FROM events FINAL WHERE account = {account:String} ORDER BY id',
          { account },
        )
      ).map((row) => JSON.stringify(row))
    const native = await events('block-native')
    assert.equal(native.length, all.length)
    assert.deepEqual(native, await events('block-rows'))
    const early1969 = await events('block-early-native')
    assert.equal(early1969.length, edges.length + 1)
    assert.deepEqual(early1969, await events('block-early-rows'))
  })

  it('drops the fresh tables of a rebuild that stopped before its swap, when it fails and at a later start', async () => {
    const listRebuildTables = async () =>
      (
        await warehouse.query<{ name: string }>(
          "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%_rebuild' ORDER BY name",
        )
      ).map((t) => t.name)
    // Killed during a rebuild: its tables stay until something drops them.
    const killed = await startRebuild({ warehouse, logger: silentLogger })
    await killed.catchUp()
    assert.equal((await listRebuildTables()).length, 8)
    const lines: string[] = []
    const logger = (_l: unknown, event: string) => void lines.push(event)
    // While it holds the rebuild lease (another instance, still rebuilding), they are its own.
    await settleRebuildLeftovers(warehouse, logger)
    assert.equal((await listRebuildTables()).length, 8, 'not while another process is rebuilding')
    assert.ok(lines.includes('reports.rebuild_running_elsewhere'))
    await killed.release() // as its lease runs out once it is killed
    await settleRebuildLeftovers(warehouse, logger)
    assert.deepEqual(await listRebuildTables(), [])
    assert.ok(lines.includes('reports.rebuild_discarded'))
    const runner = createRebuildRunner({ warehouse, logger, clock: Date.now })
    // Stopped (Herald shutting down) during its catch-up: it fails, and drops its own.
    await runner.start()
    await runner.stop()
    assert.equal(runner.status().state, 'failed')
    assert.deepEqual(await listRebuildTables(), [])
  })

  it('skips an event nested too deep to store, and projects the rest of its batch', async () => {
    const accounts = ['deep-a']
    const events = activity(9, accounts, 40)
    const messages = toMessages(events, `topic-${randomUUID()}`)
    // A valid event whose data JSON.parse reads and JSON.stringify cannot write back.
    const victim = messages[5] as LogMessage
    const text = new TextDecoder().decode(victim.value)
    const deep = text.replace(/"data":\{/, `"data":{"nested":${'['.repeat(20_000)}${']'.repeat(20_000)},`)
    assert.notEqual(deep, text)
    messages[5] = { ...victim, value: new TextEncoder().encode(deep) }
    const invalid: number[] = []
    const project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: silentLogger,
      onInvalid: (n) => invalid.push(n),
    })
    await project({ topic: victim.topic, partition: 0, messages })
    const ids = await warehouse.query<{ id: string }>(
      'SELECT id FROM events FINAL WHERE account IN {accounts:Array(String)}',
      { accounts },
    )
    assert.deepEqual(
      ids.map((r) => r.id).sort(),
      events
        .filter((_, i) => i !== 5)
        .map((e) => e.id)
        .sort(),
    )
    assert.deepEqual(invalid, [1])
  })

  it('skips an event its fold cannot take, logging it, and projects the rest of its batch', async () => {
    // Events a gap in the contract would let through: the decoder's contract here takes those
    // with an id starting "gap-" as they are. One names no instant in evaluated_at (what the
    // timestamp rule let through: 2016-12-31T24:59:60+01:00), one has no reasons.
    const account = 'unfoldable-a'
    const topic = `topic-${randomUUID()}`
    const evaluated = (id: string, tag: string, data: Record<string, unknown> = {}): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine',
        type: 'herald.report.policy.evaluated',
        account,
        level: 'info',
        resourcetype: 'image_tag',
        time: new Date(T0).toISOString(),
        data: {
          registry: 'docker.io',
          repository: 'acme/api',
          tag,
          digest: `sha256:${'1'.repeat(64)}`,
          bundle_id: 'default',
          bundle_digest: 'sha256:bundle',
          status: 'pass',
          reasons: [],
          ...data,
        },
      }) as EngineEvent
    const events = [
      evaluated('ok-1', 'before'),
      evaluated('gap-instant', 'instant', { evaluated_at: '2016-12-31T24:59:60+01:00' }),
      evaluated('gap-reasons', 'reasons', { reasons: undefined }),
      evaluated('ok-2', 'after'),
    ]
    const messages = toMessages(events, topic)
    const lax = (input: unknown) => {
      const id = (input as { id?: unknown }).id
      return typeof id === 'string' && id.startsWith('gap-')
        ? { ok: true as const, value: input as IngressEvent }
        : decodeEvent(input)
    }
    const logged: { event: string; fields: LogFields }[] = []
    const invalid: number[] = []
    const project = createProjectorHandler({
      warehouse,
      clock: Date.now,
      logger: (_level, event, fields = {}) => logged.push({ event, fields }),
      decoder: createIngressDecoder({ decodeEvent: lax }),
      onInvalid: (n) => invalid.push(n),
    })
    await project({ topic, partition: 0, messages })
    const tags = await warehouse.query<{ tag: string }>(
      'SELECT tag FROM policy_evaluation_latest FINAL WHERE account = {account:String}',
      { account },
    )
    assert.deepEqual(tags.map((r) => r.tag).sort(), ['after', 'before'])
    const skipped = logged.filter((l) => l.event === 'projector.event_unprojectable')
    assert.deepEqual(
      skipped.map((l) => l.fields.offset),
      [1, 2],
    )
    assert.match(String(skipped[0]?.fields.error), /evaluated_at/)
    assert.deepEqual(invalid, [2])
  })

  it('projects an event sent again at a later position once, and a redelivered batch as before', async () => {
    const account = 'resend-a'
    const digest = (n: number) => `sha256:${String(n).repeat(64)}`
    const moved = (id: string, n: number, minute: number): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine/catalog',
        type: 'herald.report.tag.digest_changed',
        account,
        time: new Date(T0 + minute * 60_000).toISOString(),
        data: { registry: 'docker.io', repository: 'acme/api', tag: 'prod', digest: digest(n) },
      }) as EngineEvent
    const first = moved('move-1', 1, 1)
    // The producer's retry of move-1 arrives after move-2 (same id, source and account).
    const events = [first, moved('move-2', 2, 2), first, moved('move-3', 3, 3), first]
    const messages = toMessages(events, `topic-${randomUUID()}`)
    const dir2 = mkdtempSync(join(tmpdir(), 'herald-projected-'))
    const processed = createSqliteProcessedIds({ path: join(dir2, 'projected-ids.sqlite') })
    const current = async () =>
      (
        await warehouse.query<{ digest: string }>(
          'SELECT digest FROM tags_current FINAL WHERE account = {account:String}',
          { account },
        )
      ).map((r) => r.digest)
    try {
      const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger, processed })
      // The first batch, then a crash before its commit: redelivered with other boundaries.
      await project({ topic: messages[0]?.topic as string, partition: 0, messages: messages.slice(0, 3) })
      assert.deepEqual(await current(), [digest(2)], 'move-1 sent again did not move prod back')
      await project({ topic: messages[0]?.topic as string, partition: 0, messages: messages.slice(0, 5) })
      assert.deepEqual(await current(), [digest(3)])
      const ids = await warehouse.query<{ id: string; n: number }>(
        'SELECT id, count() AS n FROM events FINAL WHERE account = {account:String} GROUP BY id ORDER BY id',
        { account },
      )
      assert.deepEqual(
        ids.map((r) => [r.id, Number(r.n)]),
        [
          ['move-1', 1],
          ['move-2', 1],
          ['move-3', 1],
        ],
      )
    } finally {
      await processed.close()
      rmSync(dir2, { recursive: true, force: true })
    }
  })

  it('projects a retry once whichever instance projected the first copy, when Herald runs distributed', async () => {
    // Kafka and a ClickHouse server: after a rebalance, another instance reads the partition.
    // Each instance's window is the warehouse's table (chDB stands in for the server here).
    const distributed = { event_log: { kind: 'kafka' }, warehouse: { kind: 'clickhouse' } } as const
    assert.equal(sharesProcessedIds(distributed), true)
    assert.equal(sharesProcessedIds({ ...distributed, warehouse: { kind: 'embedded' } }), false)
    assert.equal(sharesProcessedIds({ ...distributed, event_log: { kind: 'embedded' } }), false)
    const account = 'resend-rebalanced'
    const digest = (n: number) => `sha256:${String(n).repeat(64)}`
    const moved = (id: string, n: number, minute: number): EngineEvent =>
      ({
        specversion: '1.0',
        id,
        source: '/engine/catalog',
        type: 'herald.report.tag.digest_changed',
        account,
        time: new Date(T0 + minute * 60_000).toISOString(),
        data: { registry: 'docker.io', repository: 'acme/api', tag: 'prod', digest: digest(n) },
      }) as EngineEvent
    // The producer's retry of move-1 (same id, source and account), stamped when it was sent
    // again: folded, it is the latest move and takes prod back.
    const retry = moved('move-1', 1, 3)
    const messages = toMessages(
      [moved('move-1', 1, 1), moved('move-2', 2, 2), retry],
      `topic-${randomUUID()}`,
    )
    const topic = messages[0]?.topic as string
    const [a, b] = [await openSharedProjectedIds(warehouse), await openSharedProjectedIds(warehouse)]
    try {
      const instance = (processed: ProcessedIds) =>
        createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger, processed })
      await instance(a)({ topic, partition: 0, messages: messages.slice(0, 2) })
      // The retry, read by the instance the partition moved to.
      await instance(b)({ topic, partition: 0, messages: messages.slice(2) })
      const current = await warehouse.query<{ digest: string }>(
        'SELECT digest FROM tags_current FINAL WHERE account = {account:String}',
        { account },
      )
      assert.deepEqual(
        current.map((r) => r.digest),
        [digest(2)],
        'move-1 sent again did not move prod back',
      )
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('stores an event sent again without a time once, though each copy was appended at another time', async () => {
    const account = 'resend-timeless'
    const scanned = {
      specversion: '1.0',
      id: 'scan-1',
      source: '/engine/scanner',
      type: 'user.image.analysis.completed',
      account,
      data: { digest: `sha256:${'a'.repeat(64)}` },
    } as EngineEvent
    const other = { ...scanned, id: 'scan-2' } as EngineEvent
    // No `time`: each copy's row would be stored at its own message's append time.
    const messages = [scanned, other, scanned].map((event, offset) => ({
      ...encodeLogEvent(event),
      headers: { 'content-type': 'application/cloudevents+json' },
      topic: `topic-${randomUUID()}`,
      partition: 0,
      offset,
      timestamp: T0 + offset * 60_000,
    }))
    const dir2 = mkdtempSync(join(tmpdir(), 'herald-projected-'))
    const processed = createSqliteProcessedIds({ path: join(dir2, 'projected-ids.sqlite') })
    try {
      const project = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger, processed })
      const topic = messages[0]?.topic as string
      await project({ topic, partition: 0, messages: messages.slice(0, 2) })
      await project({ topic, partition: 0, messages: messages.slice(2) })
      const rows = await warehouse.query<{ id: string }>(
        'SELECT id FROM events FINAL WHERE account = {account:String} ORDER BY id',
        { account },
      )
      assert.deepEqual(
        rows.map((r) => r.id),
        ['scan-1', 'scan-2'],
      )
    } finally {
      await processed.close()
      rmSync(dir2, { recursive: true, force: true })
    }
  })

  it('projects a batch again exactly when its window recorded only part of it before failing', async () => {
    const digest = `sha256:${'d'.repeat(64)}`
    // The same image analysed twice with the same finding: one episode, from the first.
    const analyzed = (account: string, n: number): EngineEvent =>
      ({
        specversion: '1.0',
        id: `analysis-${n}`,
        source: '/engine/analyzer',
        type: 'herald.report.image.analyzed',
        account,
        subject: digest,
        time: new Date(T0 + n * 60_000).toISOString(),
        data: {
          digest,
          registry: 'docker.io',
          repository: 'acme/api',
          image_id: 'd'.repeat(64),
          distro: { name: 'debian', version: '12' },
          package_count: 1,
          analyzed_at: new Date(T0 + n * 60_000).toISOString(),
          findings: [
            {
              id: 'CVE-2026-0001',
              severity: 'high',
              package: 'openssl',
              version: '3.0.1',
              type: 'dpkg',
              fix_version: null,
              kev: false,
              cvss: 7.5,
            },
          ],
        },
      }) as EngineEvent
    // Two events are four keys (each event's key and its position): stop after each prefix.
    for (let cut = 1; cut < 4; cut++) {
      const account = `partial-${cut}`
      const messages = toMessages([analyzed(account, 1), analyzed(account, 2)], `topic-${randomUUID()}`)
      const batch = { topic: messages[0]?.topic as string, partition: 0, messages }
      const dir2 = mkdtempSync(join(tmpdir(), 'herald-projected-'))
      const window = createSqliteProcessedIds({ path: join(dir2, 'projected-ids.sqlite') })
      try {
        const failing: ProcessedIds = {
          seen: (keys) => window.seen(keys),
          record: async (keys) => {
            await window.record(keys.slice(0, cut))
            throw new Error('the window failed midway')
          },
          ping: () => window.ping(),
          close: async () => {},
        }
        const first = createProjectorHandler({
          warehouse,
          clock: Date.now,
          logger: silentLogger,
          processed: failing,
        })
        await assert.rejects(first(batch), /failed midway/)
        // Redelivered: neither event may now pass for a repeat from elsewhere and be skipped,
        // which would fold the second analysis as the image's first.
        const again = createProjectorHandler({
          warehouse,
          clock: Date.now,
          logger: silentLogger,
          processed: window,
        })
        await again(batch)
        const episodes = await warehouse.query<{ detected_offset: number }>(
          'SELECT detected_offset FROM finding_lifecycle FINAL WHERE account = {account:String}',
          { account },
        )
        assert.deepEqual(
          episodes.map((r) => Number(r.detected_offset)),
          [0],
          `recorded ${cut} of 4 keys before failing`,
        )
      } finally {
        await window.close()
        rmSync(dir2, { recursive: true, force: true })
      }
    }
  })

  it('gives the same answers when a crash changes the batch boundaries', async () => {
    const events = activity(8, ['bound-a', 'bound-b'], 900)
    const rename = (suffix: string) =>
      events.map((e) => ({ ...e, account: `${e.account}-${suffix}` }) as EngineEvent)
    const messages = (suffix: string) => toMessages(rename(suffix), `topic-${randomUUID()}`)

    const straight = handler()
    for (const batch of chop(messages('once'), [900])) await straight(batch)

    // Batches of 100, but each is first delivered partly (a crash after its inserts, before
    // its commit), then again from its start with a different size.
    const replayed = handler()
    const all = messages('again')
    for (let start = 0; start < all.length; start += 100) {
      const take = (n: number): Batch => ({
        topic: all[0]?.topic ?? '',
        partition: 0,
        messages: all.slice(start, start + n),
      })
      await replayed(take(37 + (start % 61)))
      await replayed(take(100))
      await replayed(take(163))
    }

    const strip = (tables: Record<string, unknown[]>, suffix: string) =>
      Object.fromEntries(
        Object.entries(tables).map(([table, rows]) => [
          table,
          rows.map((r) => String(r).replaceAll(`-${suffix}`, '')).sort(),
        ]),
      )
    assert.deepEqual(
      strip(await dump(['bound-a-again', 'bound-b-again']), 'again'),
      strip(await dump(['bound-a-once', 'bound-b-once']), 'once'),
    )
  })

  it('writes the same rows with its state in memory as when it reads every batch’s state from the tables', async () => {
    // Some delivered late, across batches: older than what the cache holds of their accounts.
    const events = deliveredLate(
      activity(12, ['cache-a', 'cache-b', 'cache-c'], 1_500),
      Array.from({ length: 120 }, (_, i) => [(i * 97) % 1_500, 1 + ((i * 53) % 300)] as const),
    )
    const renamed = (suffix: string) =>
      events.map((e) => ({ ...e, account: `${e.account}-${suffix}` }) as EngineEvent)
    const project = async (suffix: string, options: Parameters<typeof createProjectorHandler>[0]) => {
      const handler = createProjectorHandler(options)
      const messages = toMessages(renamed(suffix), `topic-${randomUUID()}`)
      for (const [i, batch] of chop(messages, [97, 250, 40, 180]).entries()) {
        // Every third batch is delivered twice, the first time partly: as after a lost commit.
        if (i % 3 === 2) await handler({ ...batch, messages: batch.messages.slice(0, 30) })
        await handler(batch)
      }
    }
    const base = { warehouse, clock: Date.now, logger: silentLogger }
    await project('reads', { ...base, stateCache: false })
    await project('cached', base)
    // Limits far below the activity's size: entries are let go and accounts read key by key.
    await project('tiny', { ...base, stateCache: { images: 6, tags: 6, findingRows: 40 } })
    const strip = (tables: Record<string, unknown[]>, suffix: string) =>
      Object.fromEntries(
        Object.entries(tables).map(([table, rows]) => [
          table,
          rows.map((r) => String(r).replaceAll(`-${suffix}`, '')).sort(),
        ]),
      )
    const accounts = (suffix: string) => ['cache-a', 'cache-b', 'cache-c'].map((a) => `${a}-${suffix}`)
    const reads = strip(await dump(accounts('reads')), 'reads')
    assert.ok((reads.image_vulnerabilities?.length ?? 0) > 100)
    assert.deepEqual(strip(await dump(accounts('cached')), 'cached'), reads)
    assert.deepEqual(strip(await dump(accounts('tiny')), 'tiny'), reads)
  })

  describe('an event timed outside what a DateTime64 column holds on every ClickHouse (1900 to 2299)', () => {
    const image = `sha256:${'e'.repeat(64)}`
    const envelope = (account: string, id: string, time: string) => ({
      specversion: '1.0' as const,
      id,
      source: '/engine',
      account,
      time,
    })
    const analysed = (account: string, id: string, time: string) =>
      ({
        ...envelope(account, id, time),
        type: 'herald.report.image.analyzed',
        data: {
          digest: image,
          registry: 'docker.io',
          repository: 'range/api',
          distro: { name: 'debian', version: '12' },
          package_count: 1,
          findings: [
            {
              id: 'CVE-RANGE',
              severity: 'high',
              package: 'openssl',
              version: '1',
              type: 'deb',
              fix_version: null,
              kev: false,
            },
          ],
        },
      }) as EngineEvent
    const deleted = (account: string, id: string, time: string) =>
      ({
        ...envelope(account, id, time),
        type: 'herald.report.image.deleted',
        data: { digest: image },
      }) as EngineEvent
    const tagged = (account: string, id: string, time: string) =>
      ({
        ...envelope(account, id, time),
        type: 'herald.report.tag.digest_changed',
        data: { registry: 'docker.io', repository: 'range/api', tag: 'latest', digest: image },
      }) as EngineEvent
    /** Projects each batch of events in turn, each batch with a projector of its own where `restarts`. */
    const project = async (batches: readonly (readonly EngineEvent[])[], restarts: boolean) => {
      const topic = `topic-${randomUUID()}`
      let handle = handler()
      let offset = 0
      for (const events of batches) {
        const messages = toMessages(events, topic).map((m) => ({ ...m, offset: offset++, timestamp: T0 }))
        await handle({ topic, partition: 0, messages })
        if (restarts) handle = handler()
      }
    }
    const strip = (tables: Record<string, unknown[]>, account: string) =>
      Object.fromEntries(
        Object.entries(tables)
          .filter(([table]) => table !== 'events')
          .map(([table, rows]) => [table, rows.map((r) => String(r).replaceAll(account, 'account')).sort()]),
      )

    it('folds the same from the state in memory as from the tables after a restart', async () => {
      // Year 0, a producer's zero time: chDB 26 reads the text back as this year, an older
      // ClickHouse as 1900. The deletion at 2000 is after the analysis either way it is counted.
      const history = (account: string) => [
        [analysed(account, `${account}-1`, '0000-06-01T00:00:00.000Z')],
        [deleted(account, `${account}-2`, '2000-01-01T00:00:00Z')],
      ]
      await project(history('range-cached'), false)
      await project(history('range-restarted'), true)
      const cached = strip(await dump(['range-cached']), 'range-cached')
      assert.deepEqual(strip(await dump(['range-restarted']), 'range-restarted'), cached)
      const [period] = await warehouse.query<{ valid_from: string; valid_to: string | null }>(
        `SELECT toString(valid_from) AS valid_from, toString(valid_to) AS valid_to
           FROM images FINAL WHERE account = 'range-restarted'`,
      )
      assert.deepEqual(period, { valid_from: '1900-01-01 00:00:00.000', valid_to: '2000-01-01 00:00:00.000' })
      // The raw event keeps the time it was sent with, which its column cannot hold.
      const [row] = await warehouse.query<{ time: string; attributes: string }>(
        `SELECT toString(time) AS time, attributes FROM events FINAL WHERE id = 'range-restarted-1'`,
      )
      assert.deepEqual(row, {
        time: '1900-01-01 00:00:00.000',
        attributes: JSON.stringify({ time: '0000-06-01T00:00:00.000Z' }),
      })
    })

    it('stores one timed after 2299 at its last instant, and gives back the time it was sent with', async () => {
      // 10000-01-01T00:30Z: an offset carries it past 9999, which no ClickHouse parses.
      const late = '9999-12-31T23:30:00-01:00'
      await project([[tagged('range-future', 'range-future-1', late)]], false)
      const [tag] = await warehouse.query<{ valid_from: string }>(
        `SELECT toString(valid_from) AS valid_from FROM tag_history FINAL WHERE account = 'range-future'`,
      )
      assert.deepEqual(tag, { valid_from: '2299-12-31 23:59:59.999' })
      const [row] = await warehouse.query<{ time: string; attributes: string }>(
        `SELECT toString(time) AS time, attributes FROM events FINAL WHERE account = 'range-future'`,
      )
      assert.deepEqual(row, { time: '2299-12-31 23:59:59.999', attributes: JSON.stringify({ time: late }) })
    })
  })

  it('rebuilds the report tables from the raw events and swaps them in while answering throughout', async () => {
    const events = activity(31, ['rebuild-a', 'rebuild-b'], 900)
    const suffixed = (suffix: string) =>
      events.map((e) => ({ ...e, account: `${e.account}${suffix}` }) as EngineEvent)
    const reference = handler()
    for (const batch of chop(toMessages(suffixed('-ref'), `topic-${randomUUID()}`), [300]))
      await reference(batch)

    const accounts = ['rebuild-a', 'rebuild-b']
    const live = handler()
    const batches = chop(toMessages(events, `topic-${randomUUID()}`), [150])
    for (const batch of batches.slice(0, 4)) await live(batch)
    // A projection bug, say: current tags and findings went missing.
    await warehouse.command('DELETE FROM tags_current WHERE account IN {accounts:Array(String)}', {
      accounts,
    })
    await warehouse.command('DELETE FROM image_vulnerabilities WHERE account IN {accounts:Array(String)}', {
      accounts,
    })
    const currentTags = async () =>
      (
        await warehouse.query<{ n: number }>(
          'SELECT count() AS n FROM tags_current FINAL WHERE account IN {accounts:Array(String)}',
          { accounts },
        )
      )[0]?.n

    const rebuild = await startRebuild({ warehouse, logger: silentLogger })
    assert.ok((await rebuild.catchUp()) > 0)
    // The live tables still answer, as they are, while the rebuild runs and events keep coming.
    assert.equal(await currentTags(), 0)
    for (const batch of batches.slice(4)) await live(batch)
    await rebuild.swap()
    assert.ok(((await currentTags()) ?? 0) > 0)
    // The swapped-in table is what the migrations make, its projection included.
    const [created] = await warehouse.query<{ statement: string }>('SHOW CREATE TABLE image_vulnerabilities')
    assert.match(created?.statement ?? '', /PROJECTION by_vulnerability/)

    const strip = (tables: Record<string, unknown[]>, suffix: string) =>
      Object.fromEntries(
        Object.entries(tables)
          .filter(([table]) => table !== 'events')
          .map(([table, rows]) => [table, rows.map((r) => String(r).replaceAll(suffix, '')).sort()]),
      )
    assert.deepEqual(
      strip(await dump(accounts), '\u0000'),
      strip(await dump(['rebuild-a-ref', 'rebuild-b-ref']), '-ref'),
    )
    const leftovers = await warehouse.query(
      "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%_rebuild'",
    )
    assert.deepEqual(leftovers, [])
  })

  it('agrees with a plain in-memory fold of the generator’s activity, however it is batched and whatever arrives late', async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000 }),
        // Batches of 20 or more keep the run short; fold.test.ts covers batches of one.
        fc.array(fc.integer({ min: 20, max: 400 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.tuple(fc.nat(1_199), fc.integer({ min: 1, max: 60 })), { maxLength: 40 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        async (seed, sizes, missEvery, delays, afterDeletion) => {
          run++
          const accounts = [`prop${run}-a`, `prop${run}-b`, `prop${run}-c`]
          // Some deletions never reach Herald, as when a producer was down: only the inventory
          // snapshots that follow can tell the projection those images and tags are gone. Some
          // events arrive after newer ones (a retry, a backlog), inventories among them, and
          // some after the deletion of the image or tag they name.
          let deletions = 0
          const events = deliveredAfterDeletion(
            deliveredLate(
              activity(seed, accounts, 1_200).filter(
                (e) => !e.type.endsWith('.deleted') || deletions++ % missEvery !== 0,
              ),
              delays,
            ),
            afterDeletion,
          )
          const project = handler()
          for (const batch of chop(toMessages(events, `topic-${randomUUID()}`), sizes)) await project(batch)
          const oracle = expected(events)

          for (const [account, a] of oracle) {
            const [images] = await warehouse.query<{ n: number; findings: number }>(
              `SELECT count() AS n FROM images FINAL WHERE account = {account:String} AND closed_offset = 0`,
              { account },
            )
            assert.equal(images?.n, a.images.size, `${account} active images`)
            const bySeverity = await warehouse.query<{ severity: string; n: number }>(
              `SELECT severity, count() AS n FROM image_vulnerabilities FINAL
                WHERE account = {account:String} AND closed_offset = 0 GROUP BY severity ORDER BY severity`,
              { account },
            )
            const expectedBySeverity = new Map<string, number>()
            for (const findings of a.images.values())
              for (const s of findings.values())
                expectedBySeverity.set(s, (expectedBySeverity.get(s) ?? 0) + 1)
            assert.deepEqual(
              Object.fromEntries(bySeverity.map((r) => [r.severity, r.n])),
              Object.fromEntries([...expectedBySeverity].sort()),
              `${account} open findings by severity`,
            )
            const [life] = await warehouse.query<{ episodes: number; resolved: number }>(
              `SELECT count() AS episodes, countIf(resolved_offset > 0) AS resolved
                 FROM finding_lifecycle FINAL WHERE account = {account:String}`,
              { account },
            )
            assert.deepEqual(life, { episodes: a.episodes, resolved: a.resolved }, `${account} lifecycle`)
            const tags = await warehouse.query<{ name: string; digest: string }>(
              `SELECT concat(registry, '/', repository, ':', tag) AS name, digest FROM tags_current FINAL
                WHERE account = {account:String} AND active = 1 ORDER BY name`,
              { account },
            )
            assert.deepEqual(
              tags,
              [...a.tags].sort(([x], [y]) => (x < y ? -1 : 1)).map(([name, digest]) => ({ name, digest })),
              `${account} current tags`,
            )
            const [periods] = await warehouse.query<{ n: number }>(
              'SELECT count() AS n FROM tag_history FINAL WHERE account = {account:String}',
              { account },
            )
            assert.equal(periods?.n, a.tagPeriods, `${account} tag periods`)
            const endings = await warehouse.query<{ what: string; n: number }>(
              `SELECT what, count() AS n FROM (
                 SELECT concat('tag:', closed_by) AS what FROM tag_history FINAL
                  WHERE account = {account:String} AND closed_offset > 0
                 UNION ALL
                 SELECT concat('image:', closed_by) AS what FROM images FINAL
                  WHERE account = {account:String} AND closed_offset > 0)
               GROUP BY what ORDER BY what`,
              { account },
            )
            assert.deepEqual(
              endings,
              [...a.endings].sort(([x], [y]) => (x < y ? -1 : 1)).map(([what, n]) => ({ what, n })),
              `${account} how periods ended`,
            )
            const [evaluations] = await warehouse.query<{ n: number; failing: number }>(
              `SELECT (SELECT count() FROM policy_evaluations FINAL WHERE account = {account:String}) AS n,
                      (SELECT countIf(status = 'fail') FROM policy_evaluation_latest FINAL WHERE account = {account:String}) AS failing`,
              { account },
            )
            assert.deepEqual(
              evaluations,
              { n: a.evaluations, failing: [...a.latest.values()].filter((l) => l.status === 'fail').length },
              `${account} policy evaluations`,
            )
            const [backwards] = await warehouse.query<{ periods: number; episodes: number }>(
              `SELECT (SELECT count() FROM images FINAL WHERE account = {account:String} AND valid_to < valid_from)
                    + (SELECT count() FROM tag_history FINAL WHERE account = {account:String} AND valid_to < valid_from)
                    + (SELECT count() FROM image_vulnerabilities FINAL WHERE account = {account:String} AND valid_to < valid_from)
                      AS periods,
                      (SELECT count() FROM finding_lifecycle FINAL WHERE account = {account:String} AND resolved_at < detected_at)
                      AS episodes`,
              { account },
            )
            assert.deepEqual(
              backwards,
              { periods: 0, episodes: 0 },
              `${account} nothing ends before it began`,
            )
          }
        },
      ),
      { numRuns: 6 },
    )
  })

  it('commits a batch only once every table has it: a failed insert redelivers, and nothing counts twice', async () => {
    const log = createSqliteEventLog({ path: join(dir, 'log.sqlite'), idlePollMs: 20 })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    const accounts = ['crash-a']
    const events = activity(21, accounts, 400)
    await log.publish('engine.events', events.map(encodeLogEvent))

    // The warehouse fails the first insert into image_vulnerabilities of every third batch:
    // the events table (inserted before it) already has that batch when the handler rejects.
    let inserts = 0
    const flaky: Warehouse = {
      ...warehouse,
      insert: async (table, rows, options) => {
        if (table === 'image_vulnerabilities' && rows.length > 0 && inserts++ % 3 === 0) {
          throw new Error('connection reset while inserting')
        }
        return warehouse.insert(table, rows, options)
      },
    }
    const project = createProjectorHandler({ warehouse: flaky, clock: Date.now, logger: silentLogger })
    const consumer = await log.consume(
      { groupId: 'herald-projector', topics: ['engine.events'], maxBatchSize: 64 },
      project,
    )
    const oracle = expected(events).get('crash-a')
    assert.ok(oracle !== undefined)
    const openFindings = [...oracle.images.values()].reduce((n, f) => n + f.size, 0)
    await eventually(async () => {
      const [row] = await warehouse.query<{ n: number }>(
        `SELECT count() AS n FROM image_vulnerabilities FINAL WHERE account = 'crash-a' AND closed_offset = 0`,
      )
      assert.equal(row?.n, openFindings)
      const [progress] = await warehouse.query<{ last: number }>(
        `SELECT max(last_offset) AS last FROM projection_progress FINAL WHERE topic = 'engine.events'`,
      )
      assert.equal(progress?.last, events.length - 1)
    })
    await consumer.stop()
    assert.ok(inserts > 2, 'the failure was injected')
    const [events_] = await warehouse.query<{ n: number; distinct: number }>(
      `SELECT count() AS n, uniqExact(id) AS distinct FROM events FINAL WHERE account = 'crash-a'`,
    )
    assert.deepEqual(events_, { n: events.length, distinct: events.length })
    await log.close()
  })
})

describe('rebuild progress on chDB', () => {
  let warehouse: Warehouse
  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'rebuild-progress') })
    await migrate(warehouse, warehouseMigrations)
  })
  after(async () => {
    await warehouse.close()
  })

  const reportEvents = async () =>
    Number(
      (
        await warehouse.query<{ n: number }>(
          "SELECT count() AS n FROM events FINAL WHERE startsWith(type, 'herald.report.')",
        )
      )[0]?.n,
    )
  const project = async (seed: number, topic: string, from: number) => {
    const handle = createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    const messages = toMessages(activity(seed, ['progress-a', 'progress-b'], 400), topic).map((m) => ({
      ...m,
      offset: m.offset + from,
    }))
    for (const batch of chop(messages, [100])) await handle(batch)
  }

  it('knows the total to replay before its first step, and says how far it is of it as it goes', async () => {
    await project(21, 'progress.events', 0)
    const total = await reportEvents()
    assert.ok(total > 100, `${total} report events`)
    const lines: LogFields[] = []
    const rebuild = await startRebuild({
      warehouse,
      logger: (_level, event, fields = {}) => {
        if (event === 'projector.rebuild_progress') lines.push(fields)
      },
      batchSize: 50,
    })
    const seen: RebuildProgress[] = []
    assert.equal(await rebuild.catchUp((p) => seen.push(p)), total)
    assert.deepEqual(seen[0], { replayed: 0, total, percent: 0, etaSeconds: null })
    assert.deepEqual(seen.at(-1), { replayed: total, total, percent: 100, etaSeconds: 0 })
    assert.ok(seen.every((p) => p.total === total))
    const midway = seen.filter((p) => p.replayed > 0 && p.replayed < total)
    assert.ok(midway.length > 0)
    for (const p of midway) {
      assert.equal(p.percent, Math.floor((p.replayed / total) * 1000) / 10)
      assert.ok(p.etaSeconds !== null && p.etaSeconds >= 0, JSON.stringify(p))
    }
    // Each step's log line says the same.
    assert.deepEqual(
      lines.map((l) => [l.replayed, l.total, l.percent, l.eta_seconds]),
      seen.slice(1).map((p) => [p.replayed, p.total, p.percent, p.etaSeconds]),
    )

    // Events that arrive meanwhile: the next catch-up counts them into the total.
    await project(22, 'progress.more', 0)
    const grown = await reportEvents()
    seen.length = 0
    assert.equal(await rebuild.catchUp((p) => seen.push(p)), grown - total)
    assert.deepEqual(seen[0], { ...seen[0], replayed: total, total: grown })
    assert.deepEqual(seen.at(-1), { replayed: grown, total: grown, percent: 100, etaSeconds: 0 })
    await rebuild.swap()
  })

  it('shows the total, the share done and the time left in the status of a running rebuild, and all of it once done', async () => {
    const total = await reportEvents()
    const statuses: RebuildStatus[] = []
    const runner = createRebuildRunner({
      warehouse,
      clock: Date.now,
      batchSize: 50,
      // Each step's status, as `GET /v1/reports/rebuild` would answer it then.
      logger: (_level, event) => {
        if (event === 'projector.rebuild_progress') statuses.push(runner.status())
      },
    })
    const first = await runner.start()
    assert.deepEqual(
      { ...first, startedAt: null },
      {
        state: 'catching_up',
        startedAt: null,
        finishedAt: null,
        replayed: 0,
        total: null,
        percent: null,
        etaSeconds: null,
        error: null,
      },
    )
    await eventually(() => assert.equal(runner.status().state, 'done'), { timeoutMs: 60_000 })
    const done = runner.status()
    assert.deepEqual([done.replayed, done.total, done.percent, done.etaSeconds], [total, total, 100, 0])
    const midway = statuses.filter((s) => s.state === 'catching_up' && s.replayed < total)
    assert.ok(midway.length > 0)
    for (const s of midway) {
      assert.equal(s.total, total)
      assert.ok(s.percent !== null && s.percent < 100, JSON.stringify(s))
      assert.ok(s.etaSeconds !== null, JSON.stringify(s))
    }
  })
})
