import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, describe, it, test } from 'node:test'
import { firstValueFrom, lastValueFrom, take, timeout, toArray } from 'rxjs'
import {
  createKurrentDbEventStore,
  type KurrentDbEventStore,
  type KurrentDbEventStoreOptions,
} from '../../src/adapters/kurrentdb-event-store/index.ts'
import { ClosedError, isRetriable, UnavailableError } from '../../src/errors/index.ts'
import type { EventData } from '../../src/ports/index.ts'
import { runEventStoreContract } from '../contracts/event-store.contract.ts'

// No KurrentDB or EventStoreDB server can be installed on the development machines or in CI (it
// ships neither on npm nor in Debian), so the suite runs against a server someone points it at.
const url = process.env.KURRENTDB_URL?.trim() ?? ''

const newStream = (prefix: string): string => `herald-${prefix}-${randomUUID()}`
const newEvent = (data: Record<string, number | string> = {}, id: string = randomUUID()): EventData => ({
  id,
  type: 'Tested',
  data,
})

/** The server named without its credentials, for test names and messages. */
const describeServer = (connectionString: string): string => {
  try {
    const parsed = new URL(connectionString)
    return `${parsed.protocol}//${parsed.host}`
  } catch {
    return 'kurrentdb'
  }
}

if (url === '') {
  test('KurrentDB event store contract', {
    skip:
      'no KurrentDB server can be installed on this machine; ' +
      'set KURRENTDB_URL=kurrentdb://localhost:2113?tls=false to run it',
  }, () => {})
} else {
  const open = (options: Partial<KurrentDbEventStoreOptions> = {}): KurrentDbEventStore => {
    const store = createKurrentDbEventStore({ connectionString: url, ...options })
    after(() => store.close())
    return store
  }

  // Catching up from the start of a long-lived server's $all can take a while.
  runEventStoreContract({
    name: `kurrentdb (${describeServer(url)})`,
    open: async () => createKurrentDbEventStore({ connectionString: url }),
    deliveryTimeoutMs: 30_000,
  })

  runEventStoreContract({
    name: `kurrentdb (${describeServer(url)}, pages of 2)`,
    open: async () => createKurrentDbEventStore({ connectionString: url, pageSize: 2 }),
    deliveryTimeoutMs: 30_000,
  })

  describe('kurrentdb event store', () => {
    it('stores ids that are not UUIDs, gives them back, and keeps retries idempotent', async () => {
      const store = open()
      const stream = newStream('ids')
      const events = [
        newEvent({ n: 1 }, 'delivery:abc'),
        newEvent({ n: 2 }, 'DEADBEEF-0000-0000-0000-000000000000'),
      ]
      const first = await store.append(stream, events, { expectedRevision: 'no_stream' })
      const retried = await store.append(stream, events, { expectedRevision: 'no_stream' })
      assert.deepEqual(retried, first)

      const read = await store.readStream(stream)
      assert.deepEqual(
        read.map((e) => [e.id, e.metadata]),
        events.map((e) => [e.id, {}]),
      )
      assert.equal(first.position, read.at(-1)?.position)
      const all = (await store.readAll({ after: (read[0]?.position ?? 1) - 1 })).filter(
        (e) => e.stream === stream,
      )
      assert.deepEqual(
        all.map((e) => e.id),
        events.map((e) => e.id),
      )
    })

    it('reads from a checkpoint that is not an event position, and past the end', async () => {
      const store = open()
      const stream = newStream('checkpoint')
      await store.append(stream, [newEvent(), newEvent()], { expectedRevision: 'no_stream' })
      const [first, second] = await store.readStream(stream)
      assert.ok(first && second)
      for (const checkpoint of [first.position - 1, first.position + 1]) {
        const read = (await store.readAll({ after: checkpoint })).filter((e) => e.stream === stream)
        assert.deepEqual(
          read.map((e) => e.revision),
          checkpoint < first.position ? [0, 1] : [1],
          `after ${checkpoint}`,
        )
      }
      assert.deepEqual(await store.readAll({ after: second.position + 1_000_000_000 }), [])

      const live = firstValueFrom(
        store.subscribeToAll({ after: second.position + 1 }).pipe(take(1), timeout({ first: 30_000 })),
      )
      await store.append(stream, [newEvent({ n: 3 })], { expectedRevision: 1 })
      assert.equal((await live).revision, 2)
    })

    it('never hands out system events', async () => {
      const store = open()
      const page = await store.readAll({ maxCount: 200 })
      assert.ok(page.every((e) => !e.type.startsWith('$') && !e.stream.startsWith('$')))
    })

    it('answers ping, completes live subscriptions on close, and refuses calls after it', async () => {
      const store = createKurrentDbEventStore({ connectionString: url })
      await store.ping()
      const ended = lastValueFrom(
        store.subscribeToAll({ after: Number.MAX_SAFE_INTEGER - 1 }).pipe(toArray()),
      )
      await store.close()
      assert.deepEqual(await ended, [])
      await assert.rejects(store.readStream('any'), ClosedError)
      await assert.rejects(store.ping(), ClosedError)
    })
  })
}

describe('kurrentdb event store: unreachable server', () => {
  // Nothing listens on port 1: every call fails fast, as when KurrentDB is down.
  const unreachable = 'kurrentdb://127.0.0.1:1?tls=false'

  it('reports every call as retriable unavailability', async () => {
    const store = createKurrentDbEventStore({ connectionString: unreachable, pingTimeoutMs: 20_000 })
    after(() => store.close())
    const retriable = (error: unknown): boolean => {
      assert.ok(error instanceof UnavailableError, String(error))
      assert.ok(isRetriable(error))
      return true
    }
    await assert.rejects(store.ping(), retriable)
    await assert.rejects(store.append('s', [newEvent()]), retriable)
    await assert.rejects(store.readStream('s'), retriable)
    await assert.rejects(store.readAll({ after: 12_345 }), retriable)
    await assert.rejects(firstValueFrom(store.subscribeToAll()), retriable)
  })
})
