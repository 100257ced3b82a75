/**
 * Anchore's wildcard: `*` matches any run of characters, dots included, and nothing else is
 * special, so `user.checks.*` matches `user.checks.tag.vulnerabilities.update`. Greedy with
 * back-tracking to the last star: linear in practice, never exponential.
 *
 * @example
 * wildcardMatches('user.*.update', 'user.checks.tag.policy_evaluation.update') // true
 */
export const wildcardMatches = (pattern: string, value: string): boolean => {
  let p = 0
  let v = 0
  let star = -1
  let resume = 0
  while (v < value.length) {
    if (pattern[p] === '*') {
      star = p++
      resume = v
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++
      v++
    } else if (star !== -1) {
      p = star + 1
      v = ++resume
    } else {
      return false
    }
  }
  while (pattern[p] === '*') p++
  return p === pattern.length
}

export const hasWildcard = (pattern: string): boolean => pattern.includes('*')
