import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { isExpectedRevisionConflict, isValidationError } from '../../errors/index.ts'
import type { EventData } from '../../ports/index.ts'
import { createSqliteEventStore } from './index.ts'

const newEvent = (): EventData => ({ id: randomUUID(), type: 'Tested', data: {} })

const open = () => {
  const store = createSqliteEventStore({ path: ':memory:' })
  after(() => store.close())
  return store
}

// The contract checks what every adapter does; this is what only the embedded one promises.
describe('sqlite event store appendMany', () => {
  it('writes nothing when a later entry conflicts: one transaction, all or nothing', async () => {
    const store = open()
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    await assert.rejects(
      store.appendMany([
        { stream: 'first', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'taken', events: [newEvent()], expectedRevision: 'no_stream' },
      ]),
      (error: unknown) => isExpectedRevisionConflict(error) && error.context.stream === 'taken',
    )
    assert.deepEqual(
      (await store.readAll()).map((e) => e.stream),
      ['taken'],
    )
  })

  it('writes nothing when a later entry reuses ids it cannot be a retry of', async () => {
    const store = open()
    const reused = newEvent()
    await store.append('taken', [reused, newEvent()], { expectedRevision: 'no_stream' })
    await assert.rejects(
      store.appendMany([
        { stream: 'first', events: [newEvent()] },
        { stream: 'taken', events: [reused], expectedRevision: 1 },
      ]),
      isValidationError,
    )
    assert.deepEqual(await store.readStream('first'), [])
  })

  it('stamps every entry with one recording time', async () => {
    let now = 1_700_000_000_000
    const store = createSqliteEventStore({ path: ':memory:', clock: () => now++ })
    after(() => store.close())
    await store.appendMany([
      { stream: 'a', events: [newEvent(), newEvent()] },
      { stream: 'b', events: [newEvent()] },
    ])
    assert.deepEqual(
      (await store.readAll()).map((e) => e.recordedAt),
      [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_000],
    )
  })
})
