import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WarehouseError } from '../../errors/index.ts'
import { normaliseParams } from './params.ts'

describe('normaliseParams', () => {
  it('writes a top-level Date as Unix seconds with milliseconds, as the HTTP client does', () => {
    assert.deepEqual(normaliseParams({ at: new Date('2024-01-02T03:04:05.678Z') }), { at: '1704164645.678' })
    assert.deepEqual(normaliseParams({ at: new Date('2024-01-02T03:04:05.000Z') }), { at: '1704164645' })
    assert.deepEqual(normaliseParams({ at: new Date('2001-09-09T01:46:39.005Z') }), { at: '0999999999.005' })
  })

  it('writes nested Dates as numbers so neither transport quotes them', () => {
    assert.deepEqual(normaliseParams({ at: [new Date('2024-01-02T03:04:05.678Z')] }), {
      at: [1704164645.678],
    })
    assert.deepEqual(normaliseParams({ m: { a: new Date(1000) } }), { m: { a: 1 } })
  })

  it('leaves everything else as it is', () => {
    const params = {
      s: "it's",
      n: 1.5,
      b: true,
      big: 2n ** 63n,
      none: null,
      list: ['a', 1],
      map: new Map([['k', 1]]),
    }
    assert.deepEqual(normaliseParams(params), params)
  })

  it('refuses numbers that cannot be sent exactly', () => {
    assert.throws(() => normaliseParams({ n: 2 ** 53 + 2 }), WarehouseError)
    assert.throws(() => normaliseParams({ n: [Number.NaN] }), /query parameter n is NaN/)
    assert.throws(() => normaliseParams({ n: Number.POSITIVE_INFINITY }), WarehouseError)
    assert.throws(() => normaliseParams({ at: new Date(Number.NaN) }), /invalid Date/)
  })
})
