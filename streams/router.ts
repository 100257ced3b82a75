import { filter, type OperatorFunction } from 'rxjs'
import {
  createIngressDecoder,
  failure,
  type IngressDecoder,
  type IngressEvent,
  type IngressFailure,
  type ProcessedIds,
  processedKey,
  toDeadLetter,
} from '../src/ingress/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { BatchHandler, EventLog, LogMessage, OutgoingMessage } from '../src/ports/index.ts'
import { type DigestWindowOf, decideRoutes, digestWindowMs, noDigests } from './digest.ts'
import type { DigestEntry, DigestStore } from './digest-store.ts'
import { encodeDeliveryCommand, type SelectorIndex } from './routing/index.ts'

/**
 * A predicate that is true for a key not in `seen` and not passed before: the first
 * occurrence of each new key. One per stream or batch.
 */
const firstSightings = (seen: ReadonlySet<string>): ((key: string) => boolean) => {
  const passed = new Set<string>()
  return (key) => {
    if (seen.has(key) || passed.has(key)) return false
    passed.add(key)
    return true
  }
}

/**
 * Lets through each event whose key is not in `seen` and not repeated earlier in the stream,
 * reporting the others to `onDuplicate`.
 *
 * @example
 * events$.pipe(dropProcessed(await processed.seen(keys), () => duplicates++))
 */
export const dropProcessed =
  (
    seen: ReadonlySet<string>,
    onDuplicate: (event: IngressEvent) => void = () => {},
  ): OperatorFunction<IngressEvent, IngressEvent> =>
  (events) => {
    const fresh = firstSightings(seen)
    return events.pipe(
      filter((event) => {
        if (fresh(processedKey(event))) return true
        onDuplicate(event)
        return false
      }),
    )
  }

/**
 * Messages per router batch (the consumer's `maxBatchSize`). Every batch pays one durable
 * publish, one digest-store commit and one processed-id commit, each a sync to disk on the
 * embedded log, plus a produce request on Kafka; 1,000 halves those per event against the
 * logs' default of 500, and a 1 MiB Kafka fetch of the usual 1–1.5 KB events is one call.
 * A batch waits for nothing to fill up, so a light load still goes out message by message.
 */
export const ROUTER_MAX_BATCH = 1_000

export interface RouterCounts {
  /** Valid events routed (duplicates excluded). */
  readonly events: number
  readonly invalid: number
  readonly duplicates: number
  /** Commands published for single events (digests are published by the flusher). */
  readonly deliveries: number
  /** Matches held for digests. */
  readonly digested: number
  /** Invalid messages written to the dead-letter topic, by reason. */
  readonly deadLettered: Readonly<Partial<Record<IngressFailure['code'], number>>>
}

/** Storm control: where the matches of configurations that asked for digests are held. */
export interface RouterDigestOptions {
  readonly store: DigestStore
  /** `notifications.cycle_timers.notifications`: the window of a configuration that names none. */
  readonly defaultWindowSeconds: number
}

export interface RouterHandlerOptions {
  readonly log: Pick<EventLog, 'publish'>
  /** Without `dlq`, an invalid message is logged and skipped; with it, it is also set aside there. */
  readonly topics: { readonly deliveries: string; readonly dlq?: string }
  /** The current selector index; read per event so a configuration change applies at once. */
  readonly getIndex: () => SelectorIndex
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  readonly logger: Logger
  /** Turns messages into events or reasons (default: plain JSON and the event contract, no registry). */
  readonly decoder?: IngressDecoder
  /** The window of events already routed; without it, nothing is deduplicated. */
  readonly processed?: ProcessedIds
  /** Without it, configurations that asked for digests get each event on its own. */
  readonly digests?: RouterDigestOptions
  /**
   * `false`: validate and dead-letter only, route nothing — the router's job when
   * notifications are off, so the dead-letter topic keeps working (default true).
   */
  readonly route?: boolean
  /** Named in dead letters' `herald.dead_letter.group` (default `herald-router`). */
  readonly groupId?: string
  /** After each batch: for metrics (`herald_router_*`, `herald_ingress_*`). */
  readonly onRouted?: (counts: RouterCounts) => void
}

/**
 * The router's EventLog batch handler, and the one consumer group that dead-letters:
 * messages in, each decoded (CloudEvents structured or binary mode, plain JSON or the
 * Confluent wire format) and judged by the event contract; invalid ones to the dead-letter
 * topic, events already routed dropped, the rest matched against the selectors and turned
 * into DeliveryCommands — or, for a configuration that asked for digests, recorded in the
 * digest store, whose flusher publishes one digest per window. It resolves only after the
 * dead letters and commands are durably published, the digest entries durably recorded and
 * the routed events remembered, so the log commits the offsets only then (at-least-once;
 * delivery ids make repeats harmless). A poison pill never fails the batch; only an
 * unreachable log, store or registry does, and then the batch is retried.
 *
 * The batch is one loop, not an RxJS pipeline: `dropProcessed` and `routeEvents` /
 * `routeDecisions` are the same decisions as operators, for composing elsewhere.
 *
 * @example
 * await log.consume({ groupId: 'herald-router', topics: ['engine.events'] },
 *   createRouterHandler({ log, topics: { deliveries: 'notifications.deliveries', dlq: 'engine.events.dlq' },
 *     getIndex, clock, logger, decoder, processed, digests: { store, defaultWindowSeconds: 30 } }))
 */
export const createRouterHandler = ({
  log,
  topics,
  getIndex,
  clock,
  logger,
  decoder = createIngressDecoder(),
  processed,
  digests,
  route = true,
  groupId = 'herald-router',
  onRouted,
}: RouterHandlerOptions): BatchHandler => {
  const windowOf: DigestWindowOf =
    digests === undefined
      ? noDigests
      : (configuration) => digestWindowMs(configuration.digest, digests.defaultWindowSeconds)

  return async (batch) => {
    const results = await decoder.decodeBatch(batch.messages)
    const valid: IngressEvent[] = []
    const validMessages: LogMessage[] = []
    const letters: OutgoingMessage[] = []
    const deadLettered: Partial<Record<IngressFailure['code'], number>> = {}
    const now = clock()
    const reject = (message: LogMessage, reason: IngressFailure) => {
      logger('warn', 'router.event_invalid', {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        code: reason.code,
        issues: reason.issues.slice(0, 10),
      })
      if (topics.dlq === undefined) return
      letters.push(toDeadLetter(message, reason, { group: groupId, now }))
      deadLettered[reason.code] = (deadLettered[reason.code] ?? 0) + 1
    }
    for (let i = 0; i < results.length; i++) {
      const result = results[i]
      if (result === undefined) continue
      const message = batch.messages[i] as LogMessage
      if (result.ok) {
        valid.push(result.event)
        validMessages.push(message)
        continue
      }
      reject(message, result.failure)
    }
    if (letters.length > 0 && topics.dlq !== undefined) await log.publish(topics.dlq, letters.splice(0))

    let duplicates = 0
    const routed: string[] = []
    const commands: OutgoingMessage[] = []
    const entries: DigestEntry[] = []
    if (route && valid.length > 0) {
      const keys = valid.map(processedKey)
      const fresh = firstSightings(processed === undefined ? new Set() : await processed.seen(keys))
      const createdAt = new Date(now).toISOString()
      for (let i = 0; i < valid.length; i++) {
        const key = keys[i] as string
        if (!fresh(key)) {
          duplicates++
          continue
        }
        const event = valid[i] as IngressEvent
        const decisions = decideRoutes(getIndex(), event, createdAt, windowOf, key)
        if (decisions.length === 0) {
          routed.push(key)
          continue
        }
        // Serialised once for all its commands, and before any is kept: an event the contract
        // accepted that cannot be written out (nested deeper than JSON.stringify's stack) is
        // dead-lettered, never left to fail the batch and stall the partition.
        let eventJson: string
        try {
          eventJson = JSON.stringify(event)
        } catch (error) {
          reject(
            validMessages[i] as LogMessage,
            failure('event_unroutable', [
              { path: '(event)', message: `cannot be serialised: ${(error as Error).message}` },
            ]),
          )
          continue
        }
        routed.push(key)
        for (const decision of decisions) {
          if (decision.kind === 'digest') entries.push(decision.entry)
          else commands.push(encodeDeliveryCommand(decision.command, eventJson))
        }
      }
      if (letters.length > 0 && topics.dlq !== undefined) await log.publish(topics.dlq, letters)
      if (commands.length > 0) await log.publish(topics.deliveries, commands)
      // The time of recording, not of the batch's start: the flusher takes a window once the
      // clock has passed its end, and an entry recorded after that must open the next window
      // rather than join one that is already being published.
      if (entries.length > 0 && digests !== undefined) await digests.store.record(entries, clock())
      if (processed !== undefined && routed.length > 0) await processed.record(routed)
    }
    const invalid = results.length - valid.length
    onRouted?.({
      events: routed.length,
      invalid,
      duplicates,
      deliveries: commands.length,
      digested: entries.length,
      deadLettered,
    })
    logger('debug', 'router.batch_routed', {
      topic: batch.topic,
      partition: batch.partition,
      from_offset: batch.messages[0]?.offset,
      messages: batch.messages.length,
      invalid,
      duplicates,
      dead_lettered: letters.length,
      deliveries: commands.length,
      digested: entries.length,
    })
  }
}
