export {
  type DeliveryCommand,
  DeliveryCommandCodec,
  decodeDeliveryCommand,
  deliveryIdFor,
  encodeDeliveryCommand,
} from './delivery-command.ts'
export { hasWildcard, wildcardMatches } from './match.ts'
export { routeEvent, routeEvents } from './route-events.ts'
export {
  buildSelectorIndex,
  compileSelector,
  emptySelectorIndex,
  type RouteMatch,
  type SelectorIndex,
  type SelectorIndexOptions,
  selectorIndexes,
} from './selector-index.ts'
