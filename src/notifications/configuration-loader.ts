import type { FieldIssue } from '../errors/index.ts'
import type { EventStore, RecordedEvent } from '../ports/index.ts'
import {
  type ConfigurationEvent,
  type ConfigurationState,
  decodeConfigurationEvent,
  foldConfiguration,
  initialState,
  streamName,
} from './configuration.ts'

/** A configuration's state and the revision of its stream's last event; `no_stream` when it has none. */
export interface LoadedConfiguration {
  readonly state: ConfigurationState
  readonly revision: number | 'no_stream'
}

/**
 * What the loader keeps of a configuration: its state folded up to `revision`, and the id of
 * the event at that revision, which tells the stream it was read from from one deleted and
 * begun again since.
 */
interface Folded {
  readonly state: ConfigurationState
  readonly revision: number
  readonly lastId: string
}

/**
 * How much the loader keeps by default, counted as `weightOf` counts: a configuration and its
 * selectors. About 30 MB at most, and a few thousand configurations as most have a handful of
 * selectors each.
 */
export const DEFAULT_LOADER_CAPACITY = 100_000

/** What one folded state costs to keep: the configuration, and each of its selectors. */
const weightOf = (state: ConfigurationState): number =>
  1 + (state.status === 'empty' ? 0 : state.selectors.size)

export interface ConfigurationLoaderOptions {
  readonly store: Pick<EventStore, 'readStream'>
  /** The most configurations and selectors kept between them (`weightOf`); default `DEFAULT_LOADER_CAPACITY`. */
  readonly capacity?: number
  /** A stored event that fails its codec: left out of the state, reported once, when it is first folded. */
  readonly onInvalidEvent?: (event: RecordedEvent, issues: readonly FieldIssue[]) => void
}

/**
 * Reads configurations from their own streams, keeping the folded state of the ones read most
 * recently with the revision it was folded to: a read folds only the events appended since,
 * whoever appended them. A configuration edited thousands of times made every request about it
 * read and fold its whole history, as its first step.
 *
 * The store is always asked: what is kept is never answered alone, so another process's writes
 * (on a store two Herald processes share) are in every read. The read starts at the kept
 * revision itself, and the event there must be the one kept: a stream deleted since (retention,
 * an operator) and perhaps begun again has other events there, or none, and is read whole.
 * Concurrent reads of one configuration each answer what they read; the newest state is kept.
 *
 * @example
 * const load = createConfigurationLoader({ store })
 * const { state, revision } = await load(configurationId) // revision: 'no_stream' when there is none
 */
export const createConfigurationLoader = ({
  store,
  capacity = DEFAULT_LOADER_CAPACITY,
  onInvalidEvent,
}: ConfigurationLoaderOptions): ((configurationId: string) => Promise<LoadedConfiguration>) => {
  // In the order last used, least recently first: a Map iterates in insertion order.
  const kept = new Map<string, Folded>()
  let weight = 0

  const forget = (configurationId: string): void => {
    const folded = kept.get(configurationId)
    if (folded === undefined) return
    kept.delete(configurationId)
    weight -= weightOf(folded.state)
  }

  const keep = (configurationId: string, folded: Folded): void => {
    const current = kept.get(configurationId)
    // A slower concurrent read of an older revision: the newer state stays.
    if (current !== undefined && current.revision > folded.revision) return
    forget(configurationId)
    const cost = weightOf(folded.state)
    if (cost > capacity) return
    kept.set(configurationId, folded)
    weight += cost
    for (const [id] of kept) {
      if (weight <= capacity) break
      forget(id)
    }
  }

  /** `recorded` applied to `state`; undefined for no events. */
  const fold = (recorded: readonly RecordedEvent[], state: ConfigurationState): Folded | undefined => {
    const last = recorded.at(-1)
    if (last === undefined) return undefined
    const events: ConfigurationEvent[] = []
    for (const r of recorded) {
      const decoded = decodeConfigurationEvent(r)
      if (decoded.ok) events.push(decoded.value)
      else onInvalidEvent?.(r, decoded.issues)
    }
    return { state: foldConfiguration(events, state), revision: last.revision, lastId: last.id }
  }

  const answer = (folded: Folded | undefined): LoadedConfiguration =>
    folded === undefined
      ? { state: initialState, revision: 'no_stream' }
      : { state: folded.state, revision: folded.revision }

  return async (configurationId) => {
    const stream = streamName(configurationId)
    const cached = kept.get(configurationId)
    if (cached !== undefined) {
      const tail = await store.readStream(stream, { fromRevision: cached.revision })
      const anchor = tail[0]
      if (anchor?.revision === cached.revision && anchor.id === cached.lastId) {
        const folded = fold(tail.slice(1), cached.state) ?? cached
        keep(configurationId, folded)
        return answer(folded)
      }
      forget(configurationId)
    }
    const folded = fold(await store.readStream(stream), initialState)
    if (folded !== undefined) keep(configurationId, folded)
    return answer(folded)
  }
}
