import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type EntityState, type FindingState, imageKey, type StateNeeds, tagKey } from './fold.ts'
import { createStateCache, type LoadEntities, type LoadFindings } from './state-cache.ts'
import type { FindingRow, ImageRow, TagHistoryRow } from './tables.ts'

const image = (account: string, digest: string, from = 1): ImageRow => ({
  account,
  digest,
  from_offset: from,
  registry: 'docker.io',
  repository: 'acme/api',
  image_id: '',
  distro_name: 'debian',
  distro_version: '12',
  package_count: 1,
  valid_from: '2026-11-22 10:00:00.000',
  last_analyzed_at: '2026-11-22 10:00:00.000',
  closed_offset: 0,
  valid_to: null,
  closed_by: '',
  version: from,
})

const tag = (account: string, name: string, digest: string): TagHistoryRow => ({
  account,
  registry: 'docker.io',
  repository: 'acme/api',
  tag: name,
  from_offset: 1,
  digest,
  valid_from: '2026-11-22 10:00:00.000',
  closed_offset: 0,
  valid_to: null,
  closed_by: '',
  version: 1,
})

const finding = (account: string, digest: string, id: string): FindingRow => ({
  account,
  digest,
  vulnerability_id: id,
  package: 'openssl',
  package_version: '3.0.1',
  from_offset: 1,
  registry: 'docker.io',
  repository: 'acme/api',
  package_type: 'deb',
  severity: 'high',
  fix_version: null,
  kev: 0,
  cvss: null,
  url: '',
  feed_group: '',
  package_path: '',
  valid_from: '2026-11-22 10:00:00.000',
  detected_offset: 1,
  detected_at: '2026-11-22 10:00:00.000',
  fix_first_at: null,
  closed_offset: 0,
  valid_to: null,
  closed_by: '',
  version: 1,
})

/** A closed period: the latest of its image or tag, ended at `10:SS` (`closed`) of the test day. */
const closed = <Row extends ImageRow | TagHistoryRow>(row: Row, second: number): Row => ({
  ...row,
  closed_offset: 5,
  valid_to: `2026-11-22 10:00:${String(second).padStart(2, '0')}.000`,
  closed_by: 'deleted',
  version: 5,
})

/** `10:00:SS` of the test day, in milliseconds. */
const T = (second: number) => Date.UTC(2026, 10, 22, 10, 0, second)

/**
 * A warehouse as the loaders see it: the latest period of each image and tag, open or closed,
 * answering the same filters as `state.ts`.
 */
const warehouse = (images: ImageRow[], tags: TagHistoryRow[], findings: FindingRow[]) => {
  const calls = { entities: [] as StateNeeds[], findings: [] as string[][] }
  const entities: LoadEntities = async (needs) => {
    calls.entities.push(needs)
    // Named, or of an account read whole: open, or closed after `closedAfter`.
    const wanted = (row: ImageRow | TagHistoryRow, named: boolean) =>
      named ||
      (needs.snapshotAccounts.has(row.account) &&
        (row.closed_offset === 0 ||
          (needs.closedAfter !== undefined && Date.parse(`${row.valid_to}Z`) >= needs.closedAfter)))
    const pickedImages = images.filter((i) => wanted(i, needs.images.has(imageKey(i.account, i.digest))))
    const pickedTags = tags.filter((t) => wanted(t, needs.tags.has(tagKey(t))))
    const state: EntityState = {
      images: new Map(
        pickedImages.filter((i) => i.closed_offset === 0).map((i) => [imageKey(i.account, i.digest), i]),
      ),
      tags: new Map(pickedTags.filter((t) => t.closed_offset === 0).map((t) => [tagKey(t), t])),
      closedImages: new Map(
        pickedImages.filter((i) => i.closed_offset > 0).map((i) => [imageKey(i.account, i.digest), i]),
      ),
      closedTags: new Map(pickedTags.filter((t) => t.closed_offset > 0).map((t) => [tagKey(t), t])),
    }
    return state
  }
  const findingLoader: LoadFindings = async (wanted) => {
    const keys = wanted.map((w) => imageKey(w.account, w.digest))
    calls.findings.push(keys)
    const state = new Map<string, Map<string, FindingRow>>()
    for (const f of findings) {
      const key = imageKey(f.account, f.digest)
      if (!keys.includes(key)) continue
      const open = state.get(key) ?? new Map<string, FindingRow>()
      open.set(f.vulnerability_id, f)
      state.set(key, open)
    }
    return state as FindingState
  }
  return { entities, findings: findingLoader, calls }
}

/** What a batch needs, all of it judged from `at` on (10:00:00 unless told). */
const needs = (parts: {
  images?: [string, string][]
  tags?: TagHistoryRow[]
  snapshots?: string[]
  at?: number
}): StateNeeds => {
  const images = parts.images ?? []
  const tags = parts.tags ?? []
  const snapshots = parts.snapshots ?? []
  const at = parts.at ?? T(0)
  return {
    accounts: new Map(
      [...images.map(([a]) => a), ...tags.map((t) => t.account), ...snapshots].map((a) => [a, at]),
    ),
    digests: new Set(images.map(([, d]) => d)),
    images: new Map(images.map(([a, d]) => [imageKey(a, d), at])),
    tags: new Map(tags.map((t) => [tagKey(t), at])),
    snapshotAccounts: new Set(snapshots),
  }
}

const nothingAfter = {
  images: new Map(),
  tags: new Map(),
  closedImages: new Map(),
  closedTags: new Map(),
  imageRows: [],
  tagRows: [],
  findings: new Map(),
}

describe('createStateCache', () => {
  it('reads an account in full once, then answers its images, tags and findings from memory', async () => {
    const open = image('acme', 'd1')
    const latest = tag('acme', 'latest', 'd1')
    const wh = warehouse([open], [latest], [finding('acme', 'd1', 'CVE-1')])
    const cache = createStateCache()

    const first = cache.at('t', 0, 10)
    const state = await first.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    assert.deepEqual([...state.images.values()], [open])
    assert.deepEqual([...(wh.calls.entities[0]?.snapshotAccounts ?? [])], ['acme'])
    const findings = await first.findings([{ account: 'acme', digest: 'd1' }], wh.findings)
    assert.equal(findings.get(imageKey('acme', 'd1'))?.size, 1)
    first.advance({ entities: state, findings }, { ...nothingAfter, images: state.images, findings }, 20)

    const second = cache.at('t', 0, 20)
    const again = await second.entities(
      needs({
        images: [
          ['acme', 'd1'],
          ['acme', 'new'],
        ],
        tags: [latest, tag('acme', 'v2', 'x')],
      }),
      wh.entities,
    )
    assert.deepEqual([...again.images.keys()], [imageKey('acme', 'd1')])
    assert.deepEqual([...again.tags.values()], [latest])
    // A new image of a whole account has no open period, hence no open findings: no query.
    const newFindings = await second.findings(
      [
        { account: 'acme', digest: 'd1' },
        { account: 'acme', digest: 'new' },
      ],
      wh.findings,
    )
    assert.equal(newFindings.get(imageKey('acme', 'new'))?.size, 0)
    assert.equal(wh.calls.entities.length, 1)
    assert.equal(wh.calls.findings.length, 1)
  })

  it('starts over for a batch that does not begin right after the last one it advanced', async () => {
    const wh = warehouse([image('acme', 'd1')], [], [])
    const cache = createStateCache()
    const first = cache.at('t', 0, 10)
    const state = await first.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    first.advance({ entities: state, findings: new Map() }, { ...nothingAfter, images: state.images }, 20)

    // A redelivery from an earlier offset, then a jump past offsets projected elsewhere.
    for (const offset of [10, 35]) {
      await cache.at('t', 0, offset).entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    }
    assert.equal(wh.calls.entities.length, 3)
    // Another partition has its own state.
    await cache.at('t', 1, 20).entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    assert.equal(wh.calls.entities.length, 4)
  })

  it('keeps what a failed batch loaded for its redelivery, and nothing of what it folded', async () => {
    const wh = warehouse([image('acme', 'd1')], [], [])
    const cache = createStateCache()
    const failed = cache.at('t', 0, 10)
    await failed.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    // No advance: an insert failed. The log delivers the batch again from the same offset.
    const retried = cache.at('t', 0, 10)
    const state = await retried.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    assert.equal(state.images.size, 1)
    assert.equal(wh.calls.entities.length, 1)
  })

  it('follows the fold: closed periods read as closed, new ones as open', async () => {
    const d1 = image('acme', 'd1')
    const wh = warehouse([d1], [], [finding('acme', 'd1', 'CVE-1')])
    const cache = createStateCache()
    const batch = cache.at('t', 0, 10)
    const state = await batch.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    const findings = await batch.findings([{ account: 'acme', digest: 'd1' }], wh.findings)
    // The batch deleted d1 (closing its findings) and analysed d2.
    const d2 = image('acme', 'd2', 15)
    const deleted = closed(d1, 30)
    batch.advance(
      { entities: state, findings },
      {
        ...nothingAfter,
        images: new Map([[imageKey('acme', 'd2'), d2]]),
        closedImages: new Map([[imageKey('acme', 'd1'), deleted]]),
        imageRows: [deleted, d2],
        tagRows: [],
        findings: new Map([
          [imageKey('acme', 'd1'), new Map()],
          [imageKey('acme', 'd2'), new Map()],
        ]),
      },
      20,
    )
    const next = cache.at('t', 0, 20)
    const after = await next.entities(
      needs({
        images: [
          ['acme', 'd1'],
          ['acme', 'd2'],
        ],
      }),
      wh.entities,
    )
    assert.deepEqual([...after.images.values()], [d2])
    assert.deepEqual([...after.closedImages.values()], [deleted])
    const open = await next.findings([{ account: 'acme', digest: 'd1' }], wh.findings)
    assert.equal(open.get(imageKey('acme', 'd1'))?.size, 0)
    assert.equal(wh.calls.entities.length, 1)
    assert.equal(wh.calls.findings.length, 1)
  })

  it('holds what of a whole account ended after its earliest event, and reads an older event’s image by its key', async () => {
    const d1 = image('acme', 'd1')
    // Deleted at 10:00:30, and at 09:59:50: before the first batch's earliest event (10:00:00).
    const recent = closed(image('acme', 'd2'), 30)
    const old = { ...closed(image('acme', 'd3'), 0), valid_to: '2026-11-22 09:59:50.000' }
    const gone = closed(tag('acme', 'gone', 'd2'), 40)
    const wh = warehouse([d1, recent, old], [gone], [finding('acme', 'd3', 'CVE-1')])
    const cache = createStateCache()
    const first = cache.at('t', 0, 10)
    const state = await first.entities(needs({ images: [['acme', 'd1']] }), wh.entities)
    assert.equal(wh.calls.entities[0]?.closedAfter, T(0))
    first.advance({ entities: state, findings: new Map() }, { ...nothingAfter, images: state.images }, 20)

    // From 10:00:00 on, every image and tag of the account that ended since is in memory.
    const second = cache.at('t', 0, 20)
    const later = await second.entities(
      needs({
        images: [
          ['acme', 'd2'],
          ['acme', 'd3'],
          ['acme', 'new'],
        ],
        tags: [tag('acme', 'gone', 'd9')],
        at: T(5),
      }),
      wh.entities,
    )
    assert.deepEqual([...later.closedImages.values()], [recent])
    assert.deepEqual([...later.closedTags.values()], [gone])
    assert.deepEqual([later.images.size, later.tags.size], [0, 0])
    // Ended before the instant they are judged at, or never began: nothing to know, no query.
    assert.equal(wh.calls.entities.length, 1)
    // Not open, so no open findings either.
    const none = await second.findings(
      [
        { account: 'acme', digest: 'd2' },
        { account: 'acme', digest: 'd3' },
      ],
      wh.findings,
    )
    assert.deepEqual(
      [...none.values()].map((f) => f.size),
      [0, 0],
    )
    assert.equal(wh.calls.findings.length, 0)

    // An event from before 10:00:00 needs to know whether its image ended after it: read by key.
    const older = await second.entities(
      needs({
        images: [
          ['acme', 'd3'],
          ['acme', 'd2'],
        ],
        at: T(0) - 20_000,
      }),
      wh.entities,
    )
    assert.deepEqual([...older.closedImages.values()], [old, recent])
    assert.equal(wh.calls.entities.length, 2)
    assert.deepEqual([...(wh.calls.entities[1]?.images.keys() ?? [])], [imageKey('acme', 'd3')])
    assert.deepEqual([...(wh.calls.entities[1]?.snapshotAccounts ?? [])], [])
  })

  it('moves an account’s horizon up to the end of a closed period it lets go', async () => {
    const ended = Array.from({ length: 3 }, (_, i) => closed(image('acme', `d${i}`), 10 + i))
    const wh = warehouse(ended, [], [])
    const cache = createStateCache({ images: 8, tags: 8 })
    const first = cache.at('t', 0, 10)
    const state = await first.entities(needs({ images: [['acme', 'd0']] }), wh.entities)
    // Seven new images fill the cache: d1 (ended at 10:00:11) and d2 (10:00:12) are let go.
    const opened = Array.from({ length: 7 }, (_, i) => image('acme', `n${i}`, 11 + i))
    first.advance(
      { entities: state, findings: new Map() },
      {
        ...nothingAfter,
        images: new Map(opened.map((i) => [imageKey(i.account, i.digest), i])),
        imageRows: opened,
      },
      20,
    )
    const next = cache.at('t', 0, 20)
    // Judged from 10:00:12 on, d1 and d2 need not be known: no query.
    await next.entities(needs({ images: [['acme', 'd1']], at: T(12) }), wh.entities)
    assert.equal(wh.calls.entities.length, 1)
    // From before, they must.
    const older = await next.entities(needs({ images: [['acme', 'd1']], at: T(11) }), wh.entities)
    assert.equal(wh.calls.entities.length, 2)
    assert.deepEqual([...older.closedImages.values()], [ended[1]])
  })

  it('stays within its limits, reading again what it let go, and reads a large account key by key', async () => {
    const images = Array.from({ length: 10 }, (_, i) => image('big', `d${i}`))
    const wh = warehouse(images, [], [])
    const cache = createStateCache({ images: 8, tags: 8 })
    const first = cache.at('t', 0, 10)
    const state = await first.entities(needs({ images: [['big', 'd0']] }), wh.entities)
    first.advance({ entities: state, findings: new Map() }, { ...nothingAfter, images: state.images }, 20)

    // Ten open images do not fit: the account is no longer read whole, only what is missing.
    const second = cache.at('t', 0, 20)
    const again = await second.entities(
      needs({
        images: [
          ['big', 'd0'],
          ['big', 'd1'],
        ],
      }),
      wh.entities,
    )
    assert.equal(again.images.size, 2)
    // d1, among the least recently used, was let go and is read again; d0 is still there.
    assert.equal(wh.calls.entities.length, 2)
    const last = wh.calls.entities.at(-1)
    assert.deepEqual([...(last?.snapshotAccounts ?? [])], [])
    assert.deepEqual([...(last?.images.keys() ?? [])], [imageKey('big', 'd1')])
  })

  it('shares its limits among the partitions it holds, shrinking the others when one is added', async () => {
    const images = Array.from({ length: 10 }, (_, i) => image('big', `d${i}`))
    const wh = warehouse(images, [], [])
    const cache = createStateCache({ images: 4, tags: 4 })
    const four = needs({ images: [0, 1, 2, 3].map((i): [string, string] => ['big', `d${i}`]) })
    const first = cache.at('t', 0, 10)
    const state = await first.entities(four, wh.entities)
    first.advance({ entities: state, findings: new Map() }, { ...nothingAfter, images: state.images }, 20)
    const held = cache.at('t', 0, 20)
    await held.entities(four, wh.entities)
    const loads = wh.calls.entities.length

    // A second partition: the first keeps two of its four images.
    await cache.at('t', 1, 0).entities(needs({}), wh.entities)
    await cache.at('t', 0, 20).entities(four, wh.entities)
    assert.equal(wh.calls.entities.length, loads + 1)
    assert.equal(wh.calls.entities.at(-1)?.images.size, 2)
  })
})
