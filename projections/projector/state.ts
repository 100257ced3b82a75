import type { Warehouse } from '../../src/ports/warehouse.ts'
import { type EntityState, type FindingState, findingKey, imageKey, type StateNeeds, tagKey } from './fold.ts'
import { fromClickHouseTime, toClickHouseTime } from './rows.ts'
import type { FindingRow, ImageRow, TagHistoryRow } from './tables.ts'

/** Physical names of the tables the projector writes; a rebuild points them at fresh copies. */
export interface ProjectionTables {
  readonly events: string
  readonly images: string
  readonly tag_history: string
  readonly tags_current: string
  readonly image_vulnerabilities: string
  readonly finding_lifecycle: string
  readonly policy_evaluations: string
  readonly policy_evaluation_latest: string
  readonly projection_progress: string
}

export const DEFAULT_TABLES: ProjectionTables = {
  events: 'events',
  images: 'images',
  tag_history: 'tag_history',
  tags_current: 'tags_current',
  image_vulnerabilities: 'image_vulnerabilities',
  finding_lifecycle: 'finding_lifecycle',
  policy_evaluations: 'policy_evaluations',
  policy_evaluation_latest: 'policy_evaluation_latest',
  projection_progress: 'projection_progress',
}

// A period is open as of `offset` when it began before it and had not ended before it. Rows
// a partial earlier run of this very batch wrote (from_offset >= offset) are not state.
const OPEN_AS_OF = 'from_offset < {offset:UInt64} AND (closed_offset = 0 OR closed_offset >= {offset:UInt64})'

// A period that ended at or after `offset` is seen as it was then: open. Its other columns are
// as of its last version, which is exact because a period's columns change only when it ends
// (tags, findings) or are rewritten from the event that changes them (an image's re-analysis).
const reopened = <Row extends { closed_offset: number; valid_to: string | null; closed_by: string }>(
  row: Row,
): Row => (row.closed_offset === 0 ? row : { ...row, closed_offset: 0, valid_to: null, closed_by: '' })

/**
 * The latest period of each key as of `offset`, of the keys `keyed` selects and, of the other
 * keys `whole` selects, the open ones and those closed at or after `closedAfter`. The periods
 * of one key follow each other in log order (a period ends at the offset its successor begins,
 * a closed one never reopens) and in time (none begins before the one it follows ended), so
 * the latest is the one that began last before `offset`; read the same way as the open
 * periods, it is exact whatever was stored since.
 */
const latestAsOf = (
  table: string,
  key: string,
  keyed: string,
  whole: string,
  closedAfter: number | undefined,
): string => `SELECT * FROM ${table} FINAL
  WHERE account IN {accounts:Array(String)} AND (${keyed} OR ${whole}) AND from_offset < {offset:UInt64}
    AND (${keyed} OR closed_offset = 0 OR closed_offset >= {offset:UInt64}${
      closedAfter === undefined ? '' : ` OR valid_to >= {closedAfter:DateTime64(3, 'UTC')}`
    })
  ORDER BY from_offset DESC LIMIT 1 BY ${key}`

/**
 * Reads the images and tags a batch needs, as they were just before log position `offset` —
 * not as they are now — so that a batch replayed after it (or part of it) was already written
 * computes exactly the rows it computed the first time: the latest period of each one it
 * names, open or closed, and the open ones of the accounts it reads whole (with their closed
 * ones that ended at or after `needs.closedAfter`, when given).
 */
export const loadEntityState = async (
  warehouse: Warehouse,
  needs: StateNeeds,
  offset: number,
  tables: ProjectionTables = DEFAULT_TABLES,
): Promise<EntityState> => {
  const state = {
    images: new Map<string, ImageRow>(),
    tags: new Map<string, TagHistoryRow>(),
    closedImages: new Map<string, ImageRow>(),
    closedTags: new Map<string, TagHistoryRow>(),
  }
  if (needs.accounts.size === 0) return state
  const accounts = [...needs.accounts.keys()]
  const snapshotAccounts = [...needs.snapshotAccounts]
  const tagNames = [...new Set([...needs.tags.keys()].map((key) => key.split('\u0000')[3] ?? ''))]
  // `toClickHouseTime` brings an account with no earliest event (-Infinity) within the column's range.
  const { closedAfter } = needs
  const params = {
    accounts,
    snapshotAccounts,
    offset,
    ...(closedAfter === undefined ? {} : { closedAfter: toClickHouseTime(closedAfter) }),
  }
  const whole = 'account IN {snapshotAccounts:Array(String)}'
  const [imageRows, tagRows] = await Promise.all([
    needs.digests.size === 0 && snapshotAccounts.length === 0
      ? []
      : warehouse.query<ImageRow>(
          latestAsOf(
            tables.images,
            'account, digest',
            'digest IN {digests:Array(String)}',
            whole,
            closedAfter,
          ),
          { ...params, digests: [...needs.digests] },
        ),
    needs.tags.size === 0 && snapshotAccounts.length === 0
      ? []
      : warehouse.query<TagHistoryRow>(
          latestAsOf(
            tables.tag_history,
            'account, registry, repository, tag',
            'tag IN {tagNames:Array(String)}',
            whole,
            closedAfter,
          ),
          { ...params, tagNames },
        ),
  ])
  // The queries select by digest and by tag name across the accounts: only the keys asked for.
  const wanted = (named: boolean, account: string, row: { closed_offset: number; valid_to: string | null }) =>
    named ||
    (needs.snapshotAccounts.has(account) &&
      (row.closed_offset === 0 || row.closed_offset >= offset || endsFrom(row.valid_to, closedAfter)))
  for (const row of imageRows) {
    const key = imageKey(row.account, row.digest)
    if (!wanted(needs.images.has(key), row.account, row)) continue
    if (row.closed_offset === 0 || row.closed_offset >= offset) state.images.set(key, reopened(row))
    else state.closedImages.set(key, row)
  }
  for (const row of tagRows) {
    const key = tagKey(row)
    if (!wanted(needs.tags.has(key), row.account, row)) continue
    if (row.closed_offset === 0 || row.closed_offset >= offset) state.tags.set(key, reopened(row))
    else state.closedTags.set(key, row)
  }
  return state
}

const endsFrom = (validTo: string | null, instant: number | undefined): boolean =>
  validTo !== null && instant !== undefined && fromClickHouseTime(validTo) >= instant

/** Reads the open findings of the given images as they were just before `offset`. */
export const loadFindingState = async (
  warehouse: Warehouse,
  images: Iterable<{ readonly account: string; readonly digest: string }>,
  offset: number,
  tables: ProjectionTables = DEFAULT_TABLES,
): Promise<FindingState> => {
  const wanted = new Set<string>()
  const accounts = new Set<string>()
  const digests = new Set<string>()
  for (const image of images) {
    wanted.add(imageKey(image.account, image.digest))
    accounts.add(image.account)
    digests.add(image.digest)
  }
  const state = new Map<string, Map<string, FindingRow>>()
  if (wanted.size === 0) return state
  const rows = await warehouse.query<FindingRow>(
    `SELECT * FROM ${tables.image_vulnerabilities} FINAL
      WHERE account IN {accounts:Array(String)} AND digest IN {digests:Array(String)} AND ${OPEN_AS_OF}`,
    { accounts: [...accounts], digests: [...digests], offset },
  )
  for (const row of rows) {
    const key = imageKey(row.account, row.digest)
    if (!wanted.has(key)) continue
    let findings = state.get(key)
    if (findings === undefined) {
      findings = new Map()
      state.set(key, findings)
    }
    findings.set(findingKey(row), reopened(row))
  }
  return state
}
