import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { createSqliteEventStore } from '../adapters/sqlite-event-store/index.ts'
import type { EventData, EventStore, RecordedEvent } from '../ports/index.ts'
import { streamName } from './configuration.ts'
import { createConfigurationLoader } from './configuration-loader.ts'

const AT = '2026-11-22T00:00:00.000Z'

const created = (configurationId: string, description: string): EventData => ({
  id: randomUUID(),
  type: 'ConfigurationCreated',
  data: {
    configurationId,
    account: 'acme',
    endpoint: 'webhook',
    settings: { url: 'https://hooks.example.com/a' },
    secrets: {},
    hints: {},
    description,
    enabled: true,
    verifyTls: true,
    templates: {},
    digest: { enabled: false, windowSeconds: null },
    by: 'acme/read-write',
    at: AT,
  },
})

const selectorAdded = (configurationId: string): EventData => ({
  id: randomUUID(),
  type: 'SelectorAdded',
  data: {
    selectorId: randomUUID(),
    configurationId,
    account: 'acme',
    scope: 'account',
    event: { level: '*', type: 'user.*', resource_type: '*' },
    pattern: null,
    by: 'acme/read-write',
    at: AT,
  },
})

describe('createConfigurationLoader', () => {
  let store: EventStore
  /** How many events each `readStream` answered, and from which revision. */
  const reads: { from: number; events: number }[] = []
  const counting = (): Pick<EventStore, 'readStream'> => ({
    readStream: async (stream, options) => {
      const events = await store.readStream(stream, options)
      reads.push({ from: options?.fromRevision ?? 0, events: events.length })
      return events
    },
  })

  beforeEach(() => {
    reads.length = 0
    store = createSqliteEventStore({ path: ':memory:' })
  })
  afterEach(async () => {
    await store.close()
  })

  /** A configuration's stream with its creation and `selectors` selectors. */
  const configuration = async (selectors: number, description = 'first') => {
    const id = randomUUID()
    await store.append(
      streamName(id),
      [created(id, description), ...Array.from({ length: selectors }, () => selectorAdded(id))],
      { expectedRevision: 'no_stream' },
    )
    return id
  }

  const describedAs = (loaded: Awaited<ReturnType<ReturnType<typeof createConfigurationLoader>>>) =>
    loaded.state.status === 'empty'
      ? ['empty', loaded.revision]
      : [loaded.state.configuration.description, loaded.state.selectors.size, loaded.revision]

  it('answers no_stream for a configuration that has no stream, keeping nothing', async () => {
    const load = createConfigurationLoader({ store: counting() })
    const id = randomUUID()
    assert.deepEqual(describedAs(await load(id)), ['empty', 'no_stream'])
    assert.deepEqual(describedAs(await load(id)), ['empty', 'no_stream'])
    assert.deepEqual(reads, [
      { from: 0, events: 0 },
      { from: 0, events: 0 },
    ])
  })

  it('reads a stream deleted since it was kept, and one begun again, whole: never the state it kept', async () => {
    const load = createConfigurationLoader({ store: counting() })
    const shorter = await configuration(5)
    const longer = await configuration(1)
    assert.deepEqual(describedAs(await load(shorter)), ['first', 5, 5])
    assert.deepEqual(describedAs(await load(longer)), ['first', 1, 1])

    // Deleted: nothing at the kept revision any more.
    await store.deleteStreams([{ stream: streamName(shorter), expectedRevision: 5 }])
    assert.deepEqual(describedAs(await load(shorter)), ['empty', 'no_stream'])
    // Begun again with fewer events than were kept, then with more: other events at the kept revision.
    await store.append(streamName(shorter), [created(shorter, 'again')], { expectedRevision: 'no_stream' })
    assert.deepEqual(describedAs(await load(shorter)), ['again', 0, 0])
    await store.deleteStreams([{ stream: streamName(longer), expectedRevision: 1 }])
    await store.append(
      streamName(longer),
      [created(longer, 'again'), selectorAdded(longer), selectorAdded(longer), selectorAdded(longer)],
      { expectedRevision: 'no_stream' },
    )
    assert.deepEqual(describedAs(await load(longer)), ['again', 3, 3])
  })

  it('keeps at most its capacity of configurations and selectors, dropping the least recently read', async () => {
    const load = createConfigurationLoader({ store: counting(), capacity: 10 })
    const [a, b, c] = [await configuration(3), await configuration(3), await configuration(3)]
    const big = await configuration(10)
    for (const id of [a, b, a, c] as string[]) await load(id)
    reads.length = 0
    // a and c were read last; b (4 of the 10) was dropped to keep c.
    for (const id of [a, c, b] as string[]) await load(id)
    assert.deepEqual(
      reads.map((r) => r.from),
      [3, 3, 0],
    )
    reads.length = 0
    // One that weighs more than the whole capacity is never kept, and drops nothing.
    await load(big)
    await load(big)
    await load(b)
    assert.deepEqual(
      reads.map((r) => r.from),
      [0, 0, 3],
    )
  })

  it('reports an event that fails its codec once, when it first folds it, and folds the rest', async () => {
    const invalid: RecordedEvent[] = []
    const load = createConfigurationLoader({ store, onInvalidEvent: (event) => invalid.push(event) })
    const id = await configuration(1)
    await store.append(
      streamName(id),
      [{ id: randomUUID(), type: 'SelectorAdded', data: { selectorId: 7 } }],
      {
        expectedRevision: 1,
      },
    )
    await store.append(streamName(id), [selectorAdded(id)], { expectedRevision: 2 })
    assert.deepEqual(describedAs(await load(id)), ['first', 2, 3])
    assert.deepEqual(describedAs(await load(id)), ['first', 2, 3])
    assert.deepEqual(
      invalid.map((e) => e.revision),
      [2],
    )
  })
})
