import { cidrContains, parseCidr } from './cidr.ts'
import type { Matcher, NegatableMatcher } from './types.ts'
import { parseWildcard, wildcardMatches } from './wildcard.ts'

/**
 * A field's alternatives compiled for evaluation against the leaf values found at the field:
 * with none, only `exists: false` can hold; with some, `exists: true` holds, or a value
 * alternative accepts one of them.
 */
export interface LeafTest {
  readonly whenAbsent: boolean
  readonly whenPresent: boolean
  readonly test: (value: unknown) => boolean
}

/** Case-insensitive comparisons compare `toLowerCase()` forms on both sides. */
export const fold = (text: string): string => text.toLowerCase()

const never = (): boolean => false

/** A case-sensitive alternative's test; `anyOf` tests the case-insensitive ones on the folded value. */
const valueTest = (
  matcher: Exclude<NegatableMatcher | Matcher, { kind: 'exists' | 'equals-ignore-case' }>,
): ((v: unknown) => boolean) => {
  switch (matcher.kind) {
    case 'exact': {
      const expected = matcher.value
      return (v) => v === expected
    }
    case 'prefix': {
      const prefix = matcher.value
      return (v) => typeof v === 'string' && v.startsWith(prefix)
    }
    case 'suffix': {
      const suffix = matcher.value
      return (v) => typeof v === 'string' && v.endsWith(suffix)
    }
    case 'wildcard': {
      const parsed = parseWildcard(matcher.value)
      if (!parsed.ok) return never
      const wildcard = parsed.value
      return (v) => typeof v === 'string' && wildcardMatches(wildcard, v)
    }
    case 'anything-but': {
      const excluded = anyOf(matcher.not)
      return (v) => !excluded(v)
    }
    case 'numeric': {
      const lower = matcher.lower
      const upper = matcher.upper
      const low = lower?.value ?? Number.NEGATIVE_INFINITY
      const high = upper?.value ?? Number.POSITIVE_INFINITY
      const lowIn = lower?.inclusive ?? true
      const highIn = upper?.inclusive ?? true
      return (v) => typeof v === 'number' && (lowIn ? v >= low : v > low) && (highIn ? v <= high : v < high)
    }
    case 'cidr': {
      const parsed = parseCidr(matcher.value)
      if (!parsed.ok) return never
      const block = parsed.value
      return (v) => typeof v === 'string' && cidrContains(block, v)
    }
  }
}

/**
 * One test for a list of value alternatives. Exact values share one set lookup, and so do the
 * `equals-ignore-case` ones, folded; a string is folded once for all the case-insensitive
 * alternatives (a thousand of them against a long string would otherwise fold it a thousand
 * times).
 */
const anyOf = (matchers: readonly Matcher[]): ((v: unknown) => boolean) => {
  const exact = new Set<unknown>()
  const equalFolded = new Set<string>()
  // Tests of a folded string: case-insensitive prefixes and suffixes.
  const onFolded: ((folded: string) => boolean)[] = []
  const others: ((v: unknown) => boolean)[] = []
  for (const m of matchers) {
    if (m.kind === 'exact') exact.add(m.value)
    else if (m.kind === 'equals-ignore-case') equalFolded.add(fold(m.value))
    else if ((m.kind === 'prefix' || m.kind === 'suffix') && m.ignoreCase) {
      const affix = fold(m.value)
      onFolded.push(m.kind === 'prefix' ? (f) => f.startsWith(affix) : (f) => f.endsWith(affix))
    } else if (m.kind !== 'exists') others.push(valueTest(m))
  }
  if (equalFolded.size > 0 || onFolded.length > 0) {
    const folded = (v: string): boolean => {
      const f = fold(v)
      if (equalFolded.has(f)) return true
      for (const t of onFolded) if (t(f)) return true
      return false
    }
    others.push((v) => typeof v === 'string' && folded(v))
  }
  if (others.length === 0) {
    if (exact.size === 0) return never
    if (exact.size === 1) {
      const [only] = exact
      return (v) => v === only
    }
    return (v) => exact.has(v)
  }
  if (exact.size === 0 && others.length === 1) return others[0] as (v: unknown) => boolean
  return (v) => {
    if (exact.has(v)) return true
    for (const t of others) if (t(v)) return true
    return false
  }
}

const cache = new WeakMap<readonly Matcher[], LeafTest>()

export const leafTest = (matchers: readonly Matcher[]): LeafTest => {
  let compiled = cache.get(matchers)
  if (compiled === undefined) {
    compiled = {
      whenAbsent: matchers.some((m) => m.kind === 'exists' && !m.value),
      whenPresent: matchers.some((m) => m.kind === 'exists' && m.value),
      test: anyOf(matchers),
    }
    cache.set(matchers, compiled)
  }
  return compiled
}

/** Whether a field holds given the `count` leaf values in `values`. */
export const leafHolds = (leaf: LeafTest, values: readonly unknown[], count: number): boolean => {
  if (count === 0) return leaf.whenAbsent
  if (leaf.whenPresent) return true
  const test = leaf.test
  for (let i = 0; i < count; i++) if (test(values[i])) return true
  return false
}
