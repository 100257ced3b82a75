/**
 * A seeded pseudo-random source: the same seed gives the same sequence on every machine and
 * Node version (no Math.random, no floating-point drift: sfc32 over 32-bit integers).
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number
  /** True with probability `p`. */
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  /** Picks a key with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K
  /** Exponentially distributed with the given mean (Poisson inter-arrival times). */
  exponential(mean: number): number
  /** `n` lowercase hex digits. */
  hex(n: number): string
  /** A version-4-shaped UUID drawn from this source. */
  uuid(): string
}

// cyrb128: spreads any seed string over the 128 bits of sfc32's state.
const hashSeed = (seed: string): [number, number, number, number] => {
  let h1 = 1779033703
  let h2 = 3144134277
  let h3 = 1013904242
  let h4 = 2773480762
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i)
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  h1 ^= h2 ^ h3 ^ h4
  h2 ^= h1
  h3 ^= h1
  h4 ^= h1
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0]
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** @example const random = createRandom('demo'); random.int(1, 6) */
export const createRandom = (seed: number | string): Random => {
  let [a, b, c, d] = hashSeed(String(seed))
  const nextUint32 = (): number => {
    let t = (a + b) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    d = (d + 1) | 0
    t = (t + d) | 0
    c = (c + t) | 0
    return t >>> 0
  }
  const next = (): number => nextUint32() / 4294967296
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1))
  const hex = (n: number): string => {
    let out = ''
    for (let i = 0; i < n; i += 8) {
      const x = nextUint32()
      out += `${HEX[x >>> 24]}${HEX[(x >>> 16) & 0xff]}${HEX[(x >>> 8) & 0xff]}${HEX[x & 0xff]}`
    }
    return out.length === n ? out : out.slice(0, n)
  }
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('pick from an empty list')
      return items[int(0, items.length - 1)] as T
    },
    weighted: <K extends string>(weights: Readonly<Record<K, number>>): K => {
      const entries = Object.entries(weights) as [K, number][]
      const total = entries.reduce((sum, [, w]) => sum + w, 0)
      let r = next() * total
      for (const [key, w] of entries) {
        r -= w
        if (r < 0) return key
      }
      return (entries.at(-1) as [K, number])[0]
    },
    exponential: (mean) => -Math.log(1 - next()) * mean,
    hex,
    uuid: () => {
      const h = hex(32)
      const variant = ((Number.parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16)
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
    },
  }
}
