import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * Herald's instruments, on a registry of their own (never prom-client's global one), so two
 * Herald instances in one process — as in the tests — never share counters.
 */
export const createMetrics = () => {
  const registry = new Registry()
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] })
  return {
    registry,
    eventsIngested: counter('herald_events_ingested_total', 'Events accepted by the ingest API', ['account']),
    eventsRejected: counter('herald_events_rejected_total', 'Ingest requests rejected as invalid'),
    eventsRouted: counter('herald_router_events_total', 'Events the router matched against selectors'),
    deliveryCommands: counter('herald_router_delivery_commands_total', 'Delivery commands emitted'),
    deliveries: counter('herald_deliveries_total', 'Delivery attempts by endpoint and outcome', [
      'endpoint',
      'outcome',
    ]),
    eventsProjected: counter('herald_projector_events_total', 'Events inserted into the warehouse'),
    invalidLogEvents: counter('herald_log_events_invalid_total', 'Log messages that failed to decode', [
      'consumer',
    ]),
    deadLettered: counter(
      'herald_ingress_dead_lettered_total',
      'Engine event messages set aside on the dead-letter topic, by reason',
      ['reason'],
    ),
    duplicateEvents: counter(
      'herald_router_duplicate_events_total',
      'Engine events skipped because their (account, source, id) was already routed',
    ),
    batchSeconds: new Histogram({
      name: 'herald_batch_duration_seconds',
      help: 'Time to handle one log batch',
      labelNames: ['consumer'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    httpRequests: counter('herald_http_requests_total', 'HTTP requests by route and status', [
      'method',
      'route',
      'status',
    ]),
    up: new Gauge({ name: 'herald_up', help: '1 while Herald is serving', registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
