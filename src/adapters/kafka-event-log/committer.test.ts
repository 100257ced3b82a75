import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Offsets } from 'kafkajs'
import { createCommitter } from './committer.ts'

/** A commit channel whose requests the test answers one by one. */
const channel = () => {
  const requests: { offsets: Offsets; answer: (error?: Error) => void }[] = []
  const send = (offsets: Offsets) =>
    new Promise<void>((resolve, reject) => {
      requests.push({ offsets, answer: (error) => (error === undefined ? resolve() : reject(error)) })
    })
  return { requests, send }
}

const positions = (offsets: Offsets) =>
  offsets.topics
    .flatMap(({ topic, partitions }) => partitions.map((p) => `${topic}/${p.partition}@${p.offset}`))
    .sort()

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('createCommitter', () => {
  it('sends what was marked in one request, the last position per partition', async () => {
    const { requests, send } = channel()
    const committer = createCommitter(() => send, { intervalMs: 0, clock: () => 0 })
    committer.mark('t', 0, '5')
    committer.mark('t', 1, '7')
    committer.mark('t', 0, '9')
    committer.mark('u', 0, '1')
    const done = committer.flush()
    await tick()
    assert.equal(requests.length, 1)
    assert.deepEqual(positions((requests[0] as (typeof requests)[number]).offsets), [
      't/0@9',
      't/1@7',
      'u/0@1',
    ])
    requests[0]?.answer()
    await done
  })

  it('gathers positions marked while a commit is in flight into the next request', async () => {
    const { requests, send } = channel()
    const committer = createCommitter(() => send, { intervalMs: 0, clock: () => 0 })
    committer.mark('t', 0, '1')
    const first = committer.flush()
    await tick()
    committer.mark('t', 1, '2')
    const second = committer.flush()
    committer.mark('t', 2, '3')
    const third = committer.flush()
    await tick()
    assert.equal(requests.length, 1, 'nothing more is sent while the first request is in flight')
    requests[0]?.answer()
    await first
    await tick()
    assert.equal(requests.length, 2)
    assert.deepEqual(positions((requests[1] as (typeof requests)[number]).offsets), ['t/1@2', 't/2@3'])
    requests[1]?.answer()
    await Promise.all([second, third])
    assert.equal(requests.length, 2)
  })

  it('keeps the positions of a failed request for the next one, unless newer ones were marked', async () => {
    const { requests, send } = channel()
    const committer = createCommitter(() => send, { intervalMs: 0, clock: () => 0 })
    committer.mark('t', 0, '1')
    committer.mark('t', 1, '1')
    const failing = committer.flush()
    await tick()
    committer.mark('t', 1, '4')
    requests[0]?.answer(new Error('coordinator moved'))
    await assert.rejects(failing, /coordinator moved/)
    const retry = committer.flush()
    await tick()
    assert.deepEqual(positions((requests[1] as (typeof requests)[number]).offsets), ['t/0@1', 't/1@4'])
    requests[1]?.answer()
    await retry
  })

  it('tells when the interval has passed since the last commit', async () => {
    let now = 1_000
    const { requests, send } = channel()
    const committer = createCommitter(() => send, { intervalMs: 500, clock: () => now })
    assert.equal(committer.due(), false)
    now = 1_500
    assert.equal(committer.due(), true)
    committer.mark('t', 0, '1')
    const done = committer.flush()
    await tick()
    requests[0]?.answer()
    await done
    assert.equal(committer.due(), false)
  })

  it('forgets positions of partitions this member no longer owns', async () => {
    const { requests, send } = channel()
    const committer = createCommitter(() => send, { intervalMs: 0, clock: () => 0 })
    committer.mark('t', 0, '1')
    committer.mark('t', 1, '1')
    committer.mark('u', 0, '1')
    committer.retain(new Map([['t', [1]]]))
    const done = committer.flush()
    await tick()
    assert.deepEqual(positions((requests[0] as (typeof requests)[number]).offsets), ['t/1@1'])
    requests[0]?.answer()
    await done
  })

  it('sends nothing when nothing is marked', async () => {
    const { requests, send } = channel()
    await createCommitter(() => send, { intervalMs: 0, clock: () => 0 }).flush()
    assert.equal(requests.length, 0)
  })
})
