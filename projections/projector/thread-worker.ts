/**
 * The projector's thread (see `thread.ts`): opens the warehouse, the schema registry and the
 * projector's processed-id window of its own, and projects each batch it is sent with
 * `createProjectorHandler`, answering when the batch is stored or why it is not.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { errorText } from '../../src/errors/index.ts'
import { createIngressDecoder } from '../../src/ingress/index.ts'
import type { Logger } from '../../src/observability/index.ts'
import type { BatchHandler } from '../../src/ports/event-log.ts'
import { openSchemaRegistry, sharesProcessedIds } from '../../src/wiring/ingress.ts'
import { openWarehouse } from '../../src/wiring/warehouse.ts'
import { createProjectorHandler, openProjectedIds, openSharedProjectedIds } from './handler.ts'
import { createSwapGate } from './swap-gate.ts'
import {
  type FromProjector,
  type ProjectorThreadData,
  receivedBatch,
  sendError,
  type ToProjector,
} from './thread.ts'

const port = parentPort
if (port === null) throw new Error('thread-worker.ts runs as a worker thread')
const { config } = workerData as ProjectorThreadData
const post = (message: FromProjector) => port.postMessage(message)

const LEVELS = ['debug', 'info', 'warn', 'error'] as const
const lowest = LEVELS.indexOf(config.log_level)
// Lines below the configured level are dropped here rather than sent over to be dropped.
const logger: Logger = (level, event, fields) => {
  if (LEVELS.indexOf(level) >= lowest)
    post({ type: 'log', level, event, ...(fields === undefined ? {} : { fields }) })
}

// Opened before the first batch is handled; a failure to open ends the thread, which stops
// Herald (`ProjectorThreadOptions.onStopped`). The warehouse last: a thread that failed before
// it leaves no connection of chDB's behind. Distributed, the window is a table of the
// warehouse (a ClickHouse server), every instance's.
const opened = (async () => {
  const registry = openSchemaRegistry(config)
  const decoder = createIngressDecoder({ registry })
  const local = sharesProcessedIds(config) ? undefined : openProjectedIds(config.data_dir)
  const warehouse = await openWarehouse(config)
  const processed = local ?? (await openSharedProjectedIds(warehouse))
  // Other instances' rebuilds hold this projector still for their swaps (one gate for every run).
  const gate = config.warehouse.kind === 'clickhouse' ? createSwapGate({ warehouse, logger }) : undefined
  return { warehouse, registry, decoder, processed, gate }
})()
opened.catch((error: unknown) => {
  logger('error', 'projector.thread_open_failed', {
    error: errorText(error),
  })
  process.exit(1)
})

// One handler per run of the consumer (`ProjectorThread.handler`): a new run starts from the
// tables' state, not from what the previous run cached.
let current: { readonly run: number; readonly handle: BatchHandler } | undefined
const handlerOf = async (run: number): Promise<BatchHandler> => {
  const { warehouse, decoder, processed, gate } = await opened
  if (current?.run !== run)
    current = {
      run,
      handle: createProjectorHandler({
        warehouse,
        decoder,
        processed,
        ...(gate === undefined ? {} : { gate }),
        clock: Date.now,
        logger,
        onProjected: (count) => post({ type: 'projected', count }),
        onInvalid: (count) => post({ type: 'invalid', count }),
        onHalted: (resets) => post({ type: 'halted', resets }),
        onEventTimes: (earliest) => post({ type: 'event_times', earliest }),
      }),
    }
  return current.handle
}

const inFlight = new Set<Promise<void>>()

port.on('message', (message: ToProjector) => {
  if (message.type === 'batch') {
    const { id, run, batch } = message
    const handled = handlerOf(run)
      .then((handle) => handle(receivedBatch(batch)))
      .then(
        () => post({ type: 'done', id }),
        (error: unknown) =>
          post({
            type: 'failed',
            id,
            name: error instanceof Error ? error.name : 'Error',
            message: errorText(error),
          }),
      )
      .finally(() => inFlight.delete(handled))
    inFlight.add(handled)
    return
  }
  if (message.type === 'ping') {
    const { id } = message
    opened
      .then(({ processed }) => processed.ping())
      .then(
        () => post({ type: 'pong', id, error: null }),
        (error: unknown) => post({ type: 'pong', id, error: sendError(error) }),
      )
    return
  }
  // Closing: the warehouse's statements in flight finish first (ending the thread under one
  // would abort the engine the whole process shares). A batch a rebuild holds back fails at once.
  void (async () => {
    const resources = await opened.catch(() => undefined)
    await resources?.gate?.close()
    await Promise.allSettled([...inFlight])
    if (resources !== undefined) {
      await resources.processed.close()
      await resources.registry.close()
      await resources.warehouse.close()
    }
    post({ type: 'closed' })
    port.close()
  })()
})
