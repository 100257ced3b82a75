import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { isExpectedRevisionConflict, isValidationError } from '../../errors/index.ts'
import type { EventData } from '../../ports/index.ts'
import { createSqliteEventStore } from './index.ts'

const newEvent = (): EventData => ({ id: randomUUID(), type: 'Tested', data: {} })

const open = (options: { groupCommit?: boolean } = {}) => {
  const store = createSqliteEventStore({ path: ':memory:', ...options })
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

const dir = mkdtempSync(join(tmpdir(), 'herald-store-group-'))
after(() => rmSync(dir, { recursive: true, force: true }))
const newPath = () => join(dir, `${randomUUID()}.sqlite`)

/** What another connection (another process, or this one after a crash) finds committed. */
const committedStreams = (path: string): string[] => {
  const reader = new DatabaseSync(path, { readOnly: true })
  try {
    return (reader.prepare('SELECT DISTINCT stream FROM events').all() as { stream: string }[]).map(
      (r) => r.stream,
    )
  } finally {
    reader.close()
  }
}

describe('sqlite event store group commit', () => {
  it('writes the appends of one turn together, each still succeeding or failing on its own', async () => {
    const store = open({ groupCommit: true })
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    const [first, conflicting, many, last] = await Promise.allSettled([
      store.append('a', [newEvent()], { expectedRevision: 'no_stream' }),
      store.append('taken', [newEvent()], { expectedRevision: 'no_stream' }),
      store.appendMany([
        { stream: 'b', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'c', events: [newEvent(), newEvent()], expectedRevision: 'no_stream' },
      ]),
      // A second append to a stream already appended to in the same group sees the first.
      store.append('a', [newEvent()], { expectedRevision: 0 }),
    ])
    assert.equal(first.status, 'fulfilled')
    assert.ok(conflicting.status === 'rejected' && isExpectedRevisionConflict(conflicting.reason))
    assert.equal(many.status, 'fulfilled')
    assert.ok(last.status === 'fulfilled' && last.value.nextExpectedRevision === 1)
    assert.deepEqual(
      (await store.readAll()).map((e) => `${e.stream}@${e.revision}`),
      ['taken@0', 'a@0', 'b@0', 'c@0', 'c@1', 'a@1'],
    )
  })

  it('keeps an appendMany all or nothing inside a group', async () => {
    const store = open({ groupCommit: true })
    await store.append('taken', [newEvent()], { expectedRevision: 'no_stream' })
    const [alone, many] = await Promise.allSettled([
      store.append('alone', [newEvent()]),
      store.appendMany([
        { stream: 'first', events: [newEvent()], expectedRevision: 'no_stream' },
        { stream: 'taken', events: [newEvent()], expectedRevision: 'no_stream' },
      ]),
    ])
    assert.equal(alone.status, 'fulfilled')
    assert.ok(many.status === 'rejected' && isExpectedRevisionConflict(many.reason))
    assert.deepEqual(
      (await store.readAll()).map((e) => e.stream),
      ['taken', 'alone'],
    )
  })

  it('without group commit (the default), writes each append within its call', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path })
    after(() => store.close())
    const appended = store.append('at-once', [newEvent()])
    // No turn has ended: a configuration change that appends and reads again sees its write.
    assert.deepEqual(committedStreams(path), ['at-once'])
    await appended
  })

  it('answers no append before its transaction is committed', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true })
    after(() => store.close())
    let answered = false
    let committedWhenAnswered: string[] = []
    const appended = store.append('waiting', [newEvent()]).then((result) => {
      answered = true
      committedWhenAnswered = committedStreams(path)
      return result
    })
    // Every microtask of this turn runs: the group is still open, nothing is on disk, and the
    // caller has not been told otherwise.
    for (let i = 0; i < 10; i++) await Promise.resolve()
    assert.equal(answered, false)
    assert.deepEqual(committedStreams(path), [])
    await appended
    assert.deepEqual(committedWhenAnswered, ['waiting'])
  })

  it('starts a group at once when maxGroupAppends are waiting', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true, maxGroupAppends: 2 })
    after(() => store.close())
    const appends = [store.append('x', [newEvent()]), store.append('y', [newEvent()])]
    // Committed synchronously by the second call, before this turn ends.
    assert.deepEqual(committedStreams(path).sort(), ['x', 'y'])
    await Promise.all(appends)
  })

  it('writes the appends still waiting for their group when closed', async () => {
    const path = newPath()
    const store = createSqliteEventStore({ path, groupCommit: true })
    const appended = store.append('last', [newEvent()])
    await store.close()
    assert.equal((await appended).position, 1)
    assert.deepEqual(committedStreams(path), ['last'])
  })

  it('loses no acknowledged append when the process is killed in the middle of groups', async () => {
    const path = newPath()
    const moduleUrl = pathToFileURL(join(import.meta.dirname, 'index.ts')).href
    // The child keeps 50 appends waiting at any time and prints each stream once its append
    // resolved: what it printed was acknowledged, and must be there after the kill.
    const script = `
      import { randomUUID } from 'node:crypto'
      import { createSqliteEventStore } from ${JSON.stringify(moduleUrl)}
      const store = createSqliteEventStore({ path: ${JSON.stringify(path)}, groupCommit: true })
      let n = 0
      const one = async () => {
        for (;;) {
          const stream = 's-' + n++
          await store.append(stream, [{ id: randomUUID(), type: 'T', data: { n } }], { expectedRevision: 'no_stream' })
          process.stdout.write(stream + '\\n')
        }
      }
      for (let i = 0; i < 50; i++) void one()
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const acknowledged: string[] = []
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
    for await (const line of createInterface({ input: child.stdout })) {
      acknowledged.push(line)
      if (acknowledged.length === 2000) child.kill('SIGKILL')
    }
    await exited
    assert.ok(acknowledged.length >= 2000, stderr)
    const store = createSqliteEventStore({ path })
    after(() => store.close())
    const found = new Set((await store.readAll()).map((e) => e.stream))
    assert.deepEqual(
      acknowledged.filter((stream) => !found.has(stream)),
      [],
    )
  })
})
