import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type AddressVerdict, classifyAddress } from './address.ts'

type Expected = AddressVerdict | 'allowed'

const refused = (reason: string, embedded?: string) =>
  ({ allowed: false, reason, ...(embedded === undefined ? {} : { embedded }) }) as AddressVerdict

const IPV4: readonly (readonly [string, Expected])[] = [
  ['0.0.0.0', refused('unspecified')],
  ['0.255.1.2', refused('unspecified')],
  ['10.0.0.1', refused('private')],
  ['10.255.255.255', refused('private')],
  ['172.16.0.1', refused('private')],
  ['172.31.255.254', refused('private')],
  ['172.15.255.255', 'allowed'],
  ['172.32.0.1', 'allowed'],
  ['192.168.0.1', refused('private')],
  ['192.168.255.255', refused('private')],
  ['100.64.0.1', refused('carrier_grade_nat')],
  ['100.127.255.255', refused('carrier_grade_nat')],
  ['100.63.255.255', 'allowed'],
  ['100.128.0.0', 'allowed'],
  ['127.0.0.1', refused('loopback')],
  ['127.255.255.254', refused('loopback')],
  ['169.254.0.1', refused('link_local')],
  ['169.254.170.2', refused('link_local')],
  ['169.254.169.254', refused('cloud_metadata')],
  ['100.100.100.200', refused('cloud_metadata')],
  ['168.63.129.16', refused('cloud_metadata')],
  ['192.0.0.8', refused('protocol_assignment')],
  ['192.0.2.1', refused('documentation')],
  ['198.51.100.7', refused('documentation')],
  ['203.0.113.9', refused('documentation')],
  ['192.88.99.1', refused('reserved')],
  ['198.18.0.1', refused('benchmarking')],
  ['198.19.255.255', refused('benchmarking')],
  ['198.17.255.255', 'allowed'],
  ['198.20.0.0', 'allowed'],
  ['224.0.0.1', refused('multicast')],
  ['239.255.255.250', refused('multicast')],
  ['240.0.0.1', refused('reserved')],
  ['254.1.2.3', refused('reserved')],
  ['255.255.255.255', refused('broadcast')],
  ['1.1.1.1', 'allowed'],
  ['8.8.8.8', 'allowed'],
  ['11.0.0.1', 'allowed'],
  ['93.184.215.14', 'allowed'],
  ['223.255.255.255', 'allowed'],
]

const IPV6: readonly (readonly [string, Expected])[] = [
  ['::', refused('unspecified')],
  ['0:0:0:0:0:0:0:0', refused('unspecified')],
  ['::1', refused('loopback')],
  ['0:0:0:0:0:0:0:1', refused('loopback')],
  // IPv4-mapped: judged as the IPv4 when that is forbidden, refused as a spelling otherwise.
  ['::ffff:127.0.0.1', refused('loopback', 'ipv4_mapped')],
  ['::ffff:7f00:1', refused('loopback', 'ipv4_mapped')],
  ['0:0:0:0:0:ffff:7f00:0001', refused('loopback', 'ipv4_mapped')],
  ['::ffff:10.0.0.1', refused('private', 'ipv4_mapped')],
  ['::ffff:a9fe:a9fe', refused('cloud_metadata', 'ipv4_mapped')],
  ['::ffff:0.0.0.0', refused('unspecified', 'ipv4_mapped')],
  ['::ffff:8.8.8.8', refused('ipv4_mapped')],
  // IPv4-translated (RFC 6145) and the deprecated IPv4-compatible form.
  ['::ffff:0:7f00:1', refused('loopback', 'ipv4_translated')],
  ['::ffff:0:808:808', refused('ipv4_translated')],
  ['::127.0.0.1', refused('loopback', 'ipv4_compatible')],
  ['::a00:1', refused('private', 'ipv4_compatible')],
  ['::8.8.8.8', refused('ipv4_compatible')],
  // NAT64: the embedded IPv4 decides.
  ['64:ff9b::7f00:1', refused('loopback', 'nat64')],
  ['64:ff9b::127.0.0.1', refused('loopback', 'nat64')],
  ['64:ff9b::a9fe:a9fe', refused('cloud_metadata', 'nat64')],
  ['64:ff9b::10.1.2.3', refused('private', 'nat64')],
  ['64:ff9b::c0a8:1', refused('private', 'nat64')],
  ['64:ff9b::808:808', 'allowed'],
  ['64:ff9b:1::a00:1', refused('private', 'nat64')],
  ['64:ff9b:1:abcd::7f00:1', refused('loopback', 'nat64')],
  ['64:ff9b:1::808:808', 'allowed'],
  // 6to4: the IPv4 sits in bits 16–47.
  ['2002:7f00:1::', refused('loopback', '6to4')],
  ['2002:a9fe:a9fe::1', refused('cloud_metadata', '6to4')],
  ['2002:c0a8:101::1', refused('private', '6to4')],
  ['2002:808:808::1', 'allowed'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', refused('teredo')],
  ['2001::1', refused('teredo')],
  ['2001:2::1', refused('benchmarking')],
  ['2001:1::1', refused('protocol_assignment')],
  ['2001:db8::1', refused('documentation')],
  ['2001:db8:ffff::1', refused('documentation')],
  ['3fff::1', refused('documentation')],
  ['fc00::1', refused('unique_local')],
  ['fd12:3456:789a::1', refused('unique_local')],
  ['fd00:ec2::254', refused('cloud_metadata')],
  ['fe80::1', refused('link_local')],
  ['fe80::1%eth0', refused('link_local')],
  ['febf:ffff::1', refused('link_local')],
  ['fec0::1', refused('site_local')],
  ['ff02::1', refused('multicast')],
  ['ff05::1:3', refused('multicast')],
  ['100::1', refused('not_global_unicast')],
  ['5f00::1', refused('not_global_unicast')],
  ['4000::1', refused('not_global_unicast')],
  ['2606:4700:4700::1111', 'allowed'],
  ['2001:4860:4860::8888', 'allowed'],
  ['2a00:1450:4001:80b::200e', 'allowed'],
  ['[2606:4700:4700::1111]', 'allowed'],
]

const NOT_ADDRESSES = [
  '',
  'localhost',
  '1.2.3',
  '0177.0.0.1',
  '0x7f.0.0.1',
  '2130706433',
  '::ffff:1.2.3',
  '[::1',
]

const check = (address: string, expected: Expected) => {
  const verdict = classifyAddress(address)
  if (expected === 'allowed') assert.equal(verdict.allowed, true, `${address}: ${JSON.stringify(verdict)}`)
  else assert.deepEqual(verdict, expected, address)
}

describe('classifyAddress', () => {
  it('classifies every special IPv4 range and its edges', () => {
    for (const [address, expected] of IPV4) check(address, expected)
  })

  it('classifies every special IPv6 range, and IPv6 spellings of IPv4 by their embedded address', () => {
    for (const [address, expected] of IPV6) check(address, expected)
  })

  it('reports the family of an allowed address', () => {
    assert.deepEqual(classifyAddress('8.8.8.8'), { allowed: true, family: 4 })
    assert.deepEqual(classifyAddress('2606:4700:4700::1111'), { allowed: true, family: 6 })
  })

  it('refuses anything that is not a canonical address, so a resolver surprise fails closed', () => {
    for (const text of NOT_ADDRESSES)
      assert.deepEqual(classifyAddress(text), refused('invalid_address'), text)
  })

  const ipv4 = fc
    .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
    .map((octets) => ({ octets, text: octets.join('.') }))
  const hex = ([a, b, c, d]: number[]) =>
    [(a ?? 0) * 256 + (b ?? 0), (c ?? 0) * 256 + (d ?? 0)].map((n) => n.toString(16)).join(':')

  it('judges every mapped, translated, compatible and NAT64 spelling of a forbidden IPv4 as that IPv4', () => {
    fc.assert(
      fc.property(ipv4, ({ octets, text }) => {
        const plain = classifyAddress(text)
        for (const [spelling, embedding] of [
          [`::ffff:${text}`, 'ipv4_mapped'],
          [`::ffff:${hex(octets)}`, 'ipv4_mapped'],
          [`::ffff:0:${hex(octets)}`, 'ipv4_translated'],
          [`64:ff9b::${hex(octets)}`, 'nat64'],
        ] as const) {
          const verdict = classifyAddress(spelling)
          if (!plain.allowed) assert.deepEqual(verdict, { ...plain, embedded: embedding }, spelling)
          else if (embedding === 'nat64') assert.equal(verdict.allowed, true, spelling)
          else assert.deepEqual(verdict, refused(embedding), spelling)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('judges a 6to4 address by the IPv4 in its prefix', () => {
    fc.assert(
      fc.property(ipv4, fc.nat(0xffff), ({ octets, text }, subnet) => {
        const plain = classifyAddress(text)
        const verdict = classifyAddress(`2002:${hex(octets)}:${subnet.toString(16)}::1`)
        assert.deepEqual(
          verdict,
          plain.allowed ? { allowed: true, family: 6 } : { ...plain, embedded: '6to4' },
        )
      }),
      { numRuns: 1000 },
    )
  })
})
