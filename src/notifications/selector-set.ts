import { isDeepStrictEqual } from 'node:util'
import {
  asapScheduler,
  distinctUntilChanged,
  Observable,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  scan,
} from 'rxjs'
import type { FieldIssue } from '../errors/index.ts'
import type { ReadAllOptions, RecordedEvent } from '../ports/index.ts'
import { ANNOUNCEMENTS_STREAM, announcedKey, announcementKey } from './announcements.ts'
import {
  decodeConfigurationEvent,
  isConfigurationStream,
  resealedConfiguration,
  STREAM_PREFIX,
  toConfiguration,
  toSelector,
  updatedConfiguration,
} from './configuration.ts'
import { ENDPOINT_STREAM_PREFIX, endpointStatusChange } from './endpoints.ts'
import {
  type EndpointConfiguration,
  type EndpointType,
  emptySelectorSet,
  type Selector,
  type SelectorSet,
  type UnannouncedDisable,
} from './model.ts'

/**
 * Folds recorded events into a new snapshot; returns `set` itself when none of them is a
 * configuration, endpoint status or announcement event, so unchanged snapshots can be
 * recognised by identity.
 */
export const applyToSelectorSet = (
  set: SelectorSet,
  events: readonly RecordedEvent[],
  onInvalid: (event: RecordedEvent, issues: readonly FieldIssue[]) => void = () => {},
): SelectorSet => {
  // Copied on first write only: a burst without selector changes shares the old selector map.
  let configurations: Map<string, EndpointConfiguration> | undefined
  let selectors: Map<string, Selector> | undefined
  let disabled: Set<EndpointType> | undefined
  let unannounced: Map<string, UnannouncedDisable> | undefined
  // Their selectors are dropped in one pass after the burst rather than one per deletion, which
  // made a catch-up over many deletions take the product of deletions and selectors. A deleted
  // configuration takes no more selector events, so none of its selectors outlives the pass.
  const deleted = new Set<string>()
  let position = set.position
  const configurationsNow = () => {
    configurations ??= new Map(set.configurations)
    return configurations
  }
  const selectorsNow = () => {
    selectors ??= new Map(set.selectors)
    return selectors
  }
  const unannouncedNow = () => {
    unannounced ??= new Map(set.unannounced)
    return unannounced
  }
  for (const recorded of events) {
    const endpointChange = endpointStatusChange(recorded)
    if (endpointChange !== undefined) {
      disabled ??= new Set(set.disabledEndpoints)
      if (endpointChange.enabled) disabled.delete(endpointChange.endpoint)
      else disabled.add(endpointChange.endpoint)
      position = recorded.position
      continue
    }
    const announced = announcedKey(recorded)
    if (announced !== undefined) {
      unannouncedNow().delete(announced)
      position = recorded.position
      continue
    }
    if (!isConfigurationStream(recorded.stream)) continue
    const decoded = decodeConfigurationEvent(recorded)
    if (!decoded.ok) {
      onInvalid(recorded, decoded.issues)
      continue
    }
    position = recorded.position
    const event = decoded.value
    switch (event.type) {
      case 'ConfigurationCreated':
        configurationsNow().set(event.data.configurationId, Object.freeze(toConfiguration(event.data)))
        break
      case 'ConfigurationUpdated': {
        const current = (configurations ?? set.configurations).get(event.data.configurationId)
        if (current === undefined) break
        configurationsNow().set(current.id, Object.freeze(updatedConfiguration(current, event.data)))
        const { failure } = event.data
        if (failure !== undefined && !event.data.enabled)
          unannouncedNow().set(
            announcementKey(current.id, recorded.revision),
            Object.freeze({
              configurationId: current.id,
              account: current.account,
              endpoint: current.endpoint,
              revision: recorded.revision,
              at: event.data.at,
              ...failure,
            }),
          )
        break
      }
      case 'SecretsResealed': {
        const current = (configurations ?? set.configurations).get(event.data.configurationId)
        if (current !== undefined)
          configurationsNow().set(current.id, Object.freeze(resealedConfiguration(current, event.data)))
        break
      }
      case 'ConfigurationDeleted':
        configurationsNow().delete(event.data.configurationId)
        deleted.add(event.data.configurationId)
        break
      case 'SelectorAdded':
        selectorsNow().set(event.data.selectorId, Object.freeze(toSelector(event.data)))
        break
      case 'SelectorUpdated':
        if ((selectors ?? set.selectors).has(event.data.selectorId))
          selectorsNow().set(event.data.selectorId, Object.freeze(toSelector(event.data)))
        break
      case 'SelectorRemoved':
        selectorsNow().delete(event.data.selectorId)
        break
    }
  }
  if (deleted.size > 0) {
    const all = selectorsNow()
    for (const [id, selector] of all) if (deleted.has(selector.configurationId)) all.delete(id)
  }
  if (position === set.position) return set
  return Object.freeze({
    position,
    configurations: configurations ?? set.configurations,
    selectors: selectors ?? set.selectors,
    disabledEndpoints: disabled ?? set.disabledEndpoints,
    unannounced: unannounced ?? set.unannounced,
  })
}

/**
 * The configurations disabled in `after` that were enabled, or not there, in `before`, those
 * whose endpoint type `after` has switched off and `before` had not, and those `after` no
 * longer has (deleted): those whose queued deliveries are to settle now rather than wait. Snapshots share what did not change, so each
 * part is compared by identity first.
 *
 * @example
 * newlyDisabled(emptySelectorSet, set) // every disabled configuration of `set`
 */
export const newlyDisabled = (before: SelectorSet, after: SelectorSet): string[] => {
  const switchedOff = [...after.disabledEndpoints].filter((e) => !before.disabledEndpoints.has(e))
  if (before.configurations === after.configurations && switchedOff.length === 0) return []
  const ids: string[] = []
  for (const [id, configuration] of after.configurations) {
    if (switchedOff.includes(configuration.endpoint)) {
      ids.push(id)
      continue
    }
    if (configuration.enabled || before.configurations === after.configurations) continue
    const was = before.configurations.get(id)
    if (was === undefined || was.enabled) ids.push(id)
  }
  // Deleted: its queue settles as skipped (`configuration_missing`) too.
  if (before.configurations !== after.configurations)
    for (const id of before.configurations.keys()) if (!after.configurations.has(id)) ids.push(id)
  return ids
}

/**
 * The configurations enabled in `after` that an update since `before` changed in what their
 * deliveries are sent to or with: their settings (the URL, headers, hosts), secrets or TLS
 * check, or their switch (enabled again). A delivery of theirs waiting for a retry is tried
 * again now rather than at its retry: the change may be what fixes it. A re-seal of their
 * secrets under another key sends nothing differently and leaves `updatedAt`, so it is not one;
 * nor is a change of their description, templates or selectors alone.
 *
 * @example
 * changedForDelivery(before, after) // [id] after its owner fixed its URL
 */
export const changedForDelivery = (before: SelectorSet, after: SelectorSet): string[] => {
  if (before.configurations === after.configurations) return []
  const ids: string[] = []
  for (const [id, configuration] of after.configurations) {
    const was = before.configurations.get(id)
    if (was === undefined || was === configuration || !configuration.enabled) continue
    if (was.updatedAt === configuration.updatedAt) continue
    if (
      !was.enabled ||
      was.verifyTls !== configuration.verifyTls ||
      !isDeepStrictEqual(was.settings, configuration.settings) ||
      !isDeepStrictEqual(was.secrets, configuration.secrets)
    )
      ids.push(id)
  }
  return ids
}

/**
 * Gathers the values that arrive before `scheduler` gets a turn into one array. A catch-up
 * delivers a whole page of events synchronously: folding it as one step copies the snapshot
 * once per page instead of once per event. Emits once right after subscription even when
 * nothing arrives, so an empty store still yields a (empty) snapshot.
 */
export const coalesce =
  <T>(scheduler: SchedulerLike = asapScheduler): OperatorFunction<T, readonly T[]> =>
  (source) =>
    new Observable<readonly T[]>((subscriber) => {
      let pending: T[] = []
      let flushing: Subscription | undefined
      const flush = () => {
        flushing = undefined
        const values = pending
        pending = []
        subscriber.next(values)
      }
      const schedule = () => {
        flushing ??= scheduler.schedule(flush)
      }
      const subscription = source.subscribe({
        next: (value) => {
          pending.push(value)
          schedule()
        },
        error: (error) => subscriber.error(error),
        complete: () => {
          if (flushing !== undefined) {
            flushing.unsubscribe()
            flush()
          }
          subscriber.complete()
        },
      })
      schedule()
      return () => {
        subscription.unsubscribe()
        flushing?.unsubscribe()
      }
    })

export interface SelectorSetsOptions {
  readonly scheduler?: SchedulerLike
  /** A configuration event that fails its codec: skipped, so one bad event cannot stop routing. */
  readonly onInvalid?: (event: RecordedEvent, issues: readonly FieldIssue[]) => void
  /** The snapshot to build on, when the events start after a checkpoint. */
  readonly seed?: SelectorSet
}

/**
 * The live read model of configurations and selectors: fed with `store.subscribeToAll()`, it
 * emits a new immutable SelectorSet after each burst of configuration changes (and one at
 * the start), never the same snapshot twice in a row.
 *
 * @example
 * store.subscribeToAll().pipe(selectorSets(), map(buildSelectorIndex))
 */
export const selectorSets =
  (options: SelectorSetsOptions = {}): OperatorFunction<RecordedEvent, SelectorSet> =>
  (events) =>
    events.pipe(
      coalesce(options.scheduler),
      scan(
        (set: SelectorSet, burst: readonly RecordedEvent[]) =>
          applyToSelectorSet(set, burst, options.onInvalid),
        options.seed ?? emptySelectorSet,
      ),
      distinctUntilChanged(),
    )

/**
 * The streams the selector set is made of: configurations, endpoint statuses and the
 * announcements outbox. Reads and subscriptions pass them, so the delivery log (on KurrentDB,
 * in the same store) is never read.
 */
export const SELECTOR_SET_STREAMS = [STREAM_PREFIX, ENDPOINT_STREAM_PREFIX, ANNOUNCEMENTS_STREAM] as const

/** Events of every stream after a checkpoint, in position order: what a catch-up reads. */
export type ReadAll = (options: ReadAllOptions) => Promise<readonly RecordedEvent[]>

/**
 * Reads the whole history page by page into one snapshot, and returns it with the position of
 * the last event read (of any stream), from which a live subscription continues.
 */
export const loadSelectorSet = async (
  readAll: ReadAll,
  { pageSize = 1_000, onInvalid }: { pageSize?: number; onInvalid?: SelectorSetsOptions['onInvalid'] } = {},
): Promise<{ readonly set: SelectorSet; readonly checkpoint: number }> => {
  let set = emptySelectorSet
  let checkpoint = 0
  for (;;) {
    const page = await readAll({
      after: checkpoint,
      maxCount: pageSize,
      streamPrefixes: SELECTOR_SET_STREAMS,
    })
    set = applyToSelectorSet(set, page, onInvalid)
    checkpoint = page.at(-1)?.position ?? checkpoint
    if (page.length < pageSize) return { set, checkpoint }
  }
}
