import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../errors/index.ts'
import { createAllowlist } from './allowlist.ts'

describe('createAllowlist', () => {
  const allowlist = createAllowlist([
    'jira.corp.example',
    '*.svc.corp.example',
    'Bücher.example',
    '10.20.0.0/16',
    '192.168.1.7',
    'fd12:3456::/32',
    '[fd99::1]',
  ])

  it('matches exact hosts case-insensitively and without the root dot', () => {
    assert.equal(allowlist.allowsHost('jira.corp.example'), true)
    assert.equal(allowlist.allowsHost('JIRA.corp.example.'), true)
    assert.equal(allowlist.allowsHost('xjira.corp.example'), false)
    assert.equal(allowlist.allowsHost('a.jira.corp.example'), false)
  })

  it('matches any depth of subdomain under a wildcard, but not the apex or a look-alike', () => {
    assert.equal(allowlist.allowsHost('a.svc.corp.example'), true)
    assert.equal(allowlist.allowsHost('a.b.svc.corp.example'), true)
    assert.equal(allowlist.allowsHost('svc.corp.example'), false)
    assert.equal(allowlist.allowsHost('evilsvc.corp.example'), false)
    assert.equal(allowlist.allowsHost('svc.corp.example.evil.example'), false)
  })

  it('compares internationalised names in their punycode form, as URL host names arrive', () => {
    assert.equal(allowlist.allowsHost(new URL('http://bücher.example/').hostname), true)
    assert.equal(allowlist.allowsHost('xn--bcher-kva.example'), true)
  })

  it('matches addresses inside CIDR ranges and single addresses of both families', () => {
    assert.equal(allowlist.allowsAddress('10.20.0.1'), true)
    assert.equal(allowlist.allowsAddress('10.20.255.255'), true)
    assert.equal(allowlist.allowsAddress('10.21.0.1'), false)
    assert.equal(allowlist.allowsAddress('192.168.1.7'), true)
    assert.equal(allowlist.allowsAddress('192.168.1.8'), false)
    assert.equal(allowlist.allowsAddress('fd12:3456:1::5'), true)
    assert.equal(allowlist.allowsAddress('fd12:3457::5'), false)
    assert.equal(allowlist.allowsAddress('fd99::1'), true)
  })

  it('does not let an IPv4 entry cover IPv6 spellings of the same address', () => {
    assert.equal(allowlist.allowsAddress('::ffff:10.20.0.1'), false)
    assert.equal(allowlist.allowsAddress('64:ff9b::a14:1'), false)
  })

  it('never matches a host name as an address or an address as a host name', () => {
    assert.equal(allowlist.allowsAddress('jira.corp.example'), false)
    assert.equal(allowlist.allowsHost('10.20.0.1'), false)
  })

  it('refuses bad entries at start-up, naming each one', () => {
    assert.throws(
      () =>
        createAllowlist([
          'ok.example',
          '10.0.0.0/33',
          '*.',
          'bad host',
          '::1/129',
          '*.*.example',
          '127.1',
          'a/b.example',
        ]),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.deepEqual(
          error.issues.map((i) => i.path),
          [1, 2, 3, 4, 5, 6, 7].map((i) => `outbound.allowlist[${i}]`),
        )
        return true
      },
    )
  })
})
