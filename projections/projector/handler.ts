import { join } from 'node:path'
import { createNativeBlockWriter } from '../../src/adapters/clickhouse-warehouse/native-format.ts'
import { loopSlice } from '../../src/cooperative.ts'
import {
  createIngressDecoder,
  createSqliteProcessedIds,
  createWarehouseProcessedIds,
  type IngressDecoder,
  type IngressResult,
  type ProcessedIds,
  processedKey,
} from '../../src/ingress/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { Batch, BatchHandler, LogMessage } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import {
  changesFrom,
  type EntityRows,
  type EntityState,
  type FindingRows,
  type FindingState,
  firstUnfoldable,
  foldEntitiesSliced,
  foldFindingsSliced,
  type Positioned,
  stateNeeds,
  unfoldable,
} from './fold.ts'
import { createLogGuard, type LogReset } from './log-guard.ts'
import {
  appendEventRow,
  deduplicationToken,
  EVENT_COLUMNS,
  type EventRow,
  eventTimeOf,
  toClickHouseTime,
  toEventRow,
} from './rows.ts'
import { DEFAULT_TABLES, loadEntityState, loadFindingState, type ProjectionTables } from './state.ts'
import { createStateCache, type StateCacheLimits } from './state-cache.ts'
import type { SwapGate, SwapPass } from './swap-gate.ts'

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
  /**
   * The projector's own window of projected events (not the router's), so an event sent again
   * at a later position is projected once; absent, every message is projected (a rebuild, whose
   * raw table holds each event once).
   */
  readonly processed?: ProcessedIds
  /**
   * How much prior state to keep in memory between batches (`createStateCache`); `false`
   * reads it from the warehouse for every batch.
   */
  readonly stateCache?: StateCacheLimits | false
  /**
   * Default true: a partition whose log was reset under the tables is refused
   * (`createLogGuard`). A rebuild, which replays `events` rather than a log, has none to check.
   */
  readonly guardLog?: boolean
  /** The partitions refused for a reset log, each time that changes. */
  readonly onHalted?: (resets: readonly LogReset[]) => void
  /**
   * Once a batch is stored: each account's earliest instant its report events may have changed
   * the history at (`changesFrom`), so that metric points recorded as of a later instant before
   * these events were projected are recorded again (`MetricsSchedule.projected`).
   */
  readonly onEventTimes?: (earliest: ReadonlyMap<string, number>) => void
  /**
   * Where the warehouse is shared with other Herald instances' projectors (a ClickHouse
   * server): each batch passes `createSwapGate`'s gate, so a rebuild any instance runs holds it
   * back for its swap rather than lose it with the old tables. Absent (the embedded deployment,
   * a rebuild's replay), batches are not gated: a rebuild stops the one projector around its swap.
   */
  readonly gate?: SwapGate
}

/**
 * The projector's own processed-id window (`ProjectorOptions.processed`) on one machine, in
 * `<dataDir>/projected-ids.sqlite`, named in its errors and `ping`'s as the projector's, apart
 * from the router's window beside it. Opened where the projector runs: its thread, or the event
 * loop. When Herald runs distributed (`sharesProcessedIds`), `openSharedProjectedIds` instead.
 *
 * @example
 * createProjectorHandler({ warehouse, clock, logger, processed: openProjectedIds(config.data_dir) })
 */
export const openProjectedIds = (dataDir: string): ProcessedIds =>
  createSqliteProcessedIds({
    path: join(dataDir, 'projected-ids.sqlite'),
    name: 'projector processed-id window',
  })

/**
 * The projector's processed-id window when Herald runs distributed (Kafka and a ClickHouse
 * server, `sharesProcessedIds`): the table `projector_processed_ids` of the warehouse, which
 * every instance shares, as the routers share theirs. With a window per instance, a producer's
 * retry of a report event that another instance had projected, read after a rebalance, was
 * folded again (a tag moved back to the digest it had left). Creates the table when missing.
 *
 * @example
 * createProjectorHandler({ warehouse, clock, logger, processed: await openSharedProjectedIds(warehouse) })
 */
export const openSharedProjectedIds = (warehouse: Warehouse): Promise<ProcessedIds> =>
  createWarehouseProcessedIds(warehouse, { table: 'projector_processed_ids' })

/**
 * The projector's batch handler. For each log batch: decode; store the raw events while the
 * state the report tables held just before the batch's first offset is read (from memory
 * where the state cache has it) and the batch is folded into rows (pure); insert every report
 * table, then the partition's progress row. Resolving lets the log commit the batch, so
 * nothing is committed before it is stored.
 *
 * A batch from a log reset under the tables (offsets counting from 0 again) is refused before
 * anything is stored (`createLogGuard`); once an operator accepted the reset, the partition's
 * offsets are projected past a base, after everything the old log left.
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
  const newCache = () => (options.stateCache === false ? undefined : createStateCache(options.stateCache))
  let cache = newCache()
  /** The gate's generation of the tables the cache describes. */
  let generation: number | undefined
  const processed = options.processed
  const guard =
    options.guardLog === false
      ? undefined
      : createLogGuard({
          warehouse,
          clock,
          logger,
          tables,
          ...(options.onHalted === undefined ? {} : { onHalted: options.onHalted }),
        })

  /**
   * The window keys of a batch's report events, by message index, and the messages among them
   * that repeat an event already projected from another position (a producer's retry, a
   * replayed file): by (account, source, id), as the router tells events apart. Only report
   * events (`herald.report.*`) and events without a `time` are looked up: the first alone fold
   * into the report tables, and the raw row of the second is stored at its message's append
   * time, which differs from one copy to the next. Looking up every event cost the projector
   * a sixth of its throughput, and any other event sent again carries the same time, so the
   * raw table's key collapses its copies. A message projected before from this very position (a batch
   * redelivered after a crash) is not a repeat: it is projected again, and the insert tokens
   * make that harmless; skipping it would fold the rest of the batch on state that lacks its
   * effects. Within the batch the first sighting wins.
   */
  const repeatsOf = async (
    messages: readonly LogMessage[],
    results: readonly (IngressResult | undefined)[],
  ): Promise<{ readonly keys: ReadonlyMap<number, string>; readonly repeats: ReadonlySet<number> }> => {
    const keys = new Map<number, string>()
    const repeats = new Set<number>()
    if (processed === undefined) return { keys, repeats }
    results.forEach((result, i) => {
      if (result?.ok && (isReportEvent(result.event) || result.event.time === undefined))
        keys.set(i, processedKey(result.event))
    })
    const seen = await processed.seen([...keys.values()])
    const elsewhere = [...keys].filter(([, key]) => seen.has(key))
    const here =
      elsewhere.length === 0
        ? new Set<string>()
        : await processed.seen(elsewhere.map(([i, key]) => positionKey(key, messages[i] as LogMessage)))
    const sighted = new Set<string>()
    for (const [i, key] of keys) {
      const projectedHere = here.has(positionKey(key, messages[i] as LogMessage))
      if ((seen.has(key) && !projectedHere) || sighted.has(key)) repeats.add(i)
      else sighted.add(key)
    }
    if (repeats.size > 0)
      logger('info', 'projector.events_repeated', {
        topic: messages[0]?.topic,
        partition: messages[0]?.partition,
        offsets: [...repeats].slice(0, 20).map((i) => messages[i]?.offset),
        count: repeats.size,
      })
    return { keys, repeats }
  }

  const project = async (received: Batch, pass: SwapPass | undefined): Promise<void> => {
    const started = clock()
    let decoding: Promise<(IngressResult | undefined)[]> | undefined
    const decode = () => {
      decoding ??= decoder.decodeBatch(received.messages)
      return decoding
    }
    // Refused here, before anything is stored, when its log was reset under the tables.
    const base = guard === undefined ? 0 : await guard.admit(received, decode)
    const batch = base === 0 ? received : shifted(received, base)
    const first = batch.messages[0] as LogMessage
    const last = batch.messages.at(-1) as LogMessage
    const writeEvents = options.writeEvents ?? true
    // The raw events go straight into a Native block where the warehouse takes one (chDB), as
    // rows otherwise, or when an event's row has no Native form (`appendEventRow`).
    let block =
      writeEvents && warehouse.insertNative !== undefined ? createNativeBlockWriter(EVENT_COLUMNS) : undefined
    const rows: EventRow[] = []
    const ids: string[] = []
    /** The messages stored, by index: made rows again if the block gives way to rows. */
    const stored: number[] = []
    const positioned: Positioned[] = []
    let invalid = 0
    const results = await decode()
    const { keys, repeats } = await repeatsOf(batch.messages, results)
    const projectedKeys: string[] = []
    const projectedPositions: string[] = []
    const unprojectable = (message: Pick<LogMessage, 'topic' | 'partition' | 'offset'>, error: unknown) => {
      invalid++
      logger('warn', 'projector.event_unprojectable', {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        error: (error as Error).message,
      })
    }
    const rowOf = (i: number): EventRow => {
      const result = results[i] as IngressResult & { ok: true }
      return toEventRow(result.event, batch.messages[i] as LogMessage, started)
    }
    for (let i = 0; i < batch.messages.length; i++) {
      if (loopSlice.due()) await loopSlice.pause()
      const message = batch.messages[i] as LogMessage
      const decoded = results[i]
      if (repeats.has(i)) continue
      if (decoded?.ok) {
        const position = isReportEvent(decoded.event)
          ? { event: decoded.event, offset: message.offset, at: eventTimeOf(decoded.event, message) }
          : undefined
        try {
          // An instant the fold would write that is none (the contract refuses it; this is the
          // guard behind it) would fail the fold, and the batch at every redelivery.
          const why = position === undefined ? undefined : unfoldable(position)
          if (why !== undefined) throw new RangeError(why)
          if (block !== undefined && !appendEventRow(block, decoded.event, message, started)) {
            block = undefined
            for (const j of stored) rows.push(rowOf(j))
          }
          if (block === undefined) rows.push(toEventRow(decoded.event, message, started))
        } catch (error) {
          // Cannot be written out or folded (the contract refuses events nested too deep and
          // times that name no instant; this is the guard behind it): skipped here and logged,
          // never left to fail the batch. The router judges it apart: it routes what it can
          // serialise, and dead-letters (`event_unroutable`) only an event a configuration
          // matched that it cannot.
          unprojectable(message, error)
          continue
        }
        ids.push(decoded.event.id)
        stored.push(i)
        const key = keys.get(i)
        if (key !== undefined) {
          projectedKeys.push(key)
          projectedPositions.push(positionKey(key, message))
        }
        if (position !== undefined) positioned.push(position)
      } else {
        invalid++
        logger('debug', 'projector.event_invalid', {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          code: decoded?.failure.code,
        })
      }
    }

    const token = deduplicationToken(batch.topic, batch.partition, first.offset, last.offset, ids)
    // `distinct`: the fold emits one row per key of the table (its rows are keyed by a finer
    // key in maps), so the engine need not collapse the block. The raw events and the
    // evaluation history have one row per event, keyed by (among others) its id: distinct
    // unless an event came twice in the batch (a message delivered twice, an event sent again
    // without a window), which only then leaves the engine to collapse them as it stores them.
    const insert = (table: string, values: readonly object[], distinct = false) =>
      warehouse.insert(table, values, { deduplicationToken: `${token}/${table}`, distinctKeys: distinct })
    // Each insert carries its token as its own setting on both transports, so they may run at
    // once: the engine works on one while the projector prepares the next. The raw events do
    // not depend on the prior state, so they are stored while it is read and folded.
    const eventsDistinct = allDistinct(ids)
    const storingEvents = !writeEvents
      ? Promise.resolve()
      : block !== undefined && warehouse.insertNative !== undefined
        ? warehouse.insertNative(tables.events, block.finish(), {
            deduplicationToken: `${token}/${tables.events}`,
            distinctKeys: eventsDistinct,
          })
        : insert(tables.events, rows, eventsDistinct)
    const cached = cache?.at(batch.topic, batch.partition, first.offset)
    /**
     * Should the fold throw on an event (a gap in the contract; `unfoldable` catches the one
     * known), that event is taken out of the fold and logged as unprojectable (its raw row is
     * stored), and the batch folded again: left in, it would fail the batch at every
     * redelivery. A fold that throws with every event it could blame is thrown.
     */
    const skipUnfoldable = (error: unknown, entityState: EntityState, findingState?: FindingState) => {
      const at = firstUnfoldable(positioned, entityState, findingState)
      if (at === undefined) throw error
      const [skipped] = positioned.splice(at, 1) as [Positioned]
      unprojectable({ topic: batch.topic, partition: batch.partition, offset: skipped.offset }, error)
    }
    const derive = async () => {
      for (;;) {
        const needs = stateNeeds(positioned)
        const entityState =
          cached === undefined
            ? await loadEntityState(warehouse, needs, first.offset, tables)
            : await cached.entities(needs, (missing) =>
                loadEntityState(warehouse, missing, first.offset, tables),
              )
        let entities: EntityRows
        try {
          entities = await foldEntitiesSliced(positioned, entityState)
        } catch (error) {
          skipUnfoldable(error, entityState)
          continue
        }
        const findingState =
          cached === undefined
            ? await loadFindingState(warehouse, entities.findingOps.values(), first.offset, tables)
            : await cached.findings(entities.findingOps.values(), (missing) =>
                loadFindingState(warehouse, missing, first.offset, tables),
              )
        let findings: FindingRows
        try {
          findings = await foldFindingsSliced(entities.findingOps, findingState)
        } catch (error) {
          skipUnfoldable(error, entityState, findingState)
          continue
        }
        return { entityState, entities, findingState, findings }
      }
    }
    const [, derived] = await settled(storingEvents, derive())
    const { entityState, entities, findingState, findings } = derived
    pass?.assertOpen()
    await settled(
      insert(tables.images, entities.images, true),
      insert(tables.tag_history, entities.tagHistory, true),
      insert(tables.tags_current, entities.tagsCurrent, true),
      insert(
        tables.policy_evaluations,
        entities.policyEvaluations,
        allDistinct(entities.policyEvaluations.map((row) => row.event_id)),
      ),
      insert(tables.policy_evaluation_latest, entities.policyLatest, true),
      insert(tables.image_vulnerabilities, findings.findings, true),
      insert(tables.finding_lifecycle, findings.lifecycle, true),
    )
    // Only once every row is stored: a repeat of these events is skipped from now on.
    // Positions first: a window may record a large batch in several transactions, and one that
    // stops midway must not hold an event's key without its position, which would make the
    // batch's redelivery skip that event as a repeat from elsewhere. A position without its
    // key only has the event projected again, which the insert tokens make harmless.
    if (processed !== undefined && projectedKeys.length > 0)
      await processed.record([...projectedPositions, ...projectedKeys])
    // Last: the lag reads it, and it must not claim a batch whose rows are not all stored. A
    // rebuild's last catch-up replays every batch it names, and none whose progress came later.
    pass?.assertOpen()
    await insert(tables.projection_progress, [progressRow(batch, clock())], true)
    cached?.advance(
      { entities: entityState, findings: findingState },
      {
        images: entities.openImages,
        tags: entities.openTags,
        closedImages: entities.closedImages,
        closedTags: entities.closedTags,
        imageRows: entities.images,
        tagRows: entities.tagHistory,
        findings: findings.openFindings,
      },
      last.offset + 1,
    )
    guard?.stored(received)

    if (options.onEventTimes !== undefined && positioned.length > 0)
      options.onEventTimes(earliestChanges(positioned))
    if (invalid > 0) options.onInvalid?.(invalid)
    options.onProjected?.(ids.length)
    logger('debug', 'projector.batch_projected', {
      topic: batch.topic,
      partition: batch.partition,
      first: first.offset,
      last: last.offset,
      rows: ids.length,
      invalid,
      findings: findings.findings.length,
      ms: clock() - started,
    })
  }

  return async (received) => {
    if (received.messages.length === 0) return
    const pass = await options.gate?.enter()
    try {
      if (pass !== undefined && pass.generation !== generation) {
        // A rebuild swapped the tables since: what the cache holds is the old ones' state.
        if (generation !== undefined) cache = newCache()
        generation = pass.generation
      }
      await project(received, pass)
    } finally {
      pass?.leave()
    }
  }
}

/**
 * Like `Promise.all`, but rejects only once every insert has settled: none of a failed batch's
 * inserts may still be running when the log delivers the batch again.
 */
const settled = async <T extends readonly unknown[]>(
  ...work: { [K in keyof T]: Promise<T[K]> }
): Promise<T> => {
  const results = await Promise.allSettled(work)
  for (const result of results) if (result.status === 'rejected') throw result.reason
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T
}

/**
 * Whether no two of the values (one column of the rows) are equal: then no two rows share a
 * sorting key that includes the column, and an insert need not have the engine collapse the
 * block (about 4 µs of engine CPU per raw event row).
 */
const allDistinct = (values: readonly string[]): boolean => new Set(values).size === values.length

/**
 * The batch at its positions in the tables, past the base of an accepted log reset: its offsets
 * plus the base, so the new log's events come after everything the old one left.
 */
const shifted = (batch: Batch, base: number): Batch => ({
  ...batch,
  messages: batch.messages.map((message) => ({ ...message, offset: message.offset + base })),
})

const isReportEvent = (event: { readonly type: string }): boolean => event.type.startsWith('herald.report.')

/** Each account's earliest `changesFrom` among the events. */
const earliestChanges = (events: readonly Positioned[]): Map<string, number> => {
  const earliest = new Map<string, number>()
  for (const positioned of events) {
    const at = changesFrom(positioned)
    const known = earliest.get(positioned.event.account)
    if (known === undefined || at < known) earliest.set(positioned.event.account, at)
  }
  return earliest
}

/** A window key naming where an event was projected from: its key and its log position. */
const positionKey = (key: string, message: LogMessage): string =>
  `${key}\u0000@${message.topic}/${message.partition}/${message.offset}`

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
