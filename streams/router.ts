import { concatMap, from, lastValueFrom, type OperatorFunction, toArray } from 'rxjs'
import type { FieldIssue } from '../src/errors/index.ts'
import { type CloudEvent, decodeLogEvent } from '../src/events/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { BatchHandler, EventLog, LogMessage } from '../src/ports/index.ts'
import { encodeDeliveryCommand, routeEvents, type SelectorIndex } from './routing/index.ts'

/**
 * Reads engine events off the log; a message that is not a valid CloudEvent is reported to
 * `onInvalid` and dropped, so it never blocks its partition.
 */
export const decodeLogEvents =
  (
    onInvalid: (message: LogMessage, issues: readonly FieldIssue[]) => void,
  ): OperatorFunction<LogMessage, CloudEvent> =>
  (messages) =>
    messages.pipe(
      concatMap((message) => {
        const decoded = decodeLogEvent(message)
        if (decoded.ok) return [decoded.value]
        onInvalid(message, decoded.issues)
        return []
      }),
    )

export interface RouterHandlerOptions {
  readonly log: Pick<EventLog, 'publish'>
  readonly topics: { readonly deliveries: string }
  /** The current selector index; read per event so a configuration change applies at once. */
  readonly getIndex: () => SelectorIndex
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  readonly logger: Logger
  /** After each batch is published: for metrics (`herald_router_*`). */
  readonly onRouted?: (counts: {
    readonly events: number
    readonly invalid: number
    readonly deliveries: number
  }) => void
}

/**
 * The router's EventLog batch handler: engine events in, DeliveryCommands out to the
 * deliveries topic. It resolves only after the commands are durably published, so the log
 * commits the events' offsets only then (at-least-once; delivery ids make repeats harmless).
 *
 * @example
 * await log.consume({ groupId: 'herald-router', topics: ['engine.events'] },
 *   createRouterHandler({ log, topics: { deliveries: 'notifications.deliveries' }, getIndex, clock, logger }))
 */
export const createRouterHandler = ({
  log,
  topics,
  getIndex,
  clock,
  logger,
  onRouted,
}: RouterHandlerOptions): BatchHandler => {
  return async (batch) => {
    let invalid = 0
    const onInvalid = (message: LogMessage, issues: readonly FieldIssue[]) => {
      invalid++
      logger('warn', 'router.event_invalid', {
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        issues,
      })
    }
    const commands = await lastValueFrom(
      from(batch.messages).pipe(decodeLogEvents(onInvalid), routeEvents(getIndex, clock), toArray()),
    )
    if (commands.length > 0) await log.publish(topics.deliveries, commands.map(encodeDeliveryCommand))
    onRouted?.({ events: batch.messages.length - invalid, invalid, deliveries: commands.length })
    logger('debug', 'router.batch_routed', {
      topic: batch.topic,
      partition: batch.partition,
      from_offset: batch.messages[0]?.offset,
      messages: batch.messages.length,
      invalid,
      deliveries: commands.length,
    })
  }
}
