import type { Warehouse } from '../../src/ports/warehouse.ts'
import { type EntityState, type FindingState, findingKey, imageKey, type StateNeeds, tagKey } from './fold.ts'
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
 * Reads the open images and tags a batch needs, as they were just before log position
 * `offset` — not as they are now — so that a batch replayed after it (or part of it) was
 * already written computes exactly the rows it computed the first time.
 */
export const loadEntityState = async (
  warehouse: Warehouse,
  needs: StateNeeds,
  offset: number,
  tables: ProjectionTables = DEFAULT_TABLES,
): Promise<EntityState> => {
  if (needs.accounts.size === 0) return { images: new Map(), tags: new Map() }
  const accounts = [...needs.accounts]
  const snapshotAccounts = [...needs.snapshotAccounts]
  const tagNames = [...new Set([...needs.tags].map((key) => key.split('\u0000')[3] ?? ''))]
  const [imageRows, tagRows] = await Promise.all([
    needs.digests.size === 0 && snapshotAccounts.length === 0
      ? []
      : warehouse.query<ImageRow>(
          `SELECT * FROM ${tables.images} FINAL
            WHERE account IN {accounts:Array(String)}
              AND (digest IN {digests:Array(String)} OR account IN {snapshotAccounts:Array(String)})
              AND ${OPEN_AS_OF}`,
          { accounts, digests: [...needs.digests], snapshotAccounts, offset },
        ),
    needs.tags.size === 0 && snapshotAccounts.length === 0
      ? []
      : warehouse.query<TagHistoryRow>(
          `SELECT * FROM ${tables.tag_history} FINAL
            WHERE account IN {accounts:Array(String)}
              AND (tag IN {tagNames:Array(String)} OR account IN {snapshotAccounts:Array(String)})
              AND ${OPEN_AS_OF}`,
          { accounts, tagNames, snapshotAccounts, offset },
        ),
  ])
  const images = new Map<string, ImageRow>()
  for (const row of imageRows) {
    const key = imageKey(row.account, row.digest)
    if (needs.digests.has(row.digest) || needs.snapshotAccounts.has(row.account))
      images.set(key, reopened(row))
  }
  const tags = new Map<string, TagHistoryRow>()
  for (const row of tagRows) {
    const key = tagKey(row)
    if (needs.tags.has(key) || needs.snapshotAccounts.has(row.account)) tags.set(key, reopened(row))
  }
  return { images, tags }
}

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
