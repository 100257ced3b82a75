import { map, type OperatorFunction } from 'rxjs'
import type { CloudEvent } from '../../src/events/index.ts'
import type { Selector, SelectorSet, WebhookConfiguration } from '../../src/notifications/index.ts'
import { hasWildcard, matchesLevelAndResource, wildcardMatches } from './match.ts'

/** The selectors of one configuration that matched one event. */
export interface RouteMatch {
  readonly configuration: WebhookConfiguration
  /** Sorted, so the same match always produces the same command. */
  readonly selectorIds: readonly string[]
}

export interface SelectorIndex {
  /** Configurations whose selectors match `event`, sorted by configuration id. */
  match(event: CloudEvent): readonly RouteMatch[]
  /** Number of indexed selectors (those of enabled configurations). */
  readonly size: number
}

interface Entry {
  readonly selector: Selector
  readonly configuration: WebhookConfiguration
}

/** Selectors of one scope: exact types are one map lookup, wildcard types are tested one by one. */
interface Bucket {
  readonly exact: Map<string, Entry[]>
  readonly wildcard: Entry[]
}

const newBucket = (): Bucket => ({ exact: new Map(), wildcard: [] })

const add = (bucket: Bucket, entry: Entry): void => {
  const type = entry.selector.event.type
  if (hasWildcard(type)) {
    bucket.wildcard.push(entry)
    return
  }
  const list = bucket.exact.get(type)
  if (list === undefined) bucket.exact.set(type, [entry])
  else list.push(entry)
}

const collect = (
  bucket: Bucket | undefined,
  event: CloudEvent,
  into: Map<string, RouteMatchBuilder>,
): void => {
  if (bucket === undefined) return
  const consider = (entry: Entry) => {
    if (!matchesLevelAndResource(entry.selector, event)) return
    const found = into.get(entry.configuration.id)
    if (found === undefined)
      into.set(entry.configuration.id, {
        configuration: entry.configuration,
        selectorIds: [entry.selector.id],
      })
    else found.selectorIds.push(entry.selector.id)
  }
  for (const entry of bucket.exact.get(event.type) ?? []) consider(entry)
  for (const entry of bucket.wildcard)
    if (wildcardMatches(entry.selector.event.type, event.type)) consider(entry)
}

interface RouteMatchBuilder {
  readonly configuration: WebhookConfiguration
  readonly selectorIds: string[]
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Compiles a SelectorSet for routing: selectors of disabled or unknown configurations are
 * left out; the rest are bucketed by account (plus one global bucket), then by exact type,
 * so an event is compared only with its own account's selectors and the global ones.
 *
 * @example
 * const index = buildSelectorIndex(set)
 * index.match(event) // [{ configuration, selectorIds: ['…'] }]
 */
export const buildSelectorIndex = (set: SelectorSet): SelectorIndex => {
  const byAccount = new Map<string, Bucket>()
  const global = newBucket()
  let size = 0
  for (const selector of set.selectors.values()) {
    const configuration = set.configurations.get(selector.configurationId)
    if (configuration === undefined || !configuration.enabled) continue
    const entry = { selector, configuration }
    if (selector.scope === 'global') add(global, entry)
    else {
      let bucket = byAccount.get(selector.account)
      if (bucket === undefined) {
        bucket = newBucket()
        byAccount.set(selector.account, bucket)
      }
      add(bucket, entry)
    }
    size++
  }
  return {
    size,
    match: (event) => {
      const found = new Map<string, RouteMatchBuilder>()
      collect(byAccount.get(event.account), event, found)
      collect(global, event, found)
      return [...found.values()]
        .map((m) => ({ configuration: m.configuration, selectorIds: m.selectorIds.sort(byId) }))
        .sort((a, b) => byId(a.configuration.id, b.configuration.id))
    },
  }
}

export const emptySelectorIndex: SelectorIndex = { size: 0, match: () => [] }

/** Compiles each snapshot of the read model; the root keeps the latest for `getIndex`. */
export const selectorIndexes = (): OperatorFunction<SelectorSet, SelectorIndex> => map(buildSelectorIndex)
