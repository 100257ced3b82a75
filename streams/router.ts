import { filter, from, lastValueFrom, type OperatorFunction, toArray } from 'rxjs'
import {
  createIngressDecoder,
  type IngressDecoder,
  type IngressEvent,
  type IngressFailure,
  type ProcessedIds,
  processedKey,
  toDeadLetter,
} from '../src/ingress/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { BatchHandler, EventLog, LogMessage, OutgoingMessage } from '../src/ports/index.ts'
import { encodeDeliveryCommand, routeEvents, type SelectorIndex } from './routing/index.ts'

/**
 * Lets through each event whose key is not in `seen` and not repeated earlier in the stream,
 * reporting the others to `onDuplicate`.
 */
export const dropProcessed =
  (
    seen: ReadonlySet<string>,
    onDuplicate: (event: IngressEvent) => void = () => {},
  ): OperatorFunction<IngressEvent, IngressEvent> =>
  (events) => {
    const passed = new Set<string>()
    return events.pipe(
      filter((event) => {
        const key = processedKey(event)
        if (seen.has(key) || passed.has(key)) {
          onDuplicate(event)
          return false
        }
        passed.add(key)
        return true
      }),
    )
  }

export interface RouterCounts {
  /** Valid events routed (duplicates excluded). */
  readonly events: number
  readonly invalid: number
  readonly duplicates: number
  readonly deliveries: number
  /** Invalid messages written to the dead-letter topic, by reason. */
  readonly deadLettered: Readonly<Partial<Record<IngressFailure['code'], number>>>
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
 * into DeliveryCommands. It resolves only after the dead letters and commands are durably
 * published and the routed events recorded, so the log commits the offsets only then
 * (at-least-once; delivery ids make repeats harmless). A poison pill never fails the batch;
 * only an unreachable log or registry does, and then the batch is retried.
 *
 * @example
 * await log.consume({ groupId: 'herald-router', topics: ['engine.events'] },
 *   createRouterHandler({ log, topics: { deliveries: 'notifications.deliveries', dlq: 'engine.events.dlq' },
 *     getIndex, clock, logger, decoder, processed }))
 */
export const createRouterHandler = ({
  log,
  topics,
  getIndex,
  clock,
  logger,
  decoder = createIngressDecoder(),
  processed,
  route = true,
  groupId = 'herald-router',
  onRouted,
}: RouterHandlerOptions): BatchHandler => {
  return async (batch) => {
    const results = await decoder.decodeBatch(batch.messages)
    const valid: IngressEvent[] = []
    const letters: OutgoingMessage[] = []
    const deadLettered: Partial<Record<IngressFailure['code'], number>> = {}
    const now = clock()
    results.forEach((result, i) => {
      const message = batch.messages[i] as LogMessage
      if (result.ok) {
        valid.push(result.event)
        return
      }
      const { failure } = result
      logger('warn', 'router.event_invalid', {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        code: failure.code,
        issues: failure.issues.slice(0, 10),
      })
      if (topics.dlq === undefined) return
      letters.push(toDeadLetter(message, failure, { group: groupId, now }))
      deadLettered[failure.code] = (deadLettered[failure.code] ?? 0) + 1
    })
    if (letters.length > 0 && topics.dlq !== undefined) await log.publish(topics.dlq, letters)

    let duplicates = 0
    let routed: IngressEvent[] = []
    let commands: ReturnType<typeof encodeDeliveryCommand>[] = []
    if (route && valid.length > 0) {
      const seen = processed === undefined ? new Set<string>() : await processed.seen(valid.map(processedKey))
      routed = await lastValueFrom(
        from(valid).pipe(
          dropProcessed(seen, () => duplicates++),
          toArray(),
        ),
      )
      const decided = await lastValueFrom(from(routed).pipe(routeEvents(getIndex, clock), toArray()))
      commands = decided.map(encodeDeliveryCommand)
      if (commands.length > 0) await log.publish(topics.deliveries, commands)
      if (processed !== undefined && routed.length > 0) await processed.record(routed.map(processedKey))
    }
    const invalid = results.length - valid.length
    onRouted?.({ events: routed.length, invalid, duplicates, deliveries: commands.length, deadLettered })
    logger('debug', 'router.batch_routed', {
      topic: batch.topic,
      partition: batch.partition,
      from_offset: batch.messages[0]?.offset,
      messages: batch.messages.length,
      invalid,
      duplicates,
      dead_lettered: letters.length,
      deliveries: commands.length,
    })
  }
}
