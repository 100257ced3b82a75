import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { CLIENT_COMMANDS } from '../cli/index.ts'
import { envKeysOf } from './env.ts'
import { loadConfig } from './load.ts'
import { REFERENCE_URL, updateReference, withoutTablePadding } from './reference.ts'
import { schema } from './schema.ts'

describe('REFERENCE.md', () => {
  const document = withoutTablePadding(readFileSync(REFERENCE_URL, 'utf8'))

  it('names every client command among those HERALD_URL and HERALD_TOKEN are for', () => {
    const paragraph = /client\s+variables, `HERALD_URL` and `HERALD_TOKEN`[\s\S]*?not given\./.exec(
      document,
    )?.[0]
    assert.ok(paragraph !== undefined, 'the paragraph on the client variables')
    for (const command of Object.keys(CLIENT_COMMANDS))
      assert.match(paragraph, new RegExp(`\`(herald )?${command}\``))
  })

  it('holds the key tables generated from the schema (regenerate: npx node src/config/reference.ts --write)', () => {
    assert.equal(document, withoutTablePadding(updateReference(document)))
  })

  it('shows the errors loadConfig really gives for the inputs its sample error implies', () => {
    const sample = /```\ninvalid configuration:\n((?: {2}- .*\n)+)```/.exec(document)?.[1]
    assert.ok(sample !== undefined, 'the sample error block')
    const yaml = [
      '# herald.yaml',
      'log_levl: debug',
      'event_log:',
      '  kafka:',
      '    client_id: herald',
      '    ssl: false',
      '    sasl: null',
      '    brokers:',
      '      - kafka-1:9092',
      '      - kafka',
    ].join('\n')
    let message = ''
    try {
      loadConfig({
        cwd: '/srv',
        env: {
          HERALD_CONFIG: '/etc/herald/herald.yaml',
          HERALD_WAREHOUSE_CLICKHOUSE_URL: 'http://ch:8123',
          HERALD_PORT: 'abc',
          HERALD_ADMIN_TOKEN: 'short',
          HERALD_WAREHOUSE__KIND: 'clickhouse',
        },
        readFile: () => yaml,
      })
    } catch (error) {
      message = (error as Error).message
    }
    assert.deepEqual(new Set(sample.trimEnd().split('\n')), new Set(message.split('\n').slice(1)))
  })

  it('documents every key with its variable', () => {
    for (const { name, path } of envKeysOf(schema)) {
      assert.ok(document.includes(`|\`${path.join('.')}\`|\`${name}\``), path.join('.'))
    }
  })
})

describe('REFERENCE.md’s Secrets section', () => {
  const document = readFileSync(REFERENCE_URL, 'utf8')

  it('names every secret key of the schema, and only those', () => {
    const section = /## Secrets\n([\s\S]*?) are secrets\./.exec(document)?.[1]
    assert.ok(section !== undefined, 'the Secrets section')
    const named = [...section.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1])
    const secret = envKeysOf(schema)
      .filter(({ node }) => node.node === 'leaf' && node.secret !== false)
      .map(({ path }) => path.join('.'))
    assert.deepEqual(named, secret)
  })
})
