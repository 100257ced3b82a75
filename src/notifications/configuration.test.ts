import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LimitReachedError, NotFoundError, ValidationError } from '../errors/index.ts'
import { MAX_PATTERN_CONDITIONS, MAX_PATTERN_VALUES } from '../matching/index.ts'
import { createSecretBox } from '../secrets/index.ts'
import {
  type AddSelector,
  type ConfigurationCommand,
  type ConfigurationEvent,
  type ConfigurationEventOf,
  type CreateConfiguration,
  type DisableConfiguration,
  decide,
  decodeConfigurationEvent,
  evolve,
  foldConfiguration,
  initialState,
  type UpdateConfiguration,
} from './configuration.ts'
import { DEFAULT_OPTIONS } from './service.ts'

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
const NOW = Date.UTC(2026, 10, 22, 10)
const NOW_ISO = '2026-11-22T10:00:00.000Z'
const LATER = NOW + 60_000
const LATER_ISO = '2026-11-22T10:01:00.000Z'
const BY = 'acme/read-write'

const box = createSecretBox({ current: Buffer.alloc(32, 7).toString('base64') })
const SEALED_TOKEN = box.seal('ghp_first', `${CONFIG}/token`)
const SEALED_TOKEN_2 = box.seal('ghp_second', `${CONFIG}/token`)

const GITHUB_VALUES = { owner: 'acme', repository: 'platform' }
const GITHUB_SETTINGS = {
  api_url: 'https://api.github.com',
  owner: 'acme',
  repository: 'platform',
  labels: [],
  assignees: [],
}
const STORED_OPTIONS = {
  description: null,
  enabled: true,
  verifyTls: true,
  templates: {},
  digest: { enabled: false, windowSeconds: null },
}

const create = (data: Partial<CreateConfiguration['data']> = {}): CreateConfiguration => ({
  type: 'CreateConfiguration',
  data: {
    configurationId: CONFIG,
    account: 'acme',
    endpoint: 'github',
    values: GITHUB_VALUES,
    secrets: { token: SEALED_TOKEN },
    hints: {},
    options: DEFAULT_OPTIONS,
    ...data,
  },
  metadata: { now: NOW, by: BY },
})

const created: ConfigurationEventOf<'ConfigurationCreated'> = {
  type: 'ConfigurationCreated',
  data: {
    configurationId: CONFIG,
    account: 'acme',
    endpoint: 'github',
    settings: GITHUB_SETTINGS,
    secrets: { token: SEALED_TOKEN },
    hints: {},
    ...STORED_OPTIONS,
    by: BY,
    at: NOW_ISO,
  },
}

const update = (data: Partial<UpdateConfiguration['data']> = {}): UpdateConfiguration => ({
  type: 'UpdateConfiguration',
  data: {
    configurationId: CONFIG,
    account: 'acme',
    endpoint: 'github',
    values: GITHUB_SETTINGS,
    secrets: {},
    clearSecrets: [],
    hints: {},
    options: DEFAULT_OPTIONS,
    ...data,
  },
  metadata: { now: LATER, by: BY },
})

const SELECTOR_BODY = {
  scope: 'account' as const,
  event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
  pattern: null,
}

const add = (data: Partial<AddSelector['data']> = {}): AddSelector => ({
  type: 'AddSelector',
  data: {
    selectorId: SELECTOR,
    configurationId: CONFIG,
    account: 'acme',
    endpoint: 'github',
    ...SELECTOR_BODY,
    ...data,
  },
  metadata: { now: NOW, by: BY },
})

const added: ConfigurationEventOf<'SelectorAdded'> = {
  type: 'SelectorAdded',
  data: {
    selectorId: SELECTOR,
    configurationId: CONFIG,
    account: 'acme',
    scope: 'account',
    event: { level: 'error', type: 'user.checks.*', resource_type: '*' },
    pattern: null,
    by: BY,
    at: NOW_ISO,
  },
}

const deleted: ConfigurationEvent = {
  type: 'ConfigurationDeleted',
  data: { configurationId: CONFIG, account: 'acme', by: BY, at: LATER_ISO },
}

const validationOf =
  (...paths: string[]) =>
  (error: unknown) => {
    assert.ok(error instanceof ValidationError, String(error))
    assert.deepEqual(error.issues.map((i) => i.path).sort(), [...paths].sort())
    return true
  }

const notFound = (error: unknown) => error instanceof NotFoundError

describe('endpoint configuration decider', () => {
  describe('CreateConfiguration', () => {
    it('creates an enabled configuration with defaults filled in and the secret as sealed', () => {
      given().when(create()).yields([created])
    })

    it('keeps the options it is given', () => {
      given()
        .when(
          create({
            options: {
              ...DEFAULT_OPTIONS,
              description: 'security team',
              verify_tls: false,
              digest: true,
              digest_window_seconds: 300,
              templates: { title: '{{ event.type }}' },
            },
          }),
        )
        .yields([
          {
            ...created,
            data: {
              ...created.data,
              description: 'security team',
              verifyTls: false,
              digest: { enabled: true, windowSeconds: 300 },
              templates: { title: '{{ event.type }}' },
            },
          },
        ])
    })

    it('creates every endpoint type from its own fields', () => {
      const cases = [
        { endpoint: 'slack', values: {}, secrets: { url: box.seal('https://hooks.slack.com/x') } },
        { endpoint: 'teams', values: {}, secrets: { url: box.seal('https://acme.webhook.office.com/x') } },
        {
          endpoint: 'email',
          values: { smtp_host: 'smtp.example.com', from: 'herald@example.com', to: ['sec@example.com'] },
          secrets: {},
        },
        {
          endpoint: 'webhook',
          values: { url: 'https://hooks.example.com/h' },
          secrets: { signing_secret: box.seal('whsec_x') },
        },
        {
          endpoint: 'jira',
          values: { url: 'https://acme.atlassian.net', username: 'bot@acme.io', project_key: 'SEC' },
          secrets: { api_token: box.seal('t') },
        },
      ] as const
      for (const c of cases) {
        const [event] = decide(
          create({ endpoint: c.endpoint, values: c.values, secrets: c.secrets }),
          initialState,
        )
        assert.equal(event?.type, 'ConfigurationCreated', c.endpoint)
        if (c.endpoint === 'email') {
          assert.deepEqual((event as typeof created).data.settings, {
            smtp_host: 'smtp.example.com',
            smtp_port: 587,
            from: 'herald@example.com',
            to: ['sec@example.com'],
            tls_mode: 'starttls',
            include_payload: false,
          })
        }
      }
    })

    it('takes an SMTP host the email channel can connect to, and refuses the rest when saved', () => {
      const email = (smtpHost: string) =>
        create({
          endpoint: 'email',
          values: { smtp_host: smtpHost, from: 'herald@example.com', to: ['sec@example.com'] },
          secrets: {},
        })
      for (const host of [
        'smtp.example.com',
        'mail',
        'smtp.example.com.',
        '192.0.2.10',
        '2001:db8::25',
        '::1',
      ]) {
        const [event] = decide(email(host), initialState)
        assert.equal(event?.type, 'ConfigurationCreated', host)
      }
      // Each of these saved before, and the channel then refused every delivery as misconfigured.
      for (const host of ['[2001:db8::25]', '[192.0.2.10]', ':::', '...', '[]', '2001:db8::25]']) {
        given().when(email(host)).refuses(validationOf('smtp_host'))
      }
    })

    it('names every missing and invalid field', () => {
      given()
        .when(
          create({
            configurationId: CONFIG,
            values: { owner: 'has space', labels: 'security', milestone: 0 },
            secrets: {},
          }),
        )
        .refuses(validationOf('owner', 'repository', 'labels', 'milestone', 'token'))
    })

    it('refuses a field the endpoint type does not have, and a secret passed as plain value', () => {
      given()
        .when(create({ values: { ...GITHUB_VALUES, channel: '#sec', token: 'ghp_plain' } }))
        .refuses(validationOf('channel', 'token'))
    })

    it('refuses a secret that was not sealed, without echoing it', () => {
      assert.throws(
        () => decide(create({ secrets: { token: 'ghp_plaintext_canary' } }), initialState),
        (error: unknown) =>
          validationOf('token')(error) &&
          !JSON.stringify([(error as Error).message, (error as ValidationError).issues]).includes('canary'),
      )
    })

    it('names bad ids, accounts and options', () => {
      given()
        .when(create({ configurationId: 'nope', account: '' }))
        .refuses(validationOf('configurationId', 'account'))
      given()
        .when(
          create({
            options: {
              ...DEFAULT_OPTIONS,
              digest_window_seconds: 0,
              templates: 'not an object' as unknown as Record<string, string>,
            },
          }),
        )
        .refuses(validationOf('digest_window_seconds', 'templates'))
    })

    it('refuses to create a configuration twice', () => {
      given(created).when(create()).refuses(validationOf('configurationId'))
    })
  })

  describe('UpdateConfiguration', () => {
    it('records the new values and the names of the fields that changed', () => {
      given(created)
        .when(
          update({
            values: { ...GITHUB_SETTINGS, labels: ['security'] },
            secrets: { token: SEALED_TOKEN_2 },
            options: { ...DEFAULT_OPTIONS, enabled: false },
          }),
        )
        .yields([
          {
            type: 'ConfigurationUpdated',
            data: {
              configurationId: CONFIG,
              account: 'acme',
              settings: { ...GITHUB_SETTINGS, labels: ['security'] },
              secrets: { token: SEALED_TOKEN_2 },
              clearedSecrets: [],
              hints: {},
              changed: ['enabled', 'labels', 'token'],
              ...STORED_OPTIONS,
              enabled: false,
              by: BY,
              at: LATER_ISO,
            },
          },
        ])
    })

    it('decides nothing when nothing changes', () => {
      given(created).when(update()).yields([])
    })

    it('removes an optional secret, and refuses to remove a required one', () => {
      const email = create({
        endpoint: 'email',
        values: {
          smtp_host: 'smtp.example.com',
          from: 'a@example.com',
          to: ['b@example.com'],
          username: 'u',
        },
        secrets: { password: box.seal('pw', `${CONFIG}/password`) },
      })
      const [emailCreated] = decide(email, initialState) as ConfigurationEvent[]
      // The username goes with it: one alone is refused.
      const { username: _, ...withoutUser } = (emailCreated as typeof created).data.settings
      const [event] = decide(
        update({
          endpoint: 'email',
          values: withoutUser,
          clearSecrets: ['password'],
        }),
        evolve(initialState, emailCreated as ConfigurationEvent),
      ) as ConfigurationEvent[]
      assert.equal(event?.type, 'ConfigurationUpdated')
      assert.deepEqual((event as ConfigurationEventOf<'ConfigurationUpdated'>).data.clearedSecrets, [
        'password',
      ])
      given(created)
        .when(update({ clearSecrets: ['token'] }))
        .refuses(validationOf('token'))
      given(created)
        .when(update({ clearSecrets: ['owner'] }))
        .refuses(validationOf('owner'))
    })

    it('names every invalid value', () => {
      given(created)
        .when(update({ values: { ...GITHUB_SETTINGS, repository: null, api_url: 'gopher://x' } }))
        .refuses(validationOf('repository', 'api_url'))
    })

    it('reports a missing, deleted, foreign or other-endpoint configuration as not found', () => {
      given().when(update()).refuses(notFound)
      given(created, deleted).when(update()).refuses(notFound)
      given(created)
        .when(update({ account: 'globex' }))
        .refuses(notFound)
      given(created)
        .when(update({ endpoint: 'jira' }))
        .refuses(notFound)
    })
  })

  describe('max_in_flight', () => {
    const CONCURRENT = {
      slack: { values: {}, secrets: { url: box.seal('https://hooks.slack.com/x') } },
      teams: { values: {}, secrets: { url: box.seal('https://acme.webhook.office.com/x') } },
      email: {
        values: { smtp_host: 'smtp.example.com', from: 'herald@example.com', to: ['sec@example.com'] },
        secrets: {},
      },
      webhook: {
        values: { url: 'https://hooks.example.com/h' },
        secrets: { signing_secret: box.seal('whsec_x') },
      },
    } as const
    const webhook = (maxInFlight: unknown) =>
      create({
        endpoint: 'webhook',
        ...CONCURRENT.webhook,
        options: { ...DEFAULT_OPTIONS, max_in_flight: maxInFlight as number },
      })
    const fold = (...events: ConfigurationEvent[]) => events.reduce(evolve, initialState)
    const stateOf = (...events: ConfigurationEvent[]) => {
      const state = fold(...events)
      assert.equal(state.status, 'active')
      return state.status === 'active' ? state.configuration : assert.fail('no configuration')
    }
    const messageOf = (command: ConfigurationCommand, state = initialState) => {
      try {
        decide(command, state)
      } catch (error) {
        assert.ok(error instanceof ValidationError, String(error))
        assert.deepEqual(
          error.issues.map((i) => i.path),
          ['max_in_flight'],
        )
        return error.issues[0]?.message
      }
      return assert.fail('accepted')
    }

    it('stores a webhook, email, Slack or Teams configuration’s own, from 1 to 64', () => {
      for (const [endpoint, fields] of Object.entries(CONCURRENT))
        for (const max of [1, 8, 64]) {
          const events = decide(
            create({
              endpoint: endpoint as keyof typeof CONCURRENT,
              ...fields,
              options: { ...DEFAULT_OPTIONS, max_in_flight: max },
            }),
            initialState,
          )
          assert.equal((events[0] as typeof created).data.maxInFlight, max, endpoint)
          assert.equal(stateOf(...events).maxInFlight, max, endpoint)
        }
    })

    it('refuses a value out of range or not a whole number, saying what it takes', () => {
      for (const bad of [0, 65, -1, 2.5, '4', true, Number.NaN])
        assert.equal(messageOf(webhook(bad)), 'must be null or a whole number from 1 to 64', String(bad))
    })

    it('refuses one for GitHub and Jira, whose tickets go one at a time; null is theirs already', () => {
      const jira = {
        endpoint: 'jira' as const,
        values: { url: 'https://acme.atlassian.net', username: 'bot@acme.io', project_key: 'SEC' },
        secrets: { api_token: box.seal('t') },
      }
      for (const max of [1, 4]) {
        assert.match(
          messageOf(create({ options: { ...DEFAULT_OPTIONS, max_in_flight: max } })) ?? '',
          /^is not for github configurations, which file one ticket at a time/,
        )
        assert.match(
          messageOf(create({ ...jira, options: { ...DEFAULT_OPTIONS, max_in_flight: max } })) ?? '',
          /^is not for jira configurations, which file one ticket at a time/,
        )
        assert.match(
          messageOf(update({ options: { ...DEFAULT_OPTIONS, max_in_flight: max } }), fold(created)) ?? '',
          /one ticket at a time/,
        )
      }
      given()
        .when(create({ options: { ...DEFAULT_OPTIONS, max_in_flight: null } }))
        .yields([created])
      assert.equal(stateOf(created).maxInFlight, null)
    })

    it('changes on update, named as changed; null takes the endpoint type’s default again', () => {
      const [eight] = decide(webhook(8), initialState) as [ConfigurationEventOf<'ConfigurationCreated'>]
      const settings = eight.data.settings
      const to = (max: number | null) =>
        update({ endpoint: 'webhook', values: settings, options: { ...DEFAULT_OPTIONS, max_in_flight: max } })
      const [two] = decide(to(2), fold(eight)) as [ConfigurationEventOf<'ConfigurationUpdated'>]
      assert.deepEqual([two.data.changed, two.data.maxInFlight], [['max_in_flight'], 2])
      assert.equal(stateOf(eight, two).maxInFlight, 2)
      const [reset] = decide(to(null), fold(eight, two)) as [ConfigurationEventOf<'ConfigurationUpdated'>]
      assert.deepEqual([reset.data.changed, 'maxInFlight' in reset.data], [['max_in_flight'], false])
      assert.equal(stateOf(eight, two, reset).maxInFlight, null)
      given(eight).when(to(8)).yields([])
      // A change of anything else keeps it.
      const [renamed] = decide(
        update({
          endpoint: 'webhook',
          values: settings,
          options: { ...DEFAULT_OPTIONS, description: 'siem', max_in_flight: 8 },
        }),
        fold(eight),
      ) as [ConfigurationEventOf<'ConfigurationUpdated'>]
      assert.deepEqual(renamed.data.changed, ['description'])
      assert.equal(stateOf(eight, renamed).maxInFlight, 8)
    })

    it('reads events stored before it existed as having none, and refuses a stored one that is no number', () => {
      const decoded = decodeConfigurationEvent(created)
      assert.ok(decoded.ok)
      assert.equal(stateOf(decoded.value).maxInFlight, null)
      assert.equal(
        decodeConfigurationEvent({ type: created.type, data: { ...created.data, maxInFlight: '4' } }).ok,
        false,
      )
    })
  })

  describe('signing secret rotation', () => {
    const HOUR = 60 * 60 * 1000
    const DAY = 24 * HOUR
    const SETTINGS = { url: 'https://hooks.example.com/h' }
    const SEALED_SIGNING = Array.from({ length: 13 }, (_, n) =>
      box.seal(`whsec_${n}`, `${CONFIG}/signing_secret`),
    )
    const signingSecret = (n: number) => SEALED_SIGNING[n] ?? assert.fail(`no secret ${n}`)
    const webhookCreated: ConfigurationEvent = {
      type: 'ConfigurationCreated',
      data: {
        ...created.data,
        endpoint: 'webhook',
        settings: SETTINGS,
        secrets: { signing_secret: signingSecret(0) },
      },
    }
    /** The command replacing the signing secret with the `n`th, at `at`. */
    const rotation = (n: number, at: number): UpdateConfiguration => ({
      ...update({ endpoint: 'webhook', values: SETTINGS, secrets: { signing_secret: signingSecret(n) } }),
      metadata: { now: at, by: BY },
    })
    /** The history of one rotation at each of `times`, as decided and stored. */
    const rotations = (times: readonly number[]) => {
      const history: ConfigurationEvent[] = [webhookCreated]
      for (const [i, at] of times.entries())
        history.push(...decide(rotation(i + 1, at), history.reduce(evolve, initialState)))
      return history
    }
    const signingOf = (history: readonly ConfigurationEvent[]) => {
      const state = history.reduce(evolve, initialState)
      if (state.status !== 'active') assert.fail('no configuration')
      return state.configuration.secrets.signing_secret
    }

    it('keeps every value replaced in the last 24 h, newest first, and drops each once its own 24 h are over', () => {
      const times = [NOW + HOUR, NOW + 2 * HOUR, NOW + DAY + HOUR]
      assert.deepEqual(signingOf(rotations(times.slice(0, 2))), {
        sealed: signingSecret(2),
        previous: [
          { sealed: signingSecret(1), rotatedAt: new Date(times[1] ?? 0).toISOString() },
          { sealed: signingSecret(0), rotatedAt: new Date(times[0] ?? 0).toISOString() },
        ],
      })
      // The first replaced value stopped signing at NOW + 25 h, the moment of the third rotation.
      assert.deepEqual(signingOf(rotations(times)), {
        sealed: signingSecret(3),
        previous: [
          { sealed: signingSecret(2), rotatedAt: new Date(times[2] ?? 0).toISOString() },
          { sealed: signingSecret(1), rotatedAt: new Date(times[1] ?? 0).toISOString() },
        ],
      })
    })

    it('refuses a rotation while 10 replaced values still sign, naming the field and when it may rotate, never a secret', () => {
      const times = Array.from({ length: 10 }, (_, i) => NOW + (i + 1) * HOUR)
      const history = rotations(times)
      assert.equal(signingOf(history)?.previous?.length, 10)
      const state = history.reduce(evolve, initialState)
      const eleventh = NOW + 11 * HOUR
      assert.throws(
        () => decide(rotation(11, eleventh), state),
        (error: unknown) => {
          assert.ok(error instanceof ValidationError, String(error))
          assert.deepEqual(error.issues, [
            {
              path: 'signing_secret',
              message:
                'was replaced 10 times in the last 24 hours, and each value it replaced signs for 24 hours after: it can be replaced again from 2026-11-23T11:00:00.000Z',
            },
          ])
          assert.ok(!/whsec_|enc:v1/.test(`${error.message} ${JSON.stringify(error)}`), 'no secret')
          return true
        },
      )
      // Once the earliest replaced value's 24 h are over, the rotation goes through, and it is dropped.
      const later = NOW + HOUR + DAY
      const [event] = decide(rotation(11, later), state)
      if (event === undefined) assert.fail('no rotation')
      const previous = signingOf([...history, event])?.previous
      assert.equal(previous?.length, 10)
      assert.equal(previous?.at(-1)?.sealed, signingSecret(1))
    })

    it('keeps at most 10 replaced values of a history stored before rotations were counted', () => {
      const history: ConfigurationEvent[] = [webhookCreated]
      for (let n = 1; n <= 12; n++)
        history.push({
          type: 'ConfigurationUpdated',
          data: {
            configurationId: CONFIG,
            account: 'acme',
            settings: SETTINGS,
            secrets: { signing_secret: signingSecret(n) },
            clearedSecrets: [],
            hints: {},
            changed: ['signing_secret'],
            ...STORED_OPTIONS,
            by: BY,
            at: new Date(NOW + n * 60_000).toISOString(),
          },
        })
      assert.deepEqual(
        signingOf(history)?.previous?.map((p) => p.sealed),
        Array.from({ length: 10 }, (_, i) => signingSecret(11 - i)),
      )
    })
  })

  describe('DisableConfiguration', () => {
    const disable = (
      data: Partial<Pick<DisableConfiguration['data'], 'unchangedSince' | 'failure'>> = {},
    ): ConfigurationCommand => ({
      type: 'DisableConfiguration',
      data: { configurationId: CONFIG, account: 'acme', endpoint: 'github', ...data },
      metadata: { now: LATER, by: 'system/endpoint_gone' },
    })
    const disabled: ConfigurationEvent = {
      type: 'ConfigurationUpdated',
      data: {
        configurationId: CONFIG,
        account: 'acme',
        settings: GITHUB_SETTINGS,
        secrets: {},
        clearedSecrets: [],
        hints: {},
        changed: ['enabled'],
        ...STORED_OPTIONS,
        enabled: false,
        by: 'system/endpoint_gone',
        at: LATER_ISO,
      },
    }

    it('switches only enabled off, once', () => {
      given(created).when(disable()).yields([disabled])
      given(created, disabled).when(disable()).yields([])
    })

    it('switches off a configuration its stored fields would now fail the checks of, without checking them', () => {
      // Saved when repeated assignees were still accepted: an update would be refused.
      const legacy = {
        ...created,
        data: { ...created.data, settings: { ...GITHUB_SETTINGS, assignees: ['octocat', 'octocat'] } },
      }
      given(legacy)
        .when(
          update({
            values: { ...GITHUB_SETTINGS, assignees: ['octocat', 'octocat'] },
            options: { ...DEFAULT_OPTIONS, description: 'x' },
          }),
        )
        .refuses(validationOf('assignees[1]'))
      const [event] = decide(disable(), [legacy].reduce(evolve, initialState))
      assert.equal(event?.type === 'ConfigurationUpdated' && event.data.enabled, false)
    })

    it('leaves a configuration changed after unchangedSince alone', () => {
      given(created)
        .when(disable({ unchangedSince: NOW - 1 }))
        .yields([])
      given(created)
        .when(disable({ unchangedSince: NOW }))
        .yields([disabled])
    })

    it('records why, for its announcement, when a failure made Herald switch it off', () => {
      const failure = { reason: 'endpoint_gone', failingSince: NOW, lastError: 'HTTP 410' }
      given(created)
        .when(disable({ failure }))
        .yields([
          {
            ...disabled,
            data: {
              ...disabled.data,
              failure: { reason: 'endpoint_gone', failingSince: NOW_ISO, lastError: 'HTTP 410' },
            },
          } as ConfigurationEvent,
        ])
    })
  })

  describe('DeleteConfiguration', () => {
    it('deletes a live configuration once', () => {
      given(created)
        .when({
          type: 'DeleteConfiguration',
          data: { configurationId: CONFIG, account: 'acme', endpoint: 'github' },
          metadata: { now: LATER, by: BY },
        })
        .yields([deleted])
      given(created, deleted)
        .when({
          type: 'DeleteConfiguration',
          data: { configurationId: CONFIG, account: 'acme', endpoint: 'github' },
          metadata: { now: LATER, by: BY },
        })
        .refuses(notFound)
    })

    it('reports another account\u2019s configuration as not found', () => {
      given(created)
        .when({
          type: 'DeleteConfiguration',
          data: { configurationId: CONFIG, account: 'globex', endpoint: 'github' },
          metadata: { now: LATER, by: BY },
        })
        .refuses(notFound)
    })
  })

  describe('AddSelector', () => {
    it('adds a selector to an existing configuration', () => {
      given(created).when(add()).yields([added])
    })

    it('stores a content pattern that compiles', () => {
      const pattern = { data: { severity: ['critical', 'high'] } }
      given(created)
        .when(add({ pattern }))
        .yields([{ ...added, data: { ...added.data, pattern } }])
    })

    it('refuses a content pattern that does not compile, naming the offending part', () => {
      given(created)
        .when(add({ pattern: { data: { severity: [{ numeric: ['>', 'high'] }] } } }))
        .refuses((error) => {
          assert.ok(error instanceof ValidationError)
          assert.match(error.issues[0]?.path ?? '', /^pattern\.data\.severity/)
          return true
        })
    })

    it('refuses a content pattern past the size limits with ValidationError naming them, and stores one at them', () => {
      /** `conditions` + 1 conditions and `values` + 1 values: fields under `data`, then a `$or` of two. */
      const sized = (conditions: number, values: number) => {
        const each = Math.floor(values / conditions)
        const list = (i: number) =>
          Array.from({ length: i === 0 ? values - each * (conditions - 1) : each }, (_, k) => `v${k}`)
        const fields = Object.fromEntries(
          Array.from({ length: conditions - 1 }, (_, i) => [`f${i}`, list(i)]),
        )
        return { data: { ...fields, $or: [{ last: list(1) }, { last: [{ exists: false }] }] } }
      }
      const refusal =
        (...messages: string[]) =>
        (error: unknown) => {
          assert.ok(error instanceof ValidationError, String(error))
          assert.deepEqual(
            error.issues,
            messages.map((message) => ({ path: 'pattern', message })),
          )
          return true
        }
      // The `$or` adds a branch of one condition and one value to the count.
      const atLimit = sized(MAX_PATTERN_CONDITIONS - 1, MAX_PATTERN_VALUES - 1)
      given(created)
        .when(add({ pattern: atLimit }))
        .yields([{ ...added, data: { ...added.data, pattern: atLimit } }])
      given(created)
        .when(add({ pattern: sized(MAX_PATTERN_CONDITIONS, MAX_PATTERN_VALUES - 1) }))
        .refuses(
          refusal(
            `has ${MAX_PATTERN_CONDITIONS + 1} conditions (fields with a list of values, $or branches included); at most ${MAX_PATTERN_CONDITIONS} are allowed`,
          ),
        )
      given(created)
        .when(add({ pattern: sized(10, MAX_PATTERN_VALUES) }))
        .refuses(
          refusal(
            `has ${MAX_PATTERN_VALUES + 1} values in the lists of its conditions; at most ${MAX_PATTERN_VALUES} are allowed`,
          ),
        )
      const excluded = {
        data: { a: [{ 'anything-but': Array.from({ length: MAX_PATTERN_VALUES + 1 }, (_, k) => `v${k}`) }] },
      }
      given(created)
        .when(add({ pattern: excluded }))
        .refuses(
          refusal(
            `has ${MAX_PATTERN_VALUES + 1} values in the lists of its conditions; at most ${MAX_PATTERN_VALUES} are allowed`,
          ),
        )
    })

    it('reports a missing, deleted or foreign configuration as not found', () => {
      given().when(add()).refuses(notFound)
      given(created, deleted).when(add()).refuses(notFound)
      given(created)
        .when(add({ account: 'globex' }))
        .refuses(notFound)
    })

    it('refuses a selector past maxSelectors with LimitReachedError naming selectors, and adds one below it', () => {
      const other: ConfigurationEvent = { ...added, data: { ...added.data, selectorId: CONFIG } }
      given(created, added, other)
        .when(add({ selectorId: '0b7c4f2e-8d1a-4e3b-9c5d-6f7a8b9c0d1e', maxSelectors: 2 }))
        .refuses((error) => {
          assert.ok(error instanceof LimitReachedError, String(error))
          assert.deepEqual(error.issues, [
            { path: 'selectors', message: 'has 2, the most one configuration may have' },
          ])
          return true
        })
      given(created)
        .when(add({ maxSelectors: 1 }))
        .yields([added])
    })

    it('refuses a selector id used before', () => {
      given(created, added).when(add()).refuses(validationOf('selectorId'))
    })

    it('names every invalid field of the event pattern', () => {
      given(created)
        .when(
          add({
            scope: 'planet' as 'global',
            event: { level: 'fatal', type: 'has space', resource_type: '' },
          }),
        )
        .refuses(validationOf('scope', 'event.level', 'event.type', 'event.resource_type'))
    })
  })

  describe('UpdateSelector and RemoveSelector', () => {
    const target = {
      selectorId: SELECTOR,
      configurationId: CONFIG,
      account: 'acme',
      endpoint: 'github' as const,
    }

    it('updates a selector, and decides nothing when it is unchanged', () => {
      const event = { level: '*' as const, type: 'system.*', resource_type: '*' }
      given(created, added)
        .when({
          type: 'UpdateSelector',
          data: { ...target, ...SELECTOR_BODY, event },
          metadata: { now: LATER, by: BY },
        })
        .yields([
          {
            type: 'SelectorUpdated',
            data: {
              selectorId: SELECTOR,
              configurationId: CONFIG,
              account: 'acme',
              scope: 'account',
              event,
              pattern: null,
              by: BY,
              at: LATER_ISO,
            },
          },
        ])
      given(created, added)
        .when({
          type: 'UpdateSelector',
          data: { ...target, ...SELECTOR_BODY },
          metadata: { now: LATER, by: BY },
        })
        .yields([])
    })

    it('holds a new or changed pattern to the size limits, and keeps one stored before them', () => {
      const large = {
        data: Object.fromEntries(
          Array.from({ length: MAX_PATTERN_CONDITIONS + 1 }, (_, i) => [`f${i}`, [i]]),
        ),
      }
      const stored: ConfigurationEvent = { ...added, data: { ...added.data, pattern: large } }
      const event = { level: '*' as const, type: 'system.*', resource_type: '*' }
      for (const pattern of [undefined, large])
        given(created, stored)
          .when({
            type: 'UpdateSelector',
            data: { ...target, event, ...(pattern === undefined ? {} : { pattern }) },
            metadata: { now: LATER, by: BY },
          })
          .yields([
            {
              type: 'SelectorUpdated',
              data: {
                selectorId: SELECTOR,
                configurationId: CONFIG,
                account: 'acme',
                scope: 'account',
                event,
                pattern: large,
                by: BY,
                at: LATER_ISO,
              },
            },
          ])
      given(created, added)
        .when({
          type: 'UpdateSelector',
          data: { ...target, pattern: large },
          metadata: { now: LATER, by: BY },
        })
        .refuses(validationOf('pattern'))
      const larger = { data: { ...large.data, more: [1] } }
      given(created, stored)
        .when({
          type: 'UpdateSelector',
          data: { ...target, pattern: larger },
          metadata: { now: LATER, by: BY },
        })
        .refuses(validationOf('pattern'))
    })

    it('removes a selector', () => {
      given(created, added)
        .when({ type: 'RemoveSelector', data: target, metadata: { now: LATER, by: BY } })
        .yields([
          {
            type: 'SelectorRemoved',
            data: { selectorId: SELECTOR, configurationId: CONFIG, account: 'acme', by: BY, at: LATER_ISO },
          },
        ])
    })

    it('reports an unknown selector, or another account\u2019s, as not found', () => {
      given(created)
        .when({ type: 'RemoveSelector', data: target, metadata: { now: LATER, by: BY } })
        .refuses(notFound)
      given(created, added)
        .when({
          type: 'UpdateSelector',
          data: { ...target, ...SELECTOR_BODY, selectorId: CONFIG },
          metadata: { now: LATER, by: BY },
        })
        .refuses(notFound)
      given(created, added)
        .when({
          type: 'RemoveSelector',
          data: { ...target, account: 'globex' },
          metadata: { now: LATER, by: BY },
        })
        .refuses(notFound)
    })
  })

  describe('evolve', () => {
    it('builds the configuration, replaces a secret that does not sign without keeping the old value, and forgets selectors on delete', () => {
      const rotation: ConfigurationEvent = {
        type: 'ConfigurationUpdated',
        data: {
          configurationId: CONFIG,
          account: 'acme',
          settings: GITHUB_SETTINGS,
          secrets: { token: SEALED_TOKEN_2 },
          clearedSecrets: [],
          hints: {},
          changed: ['token'],
          ...STORED_OPTIONS,
          by: BY,
          at: LATER_ISO,
        },
      }
      const state = [created, added, rotation].reduce(evolve, initialState)
      assert.equal(state.status, 'active')
      if (state.status !== 'active') return
      assert.deepEqual(state.configuration.secrets.token, { sealed: SEALED_TOKEN_2 })
      assert.equal(state.configuration.updatedAt, LATER_ISO)
      assert.deepEqual([...state.selectors.keys()], [SELECTOR])
      const gone = evolve(state, deleted)
      assert.equal(gone.status, 'deleted')
      if (gone.status === 'deleted') assert.equal(gone.selectors.size, 0)
    })
  })

  describe('foldConfiguration', () => {
    const other: ConfigurationEvent = { ...added, data: { ...added.data, selectorId: CONFIG } }
    const removed: ConfigurationEvent = {
      type: 'SelectorRemoved',
      data: { selectorId: SELECTOR, configurationId: CONFIG, account: 'acme', by: BY, at: LATER_ISO },
    }

    it('folds as evolve does, event by event', () => {
      for (const history of [
        [created, added, other, removed],
        [created, added, deleted, other],
        [added, created],
        [],
      ])
        assert.deepEqual(foldConfiguration(history), history.reduce(evolve, initialState))
    })

    it('leaves the state it starts from as it was', () => {
      const before = foldConfiguration([created, added])
      const after = foldConfiguration([other, removed], before)
      assert.ok(before.status === 'active' && after.status === 'active')
      assert.deepEqual([...before.selectors.keys()], [SELECTOR])
      assert.deepEqual([...after.selectors.keys()], [CONFIG])
    })
  })

  describe('decodeConfigurationEvent', () => {
    it('reads stored events back and refuses unknown or malformed ones', () => {
      assert.deepEqual(decodeConfigurationEvent(added), { ok: true, value: added })
      assert.deepEqual(decodeConfigurationEvent(created), { ok: true, value: created })
      assert.equal(decodeConfigurationEvent({ type: 'SomethingElse', data: {} }).ok, false)
      assert.equal(decodeConfigurationEvent({ type: 'SelectorAdded', data: { selectorId: 1 } }).ok, false)
    })
  })
})
