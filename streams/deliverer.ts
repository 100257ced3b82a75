import type { DeliveryLog } from '../src/deliveries/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { Batch, BatchHandler, LogMessage } from '../src/ports/index.ts'
import { type DeliveryCommand, decodeDeliveryCommand } from './routing/index.ts'

const logInvalid = (
  logger: Logger,
  message: LogMessage,
  issues: readonly { path: string; message: string }[],
) =>
  logger('warn', 'delivery.command_invalid', {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    issues,
  })

/** The batch's decodable commands, in offset order. */
const decodeCommands = (batch: Batch, logger: Logger): DeliveryCommand[] =>
  batch.messages.flatMap((message) => {
    const decoded = decodeDeliveryCommand(message)
    if (decoded.ok) return [decoded.value]
    logInvalid(logger, message, decoded.issues)
    return []
  })

export interface DeliveryRequestHandlerOptions {
  /** The delivery log (`createDeliveryLog`). */
  readonly deliveries: Pick<DeliveryLog, 'requestMany'>
  readonly logger: Logger
  /** After a batch is recorded, with the highest store position written (0: none). */
  readonly onRecorded?: (position: number) => void
  /**
   * Before a batch is recorded, with the highest `selectorSetPosition` of its commands: resolves
   * once the configurations the deliverer reads have reached it, or rejects (the batch fails,
   * recording nothing, and is consumed again).
   */
  readonly awaitConfigurations?: (position: number) => Promise<void>
}

/**
 * The deliverer's EventLog batch handler: records each DeliveryCommand in the delivery log
 * (`DeliveryRequested`, once per delivery id, however often the command comes) and resolves,
 * so the batch's offsets are committed as soon as its deliveries are durable. The whole batch
 * is one write to the store (`requestMany`), in offset order, so each configuration's
 * requests keep their order in its queue. Sending, retrying and dead-lettering happen in the
 * delivery queues, which read the log: a slow or failing endpoint never holds a batch, and a
 * crash loses no delivery and no retry. Undecodable commands are logged and skipped. A batch
 * routed with configurations the deliverer has not read yet waits for them first
 * (`awaitConfigurations`), so no delivery is attempted with an older configuration than routed it.
 *
 * @example
 * await log.consume({ groupId: 'herald-deliverer', topics: ['notifications.deliveries'] },
 *   createDeliveryRequestHandler({ deliveries, logger }))
 */
export const createDeliveryRequestHandler = (options: DeliveryRequestHandlerOptions): BatchHandler => {
  const { deliveries, logger } = options
  return async (batch) => {
    const commands = decodeCommands(batch, logger)
    if (options.awaitConfigurations !== undefined) {
      let routedAt = 0
      for (const command of commands) routedAt = Math.max(routedAt, command.selectorSetPosition ?? 0)
      if (routedAt > 0) await options.awaitConfigurations(routedAt)
    }
    const position =
      commands.length === 0
        ? 0
        : await deliveries.requestMany(
            commands.map((command) => ({
              deliveryId: command.deliveryId,
              account: command.account,
              endpoint: command.endpoint,
              configurationId: command.configurationId,
              event: command.event,
              matchedSelectorIds: command.matchedSelectorIds,
              createdAt: command.createdAt,
              ...(command.digest === undefined ? {} : { digest: { ...command.digest } }),
            })),
          )
    options.onRecorded?.(position)
  }
}
