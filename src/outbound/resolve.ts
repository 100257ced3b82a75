import { Resolver } from 'node:dns/promises'
import { readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'

export interface ResolvedAddress {
  readonly address: string
  readonly family: number
}

/**
 * Every address a host name resolves to. `signal` aborts when the guard stops waiting: a
 * lookup should then give up what it holds.
 */
export type Lookup = (hostname: string, signal?: AbortSignal) => Promise<readonly ResolvedAddress[]>

export interface DnsLookupOptions {
  /** Name servers, `address` or `address:port`; by default those of /etc/resolv.conf. */
  readonly servers?: readonly string[]
  /** Read before DNS is asked, as getaddrinfo's `files` source is; a missing file holds nothing. */
  readonly hostsFile?: string
  /** Milliseconds c-ares waits for one answer before asking again (the wait doubles each round). */
  readonly attemptTimeoutMs?: number
  /** Times c-ares asks each server. */
  readonly tries?: number
}

// How often the hosts file's size and time are looked at again.
const HOSTS_RECHECK_MS = 1_000

const normalise = (hostname: string): string => hostname.replace(/\.+$/, '').toLowerCase()

/** `address name alias…` lines; `#` starts a comment. Names in lower case, without a final dot. */
export const parseHosts = (text: string): ReadonlyMap<string, readonly ResolvedAddress[]> => {
  const hosts = new Map<string, ResolvedAddress[]>()
  for (const line of text.split('\n')) {
    const [address, ...names] = (line.split('#', 1)[0] ?? '').trim().split(/\s+/)
    if (address === undefined || names.length === 0) continue
    const family = isIP(address.split('%', 1)[0] ?? '')
    if (family === 0) continue
    for (const name of names) {
      const key = normalise(name)
      if (key === '') continue
      const known = hosts.get(key) ?? []
      if (!known.some((a) => a.address === address)) known.push({ address, family })
      hosts.set(key, known)
    }
  }
  return hosts
}

const hostsReader = (path: string) => {
  let hosts: ReadonlyMap<string, readonly ResolvedAddress[]> = new Map()
  let version = ''
  let checkedAt = Number.NEGATIVE_INFINITY
  let loading: Promise<void> | undefined
  const load = async () => {
    try {
      const { mtimeMs, size } = await stat(path)
      if (`${mtimeMs}:${size}` !== version) {
        hosts = parseHosts(await readFile(path, 'utf8'))
        version = `${mtimeMs}:${size}`
      }
    } catch {
      // No hosts file (or none readable): names go to DNS alone.
      hosts = new Map()
      version = ''
    }
    checkedAt = performance.now()
  }
  return async (name: string): Promise<readonly ResolvedAddress[] | undefined> => {
    if (performance.now() - checkedAt >= HOSTS_RECHECK_MS) {
      loading ??= load().finally(() => {
        loading = undefined
      })
      await loading
    }
    return hosts.get(name)
  }
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA'])

/**
 * Host names resolved the way getaddrinfo does on most systems (`files dns`), without its
 * threads: the hosts file first, then DNS through c-ares, A and AAAA at once. getaddrinfo runs on
 * libuv's thread pool, of which DNS may hold two threads, each until glibc gives up on a server
 * that never answers (about 10 s): a few names in a black-holed domain stalled every lookup in
 * the process, whoever's they were, and giving up on them freed nothing. A c-ares query holds a
 * timer and a socket only, and `signal` cancels it.
 *
 * @example
 * const guard = createOutboundGuard({ lookup: createDnsLookup({ servers: ['10.0.0.53'] }) })
 */
export const createDnsLookup = (options: DnsLookupOptions = {}): Lookup => {
  const inHosts = hostsReader(options.hostsFile ?? '/etc/hosts')
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 1_000
  const tries = options.tries ?? 3

  return async (hostname, signal) => {
    const fromHosts = await inHosts(normalise(hostname))
    if (fromHosts !== undefined) return fromHosts
    signal?.throwIfAborted()
    // One resolver a lookup, so that cancelling it cancels nothing else.
    const resolver = new Resolver({ timeout: attemptTimeoutMs, tries })
    if (options.servers !== undefined) resolver.setServers([...options.servers])
    const cancel = () => resolver.cancel()
    signal?.addEventListener('abort', cancel, { once: true })
    try {
      const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)])
      const addresses = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ]
      if (addresses.length > 0) return addresses
      const errors = [v4, v6].flatMap((r) =>
        r.status === 'rejected' ? [r.reason as { code?: unknown }] : [],
      )
      // A failure to get an answer says more than a name missing in one family.
      throw (
        errors.find((e) => !NOT_FOUND.has(String(e.code))) ??
        errors.find((e) => e.code === 'ENOTFOUND') ??
        errors[0] ??
        Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENODATA' })
      )
    } finally {
      signal?.removeEventListener('abort', cancel)
    }
  }
}
