import { isIPv4, isIPv6 } from 'node:net'
import ipaddr from 'ipaddr.js'

/** Why an address may not be a notification target. Kept for logs and tests; never shown to callers. */
export type BlockReason =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'unique_local'
  | 'link_local'
  | 'site_local'
  | 'cloud_metadata'
  | 'carrier_grade_nat'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'benchmarking'
  | 'documentation'
  | 'protocol_assignment'
  | 'ipv4_mapped'
  | 'ipv4_compatible'
  | 'ipv4_translated'
  | 'teredo'
  | 'not_global_unicast'
  | 'invalid_address'

/** IPv6 spellings that carry an IPv4 address the packet may end up at. */
export type Embedding = 'ipv4_mapped' | 'ipv4_compatible' | 'ipv4_translated' | 'nat64' | '6to4'

export type AddressVerdict =
  | { readonly allowed: true; readonly family: 4 | 6 }
  | {
      readonly allowed: false
      readonly reason: BlockReason
      /** Set when the reason belongs to an IPv4 address embedded in an IPv6 one. */
      readonly embedded?: Embedding
    }

type Range = readonly [ipaddr.IPv4 | ipaddr.IPv6, number]
type Rule = readonly [BlockReason, Range]

const v4 = (cidr: string): Range => ipaddr.IPv4.parseCIDR(cidr)
const v6 = (cidr: string): Range => ipaddr.IPv6.parseCIDR(cidr)

// First match wins, so the narrow, more telling ranges (metadata, broadcast) come before the
// ranges that contain them.
const IPV4_RULES: readonly Rule[] = [
  ['cloud_metadata', v4('169.254.169.254/32')], // AWS, GCP, Azure, OpenStack, Oracle
  ['cloud_metadata', v4('100.100.100.200/32')], // Alibaba Cloud
  ['cloud_metadata', v4('168.63.129.16/32')], // Azure WireServer: a public-looking platform address
  ['broadcast', v4('255.255.255.255/32')],
  ['unspecified', v4('0.0.0.0/8')],
  ['private', v4('10.0.0.0/8')],
  ['carrier_grade_nat', v4('100.64.0.0/10')],
  ['loopback', v4('127.0.0.0/8')],
  ['link_local', v4('169.254.0.0/16')],
  ['private', v4('172.16.0.0/12')],
  ['documentation', v4('192.0.2.0/24')],
  ['protocol_assignment', v4('192.0.0.0/24')], // DS-Lite, NAT64 discovery, PCP anycast
  ['reserved', v4('192.88.99.0/24')], // deprecated 6to4 relay anycast
  ['private', v4('192.168.0.0/16')],
  ['benchmarking', v4('198.18.0.0/15')],
  ['documentation', v4('198.51.100.0/24')],
  ['documentation', v4('203.0.113.0/24')],
  ['multicast', v4('224.0.0.0/4')],
  ['reserved', v4('240.0.0.0/4')],
]

// IPv6 outside 2000::/3 is refused as a whole (see classifyIPv6), so these rules only need the
// special cases inside it plus the ranges whose reason is worth naming.
const IPV6_RULES: readonly Rule[] = [
  ['cloud_metadata', v6('fd00:ec2::254/128')], // AWS IMDS over IPv6
  ['unspecified', v6('::/128')],
  ['loopback', v6('::1/128')],
  ['teredo', v6('2001::/32')],
  ['benchmarking', v6('2001:2::/48')],
  ['protocol_assignment', v6('2001::/23')],
  ['documentation', v6('2001:db8::/32')],
  ['documentation', v6('3fff::/20')],
  ['unique_local', v6('fc00::/7')],
  ['link_local', v6('fe80::/10')],
  ['site_local', v6('fec0::/10')],
  ['multicast', v6('ff00::/8')],
]

const GLOBAL_UNICAST = v6('2000::/3')
const IPV4_MAPPED = v6('::ffff:0:0/96')
const IPV4_TRANSLATED = v6('::ffff:0:0:0/96')
const IPV4_COMPATIBLE = v6('::/96')
const UNSPECIFIED_OR_LOOPBACK = v6('::/127')
const NAT64_WELL_KNOWN = v6('64:ff9b::/96')
const NAT64_LOCAL = v6('64:ff9b:1::/48')
const SIX_TO_FOUR = v6('2002::/16')

const inRange = (address: ipaddr.IPv4 | ipaddr.IPv6, [base, bits]: Range): boolean =>
  address.kind() === base.kind() && address.match(base, bits)

const firstMatch = (address: ipaddr.IPv4 | ipaddr.IPv6, rules: readonly Rule[]): BlockReason | undefined =>
  rules.find(([, range]) => inRange(address, range))?.[0]

const ipv4FromBytes = (bytes: readonly number[]): ipaddr.IPv4 =>
  new ipaddr.IPv4([bytes[0] ?? 0, bytes[1] ?? 0, bytes[2] ?? 0, bytes[3] ?? 0])

const classifyIPv4 = (address: ipaddr.IPv4): AddressVerdict => {
  const reason = firstMatch(address, IPV4_RULES)
  return reason === undefined ? { allowed: true, family: 4 } : { allowed: false, reason }
}

const embeddedVerdict = (embedded: ipaddr.IPv4, via: Embedding): AddressVerdict => {
  const verdict = classifyIPv4(embedded)
  return verdict.allowed
    ? { allowed: true, family: 6 }
    : { allowed: false, reason: verdict.reason, embedded: via }
}

// An embedded IPv4 is judged as that IPv4 when it is forbidden, because that is where the packet
// can land. Mapped, translated and compatible spellings are refused even around a public IPv4:
// no legitimate endpoint publishes them, and they only serve to dodge IPv4 checks.
const refuseEmbedding = (
  embedded: ipaddr.IPv4,
  via: 'ipv4_mapped' | 'ipv4_translated' | 'ipv4_compatible',
): AddressVerdict => {
  const verdict = classifyIPv4(embedded)
  return verdict.allowed ? { allowed: false, reason: via } : { ...verdict, embedded: via }
}

const classifyIPv6 = (address: ipaddr.IPv6): AddressVerdict => {
  const bytes = address.toByteArray()
  const last32 = ipv4FromBytes(bytes.slice(12, 16))
  if (inRange(address, IPV4_MAPPED)) return refuseEmbedding(last32, 'ipv4_mapped')
  if (inRange(address, IPV4_TRANSLATED)) return refuseEmbedding(last32, 'ipv4_translated')
  if (inRange(address, IPV4_COMPATIBLE) && !inRange(address, UNSPECIFIED_OR_LOOPBACK))
    return refuseEmbedding(last32, 'ipv4_compatible')
  // NAT64 prefixes reach public IPv4 hosts on IPv6-only networks, so only the embedded address
  // decides. The local-use /48 is read at the /96 position, the layout its deployments use.
  if (inRange(address, NAT64_WELL_KNOWN) || inRange(address, NAT64_LOCAL))
    return embeddedVerdict(last32, 'nat64')
  if (inRange(address, SIX_TO_FOUR)) return embeddedVerdict(ipv4FromBytes(bytes.slice(2, 6)), '6to4')
  const reason = firstMatch(address, IPV6_RULES)
  if (reason !== undefined) return { allowed: false, reason }
  if (!inRange(address, GLOBAL_UNICAST)) return { allowed: false, reason: 'not_global_unicast' }
  return { allowed: true, family: 6 }
}

/**
 * Parses an address as it comes out of a resolver or a WHATWG-normalized URL host: dotted-quad
 * IPv4 or IPv6 (brackets and a zone index tolerated). Legacy spellings such as `0177.0.0.1` are
 * not addresses here; `new URL` has already turned them into dotted quads.
 */
export const parseAddress = (text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined => {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text
  const withoutZone = bare.split('%', 1)[0] ?? ''
  if (isIPv4(withoutZone)) return ipaddr.IPv4.parse(withoutZone)
  if (!isIPv6(withoutZone)) return undefined
  // ipaddr.js reads the deprecated `::a.b.c.d` as `::ffff:a.b.c.d`, another address. The WHATWG
  // serialiser rewrites any dotted tail as hex first, leaving ipaddr.js nothing to reinterpret.
  try {
    return ipaddr.IPv6.parse(new URL(`http://[${withoutZone}]/`).hostname.slice(1, -1))
  } catch {
    return undefined
  }
}

/**
 * Decides whether one IP address may be a notification target: only globally routable unicast
 * passes. Anything that does not parse is refused, so a resolver surprise fails closed.
 *
 * @example
 * classifyAddress('64:ff9b::7f00:1') // { allowed: false, reason: 'loopback', embedded: 'nat64' }
 */
export const classifyAddress = (text: string): AddressVerdict => {
  const address = parseAddress(text)
  if (address === undefined) return { allowed: false, reason: 'invalid_address' }
  return address.kind() === 'ipv4'
    ? classifyIPv4(address as ipaddr.IPv4)
    : classifyIPv6(address as ipaddr.IPv6)
}
