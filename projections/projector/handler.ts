import { createIngressDecoder, type IngressDecoder } from '../../src/ingress/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { Batch, BatchHandler } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { foldEntities, foldFindings, type Positioned, stateNeeds } from './fold.ts'
import { deduplicationToken, type EventRow, toClickHouseTime, toEventRow } from './rows.ts'
import { DEFAULT_TABLES, loadEntityState, loadFindingState, type ProjectionTables } from './state.ts'

export interface ProjectorOptions {
  readonly warehouse: Warehouse
  readonly clock: () => number
  readonly logger: Logger
  readonly onProjected?: (count: number) => void
  readonly onInvalid?: (count: number) => void
  /**
   * The router's decoder (the same wire formats and contract). The projector only skips and
   * counts what it refuses: the router is the one consumer group that dead-letters it.
   */
  readonly decoder?: IngressDecoder
  /** Where to write; a rebuild passes fresh tables. Default: the migrated ones. */
  readonly tables?: ProjectionTables
  /** Default true; a rebuild, which reads the raw table, does not write it again. */
  readonly writeEvents?: boolean
}

/**
 * The projector's batch handler. For each log batch, in this order: decode; read the state
 * the report tables held just before the batch's first offset; fold the batch into rows
 * (pure); insert the raw events, then every report table, then the partition's progress row.
 * Resolving lets the log commit the batch, so nothing is committed before it is stored.
 *
 * Replays never count twice, at two levels. Each insert carries a deduplication token named
 * after the batch's log positions and event ids, so ClickHouse drops an exact replay outright.
 * And because the rows are a pure function of the events and of the state as of the batch's
 * first offset, a replay with other boundaries (a retry that found more messages, a
 * rebalance) writes identical rows under identical keys, which ReplacingMergeTree collapses.
 *
 * @example
 * await log.consume({ groupId: 'herald-projector', topics: ['engine.events'], maxBatchSize: 1000 },
 *   createProjectorHandler({ warehouse, clock: Date.now, logger }))
 */
export const createProjectorHandler = (options: ProjectorOptions): BatchHandler => {
  const { warehouse, clock, logger } = options
  const decoder = options.decoder ?? createIngressDecoder()
  const tables = options.tables ?? DEFAULT_TABLES
  return async (batch) => {
    const first = batch.messages[0]
    const last = batch.messages.at(-1)
    if (first === undefined || last === undefined) return
    const started = clock()
    const rows: EventRow[] = []
    const positioned: Positioned[] = []
    let invalid = 0
    const results = await decoder.decodeBatch(batch.messages)
    batch.messages.forEach((message, i) => {
      const decoded = results[i]
      if (decoded?.ok) {
        const row = toEventRow(decoded.event, message, started)
        rows.push(row)
        if (decoded.event.type.startsWith('herald.report.')) {
          const at = decoded.event.time === undefined ? message.timestamp : Date.parse(decoded.event.time)
          positioned.push({ event: decoded.event, offset: message.offset, at })
        }
      } else {
        invalid++
        logger('debug', 'projector.event_invalid', {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          code: decoded?.failure.code,
        })
      }
    })

    const entities = foldEntities(
      positioned,
      await loadEntityState(warehouse, stateNeeds(positioned), first.offset, tables),
    )
    const findingState = await loadFindingState(warehouse, entities.findingOps.values(), first.offset, tables)
    const findings = foldFindings(entities.findingOps, findingState)

    const token = deduplicationToken(
      batch.topic,
      batch.partition,
      first.offset,
      last.offset,
      rows.map((r) => r.id),
    )
    const insert = (table: string, values: readonly object[]) =>
      warehouse.insert(table, values, { deduplicationToken: `${token}/${table}` })
    // One after another: chDB applies an insert's token as a session setting, so concurrent
    // inserts on the embedded engine must not interleave.
    if (options.writeEvents ?? true) await insert(tables.events, rows)
    await insert(tables.images, entities.images)
    await insert(tables.tag_history, entities.tagHistory)
    await insert(tables.tags_current, entities.tagsCurrent)
    await insert(tables.policy_evaluations, entities.policyEvaluations)
    await insert(tables.policy_evaluation_latest, entities.policyLatest)
    await insert(tables.image_vulnerabilities, findings.findings)
    await insert(tables.finding_lifecycle, findings.lifecycle)
    // Last: the lag reads it, and it must not claim a batch whose rows are not all stored.
    await insert(tables.projection_progress, [progressRow(batch, clock())])

    if (invalid > 0) options.onInvalid?.(invalid)
    options.onProjected?.(rows.length)
    logger('debug', 'projector.batch_projected', {
      topic: batch.topic,
      partition: batch.partition,
      first: first.offset,
      last: last.offset,
      rows: rows.length,
      invalid,
      findings: findings.findings.length,
      ms: clock() - started,
    })
  }
}

const progressRow = (batch: Batch, projectedAt: number) => {
  let oldest = Number.POSITIVE_INFINITY
  let newest = 0
  for (const { timestamp } of batch.messages) {
    oldest = Math.min(oldest, timestamp)
    newest = Math.max(newest, timestamp)
  }
  return {
    topic: batch.topic,
    partition: batch.partition,
    last_offset: batch.messages.at(-1)?.offset ?? 0,
    first_appended_at: toClickHouseTime(oldest),
    last_appended_at: toClickHouseTime(newest),
    projected_at: toClickHouseTime(projectedAt),
    events: batch.messages.length,
  }
}
