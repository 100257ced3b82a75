import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../errors/index.ts'
import { attemptTimeoutOf, type Config, type Env, loadConfig, topicPartitions } from './index.ts'

const CWD = '/srv/herald'
const FILE = '/etc/herald/herald.yaml'

/** Loads with `yaml` as the file's content (when given) and no access to the real disk. */
const load = (env: Env, yaml?: string): Config =>
  loadConfig({
    env: yaml === undefined ? env : { HERALD_CONFIG: FILE, ...env },
    cwd: CWD,
    readFile: (path) => {
      if (yaml === undefined || path !== FILE)
        throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
      return yaml
    },
  })

/** The ConfigError `fn` throws. */
const failure = (fn: () => unknown): ConfigError => {
  try {
    fn()
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    return error
  }
  assert.fail('expected a ConfigError')
}

/** The message of the one issue whose path starts with `path` (exactly one must exist). */
const issue = (error: ConfigError, path: string): string => {
  const matching = error.issues.filter((i) => i.path === path || i.path.startsWith(`${path} (`))
  assert.equal(matching.length, 1, `expected one issue at ${path}, got:\n${error.message}`)
  return `${matching[0]?.path}: ${matching[0]?.message}`
}

const DEFAULTS: Config = {
  listen: '0.0.0.0',
  port: 8228,
  data_dir: '/srv/herald/data',
  log_level: 'info',
  require_auth: true,
  admin_token: null,
  authorization_handler: 'native',
  authorization_handler_config: { endpoint: null, timeout_ms: 2000 },
  ui_url: null,
  shutdown_timeout_ms: 30000,
  outbound: { allowlist: [], sender_thread: true },
  metrics: { account_series_limit: 0 },
  notifications: {
    enabled: true,
    cycle_timers: { notifications: 30 },
    digest_max_attempts: 150,
    limits: { selectors_per_configuration: 500, configurations_per_account: 200 },
    webhook_timeout_ms: 15000,
    delivery: {
      concurrency: 256,
      retry_schedule_ms: [0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000],
      retry_jitter_percent: 20,
      retention_days: 30,
      disable_after_failing_ms: 86_400_000,
      replay_limit: 1000,
      attempt_timeout_ms: null,
      jira_search_lag_ms: 60_000,
      max_in_flight: { webhook: 1, email: 1, slack: 1, teams: 1 },
      rate_limits: { slack: 60, teams: 60, email: 120, webhook: 0, github: 60, jira: 60 },
    },
  },
  reports: {
    enabled: true,
    enable_data_ingress: true,
    cycle_timers: { load: 0.5, refresh: 60, metrics: 3600 },
    metric_corrections: 24,
    batch_size: 20000,
    batch_bytes: 33_554_432,
    projector_thread: true,
    graphiql: true,
  },
  event_log: {
    kind: 'embedded',
    partitions: null,
    topics: {
      events: 'engine.events',
      dlq: 'engine.events.dlq',
      deliveries: 'notifications.deliveries',
      outcomes: 'notifications.outcomes',
      metrics: 'reports.metrics',
    },
    embedded: { retention_hours: 168, tail_mib: 16 },
    kafka: {
      brokers: [],
      client_id: 'herald',
      ssl: false,
      sasl: null,
      idempotent: true,
      max_request_bytes: 1_048_576,
      consumer: {
        max_wait_ms: 5000,
        commit_interval_ms: 1000,
        partitions_consumed_concurrently: 16,
        max_bytes_per_partition: 1_048_576,
        max_bytes: 10_485_760,
      },
    },
  },
  event_store: { kind: 'embedded', kurrentdb: { connection_string: null } },
  warehouse: {
    kind: 'embedded',
    clickhouse: { url: null, username: null, password: null, database: null },
  },
  schema_registry: {
    kind: 'embedded',
    confluent: { url: null, username: null, password: null, register_schemas: false },
  },
  secrets: { encryption_key: null, previous_keys: [] },
}

describe('loadConfig', () => {
  describe('defaults', () => {
    it('gives every default with an empty environment and no file', () => {
      assert.deepEqual(load({}), DEFAULTS)
    })

    it('ignores unrelated variables and an empty HERALD_CONFIG', () => {
      assert.deepEqual(load({ PATH: '/usr/bin', KURRENTDB_URL: 'x', HERALD_CONFIG: '' }), DEFAULTS)
    })

    it('treats an empty or comment-only file, and empty sections, as defaults', () => {
      assert.deepEqual(load({}, ''), DEFAULTS)
      assert.deepEqual(load({}, '# nothing yet\n'), DEFAULTS)
      assert.deepEqual(load({}, 'notifications:\nreports:\n  cycle_timers:\n'), DEFAULTS)
    })

    it('creates topics with 1 partition on the embedded log and 3 on Kafka, unless told', () => {
      assert.equal(topicPartitions(load({}).event_log), 1)
      const kafka = { HERALD_EVENT_LOG__KIND: 'kafka', HERALD_EVENT_LOG__KAFKA__BROKERS: 'localhost:9092' }
      assert.equal(topicPartitions(load(kafka).event_log), 3)
      assert.equal(topicPartitions(load({ HERALD_EVENT_LOG__PARTITIONS: '6' }).event_log), 6)
      assert.equal(topicPartitions(load({ ...kafka, HERALD_EVENT_LOG__PARTITIONS: '1' }).event_log), 1)
    })

    it('returns a deeply frozen config', () => {
      const config = load({})
      assert.ok(Object.isFrozen(config))
      assert.ok(Object.isFrozen(config.event_log.kafka))
      assert.ok(Object.isFrozen(config.event_log.kafka.brokers))
      assert.throws(() => {
        ;(config.event_log.kafka.brokers as string[]).push('x:1')
      }, TypeError)
    })

    it('resolves data_dir against cwd, and keeps an absolute one', () => {
      assert.equal(load({ HERALD_DATA_DIR: 'var/herald' }).data_dir, '/srv/herald/var/herald')
      assert.equal(load({ HERALD_DATA_DIR: '/var/lib/herald' }).data_dir, '/var/lib/herald')
    })
  })

  describe('the YAML file', () => {
    it('reads values from the file named by HERALD_CONFIG', () => {
      const config = load(
        {},
        `
listen: 127.0.0.1
port: 9000
log_level: debug
require_auth: false
ui_url: https://herald.example.com
outbound:
  allowlist: [10.0.0.0/8, hooks.internal]
notifications:
  cycle_timers: { notifications: 120 }
reports:
  enable_data_ingress: false
  cycle_timers: { load: 2.5 }
event_log:
  kind: kafka
  topics: { events: acme.events }
  kafka:
    brokers: [kafka-1:9092, "[::1]:9093"]
    ssl: true
    sasl: { mechanism: scram-sha-512, username: herald, password: kafka-secret }
    consumer: { commit_interval_ms: 0, partitions_consumed_concurrently: 3 }
warehouse:
  kind: clickhouse
  clickhouse: { url: http://clickhouse:8123, database: herald }
`,
      )
      assert.equal(config.listen, '127.0.0.1')
      assert.equal(config.port, 9000)
      assert.equal(config.log_level, 'debug')
      assert.equal(config.require_auth, false)
      assert.equal(config.ui_url, 'https://herald.example.com')
      assert.deepEqual(config.outbound.allowlist, ['10.0.0.0/8', 'hooks.internal'])
      assert.equal(config.notifications.cycle_timers.notifications, 120)
      assert.equal(config.notifications.enabled, true, 'siblings keep their defaults')
      assert.deepEqual(config.reports.cycle_timers, { load: 2.5, refresh: 60, metrics: 3600 })
      assert.equal(config.reports.enable_data_ingress, false)
      assert.equal(config.event_log.topics.events, 'acme.events')
      assert.equal(config.event_log.topics.dlq, 'engine.events.dlq')
      assert.deepEqual(config.event_log.kafka, {
        brokers: ['kafka-1:9092', '[::1]:9093'],
        client_id: 'herald',
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'herald', password: 'kafka-secret' },
        idempotent: true,
        max_request_bytes: 1_048_576,
        consumer: {
          max_wait_ms: 5000,
          commit_interval_ms: 0,
          partitions_consumed_concurrently: 3,
          max_bytes_per_partition: 1_048_576,
          max_bytes: 10_485_760,
        },
      })
      assert.deepEqual(config.warehouse.clickhouse, {
        url: 'http://clickhouse:8123',
        username: null,
        password: null,
        database: 'herald',
      })
    })

    it('resolves a relative HERALD_CONFIG against cwd', () => {
      const read: string[] = []
      loadConfig({
        env: { HERALD_CONFIG: 'conf/herald.yaml' },
        cwd: CWD,
        readFile: (path) => {
          read.push(path)
          return 'port: 1234'
        },
      })
      assert.deepEqual(read, ['/srv/herald/conf/herald.yaml'])
    })

    it('names a missing file', () => {
      const error = failure(() => loadConfig({ env: { HERALD_CONFIG: '/nowhere/herald.yaml' }, cwd: CWD }))
      assert.deepEqual(error.issues, [
        { path: '/nowhere/herald.yaml', message: 'cannot read the configuration file: no such file' },
      ])
      assert.equal(error.code, 'config_invalid')
    })

    it('names the file and line of a YAML error without quoting the line', () => {
      const error = failure(() => load({}, 'port: 8228\nadmin_token: "0123456789abcdefSECRET\nlisten: [\n'))
      assert.ok(error.issues.length >= 1)
      assert.match(error.issues[0]?.path ?? '', /^\/etc\/herald\/herald\.yaml:\d+:\d+$/)
      assert.match(error.issues[0]?.message ?? '', /^invalid YAML: /)
      assert.doesNotMatch(error.message, /SECRET/)
    })

    it('rejects duplicate keys', () => {
      const error = failure(() => load({}, 'port: 1\nport: 2\n'))
      assert.match(error.message, /herald\.yaml:2:1: invalid YAML: Map keys must be unique/)
    })

    it('rejects a file that is not a mapping', () => {
      const error = failure(() => load({}, '- port\n- 8228\n'))
      assert.equal(issue(error, FILE), `${FILE}: expected a mapping of configuration keys, got a list`)
    })

    it('rejects unknown keys at every level, naming them with their line and a suggestion', () => {
      const error = failure(() =>
        load({}, 'log_levl: debug\nwarehouse:\n  clickhouse:\n    pasword: x\n    whatever: 1\nnope: 1\n'),
      )
      assert.equal(issue(error, 'log_levl'), `log_levl (${FILE}:1): unknown key; did you mean log_level?`)
      assert.equal(
        issue(error, 'warehouse.clickhouse.pasword'),
        `warehouse.clickhouse.pasword (${FILE}:4): unknown key; did you mean password?`,
      )
      assert.equal(
        issue(error, 'warehouse.clickhouse.whatever'),
        `warehouse.clickhouse.whatever (${FILE}:5): unknown key`,
      )
      assert.equal(issue(error, 'nope'), `nope (${FILE}:6): unknown key`)
    })

    it('takes values as typed: a quoted number is not an integer', () => {
      const error = failure(() => load({}, 'port: "8228"\n'))
      assert.equal(issue(error, 'port'), `port (${FILE}:1): expected an integer 0-65535, got "8228"`)
    })

    it('takes list elements as typed too: a quoted number in retry_schedule_ms is refused by its index', () => {
      const error = failure(() =>
        load({}, 'notifications:\n  delivery:\n    retry_schedule_ms: [0, "5000", 300000, 1.5]\n'),
      )
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[1]'),
        `notifications.delivery.retry_schedule_ms[1] (${FILE}:3): expected a whole number of milliseconds 0-604800000 (7 days), got "5000"`,
      )
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[3]'),
        `notifications.delivery.retry_schedule_ms[3] (${FILE}:3): expected a whole number of milliseconds 0-604800000 (7 days), got 1.5`,
      )
      assert.equal(error.issues.length, 2, error.message)
    })
  })

  describe('environment overrides', () => {
    it('override the file, key by key', () => {
      const config = load(
        {
          HERALD_PORT: '9001',
          HERALD_WAREHOUSE__CLICKHOUSE__URL: 'https://ch.example.com:8443',
          HERALD_NOTIFICATIONS__CYCLE_TIMERS__NOTIFICATIONS: '45',
          HERALD_REPORTS__CYCLE_TIMERS__LOAD: '0.25',
          HERALD_REQUIRE_AUTH: 'no',
        },
        'port: 9000\nrequire_auth: true\nwarehouse:\n  kind: clickhouse\n  clickhouse: { url: http://old:8123, database: herald }\n',
      )
      assert.equal(config.port, 9001)
      assert.equal(config.require_auth, false)
      assert.equal(config.warehouse.clickhouse.url, 'https://ch.example.com:8443')
      assert.equal(config.warehouse.clickhouse.database, 'herald', 'file values the env does not touch stay')
      assert.equal(config.notifications.cycle_timers.notifications, 45)
      assert.equal(config.reports.cycle_timers.load, 0.25)
    })

    it('reach every key, including ones the file leaves out', () => {
      const config = load({
        HERALD_LISTEN: '::',
        HERALD_ADMIN_TOKEN: 'adm1n-t0ken-0123456789',
        HERALD_AUTHORIZATION_HANDLER: 'external',
        HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT: 'http://authz:8080/check',
        HERALD_EVENT_LOG__KAFKA__SASL__MECHANISM: 'plain',
        HERALD_EVENT_LOG__KAFKA__SASL__USERNAME: 'u',
        HERALD_EVENT_LOG__KAFKA__SASL__PASSWORD: 'p',
        HERALD_SECRETS__ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
      })
      assert.equal(config.listen, '::')
      assert.equal(config.admin_token, 'adm1n-t0ken-0123456789')
      assert.equal(config.authorization_handler, 'external')
      assert.equal(config.authorization_handler_config.endpoint, 'http://authz:8080/check')
      assert.deepEqual(config.event_log.kafka.sasl, { mechanism: 'plain', username: 'u', password: 'p' })
      assert.equal(config.secrets.encryption_key, Buffer.alloc(32, 7).toString('base64'))
    })

    it('refuses a key whose last character carries bits past its 32 bytes, as start-up would, naming where it came from', () => {
      // Decodes to 32 bytes, but the final character's low bits are not zero: not the encoding
      // of any key, so most likely a typo (start-up's check refuses it).
      const key = 'MySecretKeyMaterialTypo0123456789abcdefghij='
      assert.equal(Buffer.from(key, 'base64').length, 32)
      const error = failure(() =>
        load({
          HERALD_SECRETS__ENCRYPTION_KEY: key,
          HERALD_SECRETS__PREVIOUS_KEYS: `${key},${Buffer.alloc(32, 7).toString('base64')}`,
        }),
      )
      assert.match(
        issue(error, 'secrets.encryption_key'),
        /^secrets\.encryption_key \(HERALD_SECRETS__ENCRYPTION_KEY\): .*not the canonical base64/,
      )
      assert.match(issue(error, 'secrets.previous_keys[0]'), /not the canonical base64/)
      assert.doesNotMatch(error.message, /MySecretKey/)
    })

    it('drops the line break a token or key read from a file ends in, and refuses whitespace within a token', () => {
      const key = Buffer.alloc(32, 7).toString('base64')
      const config = load({
        HERALD_ADMIN_TOKEN: ' adm1n-t0ken-0123456789\n',
        HERALD_SECRETS__ENCRYPTION_KEY: `${key}\r\n`,
      })
      assert.equal(config.admin_token, 'adm1n-t0ken-0123456789')
      assert.equal(config.secrets.encryption_key, key)
      const spaced = failure(() => load({ HERALD_ADMIN_TOKEN: 'adm1n t0ken 0123456789' }))
      assert.equal(
        issue(spaced, 'admin_token'),
        'admin_token (HERALD_ADMIN_TOKEN): must not contain whitespace: a bearer token cannot carry it',
      )
      assert.doesNotMatch(spaced.message, /t0ken/)
    })

    it('coerces booleans: true/false/1/0/yes/no in any case', () => {
      for (const [raw, expected] of [
        ['true', true],
        ['FALSE', false],
        ['1', true],
        ['0', false],
        ['Yes', true],
        ['no', false],
        [' true ', true],
      ] as const) {
        assert.equal(load({ HERALD_REPORTS__GRAPHIQL: raw }).reports.graphiql, expected, raw)
      }
      const error = failure(() => load({ HERALD_REPORTS__GRAPHIQL: 'maybe' }))
      assert.match(
        issue(error, 'reports.graphiql'),
        /^reports\.graphiql \(HERALD_REPORTS__GRAPHIQL\): expected a boolean .*, got "maybe"$/,
      )
    })

    it('coerces integers', () => {
      assert.equal(load({ HERALD_REPORTS__BATCH_SIZE: ' 250 ' }).reports.batch_size, 250)
      assert.equal(
        issue(
          failure(() => load({ HERALD_PORT: 'abc' })),
          'port',
        ),
        'port (HERALD_PORT): expected an integer 0-65535, got "abc"',
      )
      assert.equal(
        issue(
          failure(() => load({ HERALD_PORT: '80.5' })),
          'port',
        ),
        'port (HERALD_PORT): expected an integer 0-65535, got "80.5"',
      )
      assert.equal(
        issue(
          failure(() => load({ HERALD_PORT: '65536' })),
          'port',
        ),
        'port (HERALD_PORT): expected an integer 0-65535, got 65536',
      )
    })

    it('takes metrics.account_series_limit from 0 (no account label, the default) to 10,000', () => {
      assert.equal(load({}).metrics.account_series_limit, 0)
      assert.equal(load({ HERALD_METRICS__ACCOUNT_SERIES_LIMIT: '50' }).metrics.account_series_limit, 50)
      assert.equal(
        issue(
          failure(() => load({ HERALD_METRICS__ACCOUNT_SERIES_LIMIT: '10001' })),
          'metrics.account_series_limit',
        ),
        'metrics.account_series_limit (HERALD_METRICS__ACCOUNT_SERIES_LIMIT): expected an integer 0-10000, got 10001',
      )
    })

    it('coerces comma-separated lists', () => {
      assert.deepEqual(
        load({ HERALD_OUTBOUND__ALLOWLIST: ' 10.0.0.0/8, *.corp.example ,,::1 ' }).outbound.allowlist,
        ['10.0.0.0/8', '*.corp.example', '::1'],
      )
      assert.deepEqual(
        load({ HERALD_OUTBOUND__ALLOWLIST: '' }, 'outbound: { allowlist: [a.example] }').outbound.allowlist,
        [],
      )
      const error = failure(() => load({ HERALD_EVENT_LOG__KAFKA__BROKERS: 'k1:9092,k2' }))
      assert.equal(
        issue(error, 'event_log.kafka.brokers[1]'),
        'event_log.kafka.brokers[1] (HERALD_EVENT_LOG__KAFKA__BROKERS): expected host:port (IPv6 in brackets), got "k2"',
      )
    })

    it('coerces the numbers of a comma-separated list, and names a bad one by its index and variable', () => {
      const variable = 'HERALD_NOTIFICATIONS__DELIVERY__RETRY_SCHEDULE_MS'
      assert.deepEqual(
        load({ [variable]: ' 0, 5000 ,300000' }).notifications.delivery.retry_schedule_ms,
        [0, 5000, 300000],
      )
      const error = failure(() => load({ [variable]: '0,5s,-1' }))
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[1]'),
        `notifications.delivery.retry_schedule_ms[1] (${variable}): expected a whole number of milliseconds 0-604800000 (7 days), got "5s"`,
      )
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[2]'),
        `notifications.delivery.retry_schedule_ms[2] (${variable}): expected a whole number of milliseconds 0-604800000 (7 days), got -1`,
      )
    })

    it('refuses a retry step over 7 days, which would put the next attempt past what a date can hold', () => {
      const variable = 'HERALD_NOTIFICATIONS__DELIVERY__RETRY_SCHEDULE_MS'
      assert.deepEqual(
        load({ [variable]: '0,604800000' }).notifications.delivery.retry_schedule_ms,
        [0, 604_800_000],
      )
      const error = failure(() => load({ [variable]: '0,604800001,8640000000000000' }))
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[1]'),
        `notifications.delivery.retry_schedule_ms[1] (${variable}): expected a whole number of milliseconds 0-604800000 (7 days), got 604800001`,
      )
      assert.equal(
        issue(error, 'notifications.delivery.retry_schedule_ms[2]'),
        `notifications.delivery.retry_schedule_ms[2] (${variable}): expected a whole number of milliseconds 0-604800000 (7 days), got 8640000000000000`,
      )
    })

    it('accepts HERALD_OUTBOUND_ALLOWLIST as an alias, and rejects it disagreeing with the canonical name', () => {
      assert.deepEqual(load({ HERALD_OUTBOUND_ALLOWLIST: 'a.example,b.example' }).outbound.allowlist, [
        'a.example',
        'b.example',
      ])
      assert.deepEqual(
        load({ HERALD_OUTBOUND_ALLOWLIST: 'a.example', HERALD_OUTBOUND__ALLOWLIST: 'a.example' }).outbound
          .allowlist,
        ['a.example'],
      )
      const error = failure(() =>
        load({ HERALD_OUTBOUND_ALLOWLIST: 'a.example', HERALD_OUTBOUND__ALLOWLIST: 'b.example' }),
      )
      assert.match(issue(error, 'HERALD_OUTBOUND_ALLOWLIST'), /alias of HERALD_OUTBOUND__ALLOWLIST/)
      const bad = failure(() => load({ HERALD_OUTBOUND_ALLOWLIST: 'ok.example,not a host' }))
      assert.equal(
        issue(bad, 'outbound.allowlist[1]'),
        'outbound.allowlist[1] (HERALD_OUTBOUND_ALLOWLIST): expected a host name (optionally *.domain), IP address or CIDR range, got "not a host"',
      )
    })

    it('makes an empty value null for nullable keys', () => {
      assert.equal(load({ HERALD_UI_URL: '' }, 'ui_url: https://ui.example.com').ui_url, null)
    })

    it('can clear the optional sasl section, and only with an empty value', () => {
      const yaml = 'event_log:\n  kafka:\n    sasl: { mechanism: plain, username: u, password: p }\n'
      assert.equal(load({ HERALD_EVENT_LOG__KAFKA__SASL: '' }, yaml).event_log.kafka.sasl, null)
      const error = failure(() => load({ HERALD_EVENT_LOG__KAFKA__SASL: 'plain' }, yaml))
      assert.match(
        issue(error, 'event_log.kafka.sasl'),
        /^event_log\.kafka\.sasl \(HERALD_EVENT_LOG__KAFKA__SASL\): only an empty value/,
      )
    })

    it("ignores the client commands' HERALD_URL and HERALD_TOKEN, so exporting them does not stop the server", () => {
      assert.deepEqual(load({ HERALD_URL: 'http://localhost:8228', HERALD_TOKEN: 'x' }), DEFAULTS)
      // Only those exact names: a near miss is still a typo of a key.
      assert.match(
        issue(
          failure(() => load({ HERALD_TOKENS: 'x' })),
          'HERALD_TOKENS',
        ),
        /unknown configuration variable/,
      )
    })

    it('rejects unknown HERALD_ variables, suggesting the intended one', () => {
      const error = failure(() =>
        load({
          HERALD_WAREHOUSE_CLICKHOUSE_URL: 'http://ch:8123',
          HERALD_PROT: '1',
          herald_port: '1',
          HERALD_SOMETHING_ELSE_ENTIRELY: 'x',
          HERALD_WAREHOUSE__CLICKHOUSE: 'x',
        }),
      )
      assert.equal(
        issue(error, 'HERALD_WAREHOUSE_CLICKHOUSE_URL'),
        'HERALD_WAREHOUSE_CLICKHOUSE_URL: unknown configuration variable; did you mean HERALD_WAREHOUSE__CLICKHOUSE__URL?',
      )
      assert.equal(
        issue(error, 'HERALD_PROT'),
        'HERALD_PROT: unknown configuration variable; did you mean HERALD_PORT?',
      )
      assert.equal(
        issue(error, 'herald_port'),
        'herald_port: unknown configuration variable; did you mean HERALD_PORT?',
      )
      assert.equal(
        issue(error, 'HERALD_SOMETHING_ELSE_ENTIRELY'),
        'HERALD_SOMETHING_ELSE_ENTIRELY: unknown configuration variable',
      )
      assert.match(issue(error, 'HERALD_WAREHOUSE__CLICKHOUSE'), /unknown configuration variable/)
    })
  })

  describe('validation', () => {
    it('reports every bad key at once, with where each value came from', () => {
      const error = failure(() =>
        load(
          { HERALD_PORT: 'abc', HERALD_REPORTS__CYCLE_TIMERS__LOAD: '-5', HERALD_TYPO: '1' },
          `
listen: "not an address!"
log_level: verbose
ui_url: ftp://ui.example.com
authorization_handler_config: { timeout_ms: 0 }
notifications: { enabled: "yes" }
reports: { batch_size: 1.5 }
event_log:
  partitions: 0
  topics: { dlq: "bad topic" }
warehouse:
  kind: clickhouse
  clickhouse: { url: "http://user:hunter2@:8123" }
schema_registry: { kind: confluent }
bogus: true
`,
        ),
      )
      const lines = error.message.split('\n').slice(1)
      assert.deepEqual(lines, [
        `  - bogus (${FILE}:15): unknown key`,
        '  - HERALD_TYPO: unknown configuration variable',
        `  - listen (${FILE}:2): expected an IP address or host name, got "not an address!"`,
        '  - port (HERALD_PORT): expected an integer 0-65535, got "abc"',
        `  - log_level (${FILE}:3): expected one of debug|info|warn|error, got "verbose"`,
        `  - authorization_handler_config.timeout_ms (${FILE}:5): expected a whole number of milliseconds 1-2147483647 (about 24.8 days, the longest timer Node.js can set), got 0`,
        `  - ui_url (${FILE}:4): expected an http(s) URL, got "ftp://ui.example.com"`,
        `  - notifications.enabled (${FILE}:6): expected a boolean (true/false; in the environment also 1/0/yes/no), got "yes"`,
        '  - reports.cycle_timers.load (HERALD_REPORTS__CYCLE_TIMERS__LOAD): expected a number 0.05-86400, got -5',
        `  - reports.batch_size (${FILE}:7): expected a positive integer, got 1.5`,
        `  - event_log.partitions (${FILE}:9): expected a positive integer, got 0`,
        `  - event_log.topics.dlq (${FILE}:10): expected a Kafka topic name (letters, digits, . _ -; at most 249 characters), got "bad topic"`,
        `  - warehouse.clickhouse.url (${FILE}:13): expected an http(s) URL, got "http://[redacted]@:8123"`,
        `  - schema_registry.confluent.url: required when schema_registry.kind is confluent, as set at ${FILE}:14`,
      ])
      assert.doesNotMatch(error.message, /hunter2/)
    })

    it('refuses a time that would set a timer longer than Node.js can (2^31 - 1 ms), which would fire after 1 ms', () => {
      const millis =
        'expected a whole number of milliseconds 1-2147483647 (about 24.8 days, the longest timer Node.js can set)'
      const seconds =
        'expected a whole number of seconds 1-2147483 (about 24.8 days, the longest timer Node.js can set)'
      const error = failure(() =>
        load({
          HERALD_SHUTDOWN_TIMEOUT_MS: '2147483648',
          HERALD_AUTHORIZATION_HANDLER_CONFIG__TIMEOUT_MS: '2147483648',
          HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS: '2147483648',
          HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS: '2147483648',
          HERALD_REPORTS__CYCLE_TIMERS__METRICS: '5000000',
        }),
      )
      assert.deepEqual(
        error.issues.map((i) => `${i.path}: ${i.message}`),
        [
          `authorization_handler_config.timeout_ms (HERALD_AUTHORIZATION_HANDLER_CONFIG__TIMEOUT_MS): ${millis}, got 2147483648`,
          `shutdown_timeout_ms (HERALD_SHUTDOWN_TIMEOUT_MS): ${millis}, got 2147483648`,
          `notifications.webhook_timeout_ms (HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS): ${millis}, got 2147483648`,
          `notifications.delivery.attempt_timeout_ms (HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS): ${millis}, got 2147483648`,
          `reports.cycle_timers.metrics (HERALD_REPORTS__CYCLE_TIMERS__METRICS): ${seconds}, got 5000000`,
        ],
      )
      const longest = load({
        HERALD_SHUTDOWN_TIMEOUT_MS: '2147483647',
        HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS: '2147483647',
        HERALD_REPORTS__CYCLE_TIMERS__METRICS: '2147483',
      })
      assert.equal(longest.shutdown_timeout_ms, 2_147_483_647)
      assert.equal(longest.reports.cycle_timers.metrics, 2_147_483)
      // Twice the longest request would be past the limit too: the attempt's default stops at it.
      assert.equal(attemptTimeoutOf(longest.notifications), 2_147_483_647)
    })

    it('reports a section of the wrong shape', () => {
      const error = failure(() => load({}, 'warehouse: clickhouse\noutbound: [a]\n'))
      assert.equal(issue(error, 'warehouse'), `warehouse (${FILE}:1): expected a mapping, got a string`)
      assert.equal(issue(error, 'outbound'), `outbound (${FILE}:2): expected a mapping, got a list`)
    })

    it('rejects null on a key that is not nullable', () => {
      const error = failure(() => load({}, 'port: null\n'))
      assert.equal(issue(error, 'port'), `port (${FILE}:1): expected an integer 0-65535, got null`)
    })
  })

  describe('cross-key rules', () => {
    it('kafka needs brokers', () => {
      assert.equal(
        issue(
          failure(() => load({ HERALD_EVENT_LOG__KIND: 'kafka' })),
          'event_log.kafka.brokers',
        ),
        'event_log.kafka.brokers: at least one broker is required when event_log.kind is kafka, as set by HERALD_EVENT_LOG__KIND',
      )
      assert.deepEqual(
        load({ HERALD_EVENT_LOG__KIND: 'kafka', HERALD_EVENT_LOG__KAFKA__BROKERS: 'k:9092' }).event_log.kafka
          .brokers,
        ['k:9092'],
      )
    })

    it('kurrentdb needs a connection string', () => {
      assert.equal(
        issue(
          failure(() => load({}, 'event_store: { kind: kurrentdb }')),
          'event_store.kurrentdb.connection_string',
        ),
        `event_store.kurrentdb.connection_string: required when event_store.kind is kurrentdb, as set at ${FILE}:1`,
      )
      const connection = 'kurrentdb://admin:changeit@localhost:2113?tls=false'
      assert.equal(
        load({
          HERALD_EVENT_STORE__KIND: 'kurrentdb',
          HERALD_EVENT_STORE__KURRENTDB__CONNECTION_STRING: connection,
        }).event_store.kurrentdb.connection_string,
        connection,
      )
    })

    it('refuses a KurrentDB connection string option the client does not know, naming it and never the password', () => {
      const error = failure(() =>
        load({
          HERALD_EVENT_STORE__KIND: 'kurrentdb',
          HERALD_EVENT_STORE__KURRENTDB__CONNECTION_STRING:
            'kurrentdb://admin:S3cret@127.0.0.1:1?tlsverifycerts=false&tls=false&Node_Preference=leader&bogus=1',
        }),
      )
      assert.equal(
        issue(error, 'event_store.kurrentdb.connection_string'),
        'event_store.kurrentdb.connection_string (HERALD_EVENT_STORE__KURRENTDB__CONNECTION_STRING): unknown options tlsverifycerts, bogus (KurrentDB knows connectionName, defaultDeadline, discoveryInterval, dnsDiscover, gossipTimeout, keepAliveInterval, keepAliveTimeout, maxDiscoverAttempts, nodePreference, throwOnAppendFailure, tls, tlsCAFile, tlsVerifyCert, userCertFile, userKeyFile)',
      )
      assert.doesNotMatch(error.message, /S3cret/)
    })

    it('clickhouse needs a url', () => {
      assert.equal(
        issue(
          failure(() => load({ HERALD_WAREHOUSE__KIND: 'clickhouse' })),
          'warehouse.clickhouse.url',
        ),
        'warehouse.clickhouse.url: required when warehouse.kind is clickhouse, as set by HERALD_WAREHOUSE__KIND',
      )
    })

    it('external authorization needs an endpoint', () => {
      assert.equal(
        issue(
          failure(() => load({ HERALD_AUTHORIZATION_HANDLER: 'external' })),
          'authorization_handler_config.endpoint',
        ),
        'authorization_handler_config.endpoint: required when authorization_handler is external, as set by HERALD_AUTHORIZATION_HANDLER',
      )
    })

    it('confluent needs a url, and a username goes with a password', () => {
      const error = failure(() =>
        load({
          HERALD_SCHEMA_REGISTRY__KIND: 'confluent',
          HERALD_SCHEMA_REGISTRY__CONFLUENT__USERNAME: 'sr',
        }),
      )
      assert.match(
        issue(error, 'schema_registry.confluent.url'),
        /required when schema_registry\.kind is confluent/,
      )
      assert.equal(
        issue(error, 'schema_registry.confluent.password'),
        'schema_registry.confluent.password: required when schema_registry.confluent.username is set, as set by HERALD_SCHEMA_REGISTRY__CONFLUENT__USERNAME',
      )
    })

    it('a sasl section needs all of its keys', () => {
      const error = failure(() => load({ HERALD_EVENT_LOG__KAFKA__SASL__USERNAME: 'u' }))
      assert.equal(
        issue(error, 'event_log.kafka.sasl.mechanism'),
        'event_log.kafka.sasl.mechanism: required when event_log.kafka.sasl is set, as set by HERALD_EVENT_LOG__KAFKA__SASL__USERNAME',
      )
      assert.equal(
        issue(error, 'event_log.kafka.sasl.password'),
        'event_log.kafka.sasl.password: required when event_log.kafka.sasl is set, as set by HERALD_EVENT_LOG__KAFKA__SASL__USERNAME',
      )
    })

    it('topics are distinct', () => {
      const error = failure(() => load({ HERALD_EVENT_LOG__TOPICS__METRICS: 'engine.events' }))
      assert.equal(
        issue(error, 'event_log.topics.metrics'),
        'event_log.topics.metrics (HERALD_EVENT_LOG__TOPICS__METRICS): same topic as event_log.topics.events; every topic must be distinct',
      )
      // Both set: the message names where the first one came from too.
      const both = failure(() =>
        load({ HERALD_EVENT_LOG__TOPICS__DLQ: 'shared', HERALD_EVENT_LOG__TOPICS__OUTCOMES: 'shared' }),
      )
      assert.equal(
        issue(both, 'event_log.topics.outcomes'),
        'event_log.topics.outcomes (HERALD_EVENT_LOG__TOPICS__OUTCOMES): same topic as event_log.topics.dlq, as set by HERALD_EVENT_LOG__TOPICS__DLQ; every topic must be distinct',
      )
    })

    it('an attempt may take at least as long as one request', () => {
      const error = failure(() => load({ HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS: '5000' }))
      assert.equal(
        issue(error, 'notifications.delivery.attempt_timeout_ms'),
        'notifications.delivery.attempt_timeout_ms (HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS): must be at least notifications.webhook_timeout_ms (15000)',
      )
      const raised = failure(() =>
        load({
          HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS: '45000',
          HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS: '30000',
        }),
      )
      assert.equal(
        issue(raised, 'notifications.delivery.attempt_timeout_ms'),
        'notifications.delivery.attempt_timeout_ms (HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS): must be at least notifications.webhook_timeout_ms (45000, as set by HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS)',
      )
      // Unset, it is twice the request limit, whatever that is.
      const unset = load({ HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS: '45000' })
      assert.equal(attemptTimeoutOf(unset.notifications), 90_000)
      assert.equal(attemptTimeoutOf(load({}).notifications), 30_000)
      const both = load({
        HERALD_NOTIFICATIONS__WEBHOOK_TIMEOUT_MS: '45000',
        HERALD_NOTIFICATIONS__DELIVERY__ATTEMPT_TIMEOUT_MS: '45000',
      })
      assert.equal(both.notifications.delivery.attempt_timeout_ms, 45_000)
    })

    it('rules still run when other keys are bad, and stay quiet about keys already reported', () => {
      const error = failure(() =>
        load({
          HERALD_PORT: 'x',
          HERALD_WAREHOUSE__KIND: 'clickhouse',
          HERALD_WAREHOUSE__CLICKHOUSE__URL: 'nope',
        }),
      )
      assert.deepEqual(
        error.issues.map((i) => i.path),
        ['port (HERALD_PORT)', 'warehouse.clickhouse.url (HERALD_WAREHOUSE__CLICKHOUSE__URL)'],
      )
    })
  })

  describe('secrets', () => {
    const MARK = 'Zq7SecretMarker'
    const URL_MARK = 'Zq7UrlPassword'

    it('never echoes a bad secret, from the environment or the file', () => {
      const fromEnv = failure(() =>
        load({
          HERALD_ADMIN_TOKEN: MARK,
          HERALD_SECRETS__ENCRYPTION_KEY: `${MARK}==`,
          HERALD_EVENT_STORE__KURRENTDB__CONNECTION_STRING: `http://admin:${MARK}@kurrent:2113`,
        }),
      )
      assert.equal(
        issue(fromEnv, 'admin_token'),
        'admin_token (HERALD_ADMIN_TOKEN): too short: must be at least 16 characters',
      )
      assert.match(issue(fromEnv, 'secrets.encryption_key'), /expected base64 of exactly 32 bytes/)
      assert.match(
        issue(fromEnv, 'event_store.kurrentdb.connection_string'),
        /expected a KurrentDB connection string/,
      )
      assert.doesNotMatch(fromEnv.message, new RegExp(MARK))

      const fromFile = failure(() =>
        load(
          {},
          `
admin_token: ${MARK}
event_log: { kafka: { sasl: { mechanism: plain, username: u, password: [${MARK}] } } }
warehouse: { clickhouse: { password: 1234567${MARK.length} } }
schema_registry: { confluent: { username: u, password: { ${MARK}: 1 } } }
secrets: { encryption_key: ${Buffer.from(MARK).toString('base64')} }
`,
        ),
      )
      assert.deepEqual(
        fromFile.issues.map((i) => i.path.replace(/ \(.*\)$/, '')),
        [
          'admin_token',
          'event_log.kafka.sasl.password',
          'warehouse.clickhouse.password',
          'schema_registry.confluent.password',
          'secrets.encryption_key',
        ],
      )
      assert.doesNotMatch(fromFile.message, new RegExp(`${MARK}|1234567`))
      assert.match(issue(fromFile, 'secrets.encryption_key'), /decodes to 15$/)
    })

    it('never echoes a section written as a string, nor a whole file that is one', () => {
      const section = failure(() => load({}, `event_log: { kafka: { sasl: "plain:herald:${MARK}" } }`))
      assert.equal(
        issue(section, 'event_log.kafka.sasl'),
        `event_log.kafka.sasl (${FILE}:1): expected a mapping, or null, got a string`,
      )
      const file = failure(() => load({}, `HERALD_ADMIN_TOKEN=${MARK}`))
      assert.equal(issue(file, FILE), `${FILE}: expected a mapping of configuration keys, got a string`)
    })

    it('never quotes the source of a YAML error', () => {
      const error = failure(() => load({}, `admin_token: |${MARK}\n  x\n`))
      assert.deepEqual(error.issues[0], {
        path: `${FILE}:1:15`,
        message: 'invalid YAML: Block scalar header includes extra characters',
      })
      assert.doesNotMatch(error.message, new RegExp(MARK))
    })

    it('never quotes a secret written unquoted as a YAML tag or alias, and says to quote it', () => {
      const tag = failure(() => load({}, `admin_token: !${MARK}!\n`))
      assert.deepEqual(tag.issues, [
        {
          path: `${FILE}:1:14`,
          message: 'invalid YAML: a value starting with ! is read as a YAML tag; quote it',
        },
      ])
      // The parser takes this one; turning the document into values would throw, naming the alias.
      const alias = failure(() => load({}, `event_log:\n  kafka:\n    sasl:\n      password: *${MARK}\n`))
      assert.deepEqual(alias.issues, [
        {
          path: `${FILE}:4:17`,
          message:
            'invalid YAML: a value starting with * is read as a YAML alias of an anchor never set; quote it',
        },
      ])
      for (const error of [tag, alias]) {
        assert.ok(error instanceof ConfigError)
        assert.doesNotMatch(error.message, new RegExp(MARK))
      }
      // An alias of an anchor that is set is YAML's own, and read.
      const config = load(
        {},
        'ui_url: &u "https://herald.example.com"\nauthorization_handler_config:\n  endpoint: *u\n',
      )
      assert.equal(config.authorization_handler_config.endpoint, 'https://herald.example.com')
    })

    it('never echoes credentials inside a URL', () => {
      const error = failure(() => load({ HERALD_UI_URL: `ftp://me:${URL_MARK}@ui.example.com/` }))
      assert.equal(
        issue(error, 'ui_url'),
        'ui_url (HERALD_UI_URL): expected an http(s) URL, got "ftp://[redacted]@ui.example.com/"',
      )
    })

    it('refuses a URL key spelt other than scheme://, naming its variable and not its credentials', () => {
      const spellings = [
        `http:/bob:${URL_MARK}@ch:8123`,
        `http:\\\\bob:${URL_MARK}@ch`,
        `http:bob:${URL_MARK}@ch`,
      ]
      const keys = [
        'ui_url',
        'authorization_handler_config.endpoint',
        'warehouse.clickhouse.url',
        'schema_registry.confluent.url',
      ]
      for (const spelling of [...spellings, `http:///bob:${URL_MARK}@ch`, `http://bob:${URL_MARK}@ch/a b`]) {
        const error = failure(() =>
          load({
            HERALD_UI_URL: spelling,
            HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT: spelling,
            HERALD_WAREHOUSE__CLICKHOUSE__URL: spelling,
            HERALD_SCHEMA_REGISTRY__CONFLUENT__URL: spelling,
          }),
        )
        for (const key of keys) {
          assert.match(
            issue(error, key),
            /^[a-z_.]+ \(HERALD_[A-Z_]+\): expected an http\(s\) URL written as http:\/\/host… or https:\/\/host…/,
          )
        }
        assert.doesNotMatch(error.message, new RegExp(URL_MARK), spelling)
      }
      const relative = failure(() => load({ HERALD_UI_URL: `//ui:${URL_MARK}@h` }))
      assert.equal(
        issue(relative, 'ui_url'),
        'ui_url (HERALD_UI_URL): expected an http(s) URL, got "//[redacted]@h"',
      )
    })

    it('refuses an external authorizer URL with user-info, naming the key and never its password', () => {
      const refusal = (source: string) =>
        `authorization_handler_config.endpoint (${source}): expected an http(s) URL without user-info: Herald cannot call a URL holding credentials (user:password@ before the host), got "https://[redacted]@authz.internal/decide"`
      for (const endpoint of [
        `https://herald:${URL_MARK}@authz.internal/decide`,
        `https://:${URL_MARK}@authz.internal/decide`,
        'https://herald@authz.internal/decide',
      ]) {
        const error = failure(() =>
          load({
            HERALD_AUTHORIZATION_HANDLER: 'external',
            HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT: endpoint,
          }),
        )
        assert.equal(
          issue(error, 'authorization_handler_config.endpoint'),
          refusal('HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT'),
          endpoint,
        )
        assert.doesNotMatch(error.message, new RegExp(URL_MARK))
      }
      const yaml = `authorization_handler: external\nauthorization_handler_config:\n  endpoint: https://herald:${URL_MARK}@authz.internal/decide\n`
      const fromFile = failure(() => load({}, yaml))
      assert.equal(issue(fromFile, 'authorization_handler_config.endpoint'), refusal(`${FILE}:3`))
      assert.doesNotMatch(fromFile.message, new RegExp(URL_MARK))
      // An @ in the path is not user-info.
      assert.equal(
        load({
          HERALD_AUTHORIZATION_HANDLER: 'external',
          HERALD_AUTHORIZATION_HANDLER_CONFIG__ENDPOINT: 'https://authz.internal/decide/@herald',
        }).authorization_handler_config.endpoint,
        'https://authz.internal/decide/@herald',
      )
    })

    it('trims the spaces around a URL, so it is stored and shown as written', () => {
      const config = load({ HERALD_UI_URL: ` https://viewer:${URL_MARK}@ui.example.com/app\n` })
      assert.equal(config.ui_url, `https://viewer:${URL_MARK}@ui.example.com/app`)
      assert.equal(load({ HERALD_UI_URL: 'HTTPS://ui.example.com' }).ui_url, 'HTTPS://ui.example.com')
    })
  })
})
