import { isLeft } from 'fp-ts/lib/Either.js'
import * as t from 'io-ts'
import { NotFoundError, ValidationError } from '../errors/index.ts'
import { type Decoded, toFieldIssues } from '../events/index.ts'
import {
  Account,
  Description,
  EventPattern,
  SelectorScope,
  SigningSecret,
  Uuid,
  validate,
  WebhookUrl,
} from './codecs.ts'
import type { Selector, WebhookConfiguration } from './model.ts'

/**
 * The webhook configuration aggregate: one event stream per configuration, holding the
 * configuration and its selectors, so adding a selector is checked against the configuration
 * it belongs to under one expected revision. Its history is the audit log.
 */
export const STREAM_PREFIX = 'notification-configuration-'

export const streamName = (configurationId: string): string => `${STREAM_PREFIX}${configurationId}`

export const isConfigurationStream = (stream: string): boolean => stream.startsWith(STREAM_PREFIX)

// Events: what the stream stores. Codecs too, because the store hands them back as JSON.

const WebhookConfigurationCreatedData = t.intersection([
  t.type({
    configurationId: Uuid,
    account: Account,
    url: WebhookUrl,
    signingSecret: SigningSecret,
    enabled: t.boolean,
    createdAt: t.string,
  }),
  t.partial({ description: Description }),
])

const SelectorAddedData = t.type({
  selectorId: Uuid,
  configurationId: Uuid,
  account: Account,
  scope: SelectorScope,
  event: EventPattern,
  addedAt: t.string,
})

export const ConfigurationEvent = t.union([
  t.type({ type: t.literal('WebhookConfigurationCreated'), data: WebhookConfigurationCreatedData }),
  t.type({ type: t.literal('SelectorAdded'), data: SelectorAddedData }),
])
export type ConfigurationEvent = t.TypeOf<typeof ConfigurationEvent>
export type WebhookConfigurationCreated = Extract<ConfigurationEvent, { type: 'WebhookConfigurationCreated' }>
export type SelectorAdded = Extract<ConfigurationEvent, { type: 'SelectorAdded' }>

// Commands: what callers ask for. `now` is passed in so that deciding stays pure.

export const CreateWebhookConfigurationData = t.intersection([
  t.type({ configurationId: Uuid, account: Account, url: WebhookUrl, signingSecret: SigningSecret }),
  t.partial({ description: Description }),
])

export const AddSelectorData = t.type({
  selectorId: Uuid,
  configurationId: Uuid,
  account: Account,
  scope: SelectorScope,
  event: EventPattern,
})

export interface CommandMetadata {
  /** Milliseconds since the epoch. */
  readonly now: number
}

export type CreateWebhookConfiguration = {
  readonly type: 'CreateWebhookConfiguration'
  readonly data: t.TypeOf<typeof CreateWebhookConfigurationData>
  readonly metadata: CommandMetadata
}

export type AddSelector = {
  readonly type: 'AddSelector'
  readonly data: t.TypeOf<typeof AddSelectorData>
  readonly metadata: CommandMetadata
}

export type ConfigurationCommand = CreateWebhookConfiguration | AddSelector

export type ConfigurationState =
  | { readonly status: 'empty' }
  | {
      readonly status: 'created'
      readonly configuration: WebhookConfiguration
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

const createConfiguration = (
  command: CreateWebhookConfiguration,
  state: ConfigurationState,
): ConfigurationEvent[] => {
  const data = validate(CreateWebhookConfigurationData, command.data, 'webhook configuration')
  if (state.status !== 'empty') {
    throw new ValidationError(`webhook configuration ${data.configurationId} already exists`, [
      { path: 'configurationId', message: 'already exists' },
    ])
  }
  return [
    {
      type: 'WebhookConfigurationCreated',
      data: {
        configurationId: data.configurationId,
        account: data.account,
        url: data.url,
        signingSecret: data.signingSecret,
        ...(data.description === undefined ? {} : { description: data.description }),
        enabled: true,
        createdAt: isoTime(command.metadata.now),
      },
    },
  ]
}

const addSelector = (command: AddSelector, state: ConfigurationState): ConfigurationEvent[] => {
  const data = validate(AddSelectorData, command.data, 'selector')
  // Another account's configuration is reported as missing, so ids do not leak existence.
  if (state.status === 'empty' || state.configuration.account !== data.account) {
    throw new NotFoundError(`webhook configuration ${data.configurationId} not found`, {
      configurationId: data.configurationId,
    })
  }
  if (state.configuration.id !== data.configurationId) {
    throw new ValidationError('selector names another configuration than its stream', [
      { path: 'configurationId', message: `must be ${state.configuration.id}` },
    ])
  }
  if (state.selectors.has(data.selectorId)) {
    throw new ValidationError(`selector ${data.selectorId} already exists`, [
      { path: 'selectorId', message: 'already exists' },
    ])
  }
  return [
    {
      type: 'SelectorAdded',
      data: {
        selectorId: data.selectorId,
        configurationId: data.configurationId,
        account: data.account,
        scope: data.scope,
        event: { level: data.event.level, type: data.event.type, resource_type: data.event.resource_type },
        addedAt: isoTime(command.metadata.now),
      },
    },
  ]
}

/**
 * Decides what a command changes; throws ValidationError or NotFoundError when it must not.
 *
 * @example
 * const events = decide({ type: 'AddSelector', data, metadata: { now: clock() } }, state)
 */
export const decide = (command: ConfigurationCommand, state: ConfigurationState): ConfigurationEvent[] => {
  switch (command.type) {
    case 'CreateWebhookConfiguration':
      return createConfiguration(command, state)
    case 'AddSelector':
      return addSelector(command, state)
    default: {
      const unknown: never = command
      throw new ValidationError('unknown command', [
        { path: 'type', message: `unknown: ${(unknown as { type: string }).type}` },
      ])
    }
  }
}

export const toConfiguration = (data: WebhookConfigurationCreated['data']): WebhookConfiguration => ({
  id: data.configurationId,
  account: data.account,
  url: data.url,
  signingSecret: data.signingSecret,
  ...(data.description === undefined ? {} : { description: data.description }),
  enabled: data.enabled,
})

export const toSelector = (data: SelectorAdded['data']): Selector => ({
  id: data.selectorId,
  configurationId: data.configurationId,
  account: data.account,
  scope: data.scope,
  event: data.event,
})

export const evolve = (state: ConfigurationState, event: ConfigurationEvent): ConfigurationState => {
  switch (event.type) {
    case 'WebhookConfigurationCreated':
      return { status: 'created', configuration: toConfiguration(event.data), selectors: new Map() }
    case 'SelectorAdded': {
      if (state.status === 'empty') return state
      const selectors = new Map(state.selectors)
      selectors.set(event.data.selectorId, toSelector(event.data))
      return { ...state, selectors }
    }
    default:
      return state
  }
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
