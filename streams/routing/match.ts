import type { CloudEvent } from '../../src/events/index.ts'
import type { Selector } from '../../src/notifications/index.ts'

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

/**
 * An event without `level` or `resourcetype` matches only selectors that accept any (`*`):
 * a selector asking for errors must not receive events that never said what they are.
 */
export const matchesLevelAndResource = (selector: Selector, event: CloudEvent): boolean =>
  (selector.event.level === '*' || selector.event.level === event.level) &&
  (selector.event.resource_type === '*' ||
    (event.resourcetype !== undefined && wildcardMatches(selector.event.resource_type, event.resourcetype)))

/**
 * Whether one selector selects one event. `account` scope sees only its own account's
 * events; `global` scope sees every account's.
 */
export const matchesSelector = (selector: Selector, event: CloudEvent): boolean =>
  (selector.scope === 'global' || selector.account === event.account) &&
  wildcardMatches(selector.event.type, event.type) &&
  matchesLevelAndResource(selector, event)
