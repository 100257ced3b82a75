import assert from 'node:assert/strict'
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { UnavailableError, WarehouseError } from '../../errors/index.ts'
import { createHttpWarehouse } from './http.ts'
import { WAREHOUSE_SETTINGS } from './warehouse.ts'

/** A loopback port nothing listens on: bound, then released. */
const closedPort = async (): Promise<number> => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

const secret = 'Sup3r-Secret!'

const assertNoSecret = (error: unknown): void => {
  assert.ok(error instanceof Error)
  const visible = JSON.stringify({
    message: error.message,
    context: (error as { context?: unknown }).context,
  })
  assert.ok(!visible.includes(secret) && !visible.includes(encodeURIComponent(secret)), visible)
}

describe('createHttpWarehouse', () => {
  it('reports an unreachable server as retriable, without the password', async () => {
    const port = await closedPort()
    const warehouse = createHttpWarehouse({
      url: `http://herald:${encodeURIComponent(secret)}@127.0.0.1:${port}/herald`,
    })
    for (const call of [
      () => warehouse.ping(),
      () => warehouse.query('SELECT 1'),
      () => warehouse.insert('t', [{}]),
    ]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof UnavailableError)
        assert.equal(error.retriable, true)
        assert.match(
          error.message,
          new RegExp(`http://127\\.0\\.0\\.1:${port} is unreachable \\(ECONNREFUSED\\)`),
        )
        assertNoSecret(error)
        return true
      })
    }
    await warehouse.close()
  })

  it('sends every pinned setting with each query, command and insert, so the server’s profile cannot change them', async () => {
    // A stand-in for the server's HTTP interface that records each request's settings (no
    // ClickHouse server runs here; the server applies a request's settings over its profile's).
    const seen: { statement: string; settings: URLSearchParams }[] = []
    const server = createHttpServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://stand-in')
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const statement = url.searchParams.get('query') ?? Buffer.concat(chunks).toString()
        seen.push({ statement, settings: url.searchParams })
        response.setHeader('Content-Type', 'text/plain')
        response.end(statement.startsWith('SELECT') ? '{"n":1}\n' : '')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    const warehouse = createHttpWarehouse({ url: `http://127.0.0.1:${address.port}` })
    try {
      assert.deepEqual(await warehouse.query('SELECT 1 AS n'), [{ n: 1 }])
      await warehouse.command('CREATE TABLE t (id String) ENGINE = MergeTree ORDER BY id')
      await warehouse.insert('t', [{ id: 'a' }], { deduplicationToken: 'tok' })
    } finally {
      await warehouse.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    assert.equal(seen.length, 3)
    for (const { statement, settings } of seen) {
      for (const [name, value] of Object.entries({
        ...WAREHOUSE_SETTINGS,
        // Named here too, so that dropping one from the list fails this test.
        async_insert: 0,
        insert_deduplicate: 1,
        date_time_output_format: 'simple',
      }))
        assert.equal(settings.get(name), String(value), `${name} of ${statement}`)
    }
    assert.equal(seen[2]?.settings.get('insert_deduplication_token'), 'tok')
  })

  it('rejects a malformed URL without echoing it', () => {
    assert.throws(
      () => createHttpWarehouse({ url: `http://herald:${secret}@[oops` }),
      (error: unknown) => {
        assert.ok(error instanceof WarehouseError)
        assert.equal(error.cause, undefined)
        assertNoSecret(error)
        return true
      },
    )
    assert.throws(
      () => createHttpWarehouse({ url: `http://herald:${secret}%zz@localhost:8123` }),
      (error: unknown) => error instanceof WarehouseError && !error.message.includes(secret),
    )
    assert.throws(() => createHttpWarehouse({ url: 'clickhouse://host:9000' }), /must use http or https/)
  })
})
