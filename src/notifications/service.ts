import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { isLeft } from 'fp-ts/lib/Either.js'
import {
  defer,
  filter,
  firstValueFrom,
  type Observable,
  type SchedulerLike,
  type Subscription,
  shareReplay,
  switchMap,
  throwError,
  timeout,
} from 'rxjs'
import { ADMIN_ACCOUNT } from '../access/index.ts'
import {
  clipped,
  collectIssues,
  type FieldIssue,
  ForbiddenError,
  isExpectedRevisionConflict,
  LimitReachedError,
  NotFoundError,
  PreconditionFailedError,
  SecretRequiredError,
  UnavailableError,
  ValidationError,
} from '../errors/index.ts'
import { toFieldIssues } from '../events/index.ts'
import type { EventData, EventStore, JsonObject, RecordedEvent } from '../ports/index.ts'
import { isSecretUndecryptable, keyIdOfSealed, type SecretBox } from '../secrets/index.ts'
import { createSerialQueues } from '../serially.ts'
import { ANNOUNCEMENTS_STREAM, disableAnnounced } from './announcements.ts'
import {
  type ConfigurationCommand,
  type ConfigurationEvent,
  type ConfigurationOptions,
  type ConfigurationState,
  type CreateConfiguration,
  decide,
  foldConfiguration,
  initialState,
  type ResealSecrets,
  replacedSigningAt,
  type SelectorInput,
  type SelectorPatch,
  streamName,
  type UpdateConfiguration,
} from './configuration.ts'
import { createConfigurationLoader } from './configuration-loader.ts'
import { ENDPOINT_FIELDS, fieldSpec, isSecretUrlField, secretRedirections } from './endpoint-fields.ts'
import type {
  EndpointConfiguration,
  EndpointType,
  Principal,
  SealedSecret,
  Selector,
  SelectorSet,
  UnannouncedDisable,
  WebhookConfiguration,
} from './model.ts'
import { loadSelectorSet, type ReadAll, SELECTOR_SET_STREAMS, selectorSets } from './selector-set.ts'
import { holdsRedacted, REDACTED_REFUSED, shownSecret } from './views.ts'

export type { SelectorInput, SelectorPatch }

/**
 * What a create or update request asks for, in the API's names. On update, a field or option
 * left out keeps its value and a `null` one is removed (back to its default, when it has one).
 */
export interface ConfigurationInput {
  /** The endpoint's fields, secrets in plaintext. */
  readonly fields: Readonly<Record<string, unknown>>
  readonly options: Readonly<Partial<Record<keyof ConfigurationOptions, unknown>>>
}

/** The options of a configuration created without them. */
export const DEFAULT_OPTIONS: ConfigurationOptions = {
  description: null,
  enabled: true,
  verify_tls: true,
  templates: {},
  digest: false,
  digest_window_seconds: null,
  max_in_flight: null,
}

const optionsOf = (configuration: EndpointConfiguration): ConfigurationOptions => ({
  description: configuration.description,
  enabled: configuration.enabled,
  verify_tls: configuration.verifyTls,
  templates: configuration.templates,
  digest: configuration.digest.enabled,
  digest_window_seconds: configuration.digest.windowSeconds,
  max_in_flight: configuration.maxInFlight,
})

/** `base` with `changes` applied: left out keeps, `null` resets to `reset` (the default). */
const merged = <T extends Record<string, unknown>>(
  base: T,
  changes: Readonly<Record<string, unknown>>,
  reset: Readonly<Record<string, unknown>>,
): T => {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) continue
    out[key] = value === null && key in reset ? reset[key] : value
  }
  return out as T
}

/** A value and the stream revision it was read at: the ETag a client sends back in `If-Match`. */
export interface Versioned<T> {
  readonly value: T
  readonly revision: number
}

export interface ConfigurationWithSelectors {
  readonly configuration: EndpointConfiguration
  readonly selectors: readonly Selector[]
}

/**
 * Optimistic concurrency for a write: the revision the client read, from `If-Match`; with
 * `expectedRevisions` (a list of tags), whichever of them is current.
 */
export interface WriteOptions {
  readonly expectedRevision?: number
  readonly expectedRevisions?: readonly number[]
}

/** The revisions a write may go ahead at; undefined: any. */
const allowedRevisions = (write: WriteOptions): readonly number[] | undefined =>
  write.expectedRevisions ?? (write.expectedRevision === undefined ? undefined : [write.expectedRevision])

/**
 * PreconditionFailedError unless `write` may go ahead with `what` at `revision`: the one check
 * of `If-Match`, for the service's writes and for the routes, which compare a body's read-only
 * fields with the stored ones first.
 */
export const assertWritableAt = (what: string, write: WriteOptions, revision: number | 'no_stream'): void => {
  const allowed = allowedRevisions(write)
  const expected = allowed?.[0]
  if (expected === undefined || (revision !== 'no_stream' && allowed?.includes(revision))) return
  throw new PreconditionFailedError(what, { expected, actual: revision === 'no_stream' ? 'none' : revision })
}

export interface NotificationConfigService {
  /**
   * Creates a configuration. `generated` holds the secrets Herald generated (a webhook's
   * signing secret): the only time they are ever returned.
   */
  createConfiguration(
    principal: Principal,
    endpoint: EndpointType,
    input: ConfigurationInput,
  ): Promise<Versioned<EndpointConfiguration> & { readonly generated: Readonly<Record<string, string>> }>
  updateConfiguration(
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    input: ConfigurationInput,
    options?: WriteOptions,
  ): Promise<Versioned<EndpointConfiguration>>
  /**
   * Refuses `input` as `createConfiguration` would, or with a configuration's id as
   * `updateConfiguration` would, writing nothing: one ValidationError naming every bad field,
   * NotFoundError for an update of a configuration that is not there. What a route runs before
   * the checks that ask the network (the SSRF guard's DNS lookups), so that a bad field is
   * reported first, together with every other.
   */
  checkConfiguration(
    principal: Principal,
    endpoint: EndpointType,
    input: ConfigurationInput,
    configurationId?: string,
  ): Promise<void>
  deleteConfiguration(
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    options?: WriteOptions,
  ): Promise<void>
  /** Read from the configuration's own stream: always current. NotFoundError for another account's. */
  getConfiguration(
    account: string,
    endpoint: EndpointType,
    configurationId: string,
  ): Promise<Versioned<ConfigurationWithSelectors>>
  /** The account's configurations (of one endpoint type when given); reflects every write this service made. */
  listConfigurations(account: string, endpoint?: EndpointType): Promise<readonly EndpointConfiguration[]>
  addSelector(
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    input: SelectorInput,
    options?: WriteOptions,
  ): Promise<Versioned<Selector>>
  updateSelector(
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    selectorId: string,
    input: SelectorPatch,
    options?: WriteOptions,
  ): Promise<Versioned<Selector>>
  removeSelector(
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    selectorId: string,
    options?: WriteOptions,
  ): Promise<void>
  /**
   * Switches a configuration off on Herald's own account (`by` is `system/<reason>`), e.g. when
   * its endpoint answered 410 Gone; a no-op when it is off already. NotFoundError when it is gone.
   * With `unchangedSince` (ms: when the configuration the deciding attempt used was last
   * changed), one changed since is left alone, and false says so: a 410 from the old URL must
   * not switch off the configuration its owner just fixed. With `failure`, the disable is to be
   * announced: it records what the announcement says, and stays in `selectors$()`'s
   * `unannounced` until `markAnnounced`.
   */
  disableConfiguration(
    configurationId: string,
    reason: string,
    options?: {
      readonly unchangedSince?: number | undefined
      readonly failure?: { readonly failingSince: number; readonly lastError: string | null }
    },
  ): Promise<boolean>
  /**
   * Records that the announcement of `disable` was published (the announcements outbox): it
   * leaves `unannounced` with the next snapshot. Recording it twice stores it once.
   */
  markAnnounced(disable: UnannouncedDisable): Promise<void>
  /** Every selector of the account, across its configurations. */
  listSelectors(account: string): Promise<readonly Selector[]>
  /** Opens one of a configuration's secrets, for the code that delivers with it. */
  openSecret(configuration: EndpointConfiguration, field: string): string | undefined
  /**
   * The configuration's secrets that no key of the box decrypts (the key that sealed them lost
   * or dropped from `secrets.previous_keys`): nothing can be sent with them, and an update must
   * give each again. A signing secret's replaced values are not counted: they only sign besides.
   */
  undecryptableSecrets(configuration: EndpointConfiguration): readonly string[]
  /** A webhook configuration with its signing secrets opened, as the webhook deliverer takes it. */
  webhookDelivery(configuration: EndpointConfiguration, now: number): WebhookConfiguration | undefined
  /**
   * Every configuration and selector of every account as a live, shared read model: a new
   * immutable snapshot after each change. Subscribers share one store subscription.
   */
  selectors$(): Observable<SelectorSet>
  /**
   * Stops following the store for listings: the read model they use is kept subscribed from
   * the first one on. `selectors$()` stays live for as long as its own subscribers.
   */
  close(): void
  /**
   * Seals again with the current key each of a configuration's secrets another key sealed
   * (and a signing secret's replaced values that still sign), so that key can be dropped once
   * no secret needs it. Stored as `SecretsResealed` by `system/reseal` at the revision the
   * secrets were read at: a concurrent writer (another instance re-sealing too) makes it read
   * and decide again, and what is already sealed with the current key is left alone, so it can
   * run any number of times. A secret no known key opens stays as it was, named in
   * `undecryptable`. Undefined when the configuration is gone.
   */
  resealSecrets(configurationId: string): Promise<ResealResult | undefined>
}

/** What `resealSecrets` did: the configuration as it now is, the fields re-sealed and those no key opens. */
export interface ResealResult {
  readonly configuration: EndpointConfiguration
  readonly resealed: readonly string[]
  readonly undecryptable: readonly string[]
}

/**
 * What one account may store (`notifications.limits`). Every request that touches a
 * configuration works on all its selectors (the first one folds its whole stream), and the
 * router rebuilds an account's selector tree on each change: without bounds, one tenant could
 * make both slow for everyone.
 */
export interface ConfigurationLimits {
  readonly selectorsPerConfiguration: number
  readonly configurationsPerAccount: number
}

export interface NotificationConfigServiceOptions {
  readonly store: EventStore
  /** Seals every secret before it is appended, opens them for delivery. */
  readonly box: SecretBox
  /** Milliseconds since the epoch. */
  readonly clock: () => number
  /** A new UUID, for configurations, selectors and stored events. */
  readonly newId: () => string
  readonly newSecret?: () => string
  /** How long a listing waits for the read model to reach this service's own writes (default 5000 ms). */
  readonly readTimeoutMs?: number
  /** Where the read model coalesces bursts; tests pass a TestScheduler. */
  readonly scheduler?: SchedulerLike
  readonly onInvalidEvent?: (event: RecordedEvent, issues: readonly FieldIssue[]) => void
  /**
   * Reads all streams after a checkpoint (the store's `readAll`). With it, the first snapshot
   * of `selectors$()` holds the whole history; without it, the first snapshot holds what the
   * subscription's first read returned, the rest following in later snapshots.
   */
  readonly readAll?: ReadAll
  /** Absent: no limits. */
  readonly limits?: ConfigurationLimits
  /**
   * How many configurations and selectors (between them) are kept folded, so that reading one
   * folds only what was appended since (`createConfigurationLoader`); default 100,000.
   */
  readonly loaderCapacity?: number
}

/** Why a stored secret is of no use: what an update that keeps one, a test and a delivery say. */
const UNDECRYPTABLE =
  "the stored one cannot be decrypted with Herald's keys (secrets.encryption_key, secrets.previous_keys)"

/**
 * What a test or a delivery says of a configuration whose `fields` cannot be decrypted (the
 * key that sealed them lost): a failure its owner fixes by giving them again, or an operator
 * by listing that key again.
 */
export const undecryptableDetail = (fields: readonly string[]): string =>
  `${fields.join(', ')} cannot be decrypted with Herald's keys (secrets.encryption_key, secrets.previous_keys): list the key that sealed ${fields.length === 1 ? 'it' : 'them'} again, or give ${fields.length === 1 ? 'it' : 'them'} again (PUT)`

/** Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`

// Without If-Match, a concurrent writer to the same configuration (another instance: this
// one's take turns) makes the append fail; the command is decided again on the fresh state,
// after a short random wait so two instances do not collide in step, before giving up.
const MAX_ATTEMPTS = 5
const MAX_RETRY_WAIT_MS = 25

const aadOf = (configurationId: string, field: string): string => `${configurationId}/${field}`

const byPrincipal = (principal: Principal): string => `${principal.account}/${principal.role}`

/** The admin account's admin: the one principal that may route, or stop routing, every account's events. */
const isGlobalAdmin = (principal: Principal): boolean =>
  principal.role === 'admin' && principal.account === ADMIN_ACCOUNT

const notFound = (configurationId: string): NotFoundError =>
  new NotFoundError(`notification configuration ${clipped(configurationId)} not found`, { configurationId })

/**
 * Event-sourced notification configuration on the EventStore port.
 *
 * @example
 * const service = createNotificationConfigService({ store, box, clock: Date.now, newId: randomUUID })
 * const { value } = await service.createConfiguration(principal, 'slack', {
 *   fields: { url: 'https://hooks.slack.com/services/T0/B0/x' }, options })
 * await service.addSelector(principal, 'slack', value.id, {
 *   scope: 'account', event: { level: '*', type: 'user.checks.*', resource_type: '*' }, pattern: null })
 */
export const createNotificationConfigService = (
  options: NotificationConfigServiceOptions,
): NotificationConfigService => {
  const { store, box, clock, newId } = options
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
      ? defer(() => store.subscribeToAll({ streamPrefixes: SELECTOR_SET_STREAMS })).pipe(
          selectorSets(setsOptions),
        )
      : defer(() => loadSelectorSet(readAll, setsOptions)).pipe(
          switchMap(({ set, checkpoint }) =>
            store
              .subscribeToAll({ after: checkpoint, streamPrefixes: SELECTOR_SET_STREAMS })
              .pipe(selectorSets({ ...setsOptions, seed: set })),
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

  const load = createConfigurationLoader({
    store,
    ...(options.loaderCapacity === undefined ? {} : { capacity: options.loaderCapacity }),
    ...(options.onInvalidEvent === undefined ? {} : { onInvalidEvent: options.onInvalidEvent }),
  })

  // Commands to one configuration run one after another in this process, so concurrent
  // requests (a script adding selectors in parallel) never conflict with each other; the
  // retries below are left for writers in other instances.
  const serially = createSerialQueues()

  /**
   * Decides and appends. With an expected revision the client's view must still be current,
   * and a concurrent write fails with 412 instead of being decided again.
   */
  const handle = (
    configurationId: string,
    command: (state: ConfigurationState) => ConfigurationCommand,
    write: WriteOptions = {},
  ): Promise<{ events: ConfigurationEvent[]; state: ConfigurationState; revision: number }> =>
    serially(configurationId, () => decideAndAppend(configurationId, command, write))

  const decideAndAppend = async (
    configurationId: string,
    command: (state: ConfigurationState) => ConfigurationCommand,
    write: WriteOptions,
  ): Promise<{ events: ConfigurationEvent[]; state: ConfigurationState; revision: number }> => {
    const expectedRevision = allowedRevisions(write)?.[0]
    for (let attempt = 1; ; attempt++) {
      const { state, revision } = await load(configurationId)
      assertWritableAt(`configuration ${configurationId}`, write, revision)
      const events = decide(command(state), state)
      const next = foldConfiguration(events, state)
      if (events.length === 0)
        return { events, state: next, revision: revision === 'no_stream' ? -1 : revision }
      try {
        const result = await store.append(streamName(configurationId), events.map(toEventData), {
          expectedRevision: revision,
        })
        lastWrittenPosition = Math.max(lastWrittenPosition, result.position)
        return { events, state: next, revision: result.nextExpectedRevision }
      } catch (error) {
        if (!isExpectedRevisionConflict(error)) throw error
        if (expectedRevision !== undefined) {
          // The client's revision was current when read: the writer that got in first moved it on.
          const { revision: actual } = await load(configurationId)
          throw new PreconditionFailedError(`configuration ${configurationId}`, {
            expected: expectedRevision,
            actual: actual === 'no_stream' ? 'none' : actual,
          })
        }
        // No precondition was asked for, so no 412: the request is sound and may be sent again.
        if (attempt >= MAX_ATTEMPTS)
          throw new UnavailableError(
            `configuration ${configurationId} was changed by another writer each of the ${MAX_ATTEMPTS} times this request was decided; nothing was written: send it again`,
            { cause: error },
          )
        await sleep(Math.random() * MAX_RETRY_WAIT_MS * attempt)
      }
    }
  }

  /**
   * A selector with global scope routes every account's events: only the admin account's admin
   * may add one (the routes check the body), and so only it may change or remove one, whatever
   * the body says.
   */
  const onlyAdminTouchesGlobal = (
    principal: Principal,
    state: ConfigurationState,
    selectorId: string,
    what: string,
  ): void => {
    if (
      !isGlobalAdmin(principal) &&
      state.status === 'active' &&
      state.selectors.get(selectorId)?.scope === 'global'
    )
      throw new ForbiddenError(`only the admin account may ${what} a selector with global scope`)
  }

  /**
   * The same rule for the configuration a global selector delivers to: its URL, host, secrets
   * and switch decide where every account's events go, so another token of the admin account
   * may neither update nor delete it (it still may add account-scoped selectors, and test it).
   */
  const onlyAdminTouchesGlobalConfiguration = (
    principal: Principal,
    state: ConfigurationState,
    what: string,
  ): void => {
    // Another account's configuration is not found, as the decider says: never forbidden.
    if (isGlobalAdmin(principal) || state.status !== 'active') return
    if (state.configuration.account !== principal.account) return
    for (const selector of state.selectors.values())
      if (selector.scope === 'global')
        throw new ForbiddenError(
          `only the admin account may ${what} a configuration with a selector of global scope`,
        )
  }

  const openSecret = (configuration: EndpointConfiguration, field: string): string | undefined => {
    const secret = configuration.secrets[field]
    return secret === undefined ? undefined : box.open(secret.sealed, aadOf(configuration.id, field))
  }

  /** Whether a stored secret opens at all: false for one sealed with a key the box lacks. */
  const opens = (configuration: EndpointConfiguration, field: string): boolean => {
    try {
      openSecret(configuration, field)
      return true
    } catch (error) {
      if (isSecretUndecryptable(error)) return false
      throw error
    }
  }

  const undecryptableSecrets = (configuration: EndpointConfiguration): readonly string[] =>
    Object.keys(configuration.secrets).filter((field) => !opens(configuration, field))

  /**
   * Splits a request's fields into plaintext settings and sealed secrets. Secrets are checked
   * by their codecs here, before sealing, because deciding only ever sees them sealed: one that
   * fails is left out, its issues returned. A secret sent again unchanged is not re-sealed, so
   * the history records only real changes.
   */
  const prepare = (
    endpoint: EndpointType,
    configurationId: string,
    fields: Readonly<Record<string, unknown>>,
    current: EndpointConfiguration | undefined,
  ) => {
    const values: Record<string, unknown> = {}
    const secrets: Record<string, string> = {}
    const hints: Record<string, string> = {}
    const clearSecrets: string[] = []
    // Secret fields the request gives in plaintext (a value equal to the stored one included).
    const given: string[] = []
    const issues: FieldIssue[] = []
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined) continue
      const spec = fieldSpec(endpoint, name)
      if (spec?.secret !== true) {
        values[name] = value
        continue
      }
      if (value === null) {
        clearSecrets.push(name)
        continue
      }
      // A client that read the configuration and sends it back whole (GET, change, PUT) sends
      // each secret as the read showed it: that keeps the stored secret. The marker anywhere
      // else (a create, an unset secret, another URL's origin) would be stored as the secret.
      if (holdsRedacted(value)) {
        if (current === undefined || value !== shownSecret(current, name))
          issues.push({ path: name, message: REDACTED_REFUSED })
        continue
      }
      const checked = spec.codec.decode(value)
      if (isLeft(checked)) {
        issues.push(...toFieldIssues(checked.left, name))
        continue
      }
      const plaintext = checked.right as string
      given.push(name)
      // One that no longer opens is replaced, never compared: the new value is what fixes it.
      if (current !== undefined && opens(current, name) && openSecret(current, name) === plaintext) continue
      secrets[name] = box.seal(plaintext, aadOf(configurationId, name))
      if (isSecretUrlField(endpoint, name)) hints[name] = new URL(plaintext).origin
    }
    return { values, secrets, hints, clearSecrets, given, issues }
  }

  /**
   * The stored secrets `command` would keep that it must not: one that no key decrypts (the
   * configuration could never send with it), and one whose target it changes (another URL or
   * host, TLS weakened: whoever changed the target could read it there). Each must be given
   * again; given, removed or unset ones are not kept.
   */
  const secretsToGiveAgain = (
    configuration: EndpointConfiguration,
    command: UpdateConfiguration,
    given: readonly string[],
  ): { readonly issues: FieldIssue[]; readonly summary: string[] } => {
    const redirected = secretRedirections(
      configuration.endpoint,
      { settings: configuration.settings, verifyTls: configuration.verifyTls },
      { settings: command.data.values, verifyTls: command.data.options.verify_tls },
    )
    const issues: FieldIssue[] = []
    const summary: string[] = []
    const undecryptable: string[] = []
    for (const name of Object.keys(ENDPOINT_FIELDS[configuration.endpoint])) {
      if (configuration.secrets[name] === undefined || given.includes(name)) continue
      if (command.data.clearSecrets.includes(name)) continue
      if (!opens(configuration, name)) {
        undecryptable.push(name)
        issues.push({ path: name, message: `must be given again: ${UNDECRYPTABLE}` })
        continue
      }
      const reasons = redirected.get(name)
      if (reasons === undefined) continue
      issues.push({
        path: name,
        message: `must be given again with this change: ${reasons.map((r) => r.long).join('; ')}`,
      })
      summary.push(`${reasons.map((r) => r.short).join(' and ')} requires ${name} to be given again`)
    }
    if (undecryptable.length > 0)
      summary.unshift(`${undecryptable.join(', ')} cannot be decrypted and must be given again`)
    return { issues, summary }
  }

  /**
   * `command`, unless `prepare` refused secrets, which the command then lacks: those issues
   * and the decider's about the rest in one ValidationError, so a bad secret hides no other
   * bad field.
   */
  const unlessRefused = (
    command: CreateConfiguration | UpdateConfiguration,
    state: ConfigurationState,
    refused: readonly FieldIssue[],
    required: { readonly issues: readonly FieldIssue[]; readonly summary: readonly string[] } = {
      issues: [],
      summary: [],
    },
  ): ConfigurationCommand => {
    if (refused.length === 0 && required.issues.length === 0) return command
    const issues = [...refused]
    try {
      decide(command, state)
    } catch (error) {
      collectIssues(issues, error)
    }
    // Secrets to give again, and nothing else wrong: 422 naming them. With bad fields besides,
    // one 400 names them all, so a client fixes the request in one go.
    if (issues.length === 0)
      throw new SecretRequiredError(
        `${command.data.endpoint} configuration ${command.data.configurationId}: ${required.summary.join('; ')}`,
        required.issues,
      )
    for (const issue of required.issues) if (!issues.some((i) => i.path === issue.path)) issues.push(issue)
    throw ValidationError.of(`${command.data.endpoint} configuration`, issues)
  }

  /** The command creating a configuration of `input`, and the secrets Herald generated for it. */
  const creation = (
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    input: ConfigurationInput,
  ) => {
    const generated: Record<string, string> = {}
    const fields: Record<string, unknown> = { ...input.fields }
    for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint])) {
      if (spec.generated === true && (fields[name] === undefined || fields[name] === null)) {
        generated[name] = newSecret()
        fields[name] = generated[name]
      }
    }
    const prepared = prepare(endpoint, configurationId, fields, undefined)
    const command: CreateConfiguration = {
      type: 'CreateConfiguration',
      data: {
        configurationId,
        account: principal.account,
        endpoint,
        values: prepared.values,
        secrets: prepared.secrets,
        hints: prepared.hints,
        options: merged(DEFAULT_OPTIONS, input.options, DEFAULT_OPTIONS),
      },
      metadata: { now: clock(), by: byPrincipal(principal) },
    }
    return { command: unlessRefused(command, initialState, prepared.issues), generated }
  }

  /** The command updating the configuration `current` holds with `input`. */
  const update = (
    principal: Principal,
    endpoint: EndpointType,
    configurationId: string,
    input: ConfigurationInput,
    current: ConfigurationState,
  ): ConfigurationCommand => {
    onlyAdminTouchesGlobalConfiguration(principal, current, 'update')
    const configuration = current.status === 'active' ? current.configuration : undefined
    const prepared = prepare(endpoint, configurationId, input.fields, configuration)
    const command: UpdateConfiguration = {
      type: 'UpdateConfiguration',
      data: {
        configurationId,
        account: principal.account,
        endpoint,
        // Fields left out keep their values; null ones fall back to their defaults.
        values: { ...configuration?.settings, ...prepared.values },
        secrets: prepared.secrets,
        clearSecrets: prepared.clearSecrets,
        hints: prepared.hints,
        options: merged(
          configuration === undefined ? DEFAULT_OPTIONS : optionsOf(configuration),
          input.options,
          DEFAULT_OPTIONS,
        ),
      },
      metadata: { now: clock(), by: byPrincipal(principal) },
    }
    const required =
      configuration === undefined ? undefined : secretsToGiveAgain(configuration, command, prepared.given)
    return unlessRefused(command, current, prepared.issues, required)
  }

  // Listings read the live read model, held from the first one on: with nothing else subscribed
  // (notifications switched off, the router not running), each would otherwise subscribe anew
  // and read the whole configuration history again. A feed that failed is subscribed again by
  // the next listing (the reader that saw the failure was told).
  let held: Subscription | undefined
  let closed = false
  const hold = () => {
    if (closed || (held !== undefined && !held.closed)) return
    held = selectorSet$.subscribe({ error: () => undefined })
  }

  const readModel = async (): Promise<SelectorSet> => {
    const target = lastWrittenPosition
    hold()
    return firstValueFrom(
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
  }

  const liveState = (state: ConfigurationState) => {
    if (state.status !== 'active') throw new Error('decided events left no active configuration')
    return state
  }

  const selectorOf = (state: ConfigurationState, selectorId: string): Selector => {
    const selector = liveState(state).selectors.get(selectorId)
    if (selector === undefined) throw new Error('decided events left no selector')
    return selector
  }

  /**
   * LimitReachedError when `account` has as many configurations as it may. Counted in the read
   * model, which holds every write of this process: creations for one account take turns here
   * (`createConfiguration`), so concurrent ones cannot pass the limit together; other instances'
   * creations count once this one has read them.
   */
  const assertRoomFor = async (account: string): Promise<void> => {
    const limit = options.limits?.configurationsPerAccount
    if (limit === undefined) return
    const set = await readModel()
    let count = 0
    for (const configuration of set.configurations.values()) if (configuration.account === account) count++
    if (count >= limit)
      throw new LimitReachedError(
        `account ${account} has ${count} notification configurations, the most one may have (notifications.limits.configurations_per_account): delete one before creating another`,
        [{ path: 'configurations', message: `has ${count}, the most one account may have` }],
        { account, limit },
      )
  }

  return {
    createConfiguration: async (principal, endpoint, input) => {
      const configurationId = newId()
      const { command, generated } = creation(principal, endpoint, configurationId, input)
      // Keyed apart from configuration ids, which are UUIDs.
      const { state, revision } = await serially(`account:${principal.account}`, async () => {
        await assertRoomFor(principal.account)
        return handle(configurationId, () => command)
      })
      return { value: liveState(state).configuration, revision, generated }
    },

    updateConfiguration: async (principal, endpoint, configurationId, input, write) => {
      const { state, revision } = await handle(
        configurationId,
        (current) => update(principal, endpoint, configurationId, input, current),
        write,
      )
      return { value: liveState(state).configuration, revision }
    },

    checkConfiguration: async (principal, endpoint, input, configurationId) => {
      if (configurationId === undefined) {
        decide(creation(principal, endpoint, newId(), input).command, initialState)
        return
      }
      const { state } = await load(configurationId)
      decide(update(principal, endpoint, configurationId, input, state), state)
    },

    disableConfiguration: async (configurationId, reason, { unchangedSince, failure } = {}) => {
      const { state } = await handle(configurationId, (current) => {
        if (current.status !== 'active') throw notFound(configurationId)
        const { account, endpoint } = current.configuration
        return {
          type: 'DisableConfiguration',
          data: {
            configurationId,
            account,
            endpoint,
            ...(unchangedSince === undefined ? {} : { unchangedSince }),
            ...(failure === undefined ? {} : { failure: { reason, ...failure } }),
          },
          metadata: { now: clock(), by: `system/${reason}` },
        }
      })
      // Still enabled: it changed after `unchangedSince`, and was left alone.
      return !(state.status === 'active' && state.configuration.enabled)
    },

    markAnnounced: async (disable) => {
      const result = await store.append(ANNOUNCEMENTS_STREAM, [disableAnnounced(disable)], {
        expectedRevision: 'any',
      })
      lastWrittenPosition = Math.max(lastWrittenPosition, result.position)
    },

    deleteConfiguration: async (principal, endpoint, configurationId, write) => {
      await handle(
        configurationId,
        (current) => {
          onlyAdminTouchesGlobalConfiguration(principal, current, 'delete')
          return {
            type: 'DeleteConfiguration',
            data: { configurationId, account: principal.account, endpoint },
            metadata: { now: clock(), by: byPrincipal(principal) },
          }
        },
        write,
      )
    },

    getConfiguration: async (account, endpoint, configurationId) => {
      const { state, revision } = await load(configurationId)
      if (
        state.status !== 'active' ||
        state.configuration.account !== account ||
        state.configuration.endpoint !== endpoint ||
        revision === 'no_stream'
      ) {
        throw notFound(configurationId)
      }
      return {
        value: { configuration: state.configuration, selectors: [...state.selectors.values()] },
        revision,
      }
    },

    listConfigurations: async (account, endpoint) => {
      const set = await readModel()
      return [...set.configurations.values()].filter(
        (c) => c.account === account && (endpoint === undefined || c.endpoint === endpoint),
      )
    },

    addSelector: async (principal, endpoint, configurationId, input, write) => {
      const selectorId = newId()
      const { state, revision } = await handle(
        configurationId,
        () => ({
          type: 'AddSelector',
          data: {
            selectorId,
            configurationId,
            account: principal.account,
            endpoint,
            ...input,
            ...(options.limits === undefined
              ? {}
              : { maxSelectors: options.limits.selectorsPerConfiguration }),
          },
          metadata: { now: clock(), by: byPrincipal(principal) },
        }),
        write,
      )
      return { value: selectorOf(state, selectorId), revision }
    },

    updateSelector: async (principal, endpoint, configurationId, selectorId, input, write) => {
      const { state, revision } = await handle(
        configurationId,
        (current) => {
          onlyAdminTouchesGlobal(principal, current, selectorId, 'change')
          return {
            type: 'UpdateSelector',
            data: { selectorId, configurationId, account: principal.account, endpoint, ...input },
            metadata: { now: clock(), by: byPrincipal(principal) },
          }
        },
        write,
      )
      return { value: selectorOf(state, selectorId), revision }
    },

    removeSelector: async (principal, endpoint, configurationId, selectorId, write) => {
      await handle(
        configurationId,
        (current) => {
          onlyAdminTouchesGlobal(principal, current, selectorId, 'remove')
          return {
            type: 'RemoveSelector',
            data: { selectorId, configurationId, account: principal.account, endpoint },
            metadata: { now: clock(), by: byPrincipal(principal) },
          }
        },
        write,
      )
    },

    listSelectors: async (account) => {
      const set = await readModel()
      return [...set.selectors.values()].filter((s) => s.account === account)
    },

    openSecret,

    undecryptableSecrets,

    webhookDelivery: (configuration, now) => {
      if (configuration.endpoint !== 'webhook') return undefined
      const signingSecret = openSecret(configuration, 'signing_secret')
      const url = configuration.settings.url
      if (signingSecret === undefined || typeof url !== 'string') return undefined
      // A replaced value no key opens any more (the one a lost key sealed) signs nothing.
      const stillValid = replacedSigningAt(configuration.secrets.signing_secret, now).flatMap((replaced) => {
        try {
          return [box.open(replaced.sealed, aadOf(configuration.id, 'signing_secret'))]
        } catch (error) {
          if (isSecretUndecryptable(error)) return []
          throw error
        }
      })
      return {
        id: configuration.id,
        account: configuration.account,
        url,
        signingSecret,
        ...(stillValid.length > 0 ? { previousSigningSecrets: stillValid } : {}),
        ...(configuration.description === null ? {} : { description: configuration.description }),
        enabled: configuration.enabled,
      }
    },

    selectors$: () => selectorSet$,

    close: () => {
      closed = true
      held?.unsubscribe()
      held = undefined
    },

    resealSecrets: async (configurationId) => {
      let resealed: string[] = []
      let undecryptable: string[] = []
      const stale = (sealed: string) => keyIdOfSealed(sealed) !== box.currentKeyId
      try {
        const { state } = await handle(configurationId, (current): ResealSecrets => {
          if (current.status !== 'active') throw notFound(configurationId)
          const { configuration } = current
          const now = clock()
          const secrets: Record<string, SealedSecret> = {}
          resealed = []
          undecryptable = []
          for (const [name, secret] of Object.entries(configuration.secrets)) {
            const signing = replacedSigningAt(secret, now)
            if (!stale(secret.sealed) && !signing.some((r) => stale(r.sealed))) continue
            const aad = aadOf(configurationId, name)
            const again = (sealed: string) => (stale(sealed) ? box.seal(box.open(sealed, aad), aad) : sealed)
            try {
              secrets[name] = {
                sealed: again(secret.sealed),
                // Those that no longer sign are never opened again: left out.
                ...(secret.previous === undefined
                  ? {}
                  : { previous: signing.map((r) => ({ sealed: again(r.sealed), rotatedAt: r.rotatedAt })) }),
              }
              resealed.push(name)
            } catch (error) {
              if (!isSecretUndecryptable(error)) throw error
              undecryptable.push(name)
            }
          }
          return {
            type: 'ResealSecrets',
            data: {
              configurationId,
              account: configuration.account,
              endpoint: configuration.endpoint,
              keyId: box.currentKeyId,
              secrets,
            },
            metadata: { now, by: 'system/reseal' },
          }
        })
        return { configuration: liveState(state).configuration, resealed, undecryptable }
      } catch (error) {
        if (error instanceof NotFoundError) return undefined
        throw error
      }
    },
  }
}
