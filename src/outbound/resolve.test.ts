import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { OutboundUnresolvableError } from './errors.ts'
import { createOutboundGuard } from './guard.ts'
import { candidateNames, createDnsLookup, parseHosts, parseResolvConf } from './resolve.ts'

/**
 * A name server on a real UDP socket: answers the names in `zone` (A and AAAA), says NXDOMAIN
 * for others, and never answers a name ending in `.blackhole.test`, as a domain whose servers
 * are unreachable. Counts the questions it was asked, by name.
 */
const nameServer = async (zone: Record<string, readonly string[]>) => {
  const asked = new Map<string, number>()
  const socket: Socket = createSocket('udp4')
  socket.on('message', (query, peer) => {
    const labels: string[] = []
    let at = 12
    while (query[at] !== 0) {
      const length = query[at] ?? 0
      labels.push(query.subarray(at + 1, at + 1 + length).toString('latin1'))
      at += 1 + length
    }
    const name = labels.join('.').toLowerCase()
    const type = query.readUInt16BE(at + 1)
    asked.set(name, (asked.get(name) ?? 0) + 1)
    if (name.endsWith('.blackhole.test')) return
    const question = query.subarray(12, at + 5)
    const records = (zone[name] ?? []).filter((a) => (type === 28) === a.includes(':'))
    const answers = records.map((address) => {
      const data =
        type === 28
          ? Buffer.from(
              // Expanded form only: the zone's addresses are written out in full.
              address.split(':').flatMap((group) => {
                const n = Number.parseInt(group, 16)
                return [n >> 8, n & 255]
              }),
            )
          : Buffer.from(address.split('.').map(Number))
      const head = Buffer.alloc(12)
      head.writeUInt16BE(0xc00c, 0)
      head.writeUInt16BE(type, 2)
      head.writeUInt16BE(1, 4)
      head.writeUInt32BE(60, 6)
      head.writeUInt16BE(data.length, 10)
      return Buffer.concat([head, data])
    })
    const header = Buffer.alloc(12)
    query.copy(header, 0, 0, 2)
    header.writeUInt16BE(0x8180 | (name in zone ? 0 : 3), 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    socket.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {
    server: `127.0.0.1:${socket.address().port}`,
    asked: (suffix: string) =>
      [...asked].reduce((n, [name, count]) => (name.endsWith(suffix) ? n + count : n), 0),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}

describe('createDnsLookup', () => {
  let dns: Awaited<ReturnType<typeof nameServer>>
  let dir: string
  let hostsFile: string
  before(async () => {
    dns = await nameServer({
      'hooks.herald.test': ['93.184.215.14', '2606:4700:0:0:0:0:6810:84e5'],
      'v4.herald.test': ['104.16.132.229'],
    })
    dir = await mkdtemp(join(tmpdir(), 'herald-resolve-'))
    hostsFile = join(dir, 'hosts')
    await writeFile(
      hostsFile,
      '127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n10.1.2.3 Jira.Corp.Test\n',
    )
  })
  after(async () => {
    await dns.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('asks DNS for A and AAAA records, and says which names do not exist', async () => {
    const lookup = createDnsLookup({ servers: [dns.server], hostsFile })
    assert.deepEqual(await lookup('hooks.herald.test'), [
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700::6810:84e5', family: 6 },
    ])
    assert.deepEqual(await lookup('v4.herald.test'), [{ address: '104.16.132.229', family: 4 }])
    await assert.rejects(lookup('nope.herald.test'), { code: 'ENOTFOUND' })
  })

  it('answers names in the hosts file without asking DNS, as getaddrinfo does', async () => {
    const lookup = createDnsLookup({ servers: [dns.server], hostsFile })
    const before = dns.asked('')
    assert.deepEqual(await lookup('localhost'), [
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ])
    assert.deepEqual(await lookup('jira.corp.test.'), [{ address: '10.1.2.3', family: 4 }])
    assert.equal(dns.asked(''), before)
    // The system's own hosts file, by default: localhost is in every one.
    const system = await createDnsLookup()('localhost')
    assert.ok(
      system.some((a) => a.address === '127.0.0.1' || a.address === '::1'),
      JSON.stringify(system),
    )
  })

  it('tries a short name with the search domains of resolv.conf, as getaddrinfo does', async () => {
    const resolvConf = join(dir, 'resolv.conf')
    await writeFile(
      resolvConf,
      'nameserver 192.0.2.1\nsearch corp.test herald.test\noptions ndots:2 rotate\n',
    )
    const lookup = createDnsLookup({ servers: [dns.server], hostsFile, resolvConf })
    // One dot, fewer than ndots: corp.test's name first (no such name), then herald.test's.
    assert.deepEqual(await lookup('v4'), [{ address: '104.16.132.229', family: 4 }])
    assert.equal(dns.asked('v4.corp.test'), 2)
    assert.deepEqual(await lookup('hooks.herald.test'), [
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700::6810:84e5', family: 6 },
    ])
    // Names none of the domains has are not found, each candidate asked once per family.
    const before = dns.asked('')
    await assert.rejects(lookup('nope'), { code: 'ENOTFOUND' })
    assert.equal(dns.asked('') - before, 6)
    // A final dot: the name alone.
    await assert.rejects(lookup('v4.'), { code: 'ENOTFOUND' })
  })

  it("keeps other names resolving promptly, and the thread pool free, while a domain's DNS never answers", async () => {
    const guard = createOutboundGuard({
      senderThread: false,
      allowlist: ['*.blackhole.test'],
      lookup: createDnsLookup({ servers: [dns.server], hostsFile }),
      lookupTimeoutMs: 1_500,
    })
    // One account's configurations aimed at a black-holed domain, many times more than
    // getaddrinfo's two threads.
    const stuck = Array.from({ length: 16 }, (_, i) =>
      guard.checkUrl(`https://h${i}.blackhole.test/`).then(
        () => assert.fail('resolved'),
        (error: unknown) => {
          assert.ok(error instanceof OutboundUnresolvableError)
          return error.context.dnsCode
        },
      ),
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = performance.now()
    const target = await guard.checkUrl('https://hooks.herald.test/services/T0/B0')
    assert.equal(target.address, '93.184.215.14')
    await readFile(hostsFile)
    const took = performance.now() - started
    assert.ok(
      took < 500,
      `another name took ${Math.round(took)} ms while the black hole's lookups were stuck`,
    )
    assert.deepEqual(await Promise.all(stuck), Array(16).fill('ETIMEOUT'))
    // The guard gave up at 1.5 s and the queries were cancelled: no retry goes out after it.
    const asked = dns.asked('.blackhole.test')
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    assert.equal(dns.asked('.blackhole.test'), asked)
    await guard.close()
  })
})

describe('parseResolvConf', () => {
  it('reads the last search or domain line and ndots, ignoring comments and other lines', () => {
    assert.deepEqual(
      parseResolvConf(
        'domain old.test\nnameserver 10.0.0.53\nsearch NS.svc.cluster.local. svc.cluster.local ns.svc.cluster.local # k8s\n; x\noptions ndots:5 timeout:2\n',
      ),
      { domains: ['ns.svc.cluster.local', 'svc.cluster.local'], ndots: 5 },
    )
    assert.deepEqual(parseResolvConf('nameserver 10.0.0.53\n'), { domains: [], ndots: 1 })
    assert.equal(parseResolvConf('options ndots:40').ndots, 15)
  })

  it('orders the candidates as glibc does', () => {
    const k8s = { domains: ['ns.svc.cluster.local', 'svc.cluster.local'], ndots: 5 }
    assert.deepEqual(candidateNames('receiver.tools', k8s), [
      'receiver.tools.ns.svc.cluster.local',
      'receiver.tools.svc.cluster.local',
      'receiver.tools',
    ])
    assert.deepEqual(candidateNames('Hooks.Slack.com', { ...k8s, ndots: 1 }), [
      'hooks.slack.com',
      'hooks.slack.com.ns.svc.cluster.local',
      'hooks.slack.com.svc.cluster.local',
    ])
    assert.deepEqual(candidateNames('hooks.slack.com.', k8s), ['hooks.slack.com'])
    assert.deepEqual(candidateNames('hooks', { domains: [], ndots: 1 }), ['hooks'])
  })
})

describe('parseHosts', () => {
  it('reads addresses and their names and aliases, ignoring comments and lines without a name', () => {
    const hosts = parseHosts(
      '# comment\n127.0.0.1\tlocalhost  loopback\n\n fe80::1%eth0 link.local\nnot-an-address bad\n10.0.0.1 a.test # x\n10.0.0.2 A.TEST.\n',
    )
    assert.deepEqual(Object.fromEntries(hosts), {
      localhost: [{ address: '127.0.0.1', family: 4 }],
      loopback: [{ address: '127.0.0.1', family: 4 }],
      'link.local': [{ address: 'fe80::1%eth0', family: 6 }],
      'a.test': [
        { address: '10.0.0.1', family: 4 },
        { address: '10.0.0.2', family: 4 },
      ],
    })
  })
})
