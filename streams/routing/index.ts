export {
  type DeliveryCommand,
  DeliveryCommandCodec,
  decodeDeliveryCommand,
  deliveryIdFor,
  encodeDeliveryCommand,
} from './delivery-command.ts'
export { hasWildcard, matchesSelector, wildcardMatches } from './match.ts'
export { routeEvent, routeEvents } from './route-events.ts'
export {
  buildSelectorIndex,
  emptySelectorIndex,
  type RouteMatch,
  type SelectorIndex,
  selectorIndexes,
} from './selector-index.ts'
