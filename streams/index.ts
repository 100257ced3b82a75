export { createDeliveryRequestHandler, type DeliveryRequestHandlerOptions } from './deliverer.ts'
export * from './delivery/index.ts'
export {
  batchHandler,
  createRouterHandler,
  decodeMessages,
  dropRouted,
  matchSelectors,
  publishDeliveries,
  type Refusal,
  ROUTER_MAX_BATCH,
  type RouterCounts,
  type RouterDigestOptions,
  type RouterHandlerOptions,
  type Routing,
  type RoutingEvent,
  rememberRouted,
  routeBatches,
  routerCounts,
  type SetAsideOptions,
  setAsideRefused,
  toDeliveries,
} from './router.ts'
export * from './routing/index.ts'
