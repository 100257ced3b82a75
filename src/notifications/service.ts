import { randomBytes } from 'node:crypto'
import {
  defer,
  filter,
  firstValueFrom,
  type Observable,
  type SchedulerLike,
  shareReplay,
  switchMap,
  throwError,
  timeout,
} from 'rxjs'
import { isExpectedRevisionConflict, UnavailableError } from '../errors/index.ts'
import type { EventData, EventStore, JsonObject, RecordedEvent } from '../ports/index.ts'
import {
  type ConfigurationCommand,
  type ConfigurationEvent,
  type ConfigurationState,
  decide,
  decodeConfigurationEvent,
  evolve,
  initialState,
  streamName,
  toConfiguration,
  toSelector,
} from './configuration.ts'
import {
  type EventPattern,
  type Selector,
  type SelectorScope,
  type SelectorSet,
  type WebhookConfiguration,
  type WebhookConfigurationView,
  withoutSecret,
} from './model.ts'
import { loadSelectorSet, type ReadAll, selectorSets } from './selector-set.ts'

export interface WebhookConfigurationInput {
  readonly url: string
  /** Generated when absent. */
  readonly signingSecret?: string
  readonly description?: string
}

export interface SelectorInput {
  readonly scope: SelectorScope
  readonly event: EventPattern
}

export interface NotificationConfigService {
  /** Creates an enabled configuration; the result is the only place its signing secret is returned. */
  createWebhookConfiguration(account: string, input: WebhookConfigurationInput): Promise<WebhookConfiguration>
  /** Throws NotFoundError when the configuration does not exist in `account`. */
  addSelector(account: string, configurationId: string, input: SelectorInput): Promise<Selector>
  /** The account's configurations, secrets removed; reflects every write this service made. */
  listWebhookConfigurations(account: string): Promise<readonly WebhookConfigurationView[]>
  /**
   * Every configuration and selector of every account as a live, shared read model: a new
   * immutable snapshot after each change. Subscribers share one store subscription.
   */
  selectors$(): Observable<SelectorSet>
}

export interface NotificationConfigServiceOptions {
  readonly store: EventStore
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  /** A new UUID, for configurations, selectors and stored events. */
  readonly newId: () => string
  readonly newSecret?: () => string
  /** How long a listing waits for the read model to reach this service's own writes (default 5000 ms). */
  readonly readTimeoutMs?: number
  /** Where the read model coalesces bursts; tests pass a TestScheduler. */
  readonly scheduler?: SchedulerLike
  readonly onInvalidEvent?: (
    event: RecordedEvent,
    issues: readonly { path: string; message: string }[],
  ) => void
  /**
   * Reads all streams after a checkpoint (the SQLite store's `readAll`). With it, the first
   * snapshot of `selectors$()` holds the whole history; without it, the port gives no signal
   * that a subscription has caught up, and the first snapshot holds what its first read
   * returned (a page of the store), the rest following in later snapshots.
   */
  readonly readAll?: ReadAll
}

/** Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`

// Optimistic concurrency: a concurrent writer to the same configuration makes the append
// fail; the command is decided again on the fresh state a few times before giving up.
const MAX_ATTEMPTS = 3

/**
 * Event-sourced notification configuration on the EventStore port.
 *
 * @example
 * const service = createNotificationConfigService({ store, clock: Date.now, newId: randomUUID })
 * const config = await service.createWebhookConfiguration('acme', { url: 'https://hooks.example/x' })
 * await service.addSelector('acme', config.id, { scope: 'account', event: { level: '*', type: 'user.checks.*', resource_type: '*' } })
 */
export const createNotificationConfigService = (
  options: NotificationConfigServiceOptions,
): NotificationConfigService => {
  const { store, clock, newId } = options
  const newSecret = options.newSecret ?? newSigningSecret
  const readTimeoutMs = options.readTimeoutMs ?? 5_000
  let lastWrittenPosition = 0

  const setsOptions = {
    ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
    ...(options.onInvalidEvent === undefined ? {} : { onInvalid: options.onInvalidEvent }),
  }
  const { readAll } = options
  const live$: Observable<SelectorSet> =
    readAll === undefined
      ? defer(() => store.subscribeToAll()).pipe(selectorSets(setsOptions))
      : defer(() => loadSelectorSet(readAll, setsOptions)).pipe(
          switchMap(({ set, checkpoint }) =>
            store.subscribeToAll({ after: checkpoint }).pipe(selectorSets({ ...setsOptions, seed: set })),
          ),
        )
  // refCount: the store subscription ends with its last subscriber instead of leaking.
  const selectorSet$ = live$.pipe(shareReplay({ bufferSize: 1, refCount: true }))

  const toEventData = (event: ConfigurationEvent): EventData => ({
    id: newId(),
    type: event.type,
    // Decided events hold JSON values only (no undefined, no Dates).
    data: event.data as unknown as JsonObject,
  })

  const load = async (
    configurationId: string,
  ): Promise<{ state: ConfigurationState; revision: number | 'no_stream' }> => {
    const recorded = await store.readStream(streamName(configurationId))
    let state = initialState
    for (const r of recorded) {
      const decoded = decodeConfigurationEvent(r)
      if (decoded.ok) state = evolve(state, decoded.value)
      else options.onInvalidEvent?.(r, decoded.issues)
    }
    const last = recorded.at(-1)
    return { state, revision: last === undefined ? 'no_stream' : last.revision }
  }

  const handle = async (
    configurationId: string,
    command: ConfigurationCommand,
  ): Promise<ConfigurationEvent[]> => {
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await load(configurationId)
      const events = decide(command, state)
      try {
        const result = await store.append(streamName(configurationId), events.map(toEventData), {
          expectedRevision: revision,
        })
        lastWrittenPosition = Math.max(lastWrittenPosition, result.position)
        return events
      } catch (error) {
        if (!isExpectedRevisionConflict(error) || attempt >= MAX_ATTEMPTS) throw error
      }
    }
  }

  return {
    createWebhookConfiguration: async (account, input) => {
      const configurationId = newId()
      const [created] = await handle(configurationId, {
        type: 'CreateWebhookConfiguration',
        data: {
          configurationId,
          account,
          url: input.url,
          signingSecret: input.signingSecret ?? newSecret(),
          ...(input.description === undefined ? {} : { description: input.description }),
        },
        metadata: { now: clock() },
      })
      if (created?.type !== 'WebhookConfigurationCreated')
        throw new Error('decide returned no WebhookConfigurationCreated')
      return toConfiguration(created.data)
    },

    addSelector: async (account, configurationId, input) => {
      const selectorId = newId()
      const [added] = await handle(configurationId, {
        type: 'AddSelector',
        data: { selectorId, configurationId, account, scope: input.scope, event: input.event },
        metadata: { now: clock() },
      })
      if (added?.type !== 'SelectorAdded') throw new Error('decide returned no SelectorAdded')
      return toSelector(added.data)
    },

    listWebhookConfigurations: async (account) => {
      const target = lastWrittenPosition
      const set = await firstValueFrom(
        selectorSet$.pipe(
          filter((s) => s.position >= target),
          timeout({
            first: readTimeoutMs,
            with: () =>
              throwError(
                () =>
                  new UnavailableError('notification configurations are not readable yet', {
                    context: { position: target },
                  }),
              ),
          }),
        ),
      )
      return [...set.configurations.values()].filter((c) => c.account === account).map(withoutSecret)
    },

    selectors$: () => selectorSet$,
  }
}
