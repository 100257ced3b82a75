import { isIP } from 'node:net'
import { domainToASCII } from 'node:url'
import type ipaddr from 'ipaddr.js'
import { ConfigError, type FieldIssue } from '../errors/index.ts'
import { parseAddress } from './address.ts'

/**
 * The SSRF guard's exemptions for on-premises targets. A host entry exempts every address the
 * host resolves to; an address or CIDR entry exempts only the resolved addresses inside it.
 */
export interface Allowlist {
  readonly allowsHost: (hostname: string) => boolean
  readonly allowsAddress: (address: string) => boolean
}

type Cidr = readonly [ipaddr.IPv4 | ipaddr.IPv6, number]

/** URL host names arrive in ASCII (punycode), lower-case; only the root dot needs dropping. */
const normalizeHostname = (hostname: string): string => hostname.replace(/\.+$/, '').toLowerCase()

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/

// domainToASCII applies the WHATWG host parser, which would quietly turn `10.0.0.0/8` into
// `10.0.0.0` and `127.1` into `127.0.0.1`; such entries are mistakes to report, not to guess at.
const entryHostname = (entry: string): string | undefined => {
  const name = normalizeHostname(entry)
  if (!/^[^\s/\\:@%?#[\]]+$/.test(name)) return undefined
  const ascii = domainToASCII(name)
  if (ascii === '' || isIP(ascii) !== 0 || ascii.length > 253) return undefined
  return ascii.split('.').every((label) => HOST_LABEL.test(label)) ? ascii : undefined
}

const parseCidr = (entry: string): Cidr | undefined => {
  const slash = entry.lastIndexOf('/')
  const address = parseAddress(slash === -1 ? entry : entry.slice(0, slash))
  if (address === undefined) return undefined
  const maxBits = address.kind() === 'ipv4' ? 32 : 128
  if (slash === -1) return [address, maxBits]
  const bits = entry.slice(slash + 1)
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits) return undefined
  return [address, Number(bits)]
}

/**
 * Compiles `outbound.allowlist`: `host.example`, `*.example` (any subdomain, not the apex),
 * `10.1.2.3`, `10.0.0.0/8`, `fd12::/16`. A bad entry stops start-up naming the entry.
 *
 * @example
 * createAllowlist(['jira.corp.example', '*.svc.corp.example', '10.20.0.0/16'])
 */
export const createAllowlist = (entries: readonly string[], path = 'outbound.allowlist'): Allowlist => {
  const hosts = new Set<string>()
  const suffixes: string[] = []
  const ranges: Cidr[] = []
  const issues: FieldIssue[] = []

  entries.forEach((raw, index) => {
    const entry = raw.trim()
    const cidr = parseCidr(entry)
    if (cidr !== undefined) {
      ranges.push(cidr)
      return
    }
    const wildcard = entry.startsWith('*.')
    const name = entryHostname(wildcard ? entry.slice(2) : entry)
    if (name === undefined) {
      issues.push({
        path: `${path}[${index}]`,
        message: 'must be a host name (optionally *.domain), IP address or CIDR range',
      })
      return
    }
    if (wildcard) suffixes.push(`.${name}`)
    else hosts.add(name)
  })
  if (issues.length > 0) throw new ConfigError(issues)

  return {
    allowsHost: (hostname) => {
      const name = normalizeHostname(hostname)
      return hosts.has(name) || suffixes.some((suffix) => name.endsWith(suffix))
    },
    allowsAddress: (text) => {
      const address = parseAddress(text)
      // IPv4 entries do not cover IPv6 spellings of the same address (mapped, NAT64): an
      // operator who allowlists 10.0.0.0/8 did not thereby vouch for every IPv6 translation.
      return (
        address !== undefined &&
        ranges.some(([base, bits]) => base.kind() === address.kind() && address.match(base, bits))
      )
    },
  }
}
