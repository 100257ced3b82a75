import { concatMap, type OperatorFunction } from 'rxjs'
import type { CloudEvent } from '../../src/events/index.ts'
import { type DeliveryCommand, deliveryIdFor } from './delivery-command.ts'
import type { SelectorIndex } from './selector-index.ts'

/**
 * One command per configuration that `event` matches, however many of its selectors matched.
 * Pure: the time is passed in.
 */
export const routeEvent = (index: SelectorIndex, event: CloudEvent, createdAt: string): DeliveryCommand[] =>
  index.match(event).map(({ configuration, selectorIds }) => ({
    deliveryId: deliveryIdFor(event.id, configuration.id),
    account: configuration.account,
    endpoint: configuration.endpoint,
    configurationId: configuration.id,
    event,
    matchedSelectorIds: selectorIds,
    createdAt,
  }))

/**
 * Routes each event with the index current at that moment, so a configuration change takes
 * effect at the next event without restarting the pipeline.
 *
 * @example
 * events$.pipe(routeEvents(() => latestIndex, Date.now))
 */
export const routeEvents =
  (getIndex: () => SelectorIndex, clock: () => number): OperatorFunction<CloudEvent, DeliveryCommand> =>
  (events) =>
    events.pipe(concatMap((event) => routeEvent(getIndex(), event, new Date(clock()).toISOString())))
