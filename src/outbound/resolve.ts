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
  /** Where the search domains and `ndots` are read, as getaddrinfo reads them; a missing file has none. */
  readonly resolvConf?: string
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

/** What /etc/resolv.conf says of names not fully qualified: the domains to try and `ndots`. */
export interface SearchList {
  readonly domains: readonly string[]
  /** A name with fewer dots than this is tried with each search domain before as it is. */
  readonly ndots: number
}

const NO_SEARCH: SearchList = { domains: [], ndots: 1 }

/**
 * The search list of a resolv.conf, as glibc reads it: the last `search` or `domain` line
 * wins, `options ndots:N` (at most 15), comments after `#` or `;`.
 *
 * @example
 * parseResolvConf('search ns.svc.cluster.local svc.cluster.local\noptions ndots:5')
 * // { domains: ['ns.svc.cluster.local', 'svc.cluster.local'], ndots: 5 }
 */
export const parseResolvConf = (text: string): SearchList => {
  let domains: string[] = []
  let ndots = 1
  for (const line of text.split('\n')) {
    const [keyword, ...values] = (line.split(/[#;]/, 1)[0] ?? '').trim().split(/\s+/)
    if (keyword === 'search' || keyword === 'domain')
      domains = values.map(normalise).filter((domain) => domain !== '')
    else if (keyword === 'options')
      for (const option of values) {
        const n = /^ndots:(\d+)$/.exec(option)?.[1]
        if (n !== undefined) ndots = Math.min(Number(n), 15)
      }
  }
  return { domains: [...new Set(domains)], ndots }
}

/**
 * The names to ask, in order, for `hostname` (normalised): with a final dot only itself; with
 * fewer dots than `ndots`, each search domain's name first, then itself; otherwise itself first.
 */
export const candidateNames = (hostname: string, search: SearchList): readonly string[] => {
  if (hostname.endsWith('.') || search.domains.length === 0) return [normalise(hostname)]
  const name = normalise(hostname)
  const searched = search.domains.map((domain) => `${name}.${domain}`)
  const dots = name.split('.').length - 1
  return dots < search.ndots ? [...searched, name] : [name, ...searched]
}

/** The parsed contents of the file at `path`, read again when its size or time changed (looked at every second). */
const watchedFile = <T>(path: string, parse: (text: string) => T, missing: T) => {
  let value = missing
  let version = ''
  let checkedAt = Number.NEGATIVE_INFINITY
  let loading: Promise<void> | undefined
  const load = async () => {
    try {
      const { mtimeMs, size } = await stat(path)
      if (`${mtimeMs}:${size}` !== version) {
        value = parse(await readFile(path, 'utf8'))
        version = `${mtimeMs}:${size}`
      }
    } catch {
      // No file (or none readable): as if it were empty.
      value = missing
      version = ''
    }
    checkedAt = performance.now()
  }
  return async (): Promise<T> => {
    if (performance.now() - checkedAt >= HOSTS_RECHECK_MS) {
      loading ??= load().finally(() => {
        loading = undefined
      })
      await loading
    }
    return value
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
  const readHosts = watchedFile(options.hostsFile ?? '/etc/hosts', parseHosts, new Map())
  const readSearch = watchedFile(options.resolvConf ?? '/etc/resolv.conf', parseResolvConf, NO_SEARCH)
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 1_000
  const tries = options.tries ?? 3

  return async (hostname, signal) => {
    // The hosts file holds names as they are written, without search domains, as glibc's
    // `files` source reads it.
    const fromHosts = (await readHosts()).get(normalise(hostname))
    if (fromHosts !== undefined) return fromHosts
    const candidates = candidateNames(hostname, await readSearch())
    signal?.throwIfAborted()
    // One resolver a lookup, so that cancelling it cancels nothing else.
    const resolver = new Resolver({ timeout: attemptTimeoutMs, tries })
    if (options.servers !== undefined) resolver.setServers([...options.servers])
    const cancel = () => resolver.cancel()
    signal?.addEventListener('abort', cancel, { once: true })
    try {
      let notFound: unknown
      for (const name of candidates) {
        const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)])
        const addresses = [
          ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
          ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
        ]
        if (addresses.length > 0) return addresses
        const errors = [v4, v6].flatMap((r) =>
          r.status === 'rejected' ? [r.reason as { code?: unknown }] : [],
        )
        // A failure to get an answer says more than a name missing in one family, and ends the
        // search, as glibc's does: the next name would wait as long again.
        const failed = errors.find((e) => !NOT_FOUND.has(String(e.code)))
        if (failed !== undefined) throw failed
        notFound ??=
          errors.find((e) => e.code === 'ENOTFOUND') ??
          errors[0] ??
          Object.assign(new Error(`no addresses for ${hostname}`), { code: 'ENODATA' })
      }
      throw notFound
    } finally {
      signal?.removeEventListener('abort', cancel)
    }
  }
}
