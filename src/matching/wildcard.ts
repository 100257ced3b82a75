/**
 * EventBridge wildcards: `*` matches any run of characters (including none); `\*` is a
 * literal star and `\\` a literal backslash; a backslash before anything else, and two
 * unescaped stars in a row, are errors. A compiled wildcard is its literal segments between
 * stars, which is all matching and indexing need.
 */
export interface Wildcard {
  /** Literal text between stars: `a*b` → `['a', 'b']`, `*` → `['', '']`, `abc` → `['abc']`. */
  readonly segments: readonly string[]
}

export type WildcardParse =
  | { readonly ok: true; readonly value: Wildcard }
  | { readonly ok: false; readonly message: string }

export const parseWildcard = (source: string): WildcardParse => {
  const segments: string[] = []
  let current = ''
  let previousWasStar = false
  for (let i = 0; i < source.length; i++) {
    const c = source[i]
    if (c === '\\') {
      const next = source[i + 1]
      if (next !== '*' && next !== '\\')
        return { ok: false, message: `a backslash may only escape * or \\ (at character ${i})` }
      current += next
      i++
      previousWasStar = false
    } else if (c === '*') {
      if (previousWasStar)
        return { ok: false, message: `consecutive wildcard characters are not allowed (at character ${i})` }
      segments.push(current)
      current = ''
      previousWasStar = true
    } else {
      current += c
      previousWasStar = false
    }
  }
  segments.push(current)
  return { ok: true, value: { segments } }
}

/**
 * Leftmost placement of each middle segment is enough: with only `*` as a metacharacter,
 * moving a segment right never helps a later one fit, so this is linear and never backtracks.
 */
export const wildcardMatches = (wildcard: Wildcard, value: string): boolean => {
  const segments = wildcard.segments
  const n = segments.length
  const first = segments[0] as string
  if (n === 1) return value === first
  const last = segments[n - 1] as string
  if (value.length < first.length + last.length) return false
  if (!value.startsWith(first) || !value.endsWith(last)) return false
  let position = first.length
  const end = value.length - last.length
  for (let i = 1; i < n - 1; i++) {
    const segment = segments[i] as string
    const found = value.indexOf(segment, position)
    if (found === -1 || found + segment.length > end) return false
    position = found + segment.length
  }
  return true
}

/** Writes `literal` so that a wildcard matches exactly it. */
export const escapeWildcardLiteral = (literal: string): string => literal.replace(/[\\*]/g, (c) => `\\${c}`)
