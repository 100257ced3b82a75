import { type EntityState, type FindingState, imageKey, type StateNeeds, tagKey } from './fold.ts'
import { fromClickHouseTime } from './rows.ts'
import type { FindingRow, ImageRow, TagHistoryRow } from './tables.ts'

/**
 * How much prior state a projector keeps in memory, over all its partitions: each partition it
 * holds gets an equal share.
 */
export interface StateCacheLimits {
  /** Images (their latest period, open or closed, or known to have none). Default 50,000. */
  readonly images?: number
  /** Tags (their latest period, open or closed, or known to have none). Default 50,000. */
  readonly tags?: number
  /** Open findings, counted in rows, over all cached images. Default 200,000. */
  readonly findingRows?: number
}

export type LoadEntities = (needs: StateNeeds) => Promise<EntityState>
export type LoadFindings = (
  images: readonly { readonly account: string; readonly digest: string }[],
) => Promise<FindingState>

/** The state a partition's tables held just before `position`, as far as it is cached. */
export interface PartitionState {
  /** The entity state `needs` asks for; what is not cached is loaded, and kept. */
  entities(needs: StateNeeds, load: LoadEntities): Promise<EntityState>
  /** The open findings of the given images; what is not cached is loaded, and kept. */
  findings(
    images: Iterable<{ readonly account: string; readonly digest: string }>,
    load: LoadFindings,
  ): Promise<FindingState>
  /**
   * Moves the cache past a batch once every table has it: `state` is what the batch started
   * from, `after` what its fold left open and closed, `next` the offset that follows the batch.
   */
  advance(
    state: { readonly entities: EntityState; readonly findings: FindingState },
    after: {
      readonly images: ReadonlyMap<string, ImageRow>
      readonly tags: ReadonlyMap<string, TagHistoryRow>
      readonly closedImages: ReadonlyMap<string, ImageRow>
      readonly closedTags: ReadonlyMap<string, TagHistoryRow>
      readonly imageRows: Iterable<ImageRow>
      readonly tagRows: Iterable<TagHistoryRow>
      readonly findings: ReadonlyMap<string, ReadonlyMap<string, FindingRow>>
    },
    next: number,
  ): void
}

export interface StateCache {
  /**
   * The cached state of a partition for a batch that starts at `offset`. Anything other than
   * the offset right after the last batch advanced (a redelivery, a replay with other
   * boundaries, offsets another instance projected meanwhile) empties it first, because then
   * what is cached is not the state just before `offset`.
   */
  at(topic: string, partition: number, offset: number): PartitionState
}

interface Partition {
  position: number
  // The latest period of each as of `position`, open (`closed_offset` 0) or closed; `null`:
  // known to have had none.
  readonly images: Map<string, ImageRow | null>
  readonly tags: Map<string, TagHistoryRow | null>
  readonly findings: Map<string, ReadonlyMap<string, FindingRow>>
  findingRows: number
  /**
   * Accounts all of whose open images and tags are cached, each with an instant (its horizon)
   * after which all its closed ones are too: one of theirs not cached has no open period, and
   * none that ended after the horizon, which is all an event at the horizon or later needs to
   * know of it. Older events need its latest period read.
   */
  readonly complete: Map<string, number>
  /** Accounts with more images or tags (open, or ended since the horizon) than the cache keeps whole. */
  readonly oversized: Set<string>
}

const NONE: ReadonlyMap<string, FindingRow> = new Map()

const accountOf = (key: string): string => key.slice(0, key.indexOf('\u0000'))

// Map iteration follows insertion order, so deleting and setting again on every use makes the
// first key the least recently used one.
const touch = <K, V>(map: Map<K, V>, key: K, value: V): void => {
  map.delete(key)
  map.set(key, value)
}

const trim = <K, V>(map: Map<K, V>, limit: number, onEvict?: (value: V) => void): void => {
  for (const [key, value] of map) {
    if (map.size <= limit) return
    map.delete(key)
    onEvict?.(value)
  }
}

/** Whether a cached latest period is open as of the cache's position. */
const isOpen = (row: { readonly closed_offset: number } | null | undefined): boolean =>
  row != null && row.closed_offset === 0

/**
 * Keeps the projector's prior state in memory between batches, so a batch reads from the
 * warehouse only the images, tags and findings it has not seen recently, instead of querying
 * every table with `FINAL` each time. Of a deleted or reconciled-away image or tag it keeps the
 * latest period too, closed, which an older event delivered late must not undo; an account it
 * reads whole it reads with the periods that ended after the batch's earliest event, so new
 * images and tags need no query as long as events are not older than that.
 *
 * Exact because the cache holds what the tables say as of one log position: it starts from
 * what the warehouse answers as of a batch's first offset (the same query the projector ran
 * before it kept a cache), and it moves forward only by the fold of a batch that was stored in
 * full, to the offset right after it. Any batch that does not start there — a redelivery after a
 * failed insert or a lost commit, a rebalance — empties the partition's cache, and the state is
 * read from the warehouse again as of that batch's first offset. It is bounded (least recently
 * used entries go) and lives in the process: a restart starts empty and fills it again.
 *
 * @example
 * const cache = createStateCache({ findingRows: 100_000 })
 * const state = cache.at(batch.topic, batch.partition, firstOffset)
 * const entities = await state.entities(needs, (missing) => loadEntityState(warehouse, missing, firstOffset))
 */
export const createStateCache = (limits: StateCacheLimits = {}): StateCache => {
  const maxImages = limits.images ?? 50_000
  const maxTags = limits.tags ?? 50_000
  const maxFindingRows = limits.findingRows ?? 200_000
  const partitions = new Map<string, Partition>()
  // Partitions move between instances; an even split keeps the total bounded however many
  // this one has held.
  const share = (limit: number) => Math.max(1, Math.floor(limit / Math.max(1, partitions.size)))
  const fit = (p: Partition) => {
    // An account that loses an open entry is no longer whole, one that loses a closed one no
    // longer holds what ended before that end: its horizon moves up to it. Losing a "none"
    // costs nothing.
    const evicted = (row: ImageRow | TagHistoryRow | null) => {
      if (row === null) return
      const horizon = p.complete.get(row.account)
      if (horizon === undefined) return
      if (isOpen(row)) p.complete.delete(row.account)
      else p.complete.set(row.account, Math.max(horizon, fromClickHouseTime(row.valid_to ?? row.valid_from)))
    }
    trim(p.images, share(maxImages), evicted)
    trim(p.tags, share(maxTags), evicted)
    for (const [key, open] of p.findings) {
      if (p.findingRows <= share(maxFindingRows)) break
      p.findings.delete(key)
      p.findingRows -= open.size
    }
  }

  return {
    at: (topic, partition, offset) => {
      const id = `${topic}/${partition}`
      let cached = partitions.get(id)
      if (cached === undefined || cached.position !== offset) {
        cached = {
          position: offset,
          images: new Map(),
          tags: new Map(),
          findings: new Map(),
          findingRows: 0,
          complete: new Map(),
          oversized: new Set(),
        }
        const added = !partitions.has(id)
        partitions.set(id, cached)
        // One more partition: the others give up their share now, not at their next batch,
        // which a partition this instance no longer holds never gets.
        if (added) for (const other of partitions.values()) fit(other)
      }
      const p = cached

      const setFindings = (key: string, open: ReadonlyMap<string, FindingRow>) => {
        p.findingRows += open.size - (p.findings.get(key)?.size ?? 0)
        touch(p.findings, key, open)
      }

      return {
        entities: async (needs, load) => {
          // Accounts to read in full: then every image and tag of theirs not cached has no open
          // period, nor one that ended after the batch's earliest event of the account, so new
          // digests and inventory snapshots need no query.
          const whole = new Set<string>()
          const missingImages = new Map<string, number>()
          const missingDigests = new Set<string>()
          const missingTags = new Map<string, number>()
          const missingAccounts = new Set<string>()
          // Whether a key judged from `at` on is answered without its own read: its latest
          // period is cached, or its account is whole since before `at`, or is to be read whole.
          const held = (cached: ReadonlyMap<string, unknown>, key: string, account: string, at: number) => {
            if (cached.has(key)) return true
            const horizon = p.complete.get(account)
            if (horizon !== undefined) return at >= horizon
            if (p.oversized.has(account)) return false
            whole.add(account)
            return true
          }
          for (const account of needs.snapshotAccounts) {
            if (!p.complete.has(account)) whole.add(account)
          }
          for (const [key, at] of needs.images) {
            const account = accountOf(key)
            if (held(p.images, key, account, at)) continue
            missingImages.set(key, at)
            missingDigests.add(key.slice(account.length + 1))
            missingAccounts.add(account)
          }
          for (const [key, at] of needs.tags) {
            const account = accountOf(key)
            if (held(p.tags, key, account, at)) continue
            missingTags.set(key, at)
            missingAccounts.add(account)
          }
          if (whole.size > 0 || missingAccounts.size > 0) {
            const accounts = new Map<string, number>()
            let horizon = Number.POSITIVE_INFINITY
            for (const account of [...whole, ...missingAccounts]) {
              const at = needs.accounts.get(account) ?? Number.NEGATIVE_INFINITY
              accounts.set(account, at)
              if (whole.has(account)) horizon = Math.min(horizon, at)
            }
            const loaded = await load({
              accounts,
              digests: missingDigests,
              images: missingImages,
              tags: missingTags,
              snapshotAccounts: whole,
              ...(whole.size > 0 ? { closedAfter: horizon } : {}),
            })
            const counts = new Map<string, number>()
            const count = (account: string) => counts.set(account, (counts.get(account) ?? 0) + 1)
            // What was loaded is each key's latest period, whether read by key or in full.
            for (const loadedImages of [loaded.images, loaded.closedImages]) {
              for (const [key, row] of loadedImages) {
                touch(p.images, key, row)
                if (whole.has(row.account)) count(row.account)
              }
            }
            for (const loadedTags of [loaded.tags, loaded.closedTags]) {
              for (const [key, row] of loadedTags) {
                touch(p.tags, key, row)
                if (whole.has(row.account)) count(row.account)
              }
            }
            // Read by key and not found: it never had a period.
            for (const key of missingImages.keys()) if (!p.images.has(key)) touch(p.images, key, null)
            for (const key of missingTags.keys()) if (!p.tags.has(key)) touch(p.tags, key, null)
            // An account too large to keep whole is read key by key from now on.
            for (const account of whole) {
              if ((counts.get(account) ?? 0) * 2 > Math.min(share(maxImages), share(maxTags))) {
                p.oversized.add(account)
                p.complete.delete(account)
              } else p.complete.set(account, horizon)
            }
          }

          const images = new Map<string, ImageRow>()
          const tags = new Map<string, TagHistoryRow>()
          const closedImages = new Map<string, ImageRow>()
          const closedTags = new Map<string, TagHistoryRow>()
          for (const key of needs.images.keys()) {
            const row = p.images.get(key)
            if (row === undefined) continue
            touch(p.images, key, row)
            if (row !== null) (row.closed_offset === 0 ? images : closedImages).set(key, row)
          }
          for (const key of needs.tags.keys()) {
            const row = p.tags.get(key)
            if (row === undefined) continue
            touch(p.tags, key, row)
            if (row !== null) (row.closed_offset === 0 ? tags : closedTags).set(key, row)
          }
          if (needs.snapshotAccounts.size > 0) {
            // A snapshot closes whatever of its account it does not list: all of it is needed.
            for (const [key, row] of p.images) {
              if (row?.closed_offset === 0 && needs.snapshotAccounts.has(row.account)) images.set(key, row)
            }
            for (const [key, row] of p.tags) {
              if (row?.closed_offset === 0 && needs.snapshotAccounts.has(row.account)) tags.set(key, row)
            }
          }
          return { images, tags, closedImages, closedTags }
        },

        findings: async (wanted, load) => {
          const state = new Map<string, ReadonlyMap<string, FindingRow>>()
          const missing: { account: string; digest: string }[] = []
          for (const image of wanted) {
            const key = imageKey(image.account, image.digest)
            const hit = p.findings.get(key)
            if (hit !== undefined) {
              touch(p.findings, key, hit)
              state.set(key, hit)
            } else if (!isOpen(p.images.get(key)) && (p.images.has(key) || p.complete.has(image.account))) {
              // Findings are open only while their image is: none for an image that was not.
              state.set(key, NONE)
            } else missing.push({ account: image.account, digest: image.digest })
          }
          if (missing.length > 0) {
            const loaded = await load(missing)
            for (const image of missing) {
              const key = imageKey(image.account, image.digest)
              const open = loaded.get(key) ?? NONE
              state.set(key, open)
              setFindings(key, open)
            }
          }
          return state
        },

        advance: (state, after, next) => {
          // Another batch of this partition started meanwhile: this one's view is not current.
          if (partitions.get(id) !== p || p.position !== offset) return
          // Every image and tag the batch had a period of, or wrote one of, has one after it.
          const image = (key: string) =>
            touch(p.images, key, after.images.get(key) ?? after.closedImages.get(key) ?? null)
          const tag = (key: string) =>
            touch(p.tags, key, after.tags.get(key) ?? after.closedTags.get(key) ?? null)
          for (const key of state.entities.images.keys()) image(key)
          for (const key of state.entities.closedImages.keys()) image(key)
          for (const row of after.imageRows) image(imageKey(row.account, row.digest))
          for (const key of state.entities.tags.keys()) tag(key)
          for (const key of state.entities.closedTags.keys()) tag(key)
          for (const row of after.tagRows) tag(tagKey(row))
          for (const [key, open] of after.findings) setFindings(key, open)
          fit(p)
          p.position = next
        },
      }
    },
  }
}
