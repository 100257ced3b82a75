import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cidrContains, parseCidr, parseIPv4, parseIPv6 } from './cidr.ts'

describe('parseIPv4', () => {
  it('reads dotted quads', () => {
    assert.equal(parseIPv4('0.0.0.0'), 0)
    assert.equal(parseIPv4('255.255.255.255'), 0xffffffff)
    assert.equal(parseIPv4('10.0.0.1'), 0x0a000001)
  })
  for (const bad of [
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-4',
    '1..2.3',
    ' 1.2.3.4',
    'a.b.c.d',
    '',
  ])
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseIPv4(bad), undefined))
})

describe('parseIPv6', () => {
  it('reads full, compressed and IPv4-tailed forms alike', () => {
    const one = [0, 0, 0, 1]
    assert.deepEqual(parseIPv6('::1'), one)
    assert.deepEqual(parseIPv6('0:0:0:0:0:0:0:1'), one)
    assert.deepEqual(parseIPv6('0000:0000:0000:0000:0000:0000:0000:0001'), one)
    assert.deepEqual(parseIPv6('::'), [0, 0, 0, 0])
    assert.deepEqual(parseIPv6('2001:DB8::'), [0x20010db8, 0, 0, 0])
    assert.deepEqual(parseIPv6('::ffff:10.0.0.1'), [0, 0, 0xffff, 0x0a000001])
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7::'), [0x10002, 0x30004, 0x50006, 0x70000])
  })
  for (const bad of [
    '1',
    ':1',
    '1:',
    '1:::2',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    '12345::',
    'g::',
    '::10.0.0',
    '10.0.0.1::',
    'fe80::1%eth0',
  ])
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseIPv6(bad), undefined))
})

describe('parseCidr / cidrContains', () => {
  const rows: [block: string, address: string, expected: boolean][] = [
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['192.168.1.128/25', '192.168.1.127', false],
    ['192.168.1.128/25', '192.168.1.128', true],
    ['0.0.0.0/0', '1.2.3.4', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::', false],
    ['2001:db8::/33', '2001:db8:8000::', false],
    ['2001:db8::/33', '2001:db8:7fff::', true],
    ['::/0', '::', true],
    ['fe80::/10', 'febf::1', true],
    ['fe80::/10', 'fec0::1', false],
    ['::1/128', '::2', false],
  ]
  for (const [block, address, expected] of rows)
    it(`${block} ${expected ? 'contains' : 'does not contain'} ${address}`, () => {
      const parsed = parseCidr(block)
      assert.ok(parsed.ok)
      assert.equal(cidrContains(parsed.value, address), expected)
    })

  for (const bad of ['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/08', '::/129', 'x/8', '10.0.0.0/-1'])
    it(`rejects ${JSON.stringify(bad)}`, () => assert.equal(parseCidr(bad).ok, false))
})
