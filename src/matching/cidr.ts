/**
 * IPv4 and IPv6 addresses and CIDR blocks, parsed by hand: matching runs on every event value
 * a `cidr` condition sees, so it allocates little and never throws. Addresses are 32-bit
 * words (one for IPv4, four for IPv6); an IPv4 block never matches an IPv6 address, mapped
 * or not.
 */
export interface CidrBlock {
  readonly family: 4 | 6
  /** Network words with the host bits cleared. */
  readonly network: readonly number[]
  readonly masks: readonly number[]
}

const DEC_OCTET = /^(0|[1-9]\d{0,2})$/
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/

export const parseIPv4 = (text: string): number | undefined => {
  const parts = text.split('.')
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!DEC_OCTET.test(part)) return undefined
    const octet = Number(part)
    if (octet > 255) return undefined
    value = value * 256 + octet
  }
  return value
}

const parseGroups = (text: string, allowIPv4Tail: boolean): number[] | undefined => {
  if (text === '') return []
  const parts = text.split(':')
  const groups: number[] = []
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string
    if (allowIPv4Tail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIPv4(part)
      if (v4 === undefined) return undefined
      groups.push(Math.floor(v4 / 65536), v4 % 65536)
    } else {
      if (!HEX_GROUP.test(part)) return undefined
      groups.push(Number.parseInt(part, 16))
    }
  }
  return groups
}

/** Four 32-bit words, most significant first; zone ids (`%eth0`) are not addresses here. */
export const parseIPv6 = (text: string): number[] | undefined => {
  if (text.length < 2 || !text.includes(':')) return undefined
  const gap = text.indexOf('::')
  let groups: number[]
  if (gap === -1) {
    const all = parseGroups(text, true)
    if (all === undefined || all.length !== 8) return undefined
    groups = all
  } else {
    if (text.indexOf('::', gap + 1) !== -1) return undefined
    const head = parseGroups(text.slice(0, gap), false)
    const tail = parseGroups(text.slice(gap + 2), true)
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  }
  const words: number[] = []
  for (let i = 0; i < 8; i += 2) words.push(((groups[i] as number) * 65536 + (groups[i + 1] as number)) >>> 0)
  return words
}

const maskFor = (bits: number): number =>
  bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0

const PREFIX_LENGTH = /^(0|[1-9]\d{0,2})$/

export type CidrParse =
  | { readonly ok: true; readonly value: CidrBlock }
  | { readonly ok: false; readonly message: string }

/**
 * @example
 * parseCidr('10.0.0.0/24') // { ok: true, value: { family: 4, … } }
 */
export const parseCidr = (text: string): CidrParse => {
  const slash = text.indexOf('/')
  if (slash === -1) return { ok: false, message: 'must be a CIDR block such as 10.0.0.0/24 or 2001:db8::/32' }
  const address = text.slice(0, slash)
  const lengthText = text.slice(slash + 1)
  if (!PREFIX_LENGTH.test(lengthText)) return { ok: false, message: `invalid prefix length "${lengthText}"` }
  const bits = Number(lengthText)
  const v4 = parseIPv4(address)
  if (v4 !== undefined) {
    if (bits > 32) return { ok: false, message: 'an IPv4 prefix length must be at most 32' }
    const mask = maskFor(bits)
    return { ok: true, value: { family: 4, network: [(v4 & mask) >>> 0], masks: [mask] } }
  }
  const v6 = parseIPv6(address)
  if (v6 === undefined) return { ok: false, message: `"${address}" is not an IPv4 or IPv6 address` }
  if (bits > 128) return { ok: false, message: 'an IPv6 prefix length must be at most 128' }
  const masks = [0, 1, 2, 3].map((i) => maskFor(bits - 32 * i))
  return {
    ok: true,
    value: { family: 6, network: v6.map((w, i) => (w & (masks[i] as number)) >>> 0), masks },
  }
}

export const cidrContains = (block: CidrBlock, address: string): boolean => {
  if (block.family === 4) {
    const v4 = parseIPv4(address)
    return v4 !== undefined && (v4 & (block.masks[0] as number)) >>> 0 === block.network[0]
  }
  const v6 = parseIPv6(address)
  if (v6 === undefined) return false
  for (let i = 0; i < 4; i++)
    if (((v6[i] as number) & (block.masks[i] as number)) >>> 0 !== block.network[i]) return false
  return true
}
