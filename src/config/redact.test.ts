import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadConfig, REDACTED, redactConfig, secretFree } from './index.ts'
import { scrubCredentials } from './redact.ts'

const KEY = Buffer.alloc(32, 9).toString('base64')

const secretive = () =>
  loadConfig({
    cwd: '/srv',
    env: {
      HERALD_ADMIN_TOKEN: 'admin-token-0123456789',
      HERALD_UI_URL: 'https://viewer:ui-pass@ui.example.com/app',
      HERALD_EVENT_LOG__KAFKA__SASL__MECHANISM: 'scram-sha-256',
      HERALD_EVENT_LOG__KAFKA__SASL__USERNAME: 'herald',
      HERALD_EVENT_LOG__KAFKA__SASL__PASSWORD: 'sasl-pass',
      HERALD_EVENT_STORE__KURRENTDB__CONNECTION_STRING: 'kurrentdb://admin:kurrent-pass@db:2113?tls=false',
      HERALD_WAREHOUSE__CLICKHOUSE__URL: 'http://ch-user:ch-url-pass@clickhouse:8123',
      HERALD_WAREHOUSE__CLICKHOUSE__PASSWORD: 'ch-pass',
      HERALD_SCHEMA_REGISTRY__CONFLUENT__USERNAME: 'sr',
      HERALD_SCHEMA_REGISTRY__CONFLUENT__PASSWORD: 'sr-pass',
      HERALD_SECRETS__ENCRYPTION_KEY: KEY,
    },
  })

describe('redactConfig', () => {
  it('replaces every secret and every credential in a URL', () => {
    const redacted = redactConfig(secretive())
    assert.equal(redacted.admin_token, REDACTED)
    assert.deepEqual(redacted.event_log.kafka.sasl, {
      mechanism: 'scram-sha-256',
      username: 'herald',
      password: REDACTED,
    })
    assert.equal(redacted.event_store.kurrentdb.connection_string, 'kurrentdb://[redacted]@db:2113?tls=false')
    assert.equal(redacted.warehouse.clickhouse.url, 'http://[redacted]@clickhouse:8123')
    assert.equal(redacted.warehouse.clickhouse.password, REDACTED)
    assert.equal(redacted.schema_registry.confluent.username, 'sr')
    assert.equal(redacted.schema_registry.confluent.password, REDACTED)
    assert.equal(redacted.secrets.encryption_key, REDACTED)
    assert.equal(redacted.ui_url, 'https://[redacted]@ui.example.com/app')
    const text = JSON.stringify(redacted)
    for (const secret of [
      'admin-token',
      'ui-pass',
      'sasl-pass',
      'kurrent-pass',
      'ch-url-pass',
      'ch-pass',
      'sr-pass',
      KEY,
    ])
      assert.ok(!text.includes(secret), secret)
  })

  it('leaves everything else alone, keeps unset secrets null and does not touch the original', () => {
    const config = loadConfig({ env: {}, cwd: '/srv' })
    assert.deepEqual(redactConfig(config), config)
    assert.equal(redactConfig(config).admin_token, null)
    const original = secretive()
    redactConfig(original)
    assert.equal(original.admin_token, 'admin-token-0123456789')
    assert.ok(Object.isFrozen(redactConfig(original).event_log.kafka))
  })

  it('scrubs user-info up to the last @, so an unencoded @ in a password does not leak its tail', () => {
    assert.equal(scrubCredentials('http://u:p@ss@host:1/x'), 'http://[redacted]@host:1/x')
    assert.equal(
      scrubCredentials('esdb+discover://u:p@a:2113,b:2113'),
      'esdb+discover://[redacted]@a:2113,b:2113',
    )
    assert.equal(scrubCredentials('http://host/path'), 'http://host/path')
    assert.equal(scrubCredentials('not a url @ all'), 'not a url @ all')
  })

  it('scrubs user-info however the URL is spelled, wherever a URL parser would find credentials', () => {
    const spellings = [
      'http:/bob:Pw1@ch:8123',
      'http:\\\\bob:Pw1@ch:8123',
      'http:bob:Pw1@ch:8123',
      ' http://bob:Pw1@ch:8123',
      '\thttp://bob:Pw1@ch:8123',
      'http:///bob:Pw1@ch:8123',
      'h\tttp://bob:Pw1@ch:8123',
      'HTTP://bob:Pw1@ch:8123',
      'http:/\\bob:Pw1@ch:8123',
    ]
    for (const spelling of spellings) {
      // The oracle: Node's own WHATWG parser says these are credentials.
      assert.equal(new URL(spelling).password, 'Pw1', JSON.stringify(spelling))
      const scrubbed = scrubCredentials(spelling)
      assert.ok(
        !scrubbed.includes('Pw1') && !scrubbed.includes('bob'),
        `${JSON.stringify(spelling)} → ${scrubbed}`,
      )
      assert.ok(scrubbed.endsWith(`${REDACTED}@ch:8123`), scrubbed)
    }
    assert.equal(scrubCredentials('http:/bob:Pw1@ch:8123'), 'http:/[redacted]@ch:8123')
    assert.equal(scrubCredentials('//ui:Pw2@h'), '//[redacted]@h')
    assert.equal(scrubCredentials('\\\\ui:Pw2@h'), '\\\\[redacted]@h')
    assert.equal(scrubCredentials('/ui:Pw2@h'), '/[redacted]@h')
    assert.equal(scrubCredentials('ui:Pw2@h'), 'ui:[redacted]@h')
    assert.equal(scrubCredentials('ops@example.com'), 'ops@example.com')
    assert.equal(scrubCredentials('/srv/herald@2/data'), '/srv/herald@2/data')
  })

  it('shows odd spellings of a URL in herald config with their credentials redacted', () => {
    const redacted = redactConfig(
      loadConfig({
        cwd: '/srv',
        env: {
          HERALD_WAREHOUSE__KIND: 'clickhouse',
          HERALD_WAREHOUSE__CLICKHOUSE__URL: ' http://bob:CHPW1@ch:8123 ',
          HERALD_EVENT_LOG__KAFKA__CLIENT_ID: 'http:/bob:CHPW2@x',
        },
      }),
    )
    assert.equal(redacted.warehouse.clickhouse.url, 'http://[redacted]@ch:8123')
    assert.equal(redacted.event_log.kafka.client_id, 'http:/[redacted]@x')
    assert.doesNotMatch(JSON.stringify(redacted), /CHPW/)
  })
})

describe('secretFree', () => {
  it('hides every secret of the configuration, and any URL’s user-info, wherever it appears in a text', () => {
    const hide = secretFree(secretive())
    const text = hide(
      'failed: admin-token-0123456789 sasl-pass kurrentdb://admin:kurrent-pass@db:2113 ch-pass sr-pass ' +
        `${KEY} ch-url-pass ui-pass https://someone:else@elsewhere.example/x`,
    )
    assert.doesNotMatch(
      text,
      /admin-token|sasl-pass|kurrent-pass|ch-pass|sr-pass|ch-url-pass|ui-pass|someone|else@/,
    )
    assert.doesNotMatch(text, new RegExp(KEY.replace(/[+/=]/g, '.')))
    assert.match(text, /^failed: \[redacted\] /)
    assert.equal(hide('nothing secret here'), 'nothing secret here')
  })
})
