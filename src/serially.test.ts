import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSerialQueues } from './serially.ts'

describe('createSerialQueues', () => {
  it('runs one piece of work at a time per key, in order, and other keys alongside', async () => {
    const serially = createSerialQueues()
    const log: string[] = []
    const step = (name: string, ms: number) => async () => {
      log.push(`${name} start`)
      await new Promise((resolve) => setTimeout(resolve, ms))
      log.push(`${name} end`)
      return name
    }
    const results = await Promise.all([
      serially('a', step('a1', 30)),
      serially('a', step('a2', 1)),
      serially('b', step('b1', 10)),
    ])
    assert.deepEqual(results, ['a1', 'a2', 'b1'])
    assert.deepEqual(log, ['a1 start', 'b1 start', 'b1 end', 'a1 end', 'a2 start', 'a2 end'])
  })

  it('goes on with the next piece of work after one failed', async () => {
    const serially = createSerialQueues()
    const failed = serially('a', async () => {
      throw new Error('boom')
    })
    const next = serially('a', async () => 'ran')
    await assert.rejects(failed, /boom/)
    assert.equal(await next, 'ran')
  })
})
