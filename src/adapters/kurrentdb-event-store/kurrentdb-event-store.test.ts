import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { type AddressInfo, createServer } from 'node:net'
import { describe, it } from 'node:test'
import { KurrentDBClient, START, UnknownError } from '@kurrent/kurrentdb-client'
import { firstValueFrom } from 'rxjs'
import {
  ClosedError,
  ConfigError,
  isExpectedRevisionConflict,
  isRetriable,
  isValidationError,
} from '../../errors/index.ts'
import { createKurrentDbEventStore } from './index.ts'

// Creating the client opens no connection, so none of these needs a server.
const store = () => createKurrentDbEventStore({ connectionString: 'kurrentdb://127.0.0.1:1?tls=false' })

describe('createKurrentDbEventStore', () => {
  it('refuses a malformed connection string without quoting it', () => {
    for (const connectionString of [
      'nonsense',
      'http://admin:hunter2@db:2113',
      'kurrentdb://admin:hunter2@db:2113?tls=perhaps',
    ]) {
      assert.throws(
        () => createKurrentDbEventStore({ connectionString }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError)
          assert.deepEqual(
            error.issues.map((i) => i.path),
            ['event_store.kurrentdb.connection_string'],
          )
          assert.ok(!error.message.includes('hunter2') && !error.message.includes('perhaps'))
          return true
        },
      )
    }
  })

  it('refuses an option the client does not know before the client can print the string, password and all', () => {
    const written: string[] = []
    const { write } = process.stderr
    const { warn } = console
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    console.warn = (...args: unknown[]) => void written.push(args.map(String).join(' '))
    try {
      assert.throws(
        () =>
          createKurrentDbEventStore({
            connectionString: 'kurrentdb://admin:S3cret@127.0.0.1:1?tlsverifycerts=false&tls=false',
          }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError)
          assert.equal(error.issues[0]?.path, 'event_store.kurrentdb.connection_string')
          assert.match(error.message, /unknown option tlsverifycerts/)
          assert.doesNotMatch(error.message, /S3cret/)
          return true
        },
      )
    } finally {
      process.stderr.write = write
      console.warn = warn
    }
    assert.deepEqual(written, [])
  })

  it('says of an unreachable server where it is and what the socket met, never the credentials', async () => {
    const closed = createServer().listen(0, '127.0.0.1')
    await once(closed, 'listening')
    const { port } = closed.address() as AddressInfo
    closed.close()
    await once(closed, 'close')
    const s = createKurrentDbEventStore({
      connectionString: `kurrentdb://admin:Zq7Pass@127.0.0.1:${port}?tls=false`,
    })
    try {
      for (const call of [() => s.ping(), () => s.readAll({ after: 0, maxCount: 1 })]) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(isRetriable(error))
          assert.match(
            (error as Error).message,
            new RegExp(
              `^event store readAll: KurrentDB at 127\\.0\\.0\\.1:${port} is unavailable: .*connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`,
            ),
          )
          assert.doesNotMatch((error as Error).message, /Zq7Pass|admin/)
          return true
        })
      }
    } finally {
      await s.close()
    }
  })

  it('refuses a connection string that stops the client throwing on a conflicting append', () => {
    for (const option of ['throwOnAppendFailure=false', 'throw_on_append_failure=false']) {
      assert.throws(
        () => createKurrentDbEventStore({ connectionString: `kurrentdb://127.0.0.1:1?tls=false&${option}` }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError)
          assert.equal(error.issues[0]?.path, 'event_store.kurrentdb.connection_string')
          assert.match(error.message, /throwOnAppendFailure=false, which Herald does not support/)
          return true
        },
      )
    }
    // Saying what the client does anyway is fine.
    const s = createKurrentDbEventStore({
      connectionString: 'kurrentdb://127.0.0.1:1?tls=false&throwOnAppendFailure=true',
    })
    void s.close()
  })

  // No KurrentDB server can run here: the client's append is replaced by what it answers a
  // conflicting append with when told not to throw (its append.js and batchAppend.js).
  it('takes an append the client answers as unsuccessful for a conflict, never as written', async () => {
    const client = KurrentDBClient.prototype as unknown as Record<string, unknown>
    const { appendToStream, readStream } = client
    let reads = 0
    client.appendToStream = async () => ({ success: false, nextExpectedRevision: 4n, position: undefined })
    client.readStream = async function* () {
      reads++
      yield* []
    }
    const s = store()
    try {
      await assert.rejects(
        s.append('config-1', [{ id: randomUUID(), type: 'Changed', data: {} }], { expectedRevision: 2 }),
        (error: unknown) => {
          assert.ok(isExpectedRevisionConflict(error))
          assert.match(error.message, /^stream config-1: expected revision 2, actual not reported$/)
          return true
        },
      )
      assert.equal(reads, 0)
    } finally {
      client.appendToStream = appendToStream
      client.readStream = readStream
      await s.close()
    }
  })

  // No KurrentDB server can run here: the client's readAll is replaced by one that holds a single
  // event at position 100 and fails, as the client's Rust bridge reports a timeout, every read
  // from a position (the probe of the checkpoint, then of its chunk's start).
  it('fails retriably when probing a checkpoint fails for another reason than a bad position, never re-reading from the start', async () => {
    const client = KurrentDBClient.prototype as unknown as Record<string, unknown>
    const { readAll } = client
    const fromPositions: unknown[] = []
    client.readAll = async function* (options: { fromPosition: unknown }) {
      fromPositions.push(options.fromPosition)
      if (options.fromPosition !== START) throw new UnknownError(undefined, 'Deadline exceeded')
      yield {
        event: {
          streamId: 'config-1',
          id: randomUUID(),
          type: 'Changed',
          revision: 0n,
          created: new Date(),
          isJson: true,
          data: {},
          metadata: {},
          position: { commit: 100n, prepare: 100n },
        },
        commitPosition: 100n,
      }
    }
    const s = store()
    try {
      const checkpoint = 300 * 1024 * 1024
      await assert.rejects(s.readAll({ after: checkpoint }), (error: unknown) => {
        assert.ok(isRetriable(error), String(error))
        return true
      })
      assert.ok(!fromPositions.includes(START), 'read $all from its start')
    } finally {
      client.readAll = readAll
      await s.close()
    }
  })

  it('checks input before it reaches the server', async () => {
    const s = store()
    try {
      await assert.rejects(s.append('s', []), isValidationError)
      await assert.rejects(
        s.append('s', [{ id: randomUUID(), type: 't', data: {}, metadata: { '$herald.id': 'x' } }]),
        (error: unknown) => {
          assert.ok(isValidationError(error))
          assert.deepEqual(
            error.issues.map((i) => i.path),
            ['events[0].metadata.$herald.id'],
          )
          return true
        },
      )
      await assert.rejects(
        s.appendMany([
          { stream: 'a', events: [{ id: randomUUID(), type: 't', data: {} }] },
          {
            stream: 'b',
            events: [{ id: randomUUID(), type: 't', data: {}, metadata: { '$herald.id': 'x' } }],
          },
        ]),
        (error: unknown) => {
          assert.ok(isValidationError(error))
          assert.deepEqual(
            error.issues.map((i) => i.path),
            ['appends[1].events[0].metadata.$herald.id'],
          )
          return true
        },
      )
      await assert.rejects(
        s.appendMany([
          { stream: 'a', events: [{ id: randomUUID(), type: 't', data: {} }] },
          { stream: 'a', events: [{ id: randomUUID(), type: 't', data: {} }] },
        ]),
        isValidationError,
      )
      assert.deepEqual(await s.appendMany([]), [])
      await assert.rejects(s.readStream(''), isValidationError)
      await assert.rejects(s.readAll({ after: -1 }), isValidationError)
      await assert.rejects(firstValueFrom(s.subscribeToAll({ after: 1.5 })), isValidationError)
      assert.deepEqual(await s.readStream('s', { maxCount: 0 }), [])
      assert.deepEqual(await s.readAll({ maxCount: 0 }), [])
    } finally {
      await s.close()
    }
  })

  it('refuses every call once closed, and closes once', async () => {
    const s = store()
    await s.close()
    await s.close()
    await assert.rejects(s.append('s', [{ id: randomUUID(), type: 't', data: {} }]), ClosedError)
    await assert.rejects(s.appendMany([]), ClosedError)
    await assert.rejects(s.readStream('s'), ClosedError)
    await assert.rejects(s.readAll(), ClosedError)
    await assert.rejects(s.ping(), ClosedError)
    await assert.rejects(firstValueFrom(s.subscribeToAll()), ClosedError)
  })
})
