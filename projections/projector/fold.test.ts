import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type Slice, yieldToLoop } from '../../src/cooperative.ts'
import type { EngineEvent, Finding } from '../../src/events/index.ts'
import { generateActivity } from '../../src/generator/index.ts'
import {
  type EntityState,
  type FindingState,
  findingKey,
  firstUnfoldable,
  foldEntities,
  foldEntitiesSliced,
  foldFindings,
  foldFindingsSliced,
  imageKey,
  type Positioned,
  stateNeeds,
  tagKey,
  unfoldable,
} from './fold.ts'
import { toClickHouseTime } from './rows.ts'
import type { FindingRow, ImageRow, LifecycleRow, TagHistoryRow } from './tables.ts'

const T0 = Date.UTC(2026, 10, 22, 10)
const A = 'acme'
const D1 = `sha256:${'1'.repeat(64)}`
const D2 = `sha256:${'2'.repeat(64)}`

const finding = (id: string, overrides: Partial<Finding> = {}): Finding => ({
  id,
  severity: 'high',
  package: 'openssl',
  version: '3.0.1',
  type: 'deb',
  fix_version: null,
  kev: false,
  ...overrides,
})

let seq = 0
const at = (
  offset: number,
  event: Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>,
) =>
  ({
    event: {
      specversion: '1.0',
      id: `e-${++seq}`,
      source: '/engine',
      level: 'info',
      resourcetype: 'image',
      ...event,
    } as EngineEvent,
    offset,
    at: T0 + offset * 1000,
  }) satisfies Positioned

const analyzed = (offset: number, digest: string, findings: Finding[], account = A) =>
  at(offset, {
    type: 'herald.report.image.analyzed',
    account,
    data: {
      digest,
      registry: 'docker.io',
      repository: 'acme/api',
      distro: { name: 'debian', version: '12' },
      package_count: 100,
      findings,
    },
  } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)

const tagged = (offset: number, tag: string, digest: string) =>
  at(offset, {
    type: 'herald.report.tag.digest_changed',
    account: A,
    data: { registry: 'docker.io', repository: 'acme/api', tag, digest },
  } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)

const empty: EntityState = {
  images: new Map(),
  tags: new Map(),
  closedImages: new Map(),
  closedTags: new Map(),
}

const imageDeleted = (offset: number, digest: string) =>
  at(offset, {
    type: 'herald.report.image.deleted',
    account: A,
    data: { digest },
  } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)

const tagDeleted = (offset: number, tag: string) =>
  at(offset, {
    type: 'herald.report.tag.deleted',
    account: A,
    data: { registry: 'docker.io', repository: 'acme/api', tag },
  } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)

const inventory = (offset: number, takenAt: number, digests: string[], tags: [string, string][]) =>
  at(offset, {
    type: 'herald.report.inventory.snapshot',
    account: A,
    data: {
      taken_at: new Date(takenAt).toISOString(),
      images: digests.map((digest) => ({ digest, registry: 'docker.io', repository: 'acme/api' })),
      tags: tags.map(([tag, digest]) => ({ registry: 'docker.io', repository: 'acme/api', tag, digest })),
    },
  } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)

/** The event at another instant than its offset's second: one delivered late, or early. */
const timed = (positioned: Positioned, second: number): Positioned => ({
  ...positioned,
  at: T0 + second * 1000,
})

/** `10:00:SS.mmm` of the test day, as the tables hold it. */
const second = (s: number): string => toClickHouseTime(T0 + s * 1000)

/** Folds a batch on a given prior state, both phases. */
const fold = (events: Positioned[], entities: EntityState = empty, findings: FindingState = new Map()) => {
  const rows = foldEntities(events, entities)
  return { ...rows, ...foldFindings(rows.findingOps, findings) }
}

describe('foldEntities and foldFindings', () => {
  it('opens an image, its findings and their episodes; a re-analysis resolves, re-scores and adds', () => {
    const first = fold([analyzed(1, D1, [finding('CVE-1'), finding('CVE-2'), finding('CVE-3')])])
    assert.equal(first.images.length, 1)
    assert.equal(first.images[0]?.closed_offset, 0)
    assert.deepEqual(first.findings.map((f) => f.vulnerability_id).sort(), ['CVE-1', 'CVE-2', 'CVE-3'])
    assert.ok(first.lifecycle.every((l) => l.resolved_offset === 0 && l.detected_offset === 1))

    const state: FindingState = new Map([
      [imageKey(A, D1), new Map(first.findings.map((f) => [findingKey(f), f]))],
    ])
    const images = new Map([[imageKey(A, D1), first.images[0] as ImageRow]])
    const second = fold(
      [
        analyzed(5, D1, [
          finding('CVE-1'),
          finding('CVE-2', { severity: 'critical', fix_version: '3.0.2' }),
          finding('CVE-4'),
        ]),
      ],
      { ...empty, images },
      state,
    )
    const byId = (id: string, rows: readonly FindingRow[]) => rows.filter((f) => f.vulnerability_id === id)
    // CVE-1 unchanged: nothing written.
    assert.deepEqual(byId('CVE-1', second.findings), [])
    // CVE-2 re-scored: its period closes as "changed", the next one carries the episode.
    const cve2 = byId('CVE-2', second.findings).sort((a, b) => a.from_offset - b.from_offset)
    assert.deepEqual(
      cve2.map((f) => [f.from_offset, f.closed_offset, f.closed_by, f.severity, f.detected_offset]),
      [
        [1, 5, 'changed', 'high', 1],
        [5, 0, '', 'critical', 1],
      ],
    )
    assert.equal(cve2[1]?.fix_first_at, '2026-11-22 10:00:05.000')
    // CVE-3 gone from the report: resolved as removed.
    assert.deepEqual(
      byId('CVE-3', second.findings).map((f) => [f.closed_offset, f.closed_by]),
      [[5, 'removed']],
    )
    const life = (id: string) => second.lifecycle.find((l) => l.vulnerability_id === id) as LifecycleRow
    assert.equal(life('CVE-3').resolution, 'removed')
    assert.equal(life('CVE-3').resolved_at, '2026-11-22 10:00:05.000')
    assert.equal(life('CVE-2').severity, 'critical')
    assert.equal(life('CVE-2').resolved_offset, 0)
    assert.equal(life('CVE-4').detected_offset, 5)
    // The re-analysis ends the image's period and begins its next one.
    assert.deepEqual(
      second.images
        .map((i) => [
          i.from_offset,
          i.valid_from,
          i.last_analyzed_at,
          i.closed_offset,
          i.closed_by,
          i.valid_to,
        ])
        .sort(),
      [
        [1, '2026-11-22 10:00:01.000', '2026-11-22 10:00:01.000', 5, 'analyzed', '2026-11-22 10:00:05.000'],
        [5, '2026-11-22 10:00:05.000', '2026-11-22 10:00:05.000', 0, '', null],
      ],
    )
  })

  it('deletes an image and a tag into history, and resolves the image’s findings', () => {
    const rows = fold([
      analyzed(1, D1, [finding('CVE-1')]),
      tagged(2, 'latest', D1),
      at(3, {
        type: 'herald.report.tag.deleted',
        account: A,
        data: { registry: 'docker.io', repository: 'acme/api', tag: 'latest' },
      } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>),
      at(4, {
        type: 'herald.report.image.deleted',
        account: A,
        data: { digest: D1 },
      } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>),
    ])
    assert.deepEqual(
      rows.images.map((i) => [i.from_offset, i.closed_offset, i.closed_by]),
      [[1, 4, 'deleted']],
    )
    assert.deepEqual(
      rows.tagHistory.map((t) => [t.from_offset, t.closed_offset, t.closed_by]),
      [[2, 3, 'deleted']],
    )
    assert.deepEqual(
      rows.tagsCurrent.map((t) => [t.digest, t.active, t.version]),
      [[D1, 0, 3]],
    )
    assert.deepEqual(
      rows.lifecycle.map((l) => [l.resolved_offset, l.resolution]),
      [[4, 'image_deleted']],
    )
  })

  it('reconciles with an inventory snapshot: unlisted becomes inactive, a listed tag follows its digest', () => {
    const rows = fold([
      analyzed(1, D1, [finding('CVE-1')]),
      analyzed(2, D2, [finding('CVE-2')]),
      tagged(3, 'latest', D1),
      tagged(4, 'stable', D1),
      at(5, {
        type: 'herald.report.inventory.snapshot',
        account: A,
        data: {
          taken_at: '2026-11-22T10:00:05.000Z',
          images: [{ digest: D2, registry: 'docker.io', repository: 'acme/api' }],
          tags: [{ registry: 'docker.io', repository: 'acme/api', tag: 'latest', digest: D2 }],
        },
      } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>),
    ])
    const image = (digest: string) => rows.images.find((i) => i.digest === digest)
    assert.equal(image(D1)?.closed_by, 'inventory')
    assert.equal(image(D2)?.closed_offset, 0)
    const current = new Map(rows.tagsCurrent.map((t) => [t.tag, [t.digest, t.active]]))
    assert.deepEqual(current.get('latest'), [D2, 1])
    assert.deepEqual(current.get('stable'), [D1, 0])
    assert.deepEqual(
      rows.tagHistory
        .filter((t) => t.tag === 'latest')
        .map((t) => [t.digest, t.from_offset, t.closed_offset, t.closed_by])
        .sort(),
      [
        [D1, 3, 5, 'inventory'],
        [D2, 5, 0, ''],
      ],
    )
    assert.deepEqual(rows.lifecycle.map((l) => [l.vulnerability_id, l.resolution]).sort(), [
      ['CVE-1', 'image_inventory'],
      ['CVE-2', ''],
    ])
  })

  it('keeps as a tag’s latest evaluation the one evaluated last, of two at one instant the later in the log', () => {
    const evaluated = (offset: number, tag: string, evaluatedAt: string, status: 'pass' | 'fail') =>
      at(offset, {
        type: 'herald.report.policy.evaluated',
        account: A,
        data: {
          registry: 'docker.io',
          repository: 'acme/api',
          tag,
          digest: D1,
          bundle_id: 'default',
          bundle_digest: 'sha256:bundle',
          status,
          reasons: [],
          evaluated_at: evaluatedAt,
        },
      } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>)
    const rows = foldEntities(
      [
        evaluated(1, 'late', '2026-11-22T10:00:05.000Z', 'fail'),
        // Received after, evaluated before: not the current one.
        evaluated(2, 'late', '2026-11-22T10:00:01.000Z', 'pass'),
        evaluated(3, 'tie', '2026-11-22T10:00:05.000Z', 'pass'),
        evaluated(4, 'tie', '2026-11-22T10:00:05.000Z', 'fail'),
      ],
      empty,
    )
    assert.deepEqual(rows.policyLatest.map((r) => [r.tag, r.status, r.evaluated_at, r.version]).sort(), [
      ['late', 'fail', '2026-11-22 10:00:05.000', 1],
      ['tie', 'fail', '2026-11-22 10:00:05.000', 4],
    ])
    assert.equal(rows.policyEvaluations.length, 4, 'the history keeps every evaluation')
  })

  it('takes an evaluation at a leap second as the instant after :59', () => {
    const rows = foldEntities(
      [
        at(1, {
          type: 'herald.report.policy.evaluated',
          account: A,
          time: '2026-12-31T23:59:60Z',
          data: {
            registry: 'docker.io',
            repository: 'acme/api',
            tag: 'leap',
            digest: D1,
            bundle_id: 'default',
            bundle_digest: 'sha256:bundle',
            status: 'pass',
            reasons: [],
            evaluated_at: '2026-12-31T23:59:60Z',
          },
        } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>),
      ],
      empty,
    )
    assert.deepEqual(
      rows.policyLatest.map((r) => r.evaluated_at),
      ['2027-01-01 00:00:00.000'],
    )
  })

  it('asks for the images and tags its events name, and everything of a snapshot’s account', () => {
    const ref = (account: string, tag: string) =>
      tagKey({ account, registry: 'docker.io', repository: 'acme/api', tag })
    const needs = stateNeeds([
      analyzed(1, D1, []),
      tagged(2, 'latest', D2),
      analyzed(3, D2, [], 'globex'),
      timed(analyzed(4, D1, []), 0.5),
      at(5, {
        type: 'herald.report.inventory.snapshot',
        account: 'globex',
        data: {
          taken_at: '2026-11-22T10:00:02.000Z',
          images: [],
          tags: [{ registry: 'docker.io', repository: 'acme/api', tag: 'stable', digest: D2 }],
        },
      } as Omit<EngineEvent, 'specversion' | 'id' | 'source' | 'level' | 'resourcetype'>),
    ])
    // Each with the earliest instant the batch judges it at: a snapshot's, when it was taken.
    assert.deepEqual([...needs.accounts].sort(), [
      ['acme', T0 + 500],
      ['globex', T0 + 2_000],
    ])
    assert.deepEqual([...needs.digests].sort(), [D1, D2])
    assert.deepEqual(
      [...needs.images].sort(),
      [
        [imageKey(A, D1), T0 + 500],
        [imageKey('globex', D2), T0 + 3_000],
      ].sort(),
    )
    // The tags a snapshot lists, which it may point: one deleted after it was taken stays so.
    assert.deepEqual(
      [...needs.tags],
      [
        [ref(A, 'latest'), T0 + 2_000],
        [ref('globex', 'stable'), T0 + 2_000],
      ],
    )
    assert.deepEqual([...needs.snapshotAccounts], ['globex'])
  })
})

describe('events delivered late, and inventories taken before they are sent', () => {
  const byTag = (rows: readonly TagHistoryRow[]) =>
    Object.fromEntries(
      [...new Set(rows.map((t) => t.tag))].sort().map((tag) => [
        tag,
        rows
          .filter((t) => t.tag === tag)
          .sort((x, y) => x.from_offset - y.from_offset)
          .map((t) => [t.digest, t.from_offset, t.closed_offset, t.closed_by, t.valid_from, t.valid_to]),
      ]),
    )

  it('reconciles with an inventory as of when it was taken: what began after is left as it is', () => {
    const rows = fold([
      analyzed(1, D1, [finding('CVE-1')]),
      tagged(2, 'latest', D1),
      tagged(3, 'old', D1),
      tagged(4, 'edge', D1),
      // The inventory is taken here, at 4.5 s, and sent at 8 s: these three come in between.
      analyzed(5, D2, [finding('CVE-2')]),
      tagged(6, 'latest', D2),
      tagged(7, 'stable', D2),
      inventory(
        8,
        T0 + 4_500,
        [],
        [
          ['latest', D1],
          ['edge', D2],
          ['fresh', D1],
        ],
      ),
    ])
    assert.deepEqual(
      rows.images.map((i) => [i.digest, i.closed_offset, i.closed_by, i.valid_from, i.valid_to]).sort(),
      [
        [D1, 8, 'inventory', second(1), second(4.5)],
        // Analysed after the inventory was taken: not closed for being missing from it.
        [D2, 0, '', second(5), null],
      ],
    )
    assert.deepEqual(
      rows.lifecycle.map((l) => [l.vulnerability_id, l.detected_at, l.resolved_at, l.resolution]).sort(),
      [
        ['CVE-1', second(1), second(4.5), 'image_inventory'],
        ['CVE-2', second(5), null, ''],
      ],
    )
    assert.deepEqual(byTag(rows.tagHistory), {
      // Moved after the inventory was taken: not pointed back at what the inventory saw.
      latest: [
        [D1, 2, 6, 'moved', second(2), second(6)],
        [D2, 6, 0, '', second(6), null],
      ],
      // Pointed before: unlisted, it ends when the inventory was taken; listed, it follows it.
      old: [[D1, 3, 8, 'inventory', second(3), second(4.5)]],
      edge: [
        [D1, 4, 8, 'inventory', second(4), second(4.5)],
        [D2, 8, 0, '', second(4.5), null],
      ],
      // Pointed after: unlisted, not closed.
      stable: [[D2, 7, 0, '', second(7), null]],
      fresh: [[D1, 8, 0, '', second(4.5), null]],
    })
    assert.deepEqual(rows.tagsCurrent.map((t) => [t.tag, t.digest, t.active, t.since]).sort(), [
      ['edge', D2, 1, second(4.5)],
      ['fresh', D1, 1, second(4.5)],
      ['latest', D2, 1, second(6)],
      ['old', D1, 0, second(4.5)],
      ['stable', D2, 1, second(7)],
    ])
  })

  it('closes at its own time an inventory that claims to be taken after it was sent', () => {
    const rows = fold([
      analyzed(1, D1, [finding('CVE-1')]),
      tagged(2, 'latest', D1),
      inventory(3, T0 + 60_000, [], []),
    ])
    assert.deepEqual(
      rows.images.map((i) => [i.closed_by, i.valid_to]),
      [['inventory', second(3)]],
    )
    assert.deepEqual(
      rows.tagHistory.map((t) => [t.closed_by, t.valid_to]),
      [['inventory', second(3)]],
    )
    assert.deepEqual(
      rows.lifecycle.map((l) => l.resolved_at),
      [second(3)],
    )
  })

  it('keeps the newest report current when an older one arrives after it, in one batch or the next', () => {
    const newer = timed(analyzed(1, D1, [finding('CVE-1'), finding('CVE-2')]), 10)
    const older = timed(analyzed(2, D1, [finding('CVE-1'), finding('CVE-3')]), 5)
    const together = fold([newer, older])
    assert.deepEqual(
      together.images.map((i) => [i.from_offset, i.valid_from, i.last_analyzed_at, i.version]),
      [[1, second(10), second(10), 1]],
    )
    assert.deepEqual(
      together.lifecycle.map((l) => [l.vulnerability_id, l.detected_offset, l.resolved_at]).sort(),
      [
        ['CVE-1', 1, null],
        ['CVE-2', 1, null],
      ],
    )

    const first = fold([newer])
    const image = first.images[0] as ImageRow
    const state: EntityState = { ...empty, images: new Map([[imageKey(A, D1), image]]) }
    const findings: FindingState = new Map([
      [imageKey(A, D1), new Map(first.findings.map((f) => [findingKey(f), f]))],
    ])
    const next = fold([older], state, findings)
    assert.deepEqual([next.images, next.findings, next.lifecycle], [[], [], []], 'nothing written')
    assert.deepEqual(next.openImages, state.images)

    // One of the same instant, later in the log, is the current one, as for policy evaluations.
    const same = fold([timed(analyzed(3, D1, [finding('CVE-3')]), 10)], state, findings)
    assert.deepEqual(same.lifecycle.map((l) => [l.vulnerability_id, l.detected_at, l.resolved_at]).sort(), [
      ['CVE-1', second(10), second(10)],
      ['CVE-2', second(10), second(10)],
      ['CVE-3', second(10), null],
    ])
  })

  it('leaves an image and its findings open when a deletion older than its latest analysis arrives', () => {
    const rows = fold([
      timed(analyzed(1, D1, [finding('CVE-1')]), 2),
      timed(analyzed(2, D1, [finding('CVE-1'), finding('CVE-2')]), 10),
      // After the period began, before CVE-2 was detected.
      timed(imageDeleted(3, D1), 5),
      // Before the period began.
      timed(imageDeleted(4, D1), 1),
    ])
    assert.deepEqual(
      rows.images.map((i) => [i.from_offset, i.closed_offset, i.closed_by, i.valid_to]).sort(),
      [
        [1, 2, 'analyzed', second(10)],
        [2, 0, '', null],
      ],
    )
    assert.ok(rows.lifecycle.every((l) => l.resolved_at === null))

    // One at the instant of the latest analysis, or after it, deletes it.
    const deleted = fold([
      timed(analyzed(1, D1, [finding('CVE-1')]), 2),
      timed(analyzed(2, D1, [finding('CVE-1'), finding('CVE-2')]), 10),
      timed(imageDeleted(3, D1), 10),
    ])
    assert.deepEqual(
      deleted.images.map((i) => [i.from_offset, i.closed_offset, i.closed_by, i.valid_to]).sort(),
      [
        [1, 2, 'analyzed', second(10)],
        [2, 3, 'deleted', second(10)],
      ],
    )
    assert.deepEqual(
      deleted.lifecycle.map((l) => [l.vulnerability_id, l.detected_at, l.resolved_at]).sort(),
      [
        ['CVE-1', second(2), second(10)],
        ['CVE-2', second(10), second(10)],
      ],
    )
  })

  it('leaves a tag where it points when a move or a deletion older than its pointing arrives', () => {
    const rows = fold([
      timed(tagged(1, 'latest', D1), 10),
      timed(tagged(2, 'latest', D2), 5),
      timed(tagDeleted(3, 'latest'), 5),
    ])
    assert.deepEqual(byTag(rows.tagHistory), { latest: [[D1, 1, 0, '', second(10), null]] })
    assert.deepEqual(
      rows.tagsCurrent.map((t) => [t.digest, t.active, t.since, t.version]),
      [[D1, 1, second(10), 1]],
    )
  })

  it('leaves a deleted image deleted when an analysis older than its deletion arrives, in one batch or the next', () => {
    const history = [
      timed(analyzed(1, D1, [finding('CVE-1')]), 2),
      timed(imageDeleted(2, D1), 10),
      analyzed(3, D2, [finding('CVE-9')]),
      // Reconciled away as of 8 s by an inventory sent at 9 s.
      timed(inventory(4, T0 + 8_000, [D1], []), 9),
    ]
    const late = [
      // Analysed at 5 s, after its last analysis, before it was deleted: it was deleted after.
      timed(analyzed(5, D1, [finding('CVE-1'), finding('CVE-2')]), 5),
      // Before the inventory that reconciled it away was taken.
      timed(analyzed(6, D2, [finding('CVE-9'), finding('CVE-3')]), 7),
    ]
    const ended = [
      [D1, 1, 2, 'deleted', second(2), second(10)],
      [D2, 3, 4, 'inventory', second(3), second(8)],
    ]
    const periods = (rows: readonly ImageRow[]) =>
      rows
        .map((i) => [i.digest, i.from_offset, i.closed_offset, i.closed_by, i.valid_from, i.valid_to])
        .sort()
    const together = fold([...history, ...late])
    assert.deepEqual(periods(together.images), ended)
    assert.deepEqual(
      together.lifecycle.map((l) => [l.vulnerability_id, l.resolution, l.resolved_at]).sort(),
      [
        ['CVE-1', 'image_deleted', second(10)],
        ['CVE-9', 'image_inventory', second(8)],
      ],
    )
    assert.deepEqual([...together.openImages.keys()], [])

    // In the next batch, the state says when each ended.
    const first = fold(history)
    const state: EntityState = {
      ...empty,
      closedImages: new Map(first.images.map((i) => [imageKey(i.account, i.digest), i])),
    }
    const next = fold(late, state)
    assert.deepEqual([next.images, next.findings, next.lifecycle], [[], [], []], 'nothing written')
    assert.deepEqual(next.closedImages, state.closedImages)

    // One analysed at the instant of its end or after it (restored, pushed again) is active again.
    const again = fold([timed(analyzed(7, D1, [finding('CVE-2')]), 10)], state)
    assert.deepEqual(periods(again.images), [[D1, 7, 0, '', second(10), null]])
    assert.deepEqual([...again.closedImages.keys()], [imageKey(A, D2)])
  })

  it('does not re-create a deleted tag from a move older than its deletion, nor from an inventory taken before it', () => {
    const history = [tagged(1, 'latest', D1), timed(tagDeleted(2, 'latest'), 10)]
    const late = [
      // Moved at 8 s, before it was deleted.
      timed(tagged(3, 'latest', D2), 8),
      // Taken at 5 s, sent at 12 s: it still lists the tag, deleted since.
      timed(inventory(4, T0 + 5_000, [], [['latest', D1]]), 12),
    ]
    const together = fold([...history, ...late])
    assert.deepEqual(byTag(together.tagHistory), {
      latest: [[D1, 1, 2, 'deleted', second(1), second(10)]],
    })
    assert.deepEqual(
      together.tagsCurrent.map((t) => [t.tag, t.digest, t.active, t.since]),
      [['latest', D1, 0, second(10)]],
    )

    const first = fold(history)
    const state: EntityState = {
      ...empty,
      closedTags: new Map(first.tagHistory.map((t) => [tagKey(t), t])),
    }
    const next = fold(late, state)
    assert.deepEqual([next.tagHistory, next.tagsCurrent], [[], []], 'nothing written')

    // Pointed again after it was deleted, or listed by an inventory taken since: active again.
    const moved = fold([timed(tagged(5, 'latest', D2), 11)], state)
    assert.deepEqual(byTag(moved.tagHistory), { latest: [[D2, 5, 0, '', second(11), null]] })
    const listed = fold([timed(inventory(5, T0 + 10_000, [], [['latest', D2]]), 12)], state)
    assert.deepEqual(
      listed.tagsCurrent.map((t) => [t.tag, t.digest, t.active, t.since]),
      [['latest', D2, 1, second(10)]],
    )
  })

  it('writes no period that ends before it began, nor an episode resolved before it was detected, from late events', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.array(fc.tuple(fc.nat(599), fc.integer({ min: 1, max: 40 })), { minLength: 1, maxLength: 60 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (seed, delays, afterDeletion) => {
          const tables = createMemoryTables()
          tables.write(deliveredAfterDeletion(deliveredLate(activity(seed, 600), delays), afterDeletion))
          const { images, tags, findings, lifecycle } = tables.snapshot()
          const ms = (text: string | null) =>
            text === null ? Number.POSITIVE_INFINITY : Date.parse(`${text}Z`)
          for (const [key, r] of images) {
            assert.ok(ms(r.valid_from) <= ms(r.last_analyzed_at), `${key}: analysed before it began`)
            assert.ok(ms(r.last_analyzed_at) <= ms(r.valid_to), `${key}: analysed after it ended`)
          }
          for (const [key, r] of [...tags, ...findings])
            assert.ok(ms(r.valid_from) <= ms(r.valid_to), `${key}: ends before it began`)
          for (const [key, r] of lifecycle)
            assert.ok(ms(r.detected_at) <= ms(r.resolved_at), `${key}: resolved before it was detected`)
        },
      ),
      { numRuns: 40 },
    )
  })
})

/**
 * The warehouse as the projector sees it, in memory: rows collapse by key to their highest
 * version (ReplacingMergeTree FINAL), and state is read "as of" an offset the same way the
 * SQL in state.ts does.
 */
const createMemoryTables = () => {
  const images = new Map<string, ImageRow>()
  const tags = new Map<string, TagHistoryRow>()
  const findings = new Map<string, FindingRow>()
  const lifecycle = new Map<string, LifecycleRow>()
  const keep = <R extends { version: number }>(table: Map<string, R>, key: string, row: R) => {
    const old = table.get(key)
    if (old === undefined || old.version <= row.version) table.set(key, row)
  }
  const openAsOf = (row: { from_offset: number; closed_offset: number }, offset: number) =>
    row.from_offset < offset && (row.closed_offset === 0 || row.closed_offset >= offset)
  /** Each key's latest period as of `offset`, where it had ended before `offset`. */
  const closedAsOf = <R extends { from_offset: number; closed_offset: number }>(
    rows: Iterable<R>,
    keyOf: (row: R) => string,
    offset: number,
  ): Map<string, R> => {
    const latest = new Map<string, R>()
    for (const row of rows) {
      const kept = latest.get(keyOf(row))
      if (row.from_offset < offset && (kept === undefined || row.from_offset > kept.from_offset))
        latest.set(keyOf(row), row)
    }
    for (const [key, row] of latest) if (openAsOf(row, offset)) latest.delete(key)
    return latest
  }
  const reopened = <R extends { closed_offset: number }>(row: R): R =>
    row.closed_offset === 0 ? row : { ...row, closed_offset: 0, valid_to: null, closed_by: '' }
  return {
    write(events: Positioned[]) {
      const first = events[0]?.offset ?? 0
      const entityState: EntityState = {
        images: new Map(
          [...images.values()]
            .filter((r) => openAsOf(r, first))
            .map((r) => [imageKey(r.account, r.digest), reopened(r)]),
        ),
        tags: new Map(
          [...tags.values()].filter((r) => openAsOf(r, first)).map((r) => [tagKey(r), reopened(r)]),
        ),
        closedImages: closedAsOf(images.values(), (r) => imageKey(r.account, r.digest), first),
        closedTags: closedAsOf(tags.values(), tagKey, first),
      }
      const rows = foldEntities(events, entityState)
      const findingState = new Map<string, Map<string, FindingRow>>()
      for (const r of findings.values()) {
        if (!openAsOf(r, first)) continue
        const key = imageKey(r.account, r.digest)
        const map = findingState.get(key) ?? new Map<string, FindingRow>()
        map.set(findingKey(r), reopened(r))
        findingState.set(key, map)
      }
      const found = foldFindings(rows.findingOps, findingState)
      for (const r of rows.images) keep(images, `${imageKey(r.account, r.digest)}|${r.from_offset}`, r)
      for (const r of rows.tagHistory) keep(tags, `${tagKey(r)}|${r.from_offset}`, r)
      for (const r of found.findings)
        keep(findings, `${r.account}|${r.digest}|${findingKey(r)}|${r.from_offset}`, r)
      for (const r of found.lifecycle)
        keep(lifecycle, `${r.account}|${r.digest}|${findingKey(r)}|${r.detected_offset}`, r)
    },
    snapshot: () => ({
      images: [...images.entries()].sort(),
      tags: [...tags.entries()].sort(),
      findings: [...findings.entries()].sort(),
      lifecycle: [...lifecycle.entries()].sort(),
    }),
  }
}

const activity = (seed: number, count: number): Positioned[] =>
  [...generateActivity({ seed, accounts: 2, count, clock: () => T0, systemEvents: false })].map(
    (event, offset) => ({
      event,
      offset,
      at: Date.parse(event.time as string),
    }),
  )

/**
 * The events as a log holds them when some were delivered late: each `[index, by]` moves the
 * event at `index` `by` positions later, keeping its instant; offsets follow the new order.
 */
const deliveredLate = (events: readonly Positioned[], delays: readonly (readonly [number, number])[]) => {
  const order = [...events]
  for (const [index, by] of delays) {
    const from = index % order.length
    const [moved] = order.splice(from, 1)
    if (moved !== undefined) order.splice(Math.min(order.length, from + by), 0, moved)
  }
  return order.map((p, offset) => ({ ...p, offset }))
}

/** The image or tag a report event names, to tell which events concern the same one. */
const entityOf = ({ event }: Positioned): string | undefined => {
  switch (event.type) {
    case 'herald.report.image.analyzed':
    case 'herald.report.image.deleted':
      return imageKey(event.account, event.data.digest)
    case 'herald.report.tag.digest_changed':
    case 'herald.report.tag.deleted':
      return tagKey({ account: event.account, ...event.data })
    default:
      return undefined
  }
}

/**
 * The events with some delivered after the deletion of what they name: for each pick, a
 * deletion (the pick-th, round the list) and the last analysis or move of its image or tag
 * before it, moved to right after it, keeping its instant; offsets follow the new order.
 */
const deliveredAfterDeletion = (events: readonly Positioned[], picks: readonly number[]) => {
  const order = [...events]
  const deleted = ({ event }: Positioned) =>
    event.type === 'herald.report.image.deleted' || event.type === 'herald.report.tag.deleted'
  for (const pick of picks) {
    const deletions = order.flatMap((p, i) => (deleted(p) ? [i] : []))
    const at = deletions[pick % Math.max(1, deletions.length)]
    if (at === undefined) break
    const entity = entityOf(order[at] as Positioned)
    const before = order.findLastIndex((p, i) => i < at && !deleted(p) && entityOf(p) === entity)
    if (before < 0) continue
    const [moved] = order.splice(before, 1)
    if (moved !== undefined) order.splice(at, 0, moved)
  }
  return order.map((p, offset) => ({ ...p, offset }))
}

describe('events the fold cannot take', () => {
  // What a gap in the contract could let through: an inventory whose taken_at names no instant
  // (2016-12-31T24:59:60+01:00, which instantOf cannot read), an image report without findings.
  const badInventory = {
    ...inventory(3, T0, [], [['latest', D1]]),
    event: {
      ...inventory(3, T0, [], [['latest', D1]]).event,
      data: { taken_at: '2016-12-31T24:59:60+01:00', images: [], tags: [] },
    },
  } as Positioned
  const noFindings = { ...analyzed(5, D2, []) }
  ;(noFindings.event as { data: Record<string, unknown> }).data = {
    ...noFindings.event.data,
    findings: undefined,
  }

  it('names an instant the fold would write that is none', () => {
    assert.equal(unfoldable(badInventory), 'data.taken_at names no instant')
    assert.equal(unfoldable({ ...tagged(1, 'latest', D1), at: Number.NaN }), 'time names no instant')
    assert.equal(unfoldable(tagged(1, 'latest', D1)), undefined)
  })

  it('finds the first event the fold throws on, in either phase', () => {
    const events = [
      analyzed(1, D1, [finding('CVE-1')]),
      tagged(2, 'latest', D1),
      noFindings,
      tagged(6, 'next', D1),
    ]
    assert.throws(() => fold(events))
    assert.equal(firstUnfoldable(events, empty, new Map()), 2)
    assert.equal(firstUnfoldable(events.slice(0, 2), empty, new Map()), undefined)
    assert.equal(
      firstUnfoldable([...events.slice(0, 2), events[3] as Positioned], empty, new Map()),
      undefined,
    )
  })
})

describe('the fold in slices of the event loop', () => {
  it('writes the same rows as in one go, pausing between events and between images', async () => {
    const events = activity(11, 600)
    const entities = foldEntities(events, empty)
    let pauses = 0
    const everyStep: Slice = {
      due: () => true,
      pause: async () => {
        pauses++
        await yieldToLoop()
      },
    }
    const sliced = await foldEntitiesSliced(events, empty, everyStep)
    assert.deepEqual(sliced, entities)
    assert.equal(pauses, events.length)
    pauses = 0
    const findings = foldFindings(entities.findingOps, new Map())
    assert.deepEqual(await foldFindingsSliced(entities.findingOps, new Map(), everyStep), findings)
    assert.equal(pauses, entities.findingOps.size)
    assert.ok(findings.findings.length > 0, 'the history has findings to fold')
  })
})

describe('the fold under replays', () => {
  it('writes the same rows whatever the batch boundaries, however often a batch is replayed, and whatever arrives late', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(599), fc.integer({ min: 1, max: 40 })), { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (seed, sizes, replays, delays, afterDeletion) => {
          const events = deliveredAfterDeletion(deliveredLate(activity(seed, 600), delays), afterDeletion)
          const once = createMemoryTables()
          once.write(events)

          const batches: Positioned[][] = []
          for (let start = 0, i = 0; start < events.length; i++) {
            const size = sizes[i % sizes.length] ?? 50
            batches.push(events.slice(start, start + size))
            start += size
          }
          const chopped = createMemoryTables()
          batches.forEach((batch, i) => {
            chopped.write(batch)
            // A crash before the commit: the log redelivers from this batch's start, maybe
            // with more messages, maybe fewer.
            for (const r of replays.filter((n) => n % batches.length === i)) {
              const start = batch[0]?.offset ?? 0
              chopped.write(events.slice(start, start + 1 + (r % (2 * batch.length))))
            }
          })
          assert.deepEqual(chopped.snapshot(), once.snapshot())
        },
      ),
      { numRuns: 40 },
    )
  })
})
