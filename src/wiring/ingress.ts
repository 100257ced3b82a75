import { join } from 'node:path'
import { createDigestFlusher } from '../../streams/digest-flusher.ts'
import type { DigestStore } from '../../streams/digest-store.ts'
import { createDigestStore } from '../../streams/digest-store-sqlite.ts'
import { batchHandler, ROUTER_MAX_BATCH, routeBatches } from '../../streams/router.ts'
import type { SelectorIndex } from '../../streams/routing/index.ts'
import { type Config, scrubCredentials } from '../config/index.ts'
import { MAX_DELIVERY_COMMAND_BYTES } from '../deliveries/events.ts'
import {
  createConfluentSchemaRegistry,
  createEmbeddedSchemaRegistry,
  createIngressDecoder,
  createSqliteProcessedIds,
  createWarehouseProcessedIds,
  heraldAvroSubjects,
  heraldSubjects,
  type IngressDecoder,
  type ProcessedIds,
  registerSubjects,
  type SchemaRegistry,
} from '../ingress/index.ts'
import type { Logger, Metrics } from '../observability/index.ts'
import type { Consumer, EventLog } from '../ports/event-log.ts'
import type { Warehouse } from '../ports/warehouse.ts'

/**
 * The schema registry `config` names, without registering anything: a Confluent registry's
 * client, or the embedded one holding Herald's subjects. The projector's thread opens its own.
 */
export const openSchemaRegistry = (config: Config): SchemaRegistry => {
  if (config.schema_registry.kind !== 'confluent')
    return createEmbeddedSchemaRegistry({ subjects: heraldSubjects(config.event_log.topics) })
  const { url, username, password } = config.schema_registry.confluent
  return createConfluentSchemaRegistry({
    url: url ?? '',
    clientId: config.event_log.kafka.client_id,
    ...(username === null || password === null ? {} : { username, password }),
  })
}

/**
 * Whether Herald runs distributed, the log Kafka and the warehouse a ClickHouse server: then
 * a partition may move to another instance, and the processed-id windows (the router's, the
 * projector's) are tables of that server every instance shares, not files of one instance.
 */
export const sharesProcessedIds = (config: {
  readonly event_log: Pick<Config['event_log'], 'kind'>
  readonly warehouse: Pick<Config['warehouse'], 'kind'>
}): boolean => config.event_log.kind === 'kafka' && config.warehouse.kind === 'clickhouse'

export interface IngressWiring {
  readonly registry: SchemaRegistry
  /** Shared by the router and the projector, so a schema is fetched and compiled once per process. */
  readonly decoder: IngressDecoder
  readonly processed: ProcessedIds
  /** The router's durable buffer of events held for digests (storm control). */
  readonly digests: DigestStore
  close(): Promise<void>
}

export interface WireIngressOptions {
  readonly config: Config
  /** Holds the shared processed-id window in the distributed deployment; untouched otherwise. */
  readonly warehouse: Pick<Warehouse, 'command' | 'query' | 'insert'>
  readonly logger: Logger
}

/**
 * The ingress part of the composition root: the schema registry (Herald's schemas registered
 * at start-up when configured to), the decoder both engine-event consumers share, the
 * router's processed-id window — a SQLite file in the data directory for one process, a
 * ClickHouse table shared by every router instance when the log is Kafka and the warehouse a
 * ClickHouse server — and its digest buffer, a SQLite file in the data directory.
 */
export const wireIngress = async ({
  config,
  warehouse,
  logger,
}: WireIngressOptions): Promise<IngressWiring> => {
  const { topics } = config.event_log
  const registry = openSchemaRegistry(config)
  if (config.schema_registry.kind === 'confluent' && config.schema_registry.confluent.register_schemas) {
    // A Confluent registry also gets the Avro subjects, for producers that write Avro.
    const ids = await registerSubjects(registry, [...heraldSubjects(topics), ...heraldAvroSubjects(topics)])
    logger('info', 'schema_registry.registered', {
      subjects: ids.size,
      // A registry URL may carry basic-auth credentials, and logs are read more widely than config.
      url: scrubCredentials(config.schema_registry.confluent.url ?? ''),
    })
  }

  const shared = sharesProcessedIds(config)
  const processed = shared
    ? await createWarehouseProcessedIds(warehouse)
    : createSqliteProcessedIds({
        path: join(config.data_dir, 'processed-ids.sqlite'),
        // Beside the projector's window, whose errors would otherwise read the same.
        name: 'router processed-id window',
      })
  logger('info', 'router.processed_ids_opened', { store: shared ? 'clickhouse' : 'sqlite' })
  // Beside the processed ids, in every deployment: see streams/digest-store.ts for why.
  const digests = createDigestStore({ path: join(config.data_dir, 'digests.sqlite') })

  return {
    registry,
    // The embedded log hands the router and the projector the same published values.
    decoder: createIngressDecoder({ registry, keepDecoded: config.event_log.kind === 'embedded' }),
    processed,
    digests,
    close: async () => {
      await digests.close()
      await processed.close()
      await registry.close()
    },
  }
}

export interface StartRouterOptions {
  readonly config: Config
  readonly log: EventLog
  readonly ingress: IngressWiring
  readonly metrics: Metrics
  readonly logger: Logger
  readonly clock: () => number
  readonly getIndex: () => SelectorIndex
  /** `false` when notifications are off: validate and dead-letter only. */
  readonly route: boolean
}

/**
 * Starts the `herald-router` consumer group. It is the one group that dead-letters invalid
 * engine events, so it runs whether or not notifications are on; with them off it routes
 * nothing and only keeps the dead-letter topic and its counters working. When it routes, the
 * digest flusher runs beside it (at once, for windows that closed while Herald was down, then
 * every second); stopping the returned consumer stops both, the consumer first, so a batch in
 * flight still records its digest entries.
 */
export const startRouter = async ({
  config,
  log,
  ingress,
  metrics,
  logger,
  clock,
  getIndex,
  route,
}: StartRouterOptions): Promise<Consumer> => {
  const { topics } = config.event_log
  if (!route)
    logger('info', 'router.validate_only', { reason: 'notifications.enabled is false', dlq: topics.dlq })
  const consumer = await log.consume(
    { groupId: 'herald-router', topics: [topics.events], maxBatchSize: ROUTER_MAX_BATCH },
    metrics.timeBatches(
      'router',
      batchHandler(
        routeBatches({
          log,
          topics: { deliveries: topics.deliveries, dlq: topics.dlq },
          getIndex,
          clock,
          logger,
          decoder: ingress.decoder,
          processed: ingress.processed,
          digests: {
            store: ingress.digests,
            defaultWindowSeconds: config.notifications.cycle_timers.notifications,
          },
          route,
          ...(log.maxMessageBytes === undefined ? {} : { maxMessageBytes: log.maxMessageBytes }),
          // Each command becomes a DeliveryRequested in the event store, which takes less than
          // an embedded log (no limit) or a Kafka one set above its default.
          maxCommandBytes: MAX_DELIVERY_COMMAND_BYTES,
          onRouted: ({ events, invalid, duplicates, deliveries, deadLettered }) => {
            metrics.eventsRouted.inc(events)
            metrics.deliveryCommands.inc(deliveries)
            if (invalid > 0) metrics.invalidLogEvents.inc({ consumer: 'router' }, invalid)
            if (duplicates > 0) metrics.duplicateEvents.inc(duplicates)
            for (const [reason, count] of Object.entries(deadLettered))
              metrics.deadLettered.inc({ reason }, count)
          },
        }),
      ),
    ),
  )
  if (!route) return consumer
  const flusher = createDigestFlusher({
    store: ingress.digests,
    log,
    topic: topics.deliveries,
    clock,
    logger,
    // Each Kafka router instance keeps its own buffer: their digests of one window must not share an id.
    ...(config.event_log.kind === 'kafka' ? { instance: ingress.digests.instanceId } : {}),
    // A digest is a delivery command too: it lists fewer events to fit the event store as well.
    maxMessageBytes: Math.min(log.maxMessageBytes ?? MAX_DELIVERY_COMMAND_BYTES, MAX_DELIVERY_COMMAND_BYTES),
    maxAttempts: config.notifications.digest_max_attempts,
    deadLetterTopic: topics.dlq,
    selectorSetPosition: () => getIndex().position,
    onFlushed: ({ digests, deadLettered }) => {
      metrics.deliveryCommands.inc(digests)
      if (deadLettered > 0) metrics.deadLettered.inc({ reason: 'digest_undeliverable' }, deadLettered)
    },
  })
  flusher.start()
  return {
    stop: async () => {
      await consumer.stop()
      await flusher.stop()
    },
    holdsSince: consumer.holdsSince,
  }
}
