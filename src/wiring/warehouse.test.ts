import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../config/index.ts'
import { openWarehouse } from './warehouse.ts'

describe('the ClickHouse server warehouse', () => {
  // A stand-in for the server: what each request logged in as, and which database it named.
  const seen: { user: string; database: string | null }[] = []
  const server = createServer((request, response) => {
    const basic = request.headers.authorization?.replace(/^Basic /, '') ?? ''
    seen.push({
      user: Buffer.from(basic, 'base64').toString(),
      database: new URL(request.url ?? '/', 'http://stand-in').searchParams.get('database'),
    })
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end('{"data":[{"one":1}],"rows":1}')
  })
  let origin = ''
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => server.close())

  const queried = async (env: Record<string, string>) => {
    seen.length = 0
    const config = loadConfig({ env: { HERALD_WAREHOUSE__KIND: 'clickhouse', ...env }, cwd: '/tmp' })
    const warehouse = await openWarehouse(config)
    try {
      await warehouse.query('SELECT 1 AS one')
    } finally {
      await warehouse.close()
    }
    return seen[0]
  }

  it('logs in as the URL says, with its database, when no key says otherwise', async () => {
    assert.deepEqual(
      await queried({ HERALD_WAREHOUSE__CLICKHOUSE__URL: `http://herald:s3cret@${origin}/herald_db` }),
      {
        user: 'herald:s3cret',
        database: 'herald_db',
      },
    )
  })

  it('takes the keys over the URL, and the default user with none', async () => {
    assert.deepEqual(
      await queried({
        HERALD_WAREHOUSE__CLICKHOUSE__URL: `http://herald:s3cret@${origin}/herald_db`,
        HERALD_WAREHOUSE__CLICKHOUSE__USERNAME: 'reports',
        HERALD_WAREHOUSE__CLICKHOUSE__PASSWORD: 'other',
        HERALD_WAREHOUSE__CLICKHOUSE__DATABASE: 'analytics',
      }),
      { user: 'reports:other', database: 'analytics' },
    )
    assert.deepEqual(await queried({ HERALD_WAREHOUSE__CLICKHOUSE__URL: `http://${origin}` }), {
      user: 'default:',
      database: null,
    })
  })
})
