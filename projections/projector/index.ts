import { createIngressDecoder, type IngressDecoder } from '../../src/ingress/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { BatchHandler } from '../../src/ports/event-log.ts'
import type { Warehouse } from '../../src/ports/warehouse.ts'
import { deduplicationToken, type EventRow, toEventRow } from './rows.ts'

export { deduplicationToken, type EventRow, toClickHouseTime, toEventRow } from './rows.ts'

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
}

/**
 * The projector's batch handler: one ClickHouse insert per log batch, tokened by the batch's
 * log positions, so the log's at-least-once redelivery never counts an event twice.
 *
 * @example
 * await log.consume({ groupId: 'herald-projector', topics: ['engine.events'] },
 *   createProjectorHandler({ warehouse, clock: Date.now, logger }))
 */
export const createProjectorHandler = (options: ProjectorOptions): BatchHandler => {
  const { warehouse, clock, logger } = options
  const decoder = options.decoder ?? createIngressDecoder()
  return async (batch) => {
    const first = batch.messages[0]
    const last = batch.messages.at(-1)
    if (first === undefined || last === undefined) return
    const ingestedAt = clock()
    const rows: EventRow[] = []
    let invalid = 0
    const results = await decoder.decodeBatch(batch.messages)
    batch.messages.forEach((message, i) => {
      const decoded = results[i]
      if (decoded?.ok) rows.push(toEventRow(decoded.event, message, ingestedAt))
      else {
        invalid++
        logger('debug', 'projector.event_invalid', {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          code: decoded?.failure.code,
        })
      }
    })
    if (rows.length > 0) {
      await warehouse.insert('events', rows, {
        deduplicationToken: deduplicationToken(batch.topic, batch.partition, first.offset, last.offset),
      })
    }
    if (invalid > 0) options.onInvalid?.(invalid)
    options.onProjected?.(rows.length)
    logger('debug', 'projector.batch_projected', {
      topic: batch.topic,
      partition: batch.partition,
      rows: rows.length,
      invalid,
    })
  }
}
