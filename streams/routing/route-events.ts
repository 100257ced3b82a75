import { concatMap, type OperatorFunction } from 'rxjs'
import type { CloudEvent } from '../../src/events/index.ts'
import { type DeliveryCommand, deliveryIdFor } from './delivery-command.ts'
import type { RouteMatch, SelectorIndex } from './selector-index.ts'

/** The command delivering `event` on its own to the configuration of `match`. */
export const commandFor = (event: CloudEvent, match: RouteMatch, createdAt: string): DeliveryCommand => ({
  deliveryId: deliveryIdFor(event, match.configuration.id),
  account: match.configuration.account,
  endpoint: match.configuration.endpoint,
  configurationId: match.configuration.id,
  event,
  matchedSelectorIds: match.selectorIds,
  createdAt,
})

/**
 * One command per configuration that `event` matches, however many of its selectors matched.
 * Digest settings are not looked at: `decideRoutes` (streams/digest.ts) holds the matches of
 * configurations that asked for digests. Pure: the time is passed in.
 */
export const routeEvent = (index: SelectorIndex, event: CloudEvent, createdAt: string): DeliveryCommand[] =>
  index.match(event).map((match) => commandFor(event, match, createdAt))

/**
 * Routes each event with the index current at that moment, so a configuration change takes
 * effect at the next event without restarting the pipeline. An index is never changed, only
 * replaced: each event is matched against one index, whole.
 *
 * @example
 * events$.pipe(routeEvents(() => latestIndex, Date.now))
 */
export const routeEvents =
  (getIndex: () => SelectorIndex, clock: () => number): OperatorFunction<CloudEvent, DeliveryCommand> =>
  (events) =>
    events.pipe(concatMap((event) => routeEvent(getIndex(), event, new Date(clock()).toISOString())))
