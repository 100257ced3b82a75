import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createSlice, drain, drainSliced, type Slice, yieldToLoop } from './cooperative.ts'

/** A clock the test moves by hand. */
const manualClock = () => {
  let now = 0
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

function* counting(items: number, seen: number[]): Generator<void, string, void> {
  for (let i = 0; i < items; i++) {
    yield
    seen.push(i)
  }
  return `done after ${items}`
}

describe('createSlice', () => {
  it('is due once its milliseconds have run, and starts again after a pause', async () => {
    const clock = manualClock()
    const slice = createSlice(10, clock.now)
    assert.equal(slice.due(), false)
    clock.advance(9)
    assert.equal(slice.due(), false)
    clock.advance(1)
    assert.equal(slice.due(), true)
    await slice.pause()
    assert.equal(slice.due(), false)
  })

  it('lets the work that was waiting run before a pause resumes', async () => {
    const slice = createSlice(10)
    const order: string[] = []
    setImmediate(() => order.push('waiting work'))
    await slice.pause()
    order.push('resumed')
    assert.deepEqual(order, ['waiting work', 'resumed'])
  })

  it('gives loops paused in the same turn one slice between them, not one each', async () => {
    const clock = manualClock()
    const slice = createSlice(10, clock.now)
    clock.advance(10)
    // Two loops pause in one turn; in the next, the first resumes and spends the slice.
    const first = slice.pause().then(() => {
      assert.equal(slice.due(), false)
      clock.advance(10)
    })
    const second = slice.pause().then(() => slice.due())
    await first
    assert.equal(await second, true, 'the second loop finds the slice spent by the first')
    await slice.pause()
    assert.equal(slice.due(), false, 'and a later turn starts a fresh slice')
  })
})

describe('drain and drainSliced', () => {
  it('run stepwise work to the value it returns, every step in order', async () => {
    const once: number[] = []
    assert.equal(drain(counting(5, once)), 'done after 5')
    assert.deepEqual(once, [0, 1, 2, 3, 4])
    const sliced: number[] = []
    assert.equal(await drainSliced(counting(5, sliced)), 'done after 5')
    assert.deepEqual(sliced, once)
  })

  it('pause whenever the slice is spent, letting other work in between steps', async () => {
    const seen: number[] = []
    const between: number[] = []
    let pauses = 0
    const alwaysDue: Slice = {
      due: () => true,
      pause: async () => {
        pauses++
        setImmediate(() => between.push(seen.length))
        await yieldToLoop()
      },
    }
    await drainSliced(counting(3, seen), alwaysDue)
    assert.equal(pauses, 3, 'one pause at each of the three steps')
    assert.deepEqual(between, [0, 1, 2], 'the other work ran before each item')
  })
})
