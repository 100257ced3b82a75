export {
  type AddressVerdict,
  type BlockReason,
  classifyAddress,
  type Embedding,
} from './address.ts'
export { type Allowlist, createAllowlist } from './allowlist.ts'
export {
  isOutboundBlocked,
  type OutboundBlockedContext,
  OutboundBlockedError,
  OutboundRequestError,
  OutboundTimeoutError,
  OutboundUnresolvableError,
} from './errors.ts'
export {
  type CheckedTarget,
  createOutboundGuard,
  type GuardedRequestInit,
  type GuardedResponse,
  type Lookup,
  type OutboundGuard,
  type OutboundGuardOptions,
  type ResolvedAddress,
} from './guard.ts'
export { createDnsLookup, type DnsLookupOptions } from './resolve.ts'
