export {
  commandFor,
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
export {
  buildSelectorIndex,
  compileSelector,
  createSelectorIndexBuilder,
  emptySelectorIndex,
  type RouteMatch,
  type SelectorIndex,
  type SelectorIndexBuild,
  type SelectorIndexBuilder,
  type SelectorIndexOptions,
} from './selector-index.ts'
