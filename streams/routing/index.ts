export {
  type DeliveryCommand,
  DeliveryCommandCodec,
  type DeliveryDigest,
  DeliveryDigestCodec,
  type DigestLevelCount,
  type DigestTypeCount,
  decodeDeliveryCommand,
  deliveryIdFor,
  digestDeliveryIdFor,
  encodeDeliveryCommand,
} from './delivery-command.ts'
export { hasWildcard, wildcardMatches } from './match.ts'
export { commandFor, routeEvent, routeEvents } from './route-events.ts'
export {
  buildSelectorIndex,
  compileSelector,
  emptySelectorIndex,
  type RouteMatch,
  type SelectorIndex,
  type SelectorIndexOptions,
  selectorIndexes,
} from './selector-index.ts'
