import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { coerce, envKeysOf, envNameOf } from './env.ts'
import { schema } from './schema.ts'
import { boolean, decimal, integer, listOf, nonEmptyString, nullable } from './spec.ts'

describe('env scheme', () => {
  it('names variables HERALD_ + the upper-cased path joined by __', () => {
    assert.equal(envNameOf(['port']), 'HERALD_PORT')
    assert.equal(envNameOf(['data_dir']), 'HERALD_DATA_DIR')
    assert.equal(envNameOf(['warehouse', 'clickhouse', 'url']), 'HERALD_WAREHOUSE__CLICKHOUSE__URL')
    assert.equal(
      envNameOf(['notifications', 'cycle_timers', 'notifications']),
      'HERALD_NOTIFICATIONS__CYCLE_TIMERS__NOTIFICATIONS',
    )
  })

  it('gives every key a distinct variable, because no key name contains __', () => {
    const names = envKeysOf(schema).map((k) => k.name)
    assert.equal(new Set(names).size, names.length)
    for (const { path } of envKeysOf(schema)) {
      for (const segment of path) assert.match(segment, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/)
    }
  })

  it('coerces by the target type, passing strings that do not fit through for validation to report', () => {
    assert.equal(coerce(integer(1), '42'), 42)
    assert.equal(coerce(integer(1), '-3'), -3)
    assert.equal(coerce(integer(1), '4x'), '4x')
    assert.equal(coerce(integer(1), '0.5'), '0.5')
    assert.equal(coerce(decimal(0, 10), ' 0.25 '), 0.25)
    assert.equal(coerce(decimal(0, 10), '.5'), 0.5)
    assert.equal(coerce(decimal(0, 10), '3.'), 3)
    assert.equal(coerce(decimal(0, 10), '-2'), -2)
    assert.equal(coerce(decimal(0, 10), '1e3'), '1e3')
    assert.equal(coerce(decimal(0, 10), '0x10'), '0x10')
    assert.equal(coerce(decimal(0, 10), ''), '')
    assert.equal(coerce(boolean, 'YES'), true)
    assert.equal(coerce(boolean, '0'), false)
    assert.equal(coerce(boolean, 'on'), 'on')
    assert.deepEqual(coerce(listOf(nonEmptyString, 'strings'), 'a, b,,c '), ['a', 'b', 'c'])
    assert.deepEqual(coerce(listOf(nonEmptyString, 'strings'), ''), [])
    assert.equal(coerce(nullable(nonEmptyString), ''), null)
    assert.equal(coerce(nonEmptyString, ''), '')
  })
})
