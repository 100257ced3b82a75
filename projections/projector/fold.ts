import { drain, drainSliced, loopSlice, type Slice } from '../../src/cooperative.ts'
import type { EngineEvent, Finding } from '../../src/events/index.ts'
import { fromClickHouseTime, instantOfTime, toClickHouseTime } from './rows.ts'
import type {
  ClosedBy,
  FindingRow,
  ImageRow,
  LifecycleRow,
  PolicyEvaluationRow,
  PolicyLatestRow,
  Resolution,
  TagCurrentRow,
  TagHistoryRow,
} from './tables.ts'

/**
 * The projection as pure functions: given the events of one log batch and the state the
 * report tables held just before the batch's first offset, the rows to write. No I/O, no
 * clock: the same events and the same prior state give the same rows, which is why a replayed
 * batch (whatever its boundaries) writes rows identical to the ones already there and
 * ReplacingMergeTree collapses them.
 *
 * Only the report-feeding types change these tables; every other catalog type is kept in the
 * raw `events` table only.
 */

/** One decoded event with its position in its partition and the instant it takes effect. */
export interface Positioned {
  readonly event: EngineEvent
  readonly offset: number
  /**
   * Milliseconds: the event's `time`, or its log append time when it has none.
   *
   * Two types carry a better instant of their own, which the fold takes instead: a policy
   * evaluation its `evaluated_at`, an inventory snapshot its `taken_at` (`reconciledAt`). An
   * image report's optional `analyzed_at` is not one. As the engine's image record has it, it
   * is when the image's content was analysed; but a report is sent again, complete, whenever
   * the vulnerabilities matched against that same analysis change (a feed update, which
   * `user.checks.tag.vulnerabilities.update` announces), with the same `analyzed_at`. Timed by
   * it, the findings a feed update adds would be detected at the analysis, days before anyone
   * could know of them (their age, MTTR and as-of answers wrong), and every report of one
   * analysis would fall on one instant, where the later in the log counts: a late, older report
   * would become current again (`reaches`). A report's findings are as of its `time`, so that
   * is when it takes effect, and what a late event is judged against.
   */
  readonly at: number
}

export const imageKey = (account: string, digest: string): string => `${account}\u0000${digest}`

export const tagKey = (t: { account: string; registry: string; repository: string; tag: string }): string =>
  `${t.account}\u0000${t.registry}\u0000${t.repository}\u0000${t.tag}`

export const findingKey = (f: {
  vulnerability_id: string
  package: string
  package_version: string
}): string => `${f.vulnerability_id}\u0000${f.package}\u0000${f.package_version}`

/**
 * What a batch needs to know of the prior state: the latest period of each image and tag it
 * names, and which are open. Each named one comes with the earliest instant the batch judges
 * it at (`reaches`): a closed period that ended before it makes no difference to the batch.
 */
export interface StateNeeds {
  /** The accounts the batch names, each with the earliest instant it judges anything of theirs at. */
  readonly accounts: ReadonlyMap<string, number>
  readonly digests: ReadonlySet<string>
  /** The images themselves, by `imageKey`: `digests` names them across all `accounts`. */
  readonly images: ReadonlyMap<string, number>
  /** By `tagKey`: the tags of the batch's events and those its inventory snapshots list. */
  readonly tags: ReadonlyMap<string, number>
  /** Accounts with an inventory snapshot in the batch: all their open images and tags are needed. */
  readonly snapshotAccounts: ReadonlySet<string>
  /**
   * Also the latest periods of the images and tags of `snapshotAccounts` that ended at or after
   * this instant (none open follows them): how the state cache reads an account whole, so that
   * an image or tag of it that it does not hold needs no query for an event at this instant or
   * later.
   */
  readonly closedAfter?: number
}

/** The periods as of the batch's first offset, by `imageKey` and `tagKey`. */
export interface EntityState {
  /** The open ones. */
  readonly images: ReadonlyMap<string, ImageRow>
  readonly tags: ReadonlyMap<string, TagHistoryRow>
  /**
   * The latest period, closed, of each image and tag the batch names that has none open: when
   * it ended (`valid_to`: deleted, reconciled away) and why (`closed_by`), which an event older
   * than that end cannot change (`reaches`).
   */
  readonly closedImages: ReadonlyMap<string, ImageRow>
  readonly closedTags: ReadonlyMap<string, TagHistoryRow>
}

/** Open finding periods as of the batch's first offset: by `imageKey`, then `findingKey`. */
export type FindingState = ReadonlyMap<string, ReadonlyMap<string, FindingRow>>

/** What happens to an image's findings, in log order. */
export type FindingOp =
  | {
      readonly kind: 'report'
      readonly offset: number
      readonly at: number
      readonly registry: string
      readonly repository: string
      readonly findings: readonly Finding[]
    }
  | {
      readonly kind: 'close'
      readonly offset: number
      readonly at: number
      readonly reason: 'image_deleted' | 'image_inventory'
    }

/** One image's finding operations, in log order. */
export interface ImageFindingOps {
  readonly account: string
  readonly digest: string
  readonly ops: readonly FindingOp[]
}

export interface EntityRows {
  readonly images: readonly ImageRow[]
  readonly tagHistory: readonly TagHistoryRow[]
  readonly tagsCurrent: readonly TagCurrentRow[]
  readonly policyEvaluations: readonly PolicyEvaluationRow[]
  readonly policyLatest: readonly PolicyLatestRow[]
  /** By `imageKey`: the finding changes phase two applies. */
  readonly findingOps: ReadonlyMap<string, ImageFindingOps>
  /** What is open once the batch is folded, by `imageKey` and `tagKey`: the next batch's state. */
  readonly openImages: ReadonlyMap<string, ImageRow>
  readonly openTags: ReadonlyMap<string, TagHistoryRow>
  /**
   * The latest period, closed, of each image and tag the state or the batch had one of and that
   * has none open once the batch is folded: with `openImages` and `openTags`, the next batch's.
   */
  readonly closedImages: ReadonlyMap<string, ImageRow>
  readonly closedTags: ReadonlyMap<string, TagHistoryRow>
}

export interface FindingRows {
  readonly findings: readonly FindingRow[]
  readonly lifecycle: readonly LifecycleRow[]
  /** The open findings of every image the batch touched once it is folded, by `imageKey`. */
  readonly openFindings: ReadonlyMap<string, ReadonlyMap<string, FindingRow>>
}

/**
 * The prior state a batch reads: the images and tags its events name (an inventory snapshot
 * names the tags it lists, which it may point), everything open of a snapshot's account.
 */
export const stateNeeds = (events: readonly Positioned[]): StateNeeds => {
  const accounts = new Map<string, number>()
  const digests = new Set<string>()
  const images = new Map<string, number>()
  const tags = new Map<string, number>()
  const snapshotAccounts = new Set<string>()
  const earliest = (map: Map<string, number>, key: string, at: number) => {
    const known = map.get(key)
    if (known === undefined || at < known) map.set(key, at)
  }
  for (const { event, at } of events) {
    switch (event.type) {
      case 'herald.report.image.analyzed':
      case 'herald.report.image.deleted':
        earliest(accounts, event.account, at)
        digests.add(event.data.digest)
        earliest(images, imageKey(event.account, event.data.digest), at)
        break
      case 'herald.report.tag.digest_changed':
      case 'herald.report.tag.deleted':
        earliest(accounts, event.account, at)
        earliest(tags, tagKey({ account: event.account, ...event.data }), at)
        break
      case 'herald.report.inventory.snapshot': {
        const taken = reconciledAt(event.data.taken_at, at)
        earliest(accounts, event.account, taken)
        snapshotAccounts.add(event.account)
        for (const t of event.data.tags) earliest(tags, tagKey({ account: event.account, ...pick(t) }), taken)
        break
      }
      default:
    }
  }
  return { accounts, digests, images, tags, snapshotAccounts }
}

const time = toClickHouseTime

/**
 * Whether an event at `at` may change an image or a tag whose latest instant is `latest`: while
 * it is open, when the image was last analysed or the tag pointed where it points; once closed,
 * when its period ended (deleted, or reconciled away by an inventory). Not when it is older.
 * The log is in arrival order, not in time order: an event delivered late (a producer's
 * retry, a backlog drained from elsewhere) can come after one that happened after it. Folded
 * as if it were the newest, it would make an older report the current one, or end a period
 * before it began (an image deleted before its last analysis would resolve the findings that
 * analysis detected before they were detected: a negative time to resolve). The present is
 * what the newest event said; the late one stays in the raw `events` table. Of two at one
 * instant the later in the log counts, as for policy evaluations.
 *
 * So an analysis older than the image's deletion does not bring it back (it was deleted after
 * that analysis), nor does a move older than the tag's deletion, nor an inventory taken before
 * it that still lists the tag: the state holds the end of the latest closed period of each
 * image and tag a batch names, as well as the open ones (`EntityState`).
 *
 * Inserting it into the past instead would rewrite periods already written (split a tag's
 * period, an image's findings), which the fold cannot do from the latest periods alone.
 */
const reaches = (at: number, latest: string): boolean => at >= fromClickHouseTime(latest)

/** `reaches` for an image or tag with no open period: its latest closed one, if any, ended by `at`. */
const reachesClosed = (at: number, closed: { readonly valid_to: string | null } | undefined): boolean =>
  closed?.valid_to == null || reaches(at, closed.valid_to)

/**
 * The instant an inventory snapshot reconciles at: when it was taken (`taken_at`), not when it
 * was sent. It lists what existed then, so what it leaves out ended by then, and `asOf` that
 * instant or later must not show it; what began or ended after (an image analysed, a tag
 * pointed or deleted since) it cannot know of, and `reaches` leaves alone: a tag deleted after
 * the inventory was taken is not re-created for being listed. Never after the event's own
 * time: an inventory cannot be taken after it was sent, and one whose clock says so would
 * otherwise end periods in the future of the events that follow it.
 */
const reconciledAt = (takenAt: string, at: number): number => Math.min(instantOfTime(takenAt), at)

/** The instant a policy evaluation took place: its `evaluated_at`, or its `at` without one. */
const evaluatedAtOf = (evaluatedAt: string | undefined, at: number): number =>
  evaluatedAt === undefined ? at : instantOfTime(evaluatedAt)

/**
 * The earliest instant an event may change the history at: an inventory's reconciliation
 * (`reconciledAt`), a policy evaluation's `evaluated_at`, any other event's `at`. Whatever was
 * read as of an earlier instant holds; a metric point recorded as of this one or later may not.
 */
export const changesFrom = ({ event, at }: Positioned): number => {
  switch (event.type) {
    case 'herald.report.inventory.snapshot':
      return reconciledAt(event.data.taken_at, at)
    case 'herald.report.policy.evaluated':
      return evaluatedAtOf(event.data.evaluated_at, at)
    default:
      return at
  }
}

/**
 * Why the fold cannot take `p`, or undefined: an instant it would write (its `at`, an
 * inventory's `taken_at`, an evaluation's `evaluated_at`) that is none, which the contract
 * refuses (`instantOf`) but an event it let through could carry. Asked of each report event
 * before it is folded, so such an event is skipped rather than failing its batch.
 */
export const unfoldable = (p: Positioned): string | undefined => {
  if (!Number.isFinite(p.at)) return 'time names no instant'
  if (Number.isFinite(changesFrom(p))) return undefined
  return p.event.type === 'herald.report.inventory.snapshot'
    ? 'data.taken_at names no instant'
    : 'data.evaluated_at names no instant'
}

/**
 * The position in `events` of the first event the fold throws on, folded after those before
 * it on `entities` (and, given `findings`, through phase two): the fold is deterministic and in
 * log order, so the shortest failing prefix ends at it, found in a logarithmic number of
 * folds. Undefined when the fold takes them all. Only for a batch whose fold threw: an event a
 * gap in the contract let through must not stall its partition at every redelivery.
 */
export const firstUnfoldable = (
  events: readonly Positioned[],
  entities: EntityState,
  findings?: FindingState,
): number | undefined => {
  const throws = (end: number): boolean => {
    try {
      const rows = foldEntities(events.slice(0, end), entities)
      if (findings !== undefined) foldFindings(rows.findingOps, findings)
      return false
    } catch {
      return true
    }
  }
  if (!throws(events.length)) return undefined
  // The fewest events whose fold throws: more than `low - 1`, at most `high`.
  let low = 1
  let high = events.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (throws(middle)) high = middle
    else low = middle + 1
  }
  return low - 1
}

const closeImage = (row: ImageRow, offset: number, at: number, by: ClosedBy): ImageRow => ({
  ...row,
  closed_offset: offset,
  valid_to: time(at),
  closed_by: by,
  version: offset,
})

const closeTag = (row: TagHistoryRow, offset: number, at: number, by: ClosedBy): TagHistoryRow => ({
  ...row,
  closed_offset: offset,
  valid_to: time(at),
  closed_by: by,
  version: offset,
})

/**
 * Phase one: images, tags and policy evaluations, in log order. Emits only the last version
 * of each row (the table keeps the highest version anyway) and the finding operations per
 * image for phase two.
 */
export const foldEntities = (events: readonly Positioned[], state: EntityState): EntityRows =>
  drain(entitySteps(events, state))

/** `foldEntities` in slices of the event loop: the same rows, with other work let in between. */
export const foldEntitiesSliced = (
  events: readonly Positioned[],
  state: EntityState,
  slice: Slice = loopSlice,
): Promise<EntityRows> => drainSliced(entitySteps(events, state), slice)

// The fold, pausing (`yield`) before each event so a driver may hand the loop back.
function* entitySteps(events: readonly Positioned[], state: EntityState): Generator<void, EntityRows, void> {
  const openImages = new Map(state.images)
  const openTags = new Map(state.tags)
  const closedImages = new Map(state.closedImages)
  const closedTags = new Map(state.closedTags)
  const images = new Map<string, ImageRow>()
  const tagHistory = new Map<string, TagHistoryRow>()
  const tagsCurrent = new Map<string, TagCurrentRow>()
  const policyEvaluations: PolicyEvaluationRow[] = []
  const policyLatest = new Map<string, { row: PolicyLatestRow; evaluatedAt: number }>()
  const findingOps = new Map<string, { account: string; digest: string; ops: FindingOp[] }>()

  const putImage = (row: ImageRow) =>
    images.set(`${imageKey(row.account, row.digest)}\u0000${row.from_offset}`, row)
  const putTag = (row: TagHistoryRow) => tagHistory.set(`${tagKey(row)}\u0000${row.from_offset}`, row)
  const op = (image: { account: string; digest: string }, value: FindingOp) => {
    const key = imageKey(image.account, image.digest)
    const entry = findingOps.get(key)
    if (entry === undefined)
      findingOps.set(key, { account: image.account, digest: image.digest, ops: [value] })
    else entry.ops.push(value)
  }

  const endImage = (key: string, offset: number, at: number, by: 'deleted' | 'inventory') => {
    const open = openImages.get(key)
    if (open === undefined || !reaches(at, open.last_analyzed_at)) return
    const closed = closeImage(open, offset, at, by)
    putImage(closed)
    openImages.delete(key)
    closedImages.set(key, closed)
    op(open, { kind: 'close', offset, at, reason: by === 'deleted' ? 'image_deleted' : 'image_inventory' })
  }

  const endTag = (key: string, offset: number, at: number, by: ClosedBy, active: boolean) => {
    const open = openTags.get(key)
    if (open === undefined || !reaches(at, open.valid_from)) return
    const closed = closeTag(open, offset, at, by)
    putTag(closed)
    openTags.delete(key)
    closedTags.set(key, closed)
    if (!active) {
      tagsCurrent.set(key, {
        account: open.account,
        registry: open.registry,
        repository: open.repository,
        tag: open.tag,
        digest: open.digest,
        active: 0,
        since: time(at),
        version: offset,
      })
    }
  }

  const pointTag = (
    ref: { account: string; registry: string; repository: string; tag: string },
    digest: string,
    offset: number,
    at: number,
    by: ClosedBy,
  ) => {
    const key = tagKey(ref)
    const open = openTags.get(key)
    if (
      open === undefined
        ? !reachesClosed(at, closedTags.get(key))
        : open.digest === digest || !reaches(at, open.valid_from)
    )
      return
    endTag(key, offset, at, by, true)
    closedTags.delete(key)
    const row: TagHistoryRow = {
      account: ref.account,
      registry: ref.registry,
      repository: ref.repository,
      tag: ref.tag,
      from_offset: offset,
      digest,
      valid_from: time(at),
      closed_offset: 0,
      valid_to: null,
      closed_by: '',
      version: offset,
    }
    openTags.set(key, row)
    putTag(row)
    tagsCurrent.set(key, { ...ref, digest, active: 1, since: time(at), version: offset })
  }

  for (const { event, offset, at } of events) {
    yield
    const account = event.account
    switch (event.type) {
      case 'herald.report.image.analyzed': {
        const data = event.data
        const key = imageKey(account, data.digest)
        const open = openImages.get(key)
        if (open === undefined) {
          if (!reachesClosed(at, closedImages.get(key))) break
          closedImages.delete(key)
        } else {
          if (!reaches(at, open.last_analyzed_at)) break
          // Each analysis is a period of its own, like each set of a finding's attributes: a
          // period's columns then never change but when it ends, so the state read as of any
          // offset holds the image's last analysis before it, which `reaches` judges by. Rewritten
          // in place, a replayed batch read the instant of an analysis after its first offset.
          putImage(closeImage(open, offset, at, 'analyzed'))
        }
        const row: ImageRow = {
          account,
          digest: data.digest,
          from_offset: offset,
          registry: data.registry,
          repository: data.repository,
          image_id: data.image_id ?? '',
          distro_name: data.distro.name,
          distro_version: data.distro.version,
          package_count: data.package_count,
          valid_from: time(at),
          last_analyzed_at: time(at),
          closed_offset: 0,
          valid_to: null,
          closed_by: '',
          version: offset,
        }
        openImages.set(key, row)
        putImage(row)
        op(row, {
          kind: 'report',
          offset,
          at,
          registry: data.registry,
          repository: data.repository,
          findings: data.findings,
        })
        break
      }
      case 'herald.report.image.deleted':
        endImage(imageKey(account, event.data.digest), offset, at, 'deleted')
        break
      case 'herald.report.tag.digest_changed':
        pointTag({ account, ...pick(event.data) }, event.data.digest, offset, at, 'moved')
        break
      case 'herald.report.tag.deleted':
        endTag(tagKey({ account, ...pick(event.data) }), offset, at, 'deleted', false)
        break
      case 'herald.report.inventory.snapshot': {
        const data = event.data
        const taken = reconciledAt(data.taken_at, at)
        const listedImages = new Set(data.images.map((i) => imageKey(account, i.digest)))
        const listedTags = new Map(data.tags.map((t) => [tagKey({ account, ...pick(t) }), t]))
        for (const [key, open] of [...openImages]) {
          if (open.account === account && !listedImages.has(key)) endImage(key, offset, taken, 'inventory')
        }
        for (const [key, open] of [...openTags]) {
          if (open.account === account && !listedTags.has(key)) endTag(key, offset, taken, 'inventory', false)
        }
        for (const listed of listedTags.values()) {
          pointTag({ account, ...pick(listed) }, listed.digest, offset, taken, 'inventory')
        }
        break
      }
      case 'herald.report.policy.evaluated': {
        const data = event.data
        const evaluatedAt = evaluatedAtOf(data.evaluated_at, at)
        const row = {
          account,
          registry: data.registry,
          repository: data.repository,
          tag: data.tag,
          evaluated_at: time(evaluatedAt),
          event_id: event.id,
          digest: data.digest,
          evaluation_id: data.evaluation_id ?? '',
          bundle_id: data.bundle_id,
          bundle_digest: data.bundle_digest,
          status: data.status,
          final_action: data.final_action ?? '',
          reasons: data.reasons.map((r) => ({
            gate: r.gate,
            trigger: r.trigger,
            action: r.action,
            message: r.message,
          })),
        }
        policyEvaluations.push({ ...row, log_offset: offset })
        // The latest by evaluated_at, the later in the log of two at one instant, as the
        // table's version (`recency`) orders them: one delivered late is not the current one.
        // Before 1900 all count as 1900, as there (`instantOfTime`).
        const key = tagKey(row)
        const kept = policyLatest.get(key)
        if (kept === undefined || evaluatedAt >= kept.evaluatedAt)
          policyLatest.set(key, { row: { ...row, version: offset }, evaluatedAt })
        break
      }
      default:
    }
  }

  return {
    images: [...images.values()],
    tagHistory: [...tagHistory.values()],
    tagsCurrent: [...tagsCurrent.values()],
    policyEvaluations,
    policyLatest: [...policyLatest.values()].map((latest) => latest.row),
    findingOps,
    openImages,
    openTags,
    closedImages,
    closedTags,
  }
}

const pick = (t: { registry: string; repository: string; tag: string }) => ({
  registry: t.registry,
  repository: t.repository,
  tag: t.tag,
})

/** Whether a report's finding leaves an open period's attributes as they are. */
const sameAttributes = (row: FindingRow, f: Finding, registry: string, repository: string): boolean =>
  row.severity === f.severity &&
  row.fix_version === f.fix_version &&
  row.kev === (f.kev ? 1 : 0) &&
  row.cvss === (f.cvss ?? null) &&
  row.package_type === f.type &&
  row.url === (f.url ?? '') &&
  row.feed_group === (f.feed_group ?? '') &&
  row.package_path === (f.package_path ?? '') &&
  row.registry === registry &&
  row.repository === repository

const lifecycleOf = (
  row: FindingRow,
  resolved?: { offset: number; at: string; resolution: Resolution },
): LifecycleRow => ({
  account: row.account,
  digest: row.digest,
  vulnerability_id: row.vulnerability_id,
  package: row.package,
  package_version: row.package_version,
  detected_offset: row.detected_offset,
  registry: row.registry,
  repository: row.repository,
  severity: row.severity,
  kev: row.kev,
  fix_version: row.fix_version,
  detected_at: row.detected_at,
  fix_first_at: row.fix_first_at,
  resolved_offset: resolved?.offset ?? 0,
  resolved_at: resolved?.at ?? null,
  resolution: resolved?.resolution ?? '',
  version: resolved?.offset ?? row.from_offset,
})

/**
 * Phase two: each image's findings. A report replaces the image's finding set: findings it
 * no longer lists are resolved (`removed`), new ones open an episode, and a finding whose
 * attributes changed (severity re-scored, fix published, KEV listed) closes its period and
 * opens the next one of the same episode. Deleting an image, or an inventory that no longer
 * lists it, resolves all its open findings.
 */
export const foldFindings = (
  findingOps: ReadonlyMap<string, ImageFindingOps>,
  state: FindingState,
): FindingRows => drain(findingSteps(findingOps, state))

/** `foldFindings` in slices of the event loop: the same rows, with other work let in between. */
export const foldFindingsSliced = (
  findingOps: ReadonlyMap<string, ImageFindingOps>,
  state: FindingState,
  slice: Slice = loopSlice,
): Promise<FindingRows> => drainSliced(findingSteps(findingOps, state), slice)

// The fold, pausing (`yield`) before each image so a driver may hand the loop back.
function* findingSteps(
  findingOps: ReadonlyMap<string, ImageFindingOps>,
  state: FindingState,
): Generator<void, FindingRows, void> {
  const findings: FindingRow[] = []
  const lifecycle: LifecycleRow[] = []
  const openFindings = new Map<string, ReadonlyMap<string, FindingRow>>()

  for (const [key, { account, digest, ops }] of findingOps) {
    yield
    const open = new Map(state.get(key))
    openFindings.set(key, open)
    // This image's rows, by `findingKey` and offset: every row a fold writes belongs to the
    // image whose operations it applies, so the keys need not name the image.
    const periods = new Map<string, FindingRow>()
    const episodes = new Map<string, LifecycleRow>()
    const put = (
      fk: string,
      row: FindingRow,
      resolved?: { offset: number; at: string; resolution: Resolution },
    ) => {
      periods.set(`${fk}\u0000${row.from_offset}`, row)
      episodes.set(`${fk}\u0000${row.detected_offset}`, lifecycleOf(row, resolved))
    }
    const close = (
      fk: string,
      row: FindingRow,
      offset: number,
      at: number,
      by: ClosedBy,
      resolution?: Resolution,
    ) => {
      const closed: FindingRow = {
        ...row,
        closed_offset: offset,
        valid_to: time(at),
        closed_by: by,
        version: offset,
      }
      periods.set(`${fk}\u0000${row.from_offset}`, closed)
      if (resolution !== undefined) put(fk, closed, { offset, at: time(at), resolution })
    }
    for (const op of ops) {
      if (op.kind === 'close') {
        for (const [fk, row] of open) close(fk, row, op.offset, op.at, op.reason, op.reason)
        open.clear()
        continue
      }
      const reported = new Map<string, Finding>()
      for (const f of op.findings) reported.set(`${f.id}\u0000${f.package}\u0000${f.version}`, f)
      // Deleting the entry being visited is safe in a Map's iteration.
      for (const [fk, row] of open) {
        if (!reported.has(fk)) {
          close(fk, row, op.offset, op.at, 'removed', 'removed')
          open.delete(fk)
        }
      }
      const at = time(op.at)
      for (const [fk, f] of reported) {
        const previous = open.get(fk)
        // Most findings of a re-analysis are unchanged: decided before any row is built.
        if (previous !== undefined && sameAttributes(previous, f, op.registry, op.repository)) continue
        const row: FindingRow = {
          account,
          digest,
          vulnerability_id: f.id,
          package: f.package,
          package_version: f.version,
          registry: op.registry,
          repository: op.repository,
          package_type: f.type,
          severity: f.severity,
          fix_version: f.fix_version,
          kev: f.kev ? 1 : 0,
          cvss: f.cvss ?? null,
          url: f.url ?? '',
          feed_group: f.feed_group ?? '',
          package_path: f.package_path ?? '',
          detected_offset: previous?.detected_offset ?? op.offset,
          detected_at: previous?.detected_at ?? at,
          fix_first_at: previous?.fix_first_at ?? (f.fix_version !== null ? at : null),
          closed_offset: 0,
          valid_to: null,
          closed_by: '',
          version: op.offset,
          from_offset: op.offset,
          valid_from: at,
        }
        if (previous !== undefined) close(fk, previous, op.offset, op.at, 'changed')
        open.set(fk, row)
        put(fk, row)
      }
    }
    for (const row of periods.values()) findings.push(row)
    for (const row of episodes.values()) lifecycle.push(row)
  }
  return { findings, lifecycle, openFindings }
}
