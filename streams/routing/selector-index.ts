import type { CloudEvent } from '../../src/events/index.ts'
import {
  buildPatternIndex,
  type CompiledPattern,
  compileAnchoreSelector,
  compilePattern,
  type PatternIndexEntry,
} from '../../src/matching/index.ts'
import type { EndpointConfiguration, Selector, SelectorSet } from '../../src/notifications/index.ts'

/** The selectors of one configuration that matched one event. */
export interface RouteMatch {
  readonly configuration: EndpointConfiguration
  /** Sorted, so the same match always produces the same command. */
  readonly selectorIds: readonly string[]
}

export interface SelectorIndex {
  /** Configurations whose selectors match `event`, sorted by configuration id. */
  match(event: CloudEvent): readonly RouteMatch[]
  /** Number of indexed selectors (those of enabled configurations of enabled endpoint types). */
  readonly size: number
}

export interface SelectorIndexOptions {
  /** Whether a configuration can be delivered to at all (default: every one). */
  readonly routable?: (configuration: EndpointConfiguration) => boolean
  /**
   * A stored selector that does not compile any more. Writes validate patterns, so this takes
   * a matcher that became stricter; the selector is left out rather than matching everything.
   */
  readonly onUncompilable?: (selector: Selector, error: unknown) => void
}

interface Entry {
  readonly selector: Selector
  readonly configuration: EndpointConfiguration
  /** The answer when this selector is the only one that matched, built once with the index. */
  readonly alone: readonly RouteMatch[]
}

const NONE: readonly RouteMatch[] = Object.freeze([])

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The selector and its content pattern as one compiled pattern: scope, account, level, type, resource type, content. */
export const compileSelector = (selector: Selector): CompiledPattern =>
  compileAnchoreSelector(
    { scope: selector.scope, account: selector.account, event: selector.event },
    selector.pattern === null ? undefined : compilePattern(selector.pattern, { path: 'pattern' }),
  )

/**
 * Every routable selector compiled into one decision tree (src/matching): split by account,
 * then event type, then content, so an event touches only selectors that can match it. Built
 * whole from a snapshot and never changed after: swapping the reference swaps the index.
 *
 * @example
 * const index = buildSelectorIndex(selectorSet)
 * index.match(event) // [{ configuration, selectorIds: ['…'] }]
 */
export const buildSelectorIndex = (set: SelectorSet, options: SelectorIndexOptions = {}): SelectorIndex => {
  const entries: PatternIndexEntry<Entry>[] = []
  for (const selector of set.selectors.values()) {
    const configuration = set.configurations.get(selector.configurationId)
    if (
      configuration === undefined ||
      !configuration.enabled ||
      set.disabledEndpoints.has(configuration.endpoint) ||
      options.routable?.(configuration) === false
    )
      continue
    try {
      const alone = Object.freeze([
        Object.freeze({ configuration, selectorIds: Object.freeze([selector.id]) }),
      ])
      entries.push({ id: { selector, configuration, alone }, pattern: compileSelector(selector) })
    } catch (error) {
      options.onUncompilable?.(selector, error)
    }
  }
  const index = buildPatternIndex(entries)
  return {
    size: index.size,
    match: (event) => {
      const hits = index.match(event)
      // Most events match nothing or one selector: answered without building anything.
      if (hits.length === 0) return NONE
      if (hits.length === 1) return (hits[0] as Entry).alone
      const found = new Map<string, { configuration: EndpointConfiguration; selectorIds: string[] }>()
      for (const { selector, configuration } of hits) {
        const match = found.get(configuration.id)
        if (match === undefined) found.set(configuration.id, { configuration, selectorIds: [selector.id] })
        else match.selectorIds.push(selector.id)
      }
      const matches: RouteMatch[] = []
      for (const m of found.values()) {
        if (m.selectorIds.length > 1) m.selectorIds.sort(byId)
        matches.push(m)
      }
      return matches.length === 1
        ? matches
        : matches.sort((a, b) => byId(a.configuration.id, b.configuration.id))
    },
  }
}

export const emptySelectorIndex: SelectorIndex = { size: 0, match: () => NONE }
