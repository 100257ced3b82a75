import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isHeraldError } from '../errors/index.ts'
import { toProblem } from '../http/problem.ts'
import { classifyAddress } from './address.ts'
import { OutboundBlockedError, OutboundUnresolvableError } from './errors.ts'
import { type CheckedTarget, createOutboundGuard, type Lookup, type ResolvedAddress } from './guard.ts'

const records = (...addresses: string[]): ResolvedAddress[] =>
  addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))

/** A resolver from a table; records every name it was asked for. */
const zone = (table: Record<string, readonly string[]>) => {
  const asked: string[] = []
  const lookup: Lookup = async (hostname) => {
    asked.push(hostname)
    const found = table[hostname]
    if (found === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })
    return records(...found)
  }
  return { lookup, asked }
}

const DNS = {
  'hooks.example.com': ['93.184.215.14'],
  'dual.example.com': ['2606:4700::6810:84e5', '104.16.132.229'],
  'v6only.example.com': ['2606:4700::6810:84e5'],
  'internal.example.com': ['10.0.0.5'],
  'metadata.example.com': ['169.254.169.254'],
  'v6-internal.example.com': ['fd00::5'],
  'mixed.example.com': ['93.184.215.14', '192.168.1.10'],
  'mapped.example.com': ['::ffff:127.0.0.1'],
  'jira.corp.example': ['10.1.2.3', '10.9.9.9'],
  'ci.svc.corp.example': ['10.1.2.4'],
  'onprem.example.com': ['10.1.2.5'],
  'half-onprem.example.com': ['10.1.2.5', '172.16.0.1'],
  'garbage.example.com': ['not-an-address'],
  'nothing.example.com': [],
}

const blockedWith = (reason: string) => (error: unknown) => {
  assert.ok(error instanceof OutboundBlockedError, String(error))
  assert.equal(error.code, 'outbound_blocked')
  assert.equal(error.retriable, false)
  assert.equal(error.context.reason, reason)
  return true
}

describe('createOutboundGuard().checkUrl', () => {
  it('resolves a public host once and pins one of its addresses', async () => {
    const dns = zone(DNS)
    const guard = createOutboundGuard({ lookup: dns.lookup })
    const target = await guard.checkUrl('https://hooks.example.com/services/T000/B000')
    assert.equal(target.address, '93.184.215.14')
    assert.equal(target.family, 4)
    assert.equal(target.hostname, 'hooks.example.com')
    assert.equal(target.allowlisted, false)
    assert.deepEqual(dns.asked, ['hooks.example.com'])
  })

  it('prefers an IPv4 address when the host has both, and takes IPv6 when that is all there is', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    assert.equal((await guard.checkUrl('http://dual.example.com/')).address, '104.16.132.229')
    const v6 = await guard.checkUrl('http://v6only.example.com/')
    assert.deepEqual([v6.address, v6.family], ['2606:4700::6810:84e5', 6])
  })

  it('refuses a host that resolves to a forbidden address, in either family', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    await assert.rejects(guard.checkUrl('http://internal.example.com/'), blockedWith('private'))
    await assert.rejects(guard.checkUrl('http://metadata.example.com/'), blockedWith('cloud_metadata'))
    await assert.rejects(guard.checkUrl('http://v6-internal.example.com/'), blockedWith('unique_local'))
    await assert.rejects(guard.checkUrl('http://mapped.example.com/'), blockedWith('loopback'))
  })

  it('refuses a host when any one of its addresses is forbidden', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    await assert.rejects(guard.checkUrl('http://mixed.example.com/'), blockedWith('private'))
  })

  it('refuses a resolver answer that is not an address', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    await assert.rejects(guard.checkUrl('http://garbage.example.com/'), blockedWith('invalid_address'))
  })

  it('judges literal addresses without asking the resolver', async () => {
    const dns = zone(DNS)
    const guard = createOutboundGuard({ lookup: dns.lookup })
    const target = await guard.checkUrl('http://[2606:4700:4700::1111]:8080/x')
    assert.deepEqual(
      [target.address, target.family, target.hostname],
      ['2606:4700:4700::1111', 6, '2606:4700:4700::1111'],
    )
    await assert.rejects(guard.checkUrl('http://[::1]/'), blockedWith('loopback'))
    await assert.rejects(guard.checkUrl('http://10.0.0.1/'), blockedWith('private'))
    assert.deepEqual(dns.asked, [])
  })

  it('refuses localhost names before resolving them', async () => {
    const dns = zone(DNS)
    const guard = createOutboundGuard({ lookup: dns.lookup })
    for (const url of [
      'http://localhost/',
      'http://LOCALHOST./',
      'http://api.localhost:8080/',
      'http://ｌｏｃａｌｈｏｓｔ/',
    ])
      await assert.rejects(guard.checkUrl(url), blockedWith('local_name'), url)
    assert.deepEqual(dns.asked, [])
  })

  it('refuses other schemes and unparseable URLs with a message saying so', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    for (const url of ['ftp://hooks.example.com/', 'ws://hooks.example.com/', 'file:///etc/passwd'])
      await assert.rejects(guard.checkUrl(url), (error: unknown) => {
        assert.ok(blockedWith('scheme')(error))
        assert.match((error as Error).message, /only http and https/)
        return true
      })
    for (const url of ['', 'hooks.example.com/x', 'http://', 'http://[::1/'])
      await assert.rejects(guard.checkUrl(url), blockedWith('invalid_url'), url)
  })

  it('says the same thing, and nothing about addresses, whatever the forbidden range', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const messages = new Set<string>()
    for (const url of ['http://internal.example.com/', 'http://metadata.example.com/', 'http://[::1]/']) {
      const error = await guard.checkUrl(url).then(
        () => assert.fail(url),
        (e: unknown) => e as OutboundBlockedError,
      )
      messages.add(error.message)
      assert.doesNotMatch(JSON.stringify(error.context), /10\.0\.0\.5|169\.254/)
    }
    // A host name for what it resolves to, an address for itself.
    assert.deepEqual(
      [...messages],
      [
        "the URL's host does not resolve to an address Herald may reach",
        "the URL's host is not allowed as a notification target",
      ],
    )
  })

  it('answers a name that does not resolve as it answers one that resolves to a forbidden address', async () => {
    // Else an API client could learn which internal names exist through Herald's resolver.
    const hang: Lookup = () => new Promise(() => {})
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const slow = createOutboundGuard({ lookup: hang, lookupTimeoutMs: 20 })
    const refusal = (check: Promise<unknown>) =>
      check.then(
        () => assert.fail('accepted'),
        (error: unknown) => error as OutboundBlockedError | OutboundUnresolvableError,
      )
    for (const [kind, check, say] of [
      ['url', (g: typeof guard, host: string) => g.checkUrl(`https://${host}/hook`), "the URL's host"],
      ['smtp', (g: typeof guard, host: string) => g.checkSmtpHost(host, 587), 'the SMTP host'],
    ] as const) {
      const errors = [
        await refusal(check(guard, 'internal.example.com')),
        await refusal(check(guard, 'mixed.example.com')),
        await refusal(check(guard, 'garbage.example.com')),
        await refusal(check(guard, 'nope.example.com')),
        await refusal(check(guard, 'nothing.example.com')),
        await refusal(check(slow, 'slow.example.com')),
      ]
      const shown = errors.map((error) => toProblem(error))
      assert.deepEqual(new Set(shown.map((p) => JSON.stringify(p))).size, 1, kind)
      assert.deepEqual(
        [shown[0]?.status, shown[0]?.code, shown[0]?.detail],
        [422, 'outbound_blocked', `${say} does not resolve to an address Herald may reach`],
      )
      // The log keeps the reason.
      assert.deepEqual(
        errors.map((e) => e.context.reason ?? e.context.dnsCode),
        ['private', 'private', 'invalid_address', 'ENOTFOUND', 'ENODATA', 'ETIMEOUT'],
      )
      // Whether a retry can help still differs: a DNS outage passes.
      assert.deepEqual(
        errors.map((e) => e.retriable),
        [false, false, false, true, true, true],
      )
    }
  })

  it('reports resolver failures, empty answers and slow resolvers as retriable unresolvable', async () => {
    const hang: Lookup = () => new Promise(() => {})
    const cases: [ReturnType<typeof createOutboundGuard>, string, string][] = [
      [createOutboundGuard({ lookup: zone(DNS).lookup }), 'http://nope.example.com/', 'ENOTFOUND'],
      [createOutboundGuard({ lookup: zone(DNS).lookup }), 'http://nothing.example.com/', 'ENODATA'],
      [createOutboundGuard({ lookup: hang, lookupTimeoutMs: 20 }), 'http://slow.example.com/', 'ETIMEOUT'],
    ]
    for (const [guard, url, dnsCode] of cases)
      await assert.rejects(guard.checkUrl(url), (error: unknown) => {
        assert.ok(error instanceof OutboundUnresolvableError)
        assert.equal(error.code, 'outbound_blocked')
        assert.equal(error.retriable, true)
        assert.equal(error.context.dnsCode, dnsCode)
        return true
      })
  })

  it('asks once for a name while a lookup of it runs, and aborts a lookup it stopped waiting for', async () => {
    const asked: string[] = []
    const signals: AbortSignal[] = []
    const hang: Lookup = (hostname, signal) => {
      asked.push(hostname)
      if (signal !== undefined) signals.push(signal)
      return new Promise(() => {})
    }
    const guard = createOutboundGuard({ lookup: hang, lookupTimeoutMs: 50 })
    const checks = Array.from({ length: 20 }, (_, i) =>
      guard.checkUrl(`https://Slow.example.com/hook/${i}`).then(
        () => assert.fail('resolved'),
        (error: unknown) => (error as OutboundUnresolvableError).context.dnsCode,
      ),
    )
    await guard.checkUrl('https://other.example.com/').catch(() => {})
    assert.deepEqual(await Promise.all(checks), Array(20).fill('ETIMEOUT'))
    assert.deepEqual(asked, ['slow.example.com', 'other.example.com'])
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [true, true],
    )
    // Once the lookup ended, the next check asks again.
    await guard.checkUrl('https://slow.example.com/').catch(() => {})
    assert.equal(asked.length, 3)
  })

  it('lets allowlisted hosts, wildcard hosts and addresses in allowlisted ranges through', async () => {
    const guard = createOutboundGuard({
      lookup: zone(DNS).lookup,
      allowlist: ['jira.corp.example', '*.svc.corp.example', '10.1.2.5', '127.0.0.0/8', 'fd00::/8'],
    })
    const jira = await guard.checkUrl('https://jira.corp.example/rest/api/2/issue')
    assert.deepEqual([jira.address, jira.allowlisted], ['10.1.2.3', true])
    assert.equal((await guard.checkUrl('http://ci.svc.corp.example/')).address, '10.1.2.4')
    assert.equal((await guard.checkUrl('http://onprem.example.com/')).allowlisted, true)
    assert.equal((await guard.checkUrl('http://127.0.0.1:9000/')).allowlisted, true)
    assert.equal((await guard.checkUrl('http://v6-internal.example.com/')).address, 'fd00::5')
    assert.equal((await guard.checkUrl('http://hooks.example.com/')).allowlisted, false)
  })

  it('does not let an address allowlist entry vouch for the other addresses of the same host', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup, allowlist: ['10.1.2.5'] })
    await assert.rejects(guard.checkUrl('http://half-onprem.example.com/'), blockedWith('private'))
    await assert.rejects(guard.checkUrl('http://10.1.2.6/'), blockedWith('private'))
    await assert.rejects(guard.checkUrl('http://[::ffff:10.1.2.5]/'), blockedWith('private'))
  })

  it('accepts credentials in the URL but never serialises them or the path', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const target = await guard.checkUrl('https://user:s3cr3t-canary@hooks.example.com/T0/B0/token-canary?x=1')
    assert.equal(target.url.password, 's3cr3t-canary')
    const logged = JSON.stringify({ target })
    assert.doesNotMatch(logged, /canary|user/)
    assert.match(logged, /https:\/\/hooks\.example\.com/)
  })

  it('judges a URL with an address once, and resolves a host name every time', async () => {
    const dns = zone(DNS)
    const guard = createOutboundGuard({ lookup: dns.lookup, allowlist: ['127.0.0.1'] })
    const first = await guard.checkUrl('http://127.0.0.1:8080/hook')
    assert.equal(await guard.checkUrl('http://127.0.0.1:8080/hook'), first)
    assert.notEqual(await guard.checkUrl('http://127.0.0.1:8080/other'), first)
    // A refused address stays refused, however often it is asked for.
    for (let i = 0; i < 2; i++)
      await assert.rejects(guard.checkUrl('http://10.0.0.1/hook'), blockedWith('private'))
    await guard.checkUrl('https://hooks.example.com/a')
    await guard.checkUrl('https://hooks.example.com/a')
    assert.deepEqual(dns.asked, ['hooks.example.com', 'hooks.example.com'])
  })

  it('fetches only targets it issued itself', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const forged: CheckedTarget = {
      url: new URL('http://hooks.example.com/'),
      hostname: 'hooks.example.com',
      address: '127.0.0.1',
      family: 4,
      allowlisted: false,
    }
    await assert.rejects(guard.guardedFetch(forged), TypeError)
    await assert.rejects(
      guard.guardedFetch({ ...(await guard.checkUrl('http://hooks.example.com/')) }),
      TypeError,
    )
    guard.close()
  })
})

describe('createOutboundGuard().checkSmtpHost', () => {
  it('checks an SMTP server as checkUrl checks a URL of its host and port', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const named = await guard.checkSmtpHost('hooks.example.com', 465)
    assert.deepEqual(
      [named.hostname, named.address, named.url.port],
      ['hooks.example.com', '93.184.215.14', '465'],
    )
    const v6 = await guard.checkSmtpHost('2606:4700::6810:84e5', 587)
    assert.deepEqual([v6.address, v6.family], ['2606:4700::6810:84e5', 6])
    await assert.rejects(guard.checkSmtpHost('internal.example.com', 25), blockedWith('private'))
    await assert.rejects(guard.checkSmtpHost('::1', 25), blockedWith('loopback'))
    await assert.rejects(guard.checkSmtpHost('localhost', 25), blockedWith('local_name'))
  })

  it('names the SMTP host, not a URL, when it refuses one or cannot resolve it', async () => {
    const guard = createOutboundGuard({ lookup: zone(DNS).lookup })
    const messages = new Set<string>()
    for (const host of [
      'internal.example.com',
      'metadata.example.com',
      'nope.example.com',
      '127.0.0.1',
      'localhost',
    ])
      messages.add(
        await guard.checkSmtpHost(host, 587).then(
          () => assert.fail(host),
          (e: unknown) => (e as Error).message,
        ),
      )
    assert.deepEqual(
      [...messages],
      [
        'the SMTP host does not resolve to an address Herald may reach',
        'the SMTP host is not allowed as a notification target',
      ],
    )
    // A URL's refusals keep naming the URL.
    await assert.rejects(
      guard.checkUrl('http://nope.example.com/'),
      /the URL's host does not resolve to an address Herald may reach/,
    )
  })
})

describe('numeric host spellings', () => {
  // The WHATWG host parser, not the resolver, must turn these into an address: getaddrinfo
  // would accept them too, but only after the guard had treated them as names.
  const spellings = (n: number): string[] => {
    const [a, b, c, d] = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]
    return [
      String(n),
      `0x${n.toString(16)}`,
      `0${n.toString(8)}`,
      `${a}.${(b << 16) | (c << 8) | d}`,
      `${a}.${b}.${(c << 8) | d}`,
      `0x${a.toString(16)}.0${b.toString(8)}.${c}.0x${d.toString(16)}`,
      `${a}.${b}.${c}.${d}.`,
      `0${a.toString(8)}.0${b.toString(8)}.0${c.toString(8)}.0${d.toString(8)}`,
    ]
  }

  it('normalises decimal, hex, octal, short and mixed IPv4 spellings before judging them', async () => {
    const guard = createOutboundGuard({
      lookup: async () => assert.fail('a numeric host must never reach the resolver'),
    })
    await fc.assert(
      fc.asyncProperty(fc.nat(0xffffffff), async (n) => {
        const dotted = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
        const verdict = classifyAddress(dotted)
        for (const spelling of spellings(n)) {
          const outcome = await guard.checkUrl(`http://${spelling}/`).then(
            (target) => ({ allowed: true, address: target.address }),
            (error: unknown) => ({ allowed: false, code: isHeraldError(error) ? error.code : String(error) }),
          )
          assert.deepEqual(
            outcome,
            verdict.allowed
              ? { allowed: true, address: dotted }
              : { allowed: false, code: 'outbound_blocked' },
            spelling,
          )
        }
      }),
      { numRuns: 500, examples: [[0x7f000001], [0xa9fea9fe], [0x0a000001], [0], [0xffffffff], [0x646464c8]] },
    )
  })
})
