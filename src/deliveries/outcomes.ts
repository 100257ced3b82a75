import type { EventLog, OutgoingMessage } from '../ports/index.ts'
import type { AttemptOutcome } from './events.ts'
import type { AttemptRow, DeliveryReadModel } from './read-model.ts'

/**
 * The value of `notifications.outcomes` (schemas/topics/notifications.outcomes.schema.json):
 * one record per attempt. `code` and `nextAttemptAt` are additions the schema's open object
 * allows.
 */
export interface DeliveryOutcomeRecord {
  readonly deliveryId: string
  readonly account: string
  readonly endpoint: string
  readonly configurationId: string
  readonly eventId: string
  readonly eventType: string
  readonly outcome: AttemptOutcome
  readonly attempt: number
  readonly status?: number
  readonly error?: string
  readonly latencyMs?: number
  /** RFC 3339. */
  readonly at: string
  readonly code?: string
  /** RFC 3339: when the next attempt is due, for `failed`. */
  readonly nextAttemptAt?: string
}

const optional = <K extends string, V>(key: K, value: V | null): { [P in K]?: V } =>
  (value === null ? {} : { [key]: value }) as { [P in K]?: V }

export const outcomeRecord = (row: AttemptRow): DeliveryOutcomeRecord => ({
  deliveryId: row.deliveryId,
  account: row.account,
  endpoint: row.endpoint,
  configurationId: row.configurationId,
  eventId: row.eventId,
  eventType: row.eventType,
  outcome: row.outcome,
  attempt: row.attempt,
  ...optional('status', row.status),
  ...optional('error', row.error),
  ...optional('latencyMs', row.latencyMs === null ? null : Math.max(0, row.latencyMs)),
  at: new Date(row.at).toISOString(),
  ...optional('code', row.code),
  ...optional('nextAttemptAt', row.nextAttemptAt === null ? null : new Date(row.nextAttemptAt).toISOString()),
})

// Frozen: one object for every outcome, which lets a log adapter encode it once.
const HEADERS = Object.freeze({
  'content-type': 'application/json',
  'herald-type': 'DeliveryOutcome',
} as const)

/** Keyed by configuration, like `notifications.deliveries`, so one configuration's outcomes stay in order. */
export const encodeOutcome = (row: AttemptRow): OutgoingMessage => ({
  key: row.configurationId,
  value: Buffer.from(JSON.stringify(outcomeRecord(row))),
  headers: HEADERS,
})

export interface OutcomePublisherOptions {
  readonly view: Pick<DeliveryReadModel, 'unpublished' | 'markPublished' | 'onChange'>
  readonly log: Pick<EventLog, 'publish'>
  readonly topic: string
  readonly onError?: (error: unknown) => void
  /** Wait before publishing again after a failure (default 1000 ms, doubling to 30 s). */
  readonly retryMs?: number
  readonly batchSize?: number
  /**
   * After a publish, outcomes recorded within this many ms wait for its end and go out together
   * (default 100): a busy deliverer's read model commits every turn of the event loop, and one
   * durable write to the log per commit would cost more than the deliveries. A lone outcome
   * goes out at once.
   */
  readonly lingerMs?: number
}

export interface OutcomePublisher {
  /** Publishes what is waiting now; resolves when nothing is. */
  flush(): Promise<void>
  /** Publishes what is left once more, then stops: the log must still be open. */
  stop(): Promise<void>
}

/**
 * Publishes the outcomes of this instance's attempts to `notifications.outcomes` from the read
 * model, which is their outbox: an outcome is marked only after the log acknowledged it, so a
 * crash or an unreachable log delays outcomes and never loses one (at-least-once; consumers
 * deduplicate on `deliveryId` and `attempt`).
 *
 * @example
 * const publisher = startOutcomePublisher({ view, log, topic: config.event_log.topics.outcomes })
 */
export const startOutcomePublisher = (options: OutcomePublisherOptions): OutcomePublisher => {
  const { view, log, topic } = options
  const batchSize = options.batchSize ?? 500
  const baseRetryMs = options.retryMs ?? 1000
  const lingerMs = options.lingerMs ?? 100
  let running: Promise<void> | undefined
  let again = false
  let stopped = false
  let retryMs = baseRetryMs
  let timer: NodeJS.Timeout | undefined
  let resting: NodeJS.Timeout | undefined
  let changedWhileResting = false

  /** Resolves with whether anything was published. */
  const drain = async (): Promise<boolean> => {
    let published = false
    for (;;) {
      const rows = view.unpublished(batchSize)
      if (rows.length === 0) return published
      await log.publish(topic, rows.map(encodeOutcome))
      view.markPublished(rows.map((r) => r.position))
      published = true
    }
  }

  const rest = () => {
    if (lingerMs <= 0 || stopped) return
    clearTimeout(resting)
    resting = setTimeout(() => {
      resting = undefined
      if (changedWhileResting && !stopped) {
        changedWhileResting = false
        void flush()
      }
    }, lingerMs)
  }

  const flush = (): Promise<void> => {
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      try {
        let published = false
        do {
          again = false
          published = (await drain()) || published
        } while (again && !stopped)
        retryMs = baseRetryMs
        if (published) rest()
      } catch (error) {
        options.onError?.(error)
        if (!stopped) {
          clearTimeout(timer)
          timer = setTimeout(() => void flush(), retryMs)
          retryMs = Math.min(retryMs * 2, 30_000)
        }
      } finally {
        running = undefined
      }
    })()
    return running
  }

  const unsubscribe = view.onChange(() => {
    if (stopped) return
    if (resting === undefined) void flush()
    else changedWhileResting = true
  })
  void flush()

  return {
    flush,
    stop: async () => {
      stopped = true
      unsubscribe()
      clearTimeout(timer)
      clearTimeout(resting)
      await running
      // What the last attempts recorded; anything left is published at the next start.
      await drain().catch((error: unknown) => options.onError?.(error))
    },
  }
}
