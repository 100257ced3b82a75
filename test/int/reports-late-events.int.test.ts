import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { migrate, warehouseMigrations } from '../../projections/migrations/index.ts'
import { createProjectorHandler } from '../../projections/projector/index.ts'
import type { Principal } from '../../src/access/index.ts'
import { createChdbWarehouse } from '../../src/adapters/clickhouse-warehouse/index.ts'
import { createSqliteEventLog } from '../../src/adapters/sqlite-event-log/index.ts'
import { type EngineEvent, encodeLogEvent, type Finding, type Severity } from '../../src/events/index.ts'
import { createHttpApp } from '../../src/http/index.ts'
import { createMetrics, silentLogger } from '../../src/observability/index.ts'
import type { EventLog } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'

/**
 * Events that arrive after newer ones, and an inventory sent long after it was taken, through
 * the real projector, chDB and the report API: what a user asks is answered as the newest
 * events say, no finding is resolved before it was detected, and what was deleted after an
 * event delivered late stays deleted.
 */

const T0 = Date.UTC(2026, 0, 12, 9)
const MINUTE = 60_000
const ACCOUNT = 'late'
const tokens: Record<string, Principal> = { reader: { account: ACCOUNT, role: 'read-only' } }
const digest = (n: number) => `sha256:${String(n).repeat(64)}`
const D1 = digest(1)
const D2 = digest(2)
const D3 = digest(3)
const D4 = digest(4)
const D5 = digest(5)
const D6 = digest(6)
const at = (minute: number) => new Date(T0 + minute * MINUTE).toISOString()

const finding = (id: string, severity: Severity): Finding => ({
  id,
  severity,
  package: 'openssl',
  version: '3.0.1',
  type: 'deb',
  fix_version: null,
  kev: false,
})

let seq = 0
const event = (minute: number, type: string, data: Record<string, unknown>): EngineEvent =>
  ({
    specversion: '1.0',
    id: `late-${++seq}`,
    source: '/engine/catalog',
    type,
    account: ACCOUNT,
    time: at(minute),
    data,
  }) as EngineEvent
const analyzed = (minute: number, image: string, findings: Finding[]) =>
  event(minute, 'herald.report.image.analyzed', {
    digest: image,
    registry: 'docker.io',
    repository: 'late/api',
    distro: { name: 'debian', version: '12' },
    package_count: 90,
    findings,
  })
const tagged = (minute: number, tag: string, image: string) =>
  event(minute, 'herald.report.tag.digest_changed', {
    registry: 'docker.io',
    repository: 'late/api',
    tag,
    digest: image,
  })
const untagged = (minute: number, tag: string) =>
  event(minute, 'herald.report.tag.deleted', { registry: 'docker.io', repository: 'late/api', tag })
const inventory = (minute: number, takenAt: number, images: string[], tags: [string, string][]) =>
  event(minute, 'herald.report.inventory.snapshot', {
    taken_at: at(takenAt),
    images: images.map((d) => ({ digest: d, registry: 'docker.io', repository: 'late/api' })),
    tags: tags.map(([tag, d]) => ({ registry: 'docker.io', repository: 'late/api', tag, digest: d })),
  })

// In log order, in four batches. Minutes are when each happened; several arrive after newer ones.
const first: EngineEvent[] = [
  analyzed(1, D1, [finding('CVE-A', 'critical'), finding('CVE-B', 'high')]),
  analyzed(2, D4, [finding('CVE-F', 'medium')]),
  tagged(1, 'latest', D1),
  // CVE-B is fixed at 10 min (MTTR 9 min), CVE-C found.
  analyzed(10, D1, [finding('CVE-A', 'critical'), finding('CVE-C', 'high')]),
  analyzed(3, D5, [finding('CVE-G', 'low')]),
  analyzed(4, D6, [finding('CVE-I', 'negligible')]),
  tagged(3, 'stable', D1),
  tagged(3, 'beta', D1),
]
const second: EngineEvent[] = [
  // Late: the 5-minute report, older than the 10-minute one. Folded as the newest, it resolved
  // CVE-C at 5 min, 5 minutes before it was detected, and made CVE-B current again.
  analyzed(5, D1, [finding('CVE-A', 'critical'), finding('CVE-B', 'high')]),
  // Late: a deletion from before D1's latest analysis.
  event(8, 'herald.report.image.deleted', { digest: D1 }),
  analyzed(20, D2, [finding('CVE-D', 'medium')]),
  tagged(20, 'latest', D2),
  // Late: a move from before the one to D2.
  tagged(15, 'latest', D1),
  // After the inventory below was taken, before it was sent.
  analyzed(30, D3, [finding('CVE-E', 'low')]),
  tagged(30, 'edge', D3),
  event(12, 'herald.report.image.deleted', { digest: D5 }),
  untagged(12, 'beta'),
  untagged(28, 'stable'),
  event(6, 'herald.report.image.deleted', { digest: D6 }),
  // Taken at 25 min, sent at 40: D4 was gone by 25 min; D3 and edge came after it was taken,
  // and stable was deleted after: it is not re-created for being listed.
  inventory(
    40,
    25,
    [D1, D2],
    [
      ['latest', D2],
      ['stable', D1],
    ],
  ),
]
// Read from the tables, as after a restart: each is older than the deletion that followed it.
const third: EngineEvent[] = [
  // Another inventory, taken at 26 and sent at 27: stable was deleted at 28.
  inventory(
    27,
    26,
    [D1, D2],
    [
      ['latest', D2],
      ['stable', D1],
    ],
  ),
  // Analysed at 9 min, deleted at 12: it was not brought back, nor CVE-H detected.
  analyzed(9, D5, [finding('CVE-G', 'low'), finding('CVE-H', 'critical')]),
  // Analysed at 22 min, reconciled away by the inventory taken at 25.
  analyzed(22, D4, [finding('CVE-F', 'medium')]),
  // Moved at 8 min, deleted at 12.
  tagged(8, 'beta', D2),
]
// After the third, as the projector goes on: older than anything of the third batch, whose
// state the projector read with what ended since 8 min, and older than D6's deletion at 6.
const fourth: EngineEvent[] = [analyzed(5, D6, [finding('CVE-I', 'negligible'), finding('CVE-J', 'high')])]
const history = [...first, ...second, ...third, ...fourth]

describe('reports from events delivered late and inventories sent after they were taken', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-reports-late-'))
  let warehouse: Warehouse
  let log: EventLog
  let app: ReturnType<typeof createHttpApp>

  const graphql = async <T>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
    const response = await app.request('/v1/reports/graphql', {
      method: 'POST',
      headers: { authorization: 'Bearer reader', 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    })
    const body = (await response.json()) as { data?: T; errors?: unknown[] }
    assert.equal(body.errors, undefined, JSON.stringify(body.errors))
    return body.data as T
  }
  const imagesByVulnerability = async (asOf?: string) => {
    const data = await graphql<{
      imagesByVulnerability: {
        results: { vulnerability: { vulnerabilityId: string }; images: { digest: string }[] }[]
      }
    }>(
      `query ($asOf: String) { imagesByVulnerability(asOf: $asOf, limit: 100) {
         results { vulnerability { vulnerabilityId } images { digest } } } }`,
      { asOf },
    )
    return Object.fromEntries(
      data.imagesByVulnerability.results.map((r) => [
        r.vulnerability.vulnerabilityId,
        r.images.map((i) => i.digest),
      ]),
    )
  }
  const tagsByVulnerability = async (asOf?: string) => {
    const data = await graphql<{
      tagsByVulnerability: {
        results: { vulnerability: { vulnerabilityId: string }; tags: { tag: string; digest: string }[] }[]
      }
    }>(
      `query ($asOf: String) { tagsByVulnerability(asOf: $asOf, limit: 100) {
         results { vulnerability { vulnerabilityId } tags { tag digest } } } }`,
      { asOf },
    )
    return Object.fromEntries(
      data.tagsByVulnerability.results.map((r) => [
        r.vulnerability.vulnerabilityId,
        r.tags.map((t) => `${t.tag}@${t.digest}`),
      ]),
    )
  }

  before(async () => {
    warehouse = await createChdbWarehouse({ path: join(dir, 'warehouse') })
    await migrate(warehouse, warehouseMigrations)
    log = createSqliteEventLog({ path: join(dir, 'log.sqlite') })
    await log.createTopics([{ topic: 'engine.events', partitions: 1 }])
    app = createHttpApp({
      log,
      eventsTopic: 'engine.events',
      warehouse,
      readiness: {},
      authenticate: async (token) => tokens[token],
      requireAuth: true,
      metrics: createMetrics(),
      logger: silentLogger,
      graphiql: false,
      mounts: [],
    })
    const project = () => createProjectorHandler({ warehouse, clock: Date.now, logger: silentLogger })
    const messages = history.map((e, offset) => ({
      ...encodeLogEvent(e),
      headers: {},
      topic: 'engine.events',
      partition: 0,
      offset,
      timestamp: T0 + 60 * MINUTE + offset,
    }))
    // The late report and deletion in the second batch: the state comes from the first. The
    // third and fourth are projected as after a restart: their state is read from the tables.
    const batch = (from: number, to: number) => ({
      topic: 'engine.events',
      partition: 0,
      messages: messages.slice(from, to),
    })
    const projector = project()
    await projector(batch(0, first.length))
    await projector(batch(first.length, first.length + second.length))
    const restarted = project()
    const thirdAt = first.length + second.length
    await restarted(batch(thirdAt, thirdAt + third.length))
    await restarted(batch(thirdAt + third.length, history.length))
  })
  after(async () => {
    await log.close()
    await warehouse.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('lists images as the newest report and the inventory say, now and as of an instant', async () => {
    assert.deepEqual(await imagesByVulnerability(), {
      'CVE-A': [D1],
      'CVE-C': [D1],
      'CVE-D': [D2],
      // Analysed after the inventory was taken: still active.
      'CVE-E': [D3],
    })
    // The inventory taken at 25 min says D4 was gone by then, though it was sent at 40.
    assert.deepEqual(await imagesByVulnerability(at(30)), {
      'CVE-A': [D1],
      'CVE-C': [D1],
      'CVE-D': [D2],
      'CVE-E': [D3],
    })
    assert.deepEqual((await imagesByVulnerability(at(24)))['CVE-F'], [D4])
    // D5 was active from 3 to 12 min with its 3-minute report, not again after.
    assert.deepEqual((await imagesByVulnerability(at(11)))['CVE-G'], [D5])
    assert.equal((await imagesByVulnerability(at(11)))['CVE-H'], undefined)
  })

  it('lists tags where the newest move points them, and one pointed after the inventory was taken', async () => {
    const expected = { 'CVE-D': [`latest@${D2}`], 'CVE-E': [`edge@${D3}`] }
    assert.deepEqual(await tagsByVulnerability(), expected)
    assert.deepEqual(await tagsByVulnerability(at(50)), expected)
  })

  it('keeps a deleted tag deleted when a move or an inventory older than its deletion arrives after it', async () => {
    // stable pointed at D1 until it was deleted at 28 min: the inventories listed it earlier.
    assert.deepEqual(await tagsByVulnerability(at(27)), {
      'CVE-A': [`stable@${D1}`],
      'CVE-C': [`stable@${D1}`],
      'CVE-D': [`latest@${D2}`],
    })
    // beta pointed at D1 until 12 min, never at D2.
    assert.deepEqual((await tagsByVulnerability(at(11)))['CVE-A']?.sort(), [
      `beta@${D1}`,
      `latest@${D1}`,
      `stable@${D1}`,
    ])
    assert.deepEqual(await tagsByVulnerability(at(29)), { 'CVE-D': [`latest@${D2}`] })
  })

  it('measures the time to resolve from detection forward: no negative MTTR', async () => {
    const data = await graphql<{
      findingAging: {
        results: {
          severity: Severity
          openCount: number
          resolvedCount: number
          mttrSeconds: number | null
        }[]
      }
    }>(
      `query ($asOf: String) { findingAging(asOf: $asOf) {
          results { severity openCount resolvedCount mttrSeconds } } }`,
      { asOf: at(60) },
    )
    const bySeverity = Object.fromEntries(
      data.findingAging.results
        .filter((r) => r.openCount > 0 || r.resolvedCount > 0)
        .map((r) => [r.severity, [r.openCount, r.resolvedCount, r.mttrSeconds]]),
    )
    assert.deepEqual(bySeverity, {
      // CVE-A, open since 1 min; CVE-H was never detected: its report came after D5's deletion.
      critical: [1, 0, null],
      // CVE-C open; CVE-B resolved at 10 min, 9 minutes after it was detected.
      high: [1, 1, 540],
      // CVE-D open; CVE-F resolved by the inventory as of 25 min, 23 minutes after 2, and not
      // detected again.
      medium: [1, 1, 1_380],
      // CVE-E open; CVE-G resolved by D5's deletion at 12 min, 9 minutes after 3.
      low: [1, 1, 540],
      // CVE-I resolved by D6's deletion at 6 min, 2 minutes after 4; CVE-J never detected.
      negligible: [0, 1, 120],
    })
  })
})
