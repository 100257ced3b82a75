export { createDeliveryRequestHandler, type DeliveryRequestHandlerOptions } from './deliverer.ts'
export * from './delivery/index.ts'
export {
  createRouterHandler,
  dropProcessed,
  ROUTER_MAX_BATCH,
  type RouterCounts,
  type RouterHandlerOptions,
} from './router.ts'
export * from './routing/index.ts'
