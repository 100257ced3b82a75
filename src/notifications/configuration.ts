import { isDeepStrictEqual } from 'node:util'
import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import {
  clipped,
  type FieldIssue,
  LimitReachedError,
  NotFoundError,
  ValidationError,
} from '../errors/index.ts'
import { AccountName, type Decoded, toFieldIssues } from '../events/index.ts'
import { checkPatternSize, compilePattern, isInvalidPatternError } from '../matching/index.ts'
import { isSealedSecret } from '../secrets/index.ts'
import {
  DigestWindowSeconds,
  EventPattern,
  MaxInFlight,
  OptionalDescription,
  SelectorScope,
  Templates,
  Uuid,
  validate,
  validateSelectorFields,
} from './codecs.ts'
import { ENDPOINT_FIELDS, fieldSpec, unpairedFields } from './endpoint-fields.ts'
import {
  ENDPOINT_TYPES,
  type EndpointConfiguration,
  type EndpointType,
  type JsonValue,
  type ReplacedSecret,
  type SealedSecret,
  type Selector,
  takesMaxInFlight,
} from './model.ts'

/**
 * The endpoint configuration aggregate: one event stream per configuration, holding the
 * configuration and its selectors, so a selector change is checked against the configuration
 * it belongs to under one expected revision. Its history is the audit log. Secrets arrive
 * sealed: deciding never sees a plaintext credential, and nothing unsealed is ever appended.
 */
export const STREAM_PREFIX = 'notification-configuration-'

export const streamName = (configurationId: string): string => `${STREAM_PREFIX}${configurationId}`

export const isConfigurationStream = (stream: string): boolean => stream.startsWith(STREAM_PREFIX)

/** How long a replaced signing secret still signs, so receivers can switch over to its successor. */
export const SIGNING_GRACE_MS = 24 * 60 * 60 * 1000

/**
 * How many replaced values of one signing secret may be signing at once: each is one more
 * signature per delivery, about 50 bytes of `webhook-signature` and one more HMAC. A rotation
 * past it is refused until the earliest one's grace period is over, rather than cutting that
 * one's 24 h short.
 */
export const MAX_SIGNING_REPLACED = 10

/**
 * The values `secret` replaced that still sign at `now` (ms), newest first.
 *
 * @example
 * replacedSigningAt(configuration.secrets.signing_secret, clock()).map((r) => open(r.sealed))
 */
export const replacedSigningAt = (secret: SealedSecret | undefined, now: number): ReplacedSecret[] =>
  (secret?.previous ?? []).filter((replaced) => Date.parse(replaced.rotatedAt) + SIGNING_GRACE_MS > now)

const EndpointTypeCodec = t.keyof(
  Object.fromEntries(ENDPOINT_TYPES.map((e) => [e, null])) as Record<EndpointType, null>,
  'EndpointType',
)

const Json = t.unknown as t.Type<JsonValue, JsonValue, unknown>
const Settings = t.record(t.string, Json)
const Sealed = t.record(t.string, t.string)
const Hints = t.record(t.string, t.string)
const Digest = t.type({ enabled: t.boolean, windowSeconds: t.union([t.null, t.number]) })

/**
 * The options every endpoint type shares, as stored. `maxInFlight` is written only when set,
 * so events from before it existed read as they always did: without it, the type's default.
 */
const Options = t.intersection([
  t.type({
    description: t.union([t.null, t.string]),
    enabled: t.boolean,
    verifyTls: t.boolean,
    templates: t.record(t.string, Json),
    digest: Digest,
  }),
  t.partial({ maxInFlight: t.number }),
])

const Change = t.type({ by: t.string, at: t.string })

// Events: what the stream stores. Codecs too, because the store hands them back as JSON.

const ConfigurationCreatedData = t.intersection([
  t.type({
    configurationId: t.string,
    account: t.string,
    endpoint: EndpointTypeCodec,
    settings: Settings,
    secrets: Sealed,
    hints: Hints,
  }),
  Options,
  Change,
])

/**
 * Why Herald switched a configuration off itself, as the system event that tells the admin
 * says it (`system.notifications.configuration_disabled`): the disable stores what the
 * announcement needs, so it can be made, or made again, from the stored disable alone.
 */
const DisableFailure = t.type({
  /** `sustained_failure` or `endpoint_gone`. */
  reason: t.string,
  /** RFC 3339: since when every attempt failed. */
  failingSince: t.string,
  /** The last attempt's error, scrubbed of secrets by its channel. */
  lastError: t.union([t.null, t.string]),
})
export type DisableFailure = t.TypeOf<typeof DisableFailure>

const ConfigurationUpdatedData = t.intersection([
  t.type({
    configurationId: t.string,
    account: t.string,
    settings: Settings,
    /** Only the secrets that changed. */
    secrets: Sealed,
    clearedSecrets: t.array(t.string),
    hints: Hints,
    /** The API names of every field that changed, secrets included: what the audit shows. */
    changed: t.array(t.string),
  }),
  Options,
  Change,
  // Only on a disable Herald decided for a failure, which it announces; absent on the disables
  // stored before it was written, which are not announced again.
  t.partial({ failure: DisableFailure }),
])

// Every event names its account, so each audit entry can be scoped on its own.
const ConfigurationDeletedData = t.intersection([
  t.type({ configurationId: t.string, account: t.string }),
  Change,
])

const SelectorFields = t.type({
  selectorId: t.string,
  configurationId: t.string,
  scope: SelectorScope,
  event: EventPattern,
  pattern: t.union([t.null, Json]),
})

const SelectorAddedData = t.intersection([SelectorFields, t.type({ account: t.string }), Change])
const SelectorUpdatedData = t.intersection([SelectorFields, t.type({ account: t.string }), Change])
const SelectorRemovedData = t.intersection([
  t.type({ selectorId: t.string, configurationId: t.string, account: t.string }),
  Change,
])

/** A secret as stored after re-sealing: its value, and a signing secret's replaced values that still sign. */
const ResealedSecret = t.intersection([
  t.type({ sealed: t.string }),
  t.partial({ previous: t.array(t.type({ sealed: t.string, rotatedAt: t.string })) }),
])

/**
 * The same secrets sealed again with the current key (`keyId`), so a rotated-out key can be
 * dropped: the values did not change, and the configuration counts as unchanged (its
 * `updatedAt` stays). Only the secrets re-sealed; each replaces the stored one whole.
 */
const SecretsResealedData = t.intersection([
  t.type({
    configurationId: t.string,
    account: t.string,
    keyId: t.string,
    secrets: t.record(t.string, ResealedSecret),
  }),
  Change,
])

export const ConfigurationEvent = t.union([
  t.type({ type: t.literal('ConfigurationCreated'), data: ConfigurationCreatedData }),
  t.type({ type: t.literal('ConfigurationUpdated'), data: ConfigurationUpdatedData }),
  t.type({ type: t.literal('ConfigurationDeleted'), data: ConfigurationDeletedData }),
  t.type({ type: t.literal('SelectorAdded'), data: SelectorAddedData }),
  t.type({ type: t.literal('SelectorUpdated'), data: SelectorUpdatedData }),
  t.type({ type: t.literal('SelectorRemoved'), data: SelectorRemovedData }),
  t.type({ type: t.literal('SecretsResealed'), data: SecretsResealedData }),
])
export type ConfigurationEvent = t.TypeOf<typeof ConfigurationEvent>
export type ConfigurationEventOf<T extends ConfigurationEvent['type']> = Extract<
  ConfigurationEvent,
  { type: T }
>

// Commands: what callers ask for. `now` and `by` are passed in so that deciding stays pure.

/** The options of a create or update, in the API's names. */
export const ConfigurationOptions = t.type({
  description: OptionalDescription,
  enabled: t.boolean,
  verify_tls: t.boolean,
  templates: Templates,
  digest: t.boolean,
  digest_window_seconds: DigestWindowSeconds,
  /** Null: the endpoint type's `notifications.delivery.max_in_flight`; GitHub and Jira take no other. */
  max_in_flight: MaxInFlight,
})
export type ConfigurationOptions = t.TypeOf<typeof ConfigurationOptions>

export interface CommandMetadata {
  /** Milliseconds since the epoch. */
  readonly now: number
  /** Who asked, as `<account>/<role>`: recorded for the audit trail. */
  readonly by: string
}

interface Command<Type extends string, Data> {
  readonly type: Type
  readonly data: Data
  readonly metadata: CommandMetadata
}

export type CreateConfiguration = Command<
  'CreateConfiguration',
  {
    readonly configurationId: string
    readonly account: string
    readonly endpoint: EndpointType
    /** Non-secret fields by API name; absent optional fields take their defaults. */
    readonly values: Readonly<Record<string, unknown>>
    /** Secret fields, sealed. */
    readonly secrets: Readonly<Record<string, string>>
    readonly hints: Readonly<Record<string, string>>
    readonly options: ConfigurationOptions
  }
>

export type UpdateConfiguration = Command<
  'UpdateConfiguration',
  {
    readonly configurationId: string
    readonly account: string
    readonly endpoint: EndpointType
    /** Every non-secret field: an update replaces them all. */
    readonly values: Readonly<Record<string, unknown>>
    /** The secrets to replace, sealed; a secret left out keeps its value. */
    readonly secrets: Readonly<Record<string, string>>
    /** Optional secrets to remove. */
    readonly clearSecrets: readonly string[]
    readonly hints: Readonly<Record<string, string>>
    readonly options: ConfigurationOptions
  }
>

/**
 * Herald switching a configuration off on its own account (its endpoint answered 410 Gone, or
 * it failed for the sustained-failure period): only `enabled` changes, and the stored fields are
 * not checked again, so a configuration saved under older, looser checks can still be switched
 * off. Optionally only if it was not changed after `unchangedSince` (ms). With `failure`, the
 * disable records why, for the system event that announces it.
 */
export type DisableConfiguration = Command<
  'DisableConfiguration',
  {
    readonly configurationId: string
    readonly account: string
    readonly endpoint: EndpointType
    readonly unchangedSince?: number
    readonly failure?: {
      readonly reason: string
      /** Ms since the epoch. */
      readonly failingSince: number
      readonly lastError: string | null
    }
  }
>

export type DeleteConfiguration = Command<
  'DeleteConfiguration',
  { readonly configurationId: string; readonly account: string; readonly endpoint: EndpointType }
>

export interface SelectorInput {
  readonly scope: 'account' | 'global'
  readonly event: { readonly level: string; readonly type: string; readonly resource_type: string }
  readonly pattern: JsonValue | null
}

interface SelectorTarget {
  readonly selectorId: string
  readonly configurationId: string
  readonly account: string
  readonly endpoint: EndpointType
}

/**
 * A selector update, as configurations are updated: a field left out keeps its value and
 * `pattern: null` removes the pattern, so a partial body never widens routing by accident.
 */
export type SelectorPatch = Partial<SelectorInput>

export type AddSelector = Command<
  'AddSelector',
  SelectorTarget &
    SelectorInput & {
      /** The most selectors the configuration may have (`notifications.limits`); absent: no limit. */
      readonly maxSelectors?: number
    }
>
export type UpdateSelector = Command<'UpdateSelector', SelectorTarget & SelectorPatch>
export type RemoveSelector = Command<'RemoveSelector', SelectorTarget>

/**
 * Stores secrets sealed again with the current key (`keyId`), by Herald: the service opens
 * and seals them (deciding never sees a plaintext), against the state it read them from.
 */
export type ResealSecrets = Command<
  'ResealSecrets',
  {
    readonly configurationId: string
    readonly account: string
    readonly endpoint: EndpointType
    readonly keyId: string
    /** By field: the value, and a signing secret's replaced values that still sign, all sealed again. */
    readonly secrets: Readonly<Record<string, SealedSecret>>
  }
>

export type ConfigurationCommand =
  | CreateConfiguration
  | ResealSecrets
  | UpdateConfiguration
  | DisableConfiguration
  | DeleteConfiguration
  | AddSelector
  | UpdateSelector
  | RemoveSelector

export type ConfigurationState =
  | { readonly status: 'empty' }
  | {
      readonly status: 'active' | 'deleted'
      readonly configuration: EndpointConfiguration
      readonly selectors: ReadonlyMap<string, Selector>
    }

export const initialState: ConfigurationState = { status: 'empty' }

const isoTime = (now: number): string => {
  if (!Number.isFinite(now))
    throw new ValidationError('command time must be finite', [
      { path: 'metadata.now', message: 'must be a finite number of milliseconds' },
    ])
  return new Date(now).toISOString()
}

const fail = (what: string, issues: readonly FieldIssue[]): never => {
  throw ValidationError.of(what, issues)
}

/** The non-secret settings as stored: each field checked by its codec, defaults filled in. */
const checkValues = (
  endpoint: EndpointType,
  values: Readonly<Record<string, unknown>>,
  issues: FieldIssue[],
): Record<string, JsonValue> => {
  const settings: Record<string, JsonValue> = {}
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[endpoint])) {
    if (spec.secret === true) continue
    const value = values[name]
    if (value === undefined || value === null) {
      if (spec.required) issues.push({ path: name, message: 'is required' })
      else if (spec.default !== undefined) settings[name] = spec.default
      continue
    }
    // Decoded under its name, so a list's element names its sibling (`to[3]`: "repeats to[1]").
    const result = spec.codec.validate(value, [{ key: name, type: spec.codec, actual: value }])
    if (isLeft(result)) issues.push(...toFieldIssues(result.left))
    else settings[name] = result.right as JsonValue
  }
  for (const name of Object.keys(values)) {
    const spec = fieldSpec(endpoint, name)
    if (spec === undefined) issues.push({ path: name, message: `is not a ${endpoint} field` })
    else if (spec.secret === true)
      issues.push({ path: name, message: 'is a secret and must be passed sealed' })
  }
  return settings
}

/** Whether `issues` names `path` already: a field refused for its value counts as given. */
const named = (issues: readonly FieldIssue[], path: string): boolean => issues.some((i) => i.path === path)

/** `more`, but those whose path `issues` names already. */
const addUnnamed = (issues: FieldIssue[], more: readonly FieldIssue[]): void => {
  for (const issue of more) if (!named(issues, issue.path)) issues.push(issue)
}

const checkSecrets = (
  endpoint: EndpointType,
  secrets: Readonly<Record<string, string>>,
  issues: FieldIssue[],
): void => {
  for (const [name, value] of Object.entries(secrets)) {
    if (fieldSpec(endpoint, name)?.secret !== true)
      issues.push({ path: name, message: `is not a secret field of ${endpoint}` })
    // Never the value: it may be a plaintext secret that was meant to be sealed.
    else if (!isSealedSecret(value))
      issues.push({ path: name, message: 'must be sealed before it is stored' })
  }
}

/** The options as stored; undefined when `issues` got theirs, so they are refused with the fields'. */
const checkOptions = (endpoint: EndpointType, options: ConfigurationOptions, issues: FieldIssue[]) => {
  const decoded = ConfigurationOptions.decode(options)
  if (isLeft(decoded)) {
    issues.push(...toFieldIssues(decoded.left))
    return undefined
  }
  const o = decoded.right
  if (o.max_in_flight !== null && !takesMaxInFlight(endpoint)) {
    issues.push({
      path: 'max_in_flight',
      message: `is not for ${endpoint} configurations, which file one ticket at a time: that is how a repeat finds the open issue of its ticket key rather than filing a second one`,
    })
    return undefined
  }
  return {
    description: o.description,
    enabled: o.enabled,
    verifyTls: o.verify_tls,
    templates: o.templates as Record<string, JsonValue>,
    digest: { enabled: o.digest, windowSeconds: o.digest_window_seconds },
    ...(o.max_in_flight === null ? {} : { maxInFlight: o.max_in_flight }),
  }
}

/** `written`: the pattern is new or changed, so held to the size limits, which a stored one predating them is not. */
const checkedPattern = (pattern: JsonValue | null, written: boolean): JsonValue | null => {
  if (pattern === null) return null
  try {
    const compiled = compilePattern(pattern, { path: 'pattern' })
    if (written) checkPatternSize(compiled.root, 'pattern')
  } catch (error) {
    if (isInvalidPatternError(error)) fail('selector', error.issues)
    throw error
  }
  return pattern
}

const checkSelector = (data: SelectorInput, patternWritten = true) => {
  const body = validateSelectorFields(data.scope, data.event)
  return {
    scope: body.scope,
    event: { level: body.event.level, type: body.event.type, resource_type: body.event.resource_type },
    pattern: checkedPattern(data.pattern, patternWritten),
  }
}

const notFound = (configurationId: string): NotFoundError =>
  new NotFoundError(`notification configuration ${clipped(configurationId)} not found`, { configurationId })

/**
 * The live configuration a command addresses: another account's, another endpoint type's or
 * a deleted one is reported as missing, so ids do not leak existence.
 */
const active = (
  state: ConfigurationState,
  target: { configurationId: string; account: string; endpoint: EndpointType },
) => {
  validate(t.type({ configurationId: Uuid, account: AccountName }), target, 'command')
  if (
    state.status !== 'active' ||
    state.configuration.account !== target.account ||
    state.configuration.endpoint !== target.endpoint
  )
    throw notFound(target.configurationId)
  return state
}

const change = (metadata: CommandMetadata) => ({ by: metadata.by, at: isoTime(metadata.now) })

const createConfiguration = (
  { data, metadata }: CreateConfiguration,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  validate(
    t.type({ configurationId: Uuid, account: AccountName, endpoint: EndpointTypeCodec }),
    data,
    'configuration',
  )
  if (state.status !== 'empty') {
    throw new ValidationError(`configuration ${data.configurationId} already exists`, [
      { path: 'configurationId', message: 'already exists' },
    ])
  }
  const issues: FieldIssue[] = []
  const settings = checkValues(data.endpoint, data.values, issues)
  checkSecrets(data.endpoint, data.secrets, issues)
  for (const [name, spec] of Object.entries(ENDPOINT_FIELDS[data.endpoint]))
    if (spec.secret === true && spec.required && data.secrets[name] === undefined)
      issues.push({ path: name, message: 'is required' })
  addUnnamed(
    issues,
    unpairedFields(
      data.endpoint,
      (name) => settings[name] !== undefined || data.secrets[name] !== undefined || named(issues, name),
    ),
  )
  const options = checkOptions(data.endpoint, data.options, issues)
  if (issues.length > 0 || options === undefined) return fail(`${data.endpoint} configuration`, issues)
  return [
    {
      type: 'ConfigurationCreated',
      data: {
        configurationId: data.configurationId,
        account: data.account,
        endpoint: data.endpoint,
        settings,
        secrets: { ...data.secrets },
        hints: { ...data.hints },
        ...options,
        ...change(metadata),
      },
    },
  ]
}

const updateConfiguration = (
  { data, metadata }: UpdateConfiguration,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration } = active(state, data)
  const issues: FieldIssue[] = []
  const settings = checkValues(configuration.endpoint, data.values, issues)
  checkSecrets(configuration.endpoint, data.secrets, issues)
  for (const name of data.clearSecrets) {
    const spec = fieldSpec(configuration.endpoint, name)
    if (spec?.secret !== true)
      issues.push({ path: name, message: `is not a secret field of ${configuration.endpoint}` })
    else if (spec.required) issues.push({ path: name, message: 'is required and cannot be removed' })
  }
  for (const name of Object.keys(data.secrets)) {
    if (fieldSpec(configuration.endpoint, name)?.signs !== true) continue
    const signing = replacedSigningAt(configuration.secrets[name], metadata.now)
    const earliest = signing[MAX_SIGNING_REPLACED - 1]
    if (earliest !== undefined)
      issues.push({
        path: name,
        message: `was replaced ${signing.length} times in the last 24 hours, and each value it replaced signs for 24 hours after: it can be replaced again from ${new Date(Date.parse(earliest.rotatedAt) + SIGNING_GRACE_MS).toISOString()}`,
      })
  }
  const keptSecret = (name: string) =>
    configuration.secrets[name] !== undefined && !data.clearSecrets.includes(name)
  addUnnamed(
    issues,
    unpairedFields(
      configuration.endpoint,
      (name) =>
        settings[name] !== undefined ||
        data.secrets[name] !== undefined ||
        keptSecret(name) ||
        named(issues, name),
    ),
  )
  const options = checkOptions(configuration.endpoint, data.options, issues)
  if (issues.length > 0 || options === undefined)
    return fail(`${configuration.endpoint} configuration`, issues)
  const cleared = data.clearSecrets.filter((name) => configuration.secrets[name] !== undefined)

  const changed = new Set<string>()
  for (const name of new Set([...Object.keys(settings), ...Object.keys(configuration.settings)]))
    if (!isDeepStrictEqual(settings[name], configuration.settings[name])) changed.add(name)
  for (const name of [...Object.keys(data.secrets), ...cleared]) changed.add(name)
  if (options.description !== configuration.description) changed.add('description')
  if (options.enabled !== configuration.enabled) changed.add('enabled')
  if (options.verifyTls !== configuration.verifyTls) changed.add('verify_tls')
  if (!isDeepStrictEqual(options.templates, configuration.templates)) changed.add('templates')
  if (options.digest.enabled !== configuration.digest.enabled) changed.add('digest')
  if (options.digest.windowSeconds !== configuration.digest.windowSeconds)
    changed.add('digest_window_seconds')
  if ((options.maxInFlight ?? null) !== configuration.maxInFlight) changed.add('max_in_flight')
  // Saving what is already there is not a change: the history stays free of no-op entries.
  if (changed.size === 0) return []

  const hints = { ...configuration.hints, ...data.hints }
  for (const name of cleared) delete hints[name]
  return [
    {
      type: 'ConfigurationUpdated',
      data: {
        configurationId: configuration.id,
        account: configuration.account,
        settings,
        secrets: { ...data.secrets },
        clearedSecrets: cleared,
        hints,
        changed: [...changed].sort(),
        ...options,
        ...change(metadata),
      },
    },
  ]
}

const disableConfiguration = (
  { data, metadata }: DisableConfiguration,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration } = active(state, data)
  if (!configuration.enabled) return []
  if (data.unchangedSince !== undefined && Date.parse(configuration.updatedAt) > data.unchangedSince)
    return []
  return [
    {
      type: 'ConfigurationUpdated',
      data: {
        configurationId: configuration.id,
        account: configuration.account,
        settings: configuration.settings,
        secrets: {},
        clearedSecrets: [],
        hints: configuration.hints,
        changed: ['enabled'],
        description: configuration.description,
        enabled: false,
        verifyTls: configuration.verifyTls,
        templates: configuration.templates,
        digest: configuration.digest,
        ...(configuration.maxInFlight === null ? {} : { maxInFlight: configuration.maxInFlight }),
        ...change(metadata),
        ...(data.failure === undefined
          ? {}
          : {
              failure: {
                reason: data.failure.reason,
                failingSince: isoTime(data.failure.failingSince),
                lastError: data.failure.lastError,
              },
            }),
      },
    },
  ]
}

const deleteConfiguration = (
  { data, metadata }: DeleteConfiguration,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration } = active(state, data)
  return [
    {
      type: 'ConfigurationDeleted',
      data: { configurationId: configuration.id, account: configuration.account, ...change(metadata) },
    },
  ]
}

const resealSecrets = (
  { data, metadata }: ResealSecrets,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration } = active(state, data)
  const names = Object.keys(data.secrets)
  if (names.length === 0) return []
  const issues: FieldIssue[] = []
  for (const [name, secret] of Object.entries(data.secrets)) {
    if (configuration.secrets[name] === undefined)
      issues.push({ path: name, message: 'is not a secret this configuration holds' })
    // Never the value: it may be a plaintext secret that was meant to be sealed.
    else if (![secret.sealed, ...(secret.previous ?? []).map((p) => p.sealed)].every(isSealedSecret))
      issues.push({ path: name, message: 'must be sealed before it is stored' })
    else if ((secret.previous?.length ?? 0) > MAX_SIGNING_REPLACED)
      issues.push({ path: name, message: `keeps more than ${MAX_SIGNING_REPLACED} replaced values` })
  }
  if (issues.length > 0) return fail(`${configuration.endpoint} configuration`, issues)
  return [
    {
      type: 'SecretsResealed',
      data: {
        configurationId: configuration.id,
        account: configuration.account,
        keyId: data.keyId,
        secrets: Object.fromEntries(
          Object.entries(data.secrets).map(([name, secret]) => [
            name,
            {
              sealed: secret.sealed,
              ...(secret.previous === undefined
                ? {}
                : { previous: secret.previous.map((p) => ({ sealed: p.sealed, rotatedAt: p.rotatedAt })) }),
            },
          ]),
        ),
        ...change(metadata),
      },
    },
  ]
}

const selectorNotFound = (selectorId: string): NotFoundError =>
  new NotFoundError(`selector ${clipped(selectorId)} not found`, { selectorId })

const addSelector = ({ data, metadata }: AddSelector, state: ConfigurationState): ConfigurationEvent[] => {
  const { configuration, selectors } = active(state, data)
  validate(t.type({ selectorId: Uuid }), data, 'selector')
  if (selectors.has(data.selectorId)) {
    throw new ValidationError(`selector ${data.selectorId} already exists`, [
      { path: 'selectorId', message: 'already exists' },
    ])
  }
  // Checked before the selector's fields: none would be stored, however good.
  if (data.maxSelectors !== undefined && selectors.size >= data.maxSelectors)
    throw new LimitReachedError(
      `configuration ${configuration.id} has ${selectors.size} selectors, the most one may have (notifications.limits.selectors_per_configuration): remove one before adding another, or match more with one (wildcards, a content pattern with $or)`,
      [{ path: 'selectors', message: `has ${selectors.size}, the most one configuration may have` }],
      { configurationId: configuration.id, limit: data.maxSelectors },
    )
  return [
    {
      type: 'SelectorAdded',
      data: {
        selectorId: data.selectorId,
        configurationId: configuration.id,
        account: configuration.account,
        ...checkSelector(data),
        ...change(metadata),
      },
    },
  ]
}

const updateSelector = (
  { data, metadata }: UpdateSelector,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration, selectors } = active(state, data)
  const current = selectors.get(data.selectorId)
  if (current === undefined) throw selectorNotFound(data.selectorId)
  const next = checkSelector(
    {
      scope: data.scope === undefined ? current.scope : data.scope,
      event: data.event === undefined ? current.event : data.event,
      pattern: data.pattern === undefined ? current.pattern : data.pattern,
    },
    data.pattern !== undefined && !isDeepStrictEqual(data.pattern, current.pattern),
  )
  if (
    next.scope === current.scope &&
    isDeepStrictEqual(next.event, current.event) &&
    isDeepStrictEqual(next.pattern, current.pattern)
  )
    return []
  return [
    {
      type: 'SelectorUpdated',
      data: {
        selectorId: current.id,
        configurationId: configuration.id,
        account: configuration.account,
        ...next,
        ...change(metadata),
      },
    },
  ]
}

const removeSelector = (
  { data, metadata }: RemoveSelector,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const { configuration, selectors } = active(state, data)
  if (!selectors.has(data.selectorId)) throw selectorNotFound(data.selectorId)
  return [
    {
      type: 'SelectorRemoved',
      data: {
        selectorId: data.selectorId,
        configurationId: configuration.id,
        account: configuration.account,
        ...change(metadata),
      },
    },
  ]
}

/**
 * Decides what a command changes; throws ValidationError or NotFoundError when it must not.
 * An update that changes nothing decides no events.
 *
 * @example
 * const events = decide({ type: 'AddSelector', data, metadata: { now: clock(), by: 'acme/read-write' } }, state)
 */
export const decide = (command: ConfigurationCommand, state: ConfigurationState): ConfigurationEvent[] => {
  switch (command.type) {
    case 'CreateConfiguration':
      return createConfiguration(command, state)
    case 'UpdateConfiguration':
      return updateConfiguration(command, state)
    case 'DisableConfiguration':
      return disableConfiguration(command, state)
    case 'ResealSecrets':
      return resealSecrets(command, state)
    case 'DeleteConfiguration':
      return deleteConfiguration(command, state)
    case 'AddSelector':
      return addSelector(command, state)
    case 'UpdateSelector':
      return updateSelector(command, state)
    case 'RemoveSelector':
      return removeSelector(command, state)
    default: {
      const unknown: never = command
      throw new ValidationError('unknown command', [
        { path: 'type', message: `unknown: ${(unknown as { type: string }).type}` },
      ])
    }
  }
}

/**
 * The secrets after an update: a signing secret keeps the values it replaced that still sign
 * at the update's time, newest first. `decide` refuses a rotation past `MAX_SIGNING_REPLACED`;
 * the cut here bounds a history written before it did.
 */
const rotated = (
  endpoint: EndpointType,
  before: Readonly<Record<string, SealedSecret>>,
  changes: Readonly<Record<string, string>>,
  cleared: readonly string[],
  at: string,
): Record<string, SealedSecret> => {
  const secrets: Record<string, SealedSecret> = { ...before }
  for (const [name, sealed] of Object.entries(changes)) {
    const old = before[name]
    secrets[name] =
      old === undefined || fieldSpec(endpoint, name)?.signs !== true
        ? { sealed }
        : {
            sealed,
            previous: [
              { sealed: old.sealed, rotatedAt: at },
              ...replacedSigningAt(old, Date.parse(at)),
            ].slice(0, MAX_SIGNING_REPLACED),
          }
  }
  for (const name of cleared) delete secrets[name]
  return secrets
}

export const toConfiguration = (
  data: ConfigurationEventOf<'ConfigurationCreated'>['data'],
): EndpointConfiguration => ({
  id: data.configurationId,
  account: data.account,
  endpoint: data.endpoint,
  settings: data.settings,
  secrets: Object.fromEntries(Object.entries(data.secrets).map(([name, sealed]) => [name, { sealed }])),
  hints: data.hints,
  description: data.description,
  enabled: data.enabled,
  verifyTls: data.verifyTls,
  templates: data.templates,
  digest: data.digest,
  maxInFlight: data.maxInFlight ?? null,
  createdAt: data.at,
  updatedAt: data.at,
})

/** The configuration after an update, its signing secret's replaced values kept as `previous` while they sign. */
export const updatedConfiguration = (
  configuration: EndpointConfiguration,
  data: ConfigurationEventOf<'ConfigurationUpdated'>['data'],
): EndpointConfiguration => ({
  ...configuration,
  settings: data.settings,
  secrets: rotated(configuration.endpoint, configuration.secrets, data.secrets, data.clearedSecrets, data.at),
  hints: data.hints,
  description: data.description,
  enabled: data.enabled,
  verifyTls: data.verifyTls,
  templates: data.templates,
  digest: data.digest,
  // An update holds every option: without it, the configuration is back to the type's default.
  maxInFlight: data.maxInFlight ?? null,
  updatedAt: data.at,
})

/** The configuration with the secrets a re-seal stored; nothing else changes, `updatedAt` neither. */
export const resealedConfiguration = (
  configuration: EndpointConfiguration,
  data: ConfigurationEventOf<'SecretsResealed'>['data'],
): EndpointConfiguration => ({
  ...configuration,
  secrets: { ...configuration.secrets, ...data.secrets },
})

export const toSelector = (
  data: ConfigurationEventOf<'SelectorAdded'>['data'] | ConfigurationEventOf<'SelectorUpdated'>['data'],
): Selector => ({
  id: data.selectorId,
  configurationId: data.configurationId,
  account: data.account,
  scope: data.scope,
  event: data.event,
  pattern: data.pattern,
})

/**
 * One event applied to `state`, its selector map written through `writable`: a copy for
 * `evolve`, a map of the fold's own for `foldConfiguration`.
 */
const evolveWith = (
  state: ConfigurationState,
  event: ConfigurationEvent,
  writable: (selectors: ReadonlyMap<string, Selector>) => Map<string, Selector>,
): ConfigurationState => {
  switch (event.type) {
    case 'ConfigurationCreated':
      return { status: 'active', configuration: toConfiguration(event.data), selectors: new Map() }
    case 'ConfigurationUpdated':
      if (state.status === 'empty') return state
      return { ...state, configuration: updatedConfiguration(state.configuration, event.data) }
    case 'SecretsResealed':
      if (state.status === 'empty') return state
      return { ...state, configuration: resealedConfiguration(state.configuration, event.data) }
    case 'ConfigurationDeleted':
      if (state.status === 'empty') return state
      return { ...state, status: 'deleted', selectors: new Map() }
    case 'SelectorAdded':
    case 'SelectorUpdated': {
      if (state.status === 'empty') return state
      const selectors = writable(state.selectors)
      selectors.set(event.data.selectorId, toSelector(event.data))
      return { ...state, selectors }
    }
    case 'SelectorRemoved': {
      if (state.status === 'empty') return state
      const selectors = writable(state.selectors)
      selectors.delete(event.data.selectorId)
      return { ...state, selectors }
    }
    default:
      return state
  }
}

/**
 * One event applied to `state`, which is left as it was. Each selector event copies the
 * selector map: to fold a stream, use `foldConfiguration`, which copies it once.
 */
export const evolve = (state: ConfigurationState, event: ConfigurationEvent): ConfigurationState =>
  evolveWith(state, event, (selectors) => new Map(selectors))

/**
 * `events` applied to `state` in order, as `events.reduce(evolve, state)` would, in time
 * linear in the events: the selector map is copied once and then written in place, since no
 * state in between is ever seen. Copying it for each event made loading a configuration with
 * 8,000 selectors take seconds, on every request that read it.
 *
 * @example
 * const state = foldConfiguration(recorded.map(decoded))
 */
export const foldConfiguration = (
  events: Iterable<ConfigurationEvent>,
  state: ConfigurationState = initialState,
): ConfigurationState => {
  let own: Map<string, Selector> | undefined
  const writable = (selectors: ReadonlyMap<string, Selector>) => {
    if (selectors !== own) own = new Map(selectors)
    return own
  }
  let folded = state
  for (const event of events) folded = evolveWith(folded, event, writable)
  return folded
}

export const configurationDecider = { decide, evolve, initialState } as const

/** Reads a stored event back; other event types, or data that fails its codec, become issues. */
export const decodeConfigurationEvent = (recorded: {
  readonly type: string
  readonly data: unknown
}): Decoded<ConfigurationEvent> => {
  const result = ConfigurationEvent.decode({ type: recorded.type, data: recorded.data })
  return isLeft(result)
    ? { ok: false, issues: toFieldIssues(result.left) }
    : { ok: true, value: result.right }
}
