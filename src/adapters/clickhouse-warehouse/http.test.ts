import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { describe, it } from 'node:test'
import { UnavailableError, WarehouseError } from '../../errors/index.ts'
import { createHttpWarehouse } from './http.ts'

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
