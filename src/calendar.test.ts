import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { daysInMonth } from './calendar.ts'

describe('daysInMonth', () => {
  it('agrees with Date on every month of four centuries', () => {
    for (let year = 1900; year < 2300; year++)
      for (let month = 1; month <= 12; month++)
        assert.equal(
          daysInMonth(year, month),
          new Date(Date.UTC(year, month, 0)).getUTCDate(),
          `${year}-${month}`,
        )
  })

  it('answers 0 for a month that does not exist', () => {
    for (const month of [0, 13, -1, 1.5, Number.NaN]) assert.equal(daysInMonth(2024, month), 0, String(month))
  })
})
