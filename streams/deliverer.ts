import { concatMap, from, lastValueFrom, mergeMap, type Observable, of, toArray } from 'rxjs'
import { HeraldError, isRetriable } from '../src/errors/index.ts'
import type { Logger } from '../src/observability/index.ts'
import type { Batch, BatchHandler, LogMessage } from '../src/ports/index.ts'
import type { ChannelConfiguration, ChannelResult, DeliveryChannels } from './delivery/index.ts'
import { type DeliveryCommand, decodeDeliveryCommand } from './routing/index.ts'

/** A batch had deliveries that may succeed later; the log delivers the batch again. */
export class DeliveryRetryError extends HeraldError {
  constructor(context: { topic: string; partition: number; deliveryIds: readonly string[] }) {
    super('delivery_retry', `${context.deliveryIds.length} deliveries failed and will be retried`, {
      retriable: true,
      context,
    })
  }
}

/** A configuration as the deliverer needs it: the channel's view with secrets opened, and its switch. */
export interface DeliverableConfiguration {
  readonly enabled: boolean
  readonly channel: ChannelConfiguration
}

export interface DelivererHandlerOptions {
  /** The configuration as of now; undefined when it does not exist (any more). */
  readonly getConfiguration: (
    configurationId: string,
  ) => DeliverableConfiguration | undefined | Promise<DeliverableConfiguration | undefined>
  /** The channel port (`createDeliveryChannels(...).send`). */
  readonly send: DeliveryChannels['send']
  /** `ui_url`: messages link into the UI when set. */
  readonly uiUrl: string | null
  readonly logger: Logger
  readonly timeoutMs: number
  /** Configurations delivered to at the same time (default 8); one configuration's deliveries go one at a time. */
  readonly concurrency?: number
  /** How many recent delivery ids are remembered to skip in a retried batch (default 10 000). */
  readonly rememberDeliveries?: number
  /** Each delivery's outcome, for metrics (`herald_deliveries_total{endpoint,outcome}`) and health. */
  readonly onOutcome?: (outcome: DeliveryOutcome, command: DeliveryCommand) => void
  /** The endpoint answered that it no longer exists (HTTP 410): its configuration should be disabled. */
  readonly onGone?: (command: DeliveryCommand) => void | Promise<void>
}

/** `sent`: 2xx; `failed`: retriable, retried with the batch; `rejected`: final refusal; `skipped`: nothing to send to. */
export type DeliveryOutcome = 'sent' | 'failed' | 'rejected' | 'skipped'

type Outcome = 'done' | 'retry' | 'deferred'

/** Insertion-ordered set that forgets its oldest ids beyond `capacity`. */
const recentIds = (capacity: number) => {
  const ids = new Set<string>()
  return {
    has: (id: string) => ids.has(id),
    add: (id: string) => {
      ids.add(id)
      if (ids.size <= capacity) return
      const oldest = ids.values().next()
      if (oldest.done !== true) ids.delete(oldest.value)
    },
  }
}

/**
 * The deliverer's EventLog batch handler: sends each DeliveryCommand through its endpoint's
 * channel. A permanent failure (a 4xx, a missing or disabled configuration) is logged and skipped;
 * a retriable one makes the handler reject after the rest of the batch was tried, so the log
 * delivers the batch again. Deliveries that already succeeded are remembered and not sent
 * twice when that happens.
 *
 * @example
 * await log.consume({ groupId: 'herald-deliverer', topics: ['notifications.deliveries'] },
 *   createDelivererHandler({ getConfiguration, send: channels.send, uiUrl: null, logger, timeoutMs: 15_000 }))
 */
export const createDelivererHandler = (options: DelivererHandlerOptions): BatchHandler => {
  const { getConfiguration, send, uiUrl, logger, timeoutMs } = options
  const concurrency = options.concurrency ?? 8
  const delivered = recentIds(options.rememberDeliveries ?? 10_000)

  const fields = (command: DeliveryCommand) => ({
    delivery_id: command.deliveryId,
    configuration_id: command.configurationId,
    account: command.account,
    event_id: command.event.id,
    event_type: command.event.type,
  })

  const attempt = async (command: DeliveryCommand): Promise<DeliveryOutcome> => {
    const configuration = await getConfiguration(command.configurationId)
    const endpoint = command.endpoint
    if (
      configuration === undefined ||
      !configuration.enabled ||
      configuration.channel.account !== command.account ||
      configuration.channel.endpoint !== endpoint
    ) {
      const reason =
        configuration === undefined
          ? 'configuration_missing'
          : !configuration.enabled
            ? 'configuration_disabled'
            : 'configuration_mismatch'
      logger('warn', `delivery.${endpoint}.skipped`, { ...fields(command), reason })
      return 'skipped'
    }
    let result: ChannelResult
    try {
      result = await send(command, configuration.channel, { uiUrl, timeoutMs })
    } catch (error) {
      // Channels report endpoint, network and configuration failures as results; what they
      // throw is our own fault, and only a retriable Herald error deserves a retry.
      logger('error', `delivery.${endpoint}.error`, {
        ...fields(command),
        error: String(error),
        retriable: isRetriable(error),
      })
      return isRetriable(error) ? 'failed' : 'rejected'
    }
    const outcome = { ...fields(command), status: result.status, latency_ms: result.latencyMs }
    if (result.ok) {
      logger('info', `delivery.${endpoint}.sent`, outcome)
      return 'sent'
    }
    const failure = { ...outcome, code: result.code, error: result.error, kind: result.kind }
    if (result.kind === 'retriable') {
      logger('warn', `delivery.${endpoint}.failed`, {
        ...failure,
        retry_after_ms: result.retryAfterMs ?? null,
      })
      return 'failed'
    }
    logger('warn', `delivery.${endpoint}.rejected`, failure)
    if (result.kind === 'gone') await options.onGone?.(command)
    return 'rejected'
  }

  const deliver = async (command: DeliveryCommand): Promise<Outcome> => {
    // Already settled in an earlier attempt of this batch: the batch came back only for others.
    if (delivered.has(command.deliveryId)) return 'done'
    const outcome = await attempt(command)
    options.onOutcome?.(outcome, command)
    if (outcome === 'failed') return 'retry'
    delivered.add(command.deliveryId)
    return 'done'
  }

  /** In order; after a retriable failure the rest wait for the batch's next attempt. */
  const deliverInOrder = (
    commands: readonly DeliveryCommand[],
  ): Observable<{ command: DeliveryCommand; outcome: Outcome }> => {
    let blocked = false
    return from(commands).pipe(
      concatMap(async (command) => {
        if (blocked) return { command, outcome: 'deferred' as const }
        const outcome = await deliver(command)
        if (outcome === 'retry') blocked = true
        return { command, outcome }
      }),
    )
  }

  const decodeAll = (batch: Batch): Map<string, DeliveryCommand[]> => {
    const byConfiguration = new Map<string, DeliveryCommand[]>()
    for (const message of batch.messages) {
      const decoded = decodeDeliveryCommand(message)
      if (!decoded.ok) {
        logInvalid(message, decoded.issues)
        continue
      }
      const list = byConfiguration.get(decoded.value.configurationId)
      if (list === undefined) byConfiguration.set(decoded.value.configurationId, [decoded.value])
      else list.push(decoded.value)
    }
    return byConfiguration
  }

  const logInvalid = (message: LogMessage, issues: readonly { path: string; message: string }[]) =>
    logger('warn', 'delivery.command_invalid', {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      issues,
    })

  return async (batch) => {
    const groups = decodeAll(batch)
    const results = await lastValueFrom(
      of(...groups.values()).pipe(mergeMap(deliverInOrder, concurrency), toArray()),
    )
    const pending = results.filter((r) => r.outcome !== 'done').map((r) => r.command.deliveryId)
    if (pending.length > 0) {
      throw new DeliveryRetryError({ topic: batch.topic, partition: batch.partition, deliveryIds: pending })
    }
  }
}
