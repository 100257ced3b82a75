import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Worker } from 'node:worker_threads'
import {
  ExpectedRevisionConflictError,
  isRetriable,
  UnavailableError,
  ValidationError,
} from '../../errors/index.ts'
import {
  flattenAnswers,
  flattenRequests,
  startWriterThread,
  unflattenAnswers,
  unflattenRequests,
  type WriterThread,
} from './writer-thread.ts'
import { openDatabase, type WriteAnswer, type WriteRequest } from './writing.ts'

describe('what crosses to the writer thread', () => {
  it('gives back the requests it flattened, every kind of expectation and count included', () => {
    const event = (n: number) => ({ id: `e-${n}`, type: 'T', data: `{"n":${n}}`, metadata: '{}' })
    const requests: { id: number; request: WriteRequest }[] = [
      {
        id: 1,
        request: {
          operation: 'append',
          recordedAt: 1_700_000_000_000,
          appends: [{ stream: 's-1', expected: 3, events: [event(1), event(2)] }],
        },
      },
      {
        id: 2,
        request: {
          operation: 'appendMany',
          recordedAt: 1_700_000_000_001,
          appends: [
            { stream: 's-2', expected: 'no_stream', events: [event(3)] },
            { stream: 's-3', expected: 'any', events: [] },
            { stream: 's-4', expected: 'stream_exists', events: [event(4)] },
            { stream: 's-5', expected: 0, events: [event(5)] },
          ],
        },
      },
    ]
    const flat = flattenRequests(requests)
    assert.ok(flat.every((v) => typeof v === 'string' || typeof v === 'number'))
    assert.deepEqual(unflattenRequests(structuredClone(flat)), requests)
  })

  it('gives back results and the errors they stand for', () => {
    const flat = flattenAnswers(
      [7, 8, 9],
      [
        {
          ok: true,
          results: [
            { nextExpectedRevision: 0, position: 12 },
            { nextExpectedRevision: 4, position: 13 },
          ],
        },
        { ok: false, error: new ExpectedRevisionConflictError({ stream: 's', expected: 1, actual: 2 }) },
        { ok: false, error: new ValidationError('bad', [{ path: 'events[0].id', message: 'reused' }]) },
      ],
    )
    const [first, second, third] = unflattenAnswers(structuredClone(flat))
    assert.deepEqual(first, {
      id: 7,
      answer: {
        ok: true,
        results: [
          { nextExpectedRevision: 0, position: 12 },
          { nextExpectedRevision: 4, position: 13 },
        ],
      },
    })
    assert.equal(second?.id, 8)
    assert.ok(second?.answer.ok === false && second.answer.error instanceof ExpectedRevisionConflictError)
    assert.deepEqual(second.answer.error.context, { stream: 's', expected: 1, actual: 2 })
    assert.equal(third?.id, 9)
    assert.ok(third?.answer.ok === false && third.answer.error instanceof ValidationError)
    assert.deepEqual(third.answer.error.issues, [{ path: 'events[0].id', message: 'reused' }])
  })
})

describe('a writer thread that stops', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-writer-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  /** A store file with its schema, and a writer thread on it whose workers the test can stop. */
  const startOn = (name: string, busyTimeoutMs = 5_000) => {
    const path = join(dir, name)
    const { db } = openDatabase(path, 5_000)
    const workers: Worker[] = []
    const stopped: Error[] = []
    const thread = startWriterThread({
      path,
      busyTimeoutMs,
      onCommitted: () => {},
      onStarted: (worker) => workers.push(worker),
      onStopped: (error) => stopped.push(error),
      restartDelayMs: 50,
    })
    after(async () => {
      await thread.close()
      if (db.isOpen) db.close()
    })
    const rows = (stream: string) =>
      (
        db.prepare('SELECT id FROM events WHERE stream = ? ORDER BY revision').all(stream) as { id: string }[]
      ).map((r) => r.id)
    return { path, db, thread, workers, stopped, rows }
  }

  const appendOf = (stream: string, ...ids: string[]): WriteRequest => ({
    operation: 'append',
    recordedAt: 1_700_000_000_000,
    appends: [
      { stream, expected: 'any', events: ids.map((id) => ({ id, type: 'T', data: '{}', metadata: '{}' })) },
    ],
  })

  const written = async (thread: WriterThread, request: WriteRequest): Promise<WriteAnswer> => {
    const answer = await thread.write(request)
    assert.ok(answer.ok, `expected a commit, got ${answer.ok ? '' : String(answer.error)}`)
    return answer
  }

  const isUnavailable = (answer: WriteAnswer): boolean =>
    !answer.ok && answer.error instanceof UnavailableError && isRetriable(answer.error)

  const until = async (check: () => Promise<boolean> | boolean, what: string) => {
    const deadline = Date.now() + 10_000
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
      await sleep(20)
    }
  }

  const answers = async (thread: WriterThread): Promise<boolean> =>
    thread.ping().then(
      () => true,
      () => false,
    )

  it('fails the append it was writing (not committed) at once, starts again, and the retry writes it once', async () => {
    // Another connection holds the write lock, so the thread is inside the append when it is stopped.
    const { path, thread, workers, stopped, rows } = startOn('killed-mid-append.sqlite', 1_000)
    await written(thread, appendOf('s-1', 'a'))
    const blocker = new DatabaseSync(path)
    blocker.exec('BEGIN IMMEDIATE')
    const pending = thread.write(appendOf('s-1', 'b', 'c'))
    await sleep(100)
    await workers[0]?.terminate()
    const answer = await pending
    assert.ok(isUnavailable(answer), String(!answer.ok && answer.error))
    assert.equal(stopped.length, 1)
    blocker.exec('ROLLBACK')
    blocker.close()
    assert.deepEqual(rows('s-1'), ['a'])

    await until(() => answers(thread), 'the thread answers again')
    assert.equal(workers.length, 2)
    await written(thread, appendOf('s-1', 'b', 'c'))
    // The same append again is the same append: recognised, not written twice.
    await written(thread, appendOf('s-1', 'b', 'c'))
    assert.deepEqual(rows('s-1'), ['a', 'b', 'c'])
  })

  it('while it is gone, appends and pings fail at once rather than wait', async () => {
    const { thread, workers, rows } = startOn('killed-idle.sqlite')
    await written(thread, appendOf('s-2', 'a'))
    await workers[0]?.terminate()
    const answer = await thread.write(appendOf('s-2', 'b'))
    assert.ok(isUnavailable(answer))
    await assert.rejects(thread.ping(), UnavailableError)
    await until(() => answers(thread), 'the thread answers again')
    await written(thread, appendOf('s-2', 'b'))
    assert.deepEqual(rows('s-2'), ['a', 'b'])
  })

  it('keeps starting one while none can open the file, and answers pings only once one does', async () => {
    const { path, db, thread, workers, stopped } = startOn('locked-out.sqlite', 100)
    await until(() => answers(thread), 'the first thread answers')
    db.close()
    await workers[0]?.terminate()
    // An exclusive lock (taken once no other connection has the file open) keeps every other
    // connection out of it, even from reading it.
    const blocker = new DatabaseSync(path)
    blocker.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN IMMEDIATE; CREATE TABLE lock_holder (x); COMMIT')
    await until(() => stopped.length >= 3, 'two restarts have failed')
    assert.equal(await answers(thread), false)
    blocker.close()
    await until(() => answers(thread), 'a restarted thread answers')
    assert.ok(workers.length >= 3)
  })
})
