import { decodeLogEvent } from '../../src/events/index.ts'
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
  return async (batch) => {
    const first = batch.messages[0]
    const last = batch.messages.at(-1)
    if (first === undefined || last === undefined) return
    const ingestedAt = clock()
    const rows: EventRow[] = []
    let invalid = 0
    for (const message of batch.messages) {
      const decoded = decodeLogEvent(message)
      if (decoded.ok) rows.push(toEventRow(decoded.value, message, ingestedAt))
      else {
        invalid++
        logger('warn', 'projector.event_invalid', {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          issues: decoded.issues,
        })
      }
    }
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
