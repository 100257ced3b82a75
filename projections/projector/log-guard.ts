import { HeraldError } from '../../src/errors/index.ts'
import type { IngressResult } from '../../src/ingress/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { Batch } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { rfc3339, toClickHouseTime } from './rows.ts'
import { DEFAULT_TABLES, type ProjectionTables } from './state.ts'

/** Where resets are recorded and accepted (migration 10). */
const LOG_RESETS = 'projection_log_resets'

/**
 * A partition of the log that no longer holds what the report tables were projected from:
 * at `offset` it has another event than the tables hold at that position.
 */
export interface LogReset {
  readonly topic: string
  readonly partition: number
  /** The log offset where another event was found. */
  readonly offset: number
  /** The last position the tables were projected through. */
  readonly projectedThrough: number
  /** The event at `offset` in the log now, and the one the tables hold there (`id` of `source`). */
  readonly event: string
  readonly projectedEvent: string
}

/** What the operator is told to do about a reset. */
export const LOG_RESET_REMEDY =
  'if the log was reset on purpose (a topic deleted and created again, an event log file removed), ' +
  'POST /v1/reports/log-reset (admin) projects the new log after what the report tables hold, keeping them; ' +
  'otherwise restore the log they were projected from'

/** The projector refuses a partition whose log was reset under the report tables. */
export class LogResetError extends HeraldError {
  constructor(reset: LogReset) {
    super(
      'event_log_reset',
      `${reset.topic}/${reset.partition} holds event ${reset.event} at offset ${reset.offset}, where the ` +
        `report tables hold event ${reset.projectedEvent} (projected through position ${reset.projectedThrough}): ` +
        `the log was reset under them, and the projector leaves the partition alone; ${LOG_RESET_REMEDY}`,
      { context: { ...reset } },
    )
  }
}

/**
 * Whether `error` is a LogResetError, also one that crossed from the projector's thread, which
 * keeps only its name and message: a batch refused so need not be reported as failed, since
 * the guard said so once (`projector.log_reset`), and `/ready` names the partition meanwhile.
 */
export const isLogReset = (error: unknown): boolean =>
  error instanceof LogResetError || (error instanceof Error && error.name === LogResetError.name)

export interface LogGuardOptions {
  readonly warehouse: Warehouse
  readonly clock: () => number
  readonly logger: Logger
  /** The tables the projector writes: their `events` and `projection_progress` are compared. */
  readonly tables?: ProjectionTables
  /** Every partition refused, each time that changes (a reset found, or accepted). */
  readonly onHalted?: (resets: readonly LogReset[]) => void
}

export interface LogGuard {
  /**
   * Admits a batch: resolves with its partition's base (a message's position in the tables is
   * its offset plus the base; 0 unless a reset was accepted) when the batch continues what the
   * tables hold, rejects with a LogResetError when its log is not the one they were projected
   * from. `decode` gives each message's event; it is called only for a batch at positions the
   * tables already hold.
   */
  admit(batch: Batch, decode: () => Promise<readonly (IngressResult | undefined)[]>): Promise<number>
  /** The batch is stored: the next one, right after it, is admitted without a question. */
  stored(batch: Batch): void
}

interface Known {
  readonly base: number
  /** The position the tables were projected through when the partition was last checked. */
  readonly through: number
  /** The offset right after the last batch stored since; -1 until one is. */
  next: number
}

const partitionKey = (topic: string, partition: number) => `${topic}/${partition}`

const describe = (event: { readonly id: string; readonly source: string }) =>
  `${JSON.stringify(event.id)} of ${event.source}`

/**
 * The last position the tables were projected through in a partition (`projection_progress`),
 * -1 before its first batch: what the log guard checks a batch against, and what an accepted
 * reset's base must pass.
 */
const projectedThrough = async (
  warehouse: Warehouse,
  tables: ProjectionTables,
  topic: string,
  partition: number,
): Promise<number> => {
  const [progress] = await warehouse.query<{ through: number; batches: number }>(
    `SELECT max(last_offset) AS through, count() AS batches FROM ${tables.projection_progress}
      WHERE topic = {topic:String} AND partition = {partition:UInt32}`,
    { topic, partition },
  )
  return Number(progress?.batches ?? 0) === 0 ? -1 : Number(progress?.through)
}

/**
 * Keeps the projector off a log that was reset under its report tables. Their idempotence rests
 * on log positions (versions, the `as of` state reads, the window of projected ids), so a log
 * counting from 0 again would fold its events as older than what the tables hold: a tag's move
 * lost to the version already there, two open periods of one image. A rebuild would not repair
 * it either, since it replays `events` in position order, the old and the new log interleaved.
 *
 * A batch that starts right after the last one stored is admitted at once: no question to the
 * warehouse. Any other (the first of a run, a redelivery, a rebalance) reads how far the tables
 * were projected in its partition (`projection_progress`) and, when the batch starts at or before
 * that, which events `events` holds at its positions: another event at one of them is a reset.
 * The same log has the same events there, and only a replay after a crash or a rebalance comes
 * back that far, so the check costs nothing while the projector moves on. A reset is recorded
 * in `projection_log_resets` (where `acceptLogResets` finds it), logged as `projector.log_reset`,
 * and refused batch after batch (`isLogReset`: not logged again), each time after one look at
 * whether it was accepted meanwhile, logged as `projector.log_reset_accepted` once it is.
 *
 * @example
 * const guard = createLogGuard({ warehouse, clock: Date.now, logger })
 * const base = await guard.admit(batch, () => decoder.decodeBatch(batch.messages))
 * // … project the batch at positions offset + base …
 * guard.stored(batch)
 */
export const createLogGuard = (options: LogGuardOptions): LogGuard => {
  const { warehouse, clock, logger } = options
  const tables = options.tables ?? DEFAULT_TABLES
  const known = new Map<string, Known>()
  const halted = new Map<string, { readonly reset: LogReset; readonly base: number }>()
  const haltedChanged = () => options.onHalted?.([...halted.values()].map(({ reset }) => reset))

  /** How far the tables hold the partition, and what `projection_log_resets` says of it. */
  const standing = async (topic: string, partition: number) => {
    const [through, [resets]] = await Promise.all([
      projectedThrough(warehouse, tables, topic, partition),
      warehouse.query<{ accepted_base: number; pending: number }>(
        `SELECT max(base) AS accepted_base, countIf(base = 0) AS pending FROM ${LOG_RESETS} FINAL
          WHERE topic = {topic:String} AND partition = {partition:UInt32}`,
        { topic, partition },
      ),
    ])
    return {
      through,
      base: Number(resets?.accepted_base ?? 0),
      pending: Number(resets?.pending ?? 0) > 0,
    }
  }

  /** The first message whose event is not the one the tables hold at its position; how many are. */
  const compare = async (
    batch: Batch,
    base: number,
    through: number,
    decode: () => Promise<readonly (IngressResult | undefined)[]>,
  ): Promise<{ readonly differing?: LogReset; readonly same: number }> => {
    const first = batch.messages[0]?.offset ?? 0
    const last = batch.messages.at(-1)?.offset ?? 0
    const stored = await warehouse.query<{ position: number; account: string; source: string; id: string }>(
      `SELECT log_offset AS position, account, source, id FROM ${tables.events}
        WHERE log_topic = {topic:String} AND log_partition = {partition:UInt32}
          AND log_offset BETWEEN {from:UInt64} AND {to:UInt64}
        ORDER BY log_offset`,
      {
        topic: batch.topic,
        partition: batch.partition,
        from: first + base,
        to: Math.min(last + base, through),
      },
    )
    if (stored.length === 0) return { same: 0 }
    const results = await decode()
    const indexOf = new Map<number, number>()
    batch.messages.forEach((message, i) => {
      indexOf.set(message.offset, i)
    })
    let same = 0
    for (const row of stored) {
      const offset = Number(row.position) - base
      const result = results[indexOf.get(offset) ?? -1]
      // A message that no longer decodes tells nothing either way.
      if (!result?.ok) continue
      const { event } = result
      if (event.account === row.account && event.source === row.source && event.id === row.id) {
        same++
        continue
      }
      return {
        same,
        differing: {
          topic: batch.topic,
          partition: batch.partition,
          offset,
          projectedThrough: through,
          event: describe(event),
          projectedEvent: describe(row),
        },
      }
    }
    return { same }
  }

  const halt = async (reset: LogReset, base: number): Promise<never> => {
    await warehouse.insert(LOG_RESETS, [
      {
        topic: reset.topic,
        partition: reset.partition,
        projected_through: reset.projectedThrough,
        offset: reset.offset,
        event: reset.event,
        projected_event: reset.projectedEvent,
        detected_at: toClickHouseTime(clock()),
        base: 0,
        accepted_at: null,
      },
    ])
    halted.set(partitionKey(reset.topic, reset.partition), { reset, base })
    logger('error', 'projector.log_reset', {
      topic: reset.topic,
      partition: reset.partition,
      offset: reset.offset,
      projected_through: reset.projectedThrough,
      // Not `event`: the log line's own name is written under that key.
      found_event: reset.event,
      projected_event: reset.projectedEvent,
      remedy: LOG_RESET_REMEDY,
    })
    haltedChanged()
    throw new LogResetError(reset)
  }

  return {
    admit: async (batch, decode) => {
      const first = batch.messages[0]?.offset ?? 0
      const key = partitionKey(batch.topic, batch.partition)
      const seen = known.get(key)
      if (seen !== undefined && seen.next === first && first + seen.base > seen.through) return seen.base
      known.delete(key)
      const { through, base, pending } = await standing(batch.topic, batch.partition)
      const refused = halted.get(key)
      if (refused !== undefined) {
        if (refused.base === base) throw new LogResetError(refused.reset)
        halted.delete(key)
        logger('info', 'projector.log_reset_accepted', {
          topic: batch.topic,
          partition: batch.partition,
          base,
        })
        haltedChanged()
      }
      if (first + base <= through) {
        const { differing, same } = await compare(batch, base, through, decode)
        if (differing !== undefined) return halt(differing, base)
        // The log agrees with the tables again (it was restored): the reset found before is void.
        if (pending && same > 0)
          await warehouse.command(
            `DELETE FROM ${LOG_RESETS} WHERE topic = {topic:String} AND partition = {partition:UInt32} AND base = 0`,
            { topic: batch.topic, partition: batch.partition },
          )
      }
      known.set(key, { base, through, next: -1 })
      return base
    },
    stored: (batch) => {
      const seen = known.get(partitionKey(batch.topic, batch.partition))
      const last = batch.messages.at(-1)
      if (seen !== undefined && last !== undefined) seen.next = last.offset + 1
    },
  }
}

/** A reset as `GET /v1/reports/log-reset` lists it. */
export interface RecordedLogReset extends LogReset {
  readonly detectedAt: string
  /** `pending` until an operator accepts it. */
  readonly state: 'pending' | 'accepted'
  /** Accepted: the position of the new log's offset 0. */
  readonly base: number | null
  readonly acceptedAt: string | null
}

interface ResetRow {
  readonly topic: string
  readonly partition: number
  readonly projected_through: number
  readonly offset: number
  readonly event: string
  readonly projected_event: string
  readonly detected_at: string
  readonly base: number
  readonly accepted_at: string | null
}

const recorded = (row: ResetRow): RecordedLogReset => ({
  topic: row.topic,
  partition: Number(row.partition),
  offset: Number(row.offset),
  projectedThrough: Number(row.projected_through),
  event: row.event,
  projectedEvent: row.projected_event,
  detectedAt: rfc3339(row.detected_at),
  state: Number(row.base) === 0 ? 'pending' : 'accepted',
  base: Number(row.base) === 0 ? null : Number(row.base),
  acceptedAt: row.accepted_at === null ? null : rfc3339(row.accepted_at),
})

const RESET_COLUMNS = `topic, partition, projected_through, offset, event, projected_event,
  toString(detected_at) AS detected_at, base, toString(accepted_at) AS accepted_at`

/** Every log reset the projector found, pending or accepted, by partition. */
export const listLogResets = async (warehouse: Warehouse): Promise<RecordedLogReset[]> =>
  (
    await warehouse.query<ResetRow>(
      `SELECT ${RESET_COLUMNS} FROM ${LOG_RESETS} FINAL ORDER BY topic, partition, projected_through`,
    )
  ).map(recorded)

/** Names one log reset: its partition, and the position the tables were projected through when it was found. */
export interface LogResetKey {
  readonly topic: string
  readonly partition: number
  readonly projectedThrough: number
}

/** Some of the resets named to `acceptLogResets` are not pending: nothing was accepted. */
export class LogResetsNotPendingError extends Error {
  readonly missing: readonly LogResetKey[]

  constructor(missing: readonly LogResetKey[]) {
    super(
      `not pending: ${missing.map((key) => `${key.topic}/${key.partition}@${key.projectedThrough}`).join(', ')}`,
    )
    this.name = 'LogResetsNotPendingError'
    this.missing = missing
  }
}

/**
 * Accepts every pending log reset, or with `only` the pending ones it names (all of them, or
 * none and a `LogResetsNotPendingError`: an operator accepts what they saw listed, never one
 * found since): from now on the projector counts each such partition's
 * offsets from a base past every position its tables hold (events and progress alike), so the
 * new log's events are projected after the old log's, whose rows all stay, and a rebuild
 * replays the two in that order. Returns the resets accepted. The projector takes the
 * partition up again at its next try (within the log's back-off, a few seconds).
 *
 * @example
 * await acceptLogResets(warehouse, Date.now) // [{ topic: 'engine.events', partition: 0, base: 1042, … }]
 */
export const acceptLogResets = async (
  warehouse: Warehouse,
  clock: () => number,
  options: { readonly only?: readonly LogResetKey[]; readonly tables?: ProjectionTables } = {},
): Promise<RecordedLogReset[]> => {
  const tables = options.tables ?? DEFAULT_TABLES
  const all = await warehouse.query<ResetRow>(
    `SELECT ${RESET_COLUMNS} FROM ${LOG_RESETS} FINAL WHERE base = 0 ORDER BY topic, partition, projected_through`,
  )
  let pending = all
  if (options.only !== undefined) {
    const rowKey = (row: ResetRow) =>
      `${partitionKey(row.topic, Number(row.partition))}@${Number(row.projected_through)}`
    const keyOf = (key: LogResetKey) => `${partitionKey(key.topic, key.partition)}@${key.projectedThrough}`
    const found = new Set(all.map(rowKey))
    const missing = options.only.filter((key) => !found.has(keyOf(key)))
    if (missing.length > 0) throw new LogResetsNotPendingError(missing)
    const named = new Set(options.only.map(keyOf))
    pending = all.filter((row) => named.has(rowKey(row)))
  }
  const accepted: ResetRow[] = []
  const acceptedAt = toClickHouseTime(clock())
  const bases = new Map<string, number>()
  for (const row of pending) {
    const key = partitionKey(row.topic, row.partition)
    let base = bases.get(key)
    if (base === undefined) {
      const [progressThrough, [events]] = await Promise.all([
        projectedThrough(warehouse, tables, row.topic, row.partition),
        warehouse.query<{ through: number }>(
          `SELECT max(log_offset) AS through FROM ${tables.events}
            WHERE log_topic = {topic:String} AND log_partition = {partition:UInt32}`,
          { topic: row.topic, partition: row.partition },
        ),
      ])
      base = Math.max(progressThrough, Number(events?.through ?? 0), Number(row.projected_through)) + 1
      bases.set(key, base)
    }
    accepted.push({ ...row, base, accepted_at: acceptedAt })
  }
  if (accepted.length > 0) await warehouse.insert(LOG_RESETS, accepted)
  return accepted.map(recorded)
}
