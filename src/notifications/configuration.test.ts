import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NotFoundError, ValidationError } from '../errors/index.ts'
import {
  type AddSelector,
  type ConfigurationCommand,
  type ConfigurationEvent,
  type CreateWebhookConfiguration,
  decide,
  decodeConfigurationEvent,
  evolve,
  initialState,
} from './configuration.ts'

/** Emmett-style: the past as events, a command, and the events (or the refusal) it must produce. */
const given = (...past: ConfigurationEvent[]) => ({
  when: (command: ConfigurationCommand) => {
    const state = past.reduce(evolve, initialState)
    return {
      yields: (expected: ConfigurationEvent[]) => assert.deepEqual(decide(command, state), expected),
      refuses: (expected: (error: unknown) => boolean) =>
        assert.throws(() => decide(command, state), expected),
    }
  },
})

const CONFIG = '6f1e3b5a-2c4d-4e8f-9a1b-0c2d3e4f5a6b'
const SELECTOR = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
const NOW = Date.UTC(2026, 10, 22, 10)
const NOW_ISO = '2026-11-22T10:00:00.000Z'

const create = (data: Partial<CreateWebhookConfiguration['data']> = {}): CreateWebhookConfiguration => ({
  type: 'CreateWebhookConfiguration',
  data: {
    configurationId: CONFIG,
    account: 'acme',
    url: 'https://hooks.example.com/herald',
    signingSecret: SECRET,
    ...data,
  },
  metadata: { now: NOW },
})

const created: ConfigurationEvent = {
  type: 'WebhookConfigurationCreated',
  data: {
    configurationId: CONFIG,
    account: 'acme',
    url: 'https://hooks.example.com/herald',
    signingSecret: SECRET,
    enabled: true,
    createdAt: NOW_ISO,
  },
}

const add = (data: Partial<AddSelector['data']> = {}): AddSelector => ({
  type: 'AddSelector',
  data: {
    selectorId: SELECTOR,
    configurationId: CONFIG,
    account: 'acme',
    scope: 'account',
    event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
    ...data,
  },
  metadata: { now: NOW },
})

const added: ConfigurationEvent = {
  type: 'SelectorAdded',
  data: {
    selectorId: SELECTOR,
    configurationId: CONFIG,
    account: 'acme',
    scope: 'account',
    event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
    addedAt: NOW_ISO,
  },
}

const validationOf =
  (...paths: string[]) =>
  (error: unknown) => {
    assert.ok(error instanceof ValidationError, String(error))
    assert.deepEqual(error.issues.map((i) => i.path).sort(), [...paths].sort())
    return true
  }

describe('webhook configuration decider', () => {
  describe('CreateWebhookConfiguration', () => {
    it('creates an enabled configuration', () => {
      given().when(create()).yields([created])
    })

    it('keeps a description', () => {
      given()
        .when(create({ description: 'security team' }))
        .yields([
          { ...created, data: { ...created.data, description: 'security team' } } as ConfigurationEvent,
        ])
    })

    it('names every invalid field', () => {
      given()
        .when(
          create({ url: 'ftp://x', signingSecret: 'whsec_c2hvcnQ=', configurationId: 'nope', account: '' }),
        )
        .refuses(validationOf('url', 'signingSecret', 'configurationId', 'account'))
    })

    it('refuses URLs with credentials in them', () => {
      given()
        .when(create({ url: 'https://user:pass@hooks.example.com/' }))
        .refuses(validationOf('url'))
    })

    it('refuses to create a configuration twice', () => {
      given(created).when(create()).refuses(validationOf('configurationId'))
    })
  })

  describe('AddSelector', () => {
    it('adds a selector to an existing configuration', () => {
      given(created).when(add()).yields([added])
    })

    it('reports a configuration that does not exist as not found', () => {
      given()
        .when(add())
        .refuses((error) => error instanceof NotFoundError)
    })

    it('reports another account\u2019s configuration as not found', () => {
      given(created)
        .when(add({ account: 'globex' }))
        .refuses((error) => error instanceof NotFoundError)
    })

    it('refuses a selector id used before', () => {
      given(created, added).when(add()).refuses(validationOf('selectorId'))
    })

    it('names every invalid field of the event pattern', () => {
      given(created)
        .when(
          add({
            scope: 'planet' as 'global',
            event: { level: 'fatal' as 'error', type: 'has space', resource_type: '' },
          }),
        )
        .refuses(validationOf('scope', 'event.level', 'event.type', 'event.resource_type'))
    })
  })

  describe('evolve', () => {
    it('builds the configuration and its selectors', () => {
      const state = [created, added].reduce(evolve, initialState)
      assert.equal(state.status, 'created')
      if (state.status !== 'created') return
      assert.equal(state.configuration.id, CONFIG)
      assert.equal(state.configuration.enabled, true)
      assert.deepEqual([...state.selectors.keys()], [SELECTOR])
    })
  })

  describe('decodeConfigurationEvent', () => {
    it('reads stored events back and refuses unknown or malformed ones', () => {
      assert.deepEqual(decodeConfigurationEvent(added), { ok: true, value: added })
      assert.equal(decodeConfigurationEvent({ type: 'SomethingElse', data: {} }).ok, false)
      assert.equal(decodeConfigurationEvent({ type: 'SelectorAdded', data: { selectorId: 1 } }).ok, false)
    })
  })
})
