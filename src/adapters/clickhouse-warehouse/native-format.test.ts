import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { yieldToLoop } from '../../cooperative.ts'
import {
  codecOf,
  createNativeBlockWriter,
  isNativeTime,
  parseUtcTime,
  serialiseNative,
  serialiseNativeSliced,
} from './native-format.ts'

const bytes = (...parts: (number[] | Uint8Array)[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)))
const str = (text: string): Buffer => {
  const utf8 = Buffer.from(text, 'utf8')
  return Buffer.concat([Buffer.from(varint(utf8.length)), utf8])
}
const varint = (n: number): number[] => {
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return out
}
const u64 = (n: number | bigint): number[] => {
  const b = Buffer.alloc(8)
  b.writeBigInt64LE(BigInt.asIntN(64, BigInt(n)))
  return [...b]
}
const block = (rows: readonly object[], types: Record<string, string>): Buffer | undefined => {
  const out = serialiseNative(rows, new Map(Object.entries(types)))
  return out === undefined ? undefined : Buffer.concat(out.body)
}

describe('serialiseNativeSliced', () => {
  it('writes the block serialiseNative writes, pausing every 512 rows and before each column', async () => {
    const rows = Array.from({ length: 1_300 }, (_, i) => ({
      id: i % 5 === 0 ? `ré-${i}` : `row-${i}`,
      n: i,
      at: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
      note: i % 3 === 0 ? null : i * 0.5,
    }))
    const types = new Map([
      ['id', 'String'],
      ['n', 'UInt32'],
      ['at', "DateTime64(3, 'UTC')"],
      ['note', 'Nullable(Float64)'],
    ])
    let pauses = 0
    const sliced = await serialiseNativeSliced(rows, types, {
      due: () => true,
      pause: async () => {
        pauses++
        await yieldToLoop()
      },
    })
    const whole = serialiseNative(rows, types)
    assert.ok(sliced !== undefined && whole !== undefined)
    assert.deepEqual(sliced.columns, whole.columns)
    assert.deepEqual(Buffer.concat(sliced.body), Buffer.concat(whole.body))
    assert.equal(pauses, 2 + 4)
  })
})

describe('serialiseNative', () => {
  it('writes a block as the engine writes one (checked against chDB FORMAT Native output)', () => {
    const at = Date.UTC(2023, 10, 14, 22, 13, 20, 123)
    const out = block(
      [
        { s: 'ab', n: 0, m: 'x', at: '2023-11-14 22:13:20.123', r: [{ gate: 'g', message: 'm' }] },
        { s: 'ab', n: 1, m: null, at: new Date(at), r: [] },
      ],
      {
        s: 'LowCardinality(String)',
        n: 'UInt64',
        m: 'Nullable(String)',
        at: "DateTime64(3, 'UTC')",
        r: 'Array(Tuple(gate String, message String))',
      },
    )
    assert.deepEqual(
      out,
      bytes(
        [5, 2],
        str('s'),
        str('String'),
        str('ab'),
        str('ab'),
        str('n'),
        str('UInt64'),
        u64(0),
        u64(1),
        str('m'),
        str('Nullable(String)'),
        [0, 1],
        str('x'),
        str(''),
        str('at'),
        str("DateTime64(3, 'UTC')"),
        u64(at),
        u64(at),
        str('r'),
        str('Array(Tuple(gate String, message String))'),
        u64(1),
        u64(1),
        str('g'),
        str('m'),
      ),
    )
  })

  it('writes strings as UTF-8 with their byte lengths, short and long, ASCII or not', () => {
    const long = `${'é'.repeat(200)}✓`
    const values = ['', 'plain', 'tab\there\nnew \\N', '✓ ünïcode', 'x'.repeat(300), long, 'a'.repeat(130)]
    const out = block(
      values.map((s) => ({ s })),
      { s: 'String' },
    )
    assert.deepEqual(out, bytes([1, values.length], str('s'), str('String'), ...values.map(str)))
  })

  it('writes numbers, booleans, enums and times by their types', () => {
    const out = block(
      [{ i: -2, u: true, b: 1, f: 0.1, e: 'high', big: 2n ** 63n, t: '2024-02-29T23:59:59Z' }],
      {
        i: 'Int16',
        u: 'UInt8',
        b: 'Bool',
        f: 'Nullable(Float64)',
        e: "Enum8('low' = 1, 'it\\'s high' = 2, 'high' = -3)",
        big: 'UInt64',
        t: "DateTime64(3, 'UTC')",
      },
    )
    const f = Buffer.alloc(8)
    f.writeDoubleLE(0.1)
    assert.deepEqual(
      out,
      bytes(
        [7, 1],
        str('i'),
        str('Int16'),
        [0xfe, 0xff],
        str('u'),
        str('UInt8'),
        [1],
        str('b'),
        str('Bool'),
        [1],
        str('f'),
        str('Nullable(Float64)'),
        [0],
        [...f],
        str('e'),
        str("Enum8('low' = 1, 'it\\'s high' = 2, 'high' = -3)"),
        [0xfd],
        str('big'),
        str('UInt64'),
        u64(2n ** 63n),
        str('t'),
        str("DateTime64(3, 'UTC')"),
        u64(Date.UTC(2024, 1, 29, 23, 59, 59)),
      ),
    )
  })

  it('writes -0 as 0, as the text path does', () => {
    const out = block([{ f: -0 }], { f: 'Float64' })
    assert.deepEqual(out?.subarray(-8), Buffer.alloc(8))
  })

  it('declines rows whose meaning as text it cannot be sure to keep, so they go as text', () => {
    const cases: [object[], Record<string, string>][] = [
      [[{ a: 'x' }], { b: 'String' }],
      [[{ a: 'x' }, { a: 'y', b: 1 }], { a: 'String', b: 'UInt8' }],
      [[{ a: 'x', b: 1 }, { a: 'y' }], { a: 'String', b: 'UInt8' }],
      [[{ a: undefined }], { a: 'Nullable(String)' }],
      [[{ a: 1 }], { a: 'String' }],
      [[{ a: 256 }], { a: 'UInt8' }],
      [[{ a: -1 }], { a: 'UInt64' }],
      [[{ a: 1.5 }], { a: 'UInt32' }],
      [[{ a: 2 ** 53 }], { a: 'UInt64' }],
      [[{ a: '1' }], { a: 'UInt32' }],
      [[{ a: Number.NaN }], { a: 'Float64' }],
      [[{ a: 0.5 }], { a: 'Float32' }],
      [[{ a: 'medium' }], { a: "Enum8('low' = 1)" }],
      [[{ a: 2 }], { a: 'Bool' }],
      [[{ a: '2024-01-02T03:04:05+02:00' }], { a: "DateTime64(3, 'UTC')" }],
      [[{ a: '2024-01-02 03:04:05' }], { a: 'DateTime64(3)' }],
      [[{ a: new Date(Number.NaN) }], { a: "DateTime64(3, 'UTC')" }],
      [[{ a: [{ gate: 'g' }] }], { a: 'Array(Tuple(gate String, message String))' }],
      [[{ a: 'x' }], { a: 'UUID' }],
      [[{ a: 'x' }], { a: 'Map(String, String)' }],
    ]
    for (const [rows, types] of cases) {
      assert.equal(block(rows, types), undefined, `${JSON.stringify(rows)} as ${JSON.stringify(types)}`)
    }
  })
})

describe('codecOf', () => {
  it('declares LowCardinality as its inner type and rebuilds nested types', () => {
    assert.equal(codecOf('LowCardinality(Nullable(String))')?.type, 'Nullable(String)')
    assert.equal(
      codecOf('Array(Tuple(gate LowCardinality(String), n UInt32))')?.type,
      'Array(Tuple(gate String, n UInt32))',
    )
    assert.equal(codecOf('Array(Tuple(String, UInt32))'), undefined)
    assert.equal(codecOf('Decimal(10, 2)'), undefined)
  })
})

describe('parseUtcTime', () => {
  it('reads the shapes Herald writes, as UTC', () => {
    assert.equal(parseUtcTime('2026-11-22 10:00:07.250'), Date.UTC(2026, 10, 22, 10, 0, 7, 250))
    assert.equal(parseUtcTime('2026-11-22T10:00:07.250Z'), Date.UTC(2026, 10, 22, 10, 0, 7, 250))
    assert.equal(parseUtcTime('2026-11-22T10:00:07'), Date.UTC(2026, 10, 22, 10, 0, 7))
    assert.equal(parseUtcTime('1970-01-01 00:00:00.000'), 0)
  })

  it('leaves every other text to the engine', () => {
    for (const text of [
      '',
      '2026-11-22',
      '2026-11-22 10:00:07.25',
      '2026-11-22 10:00:07.2500',
      '2026-02-29 00:00:00',
      '2026-13-01 00:00:00',
      '2026-11-22 24:00:00',
      '2026-11-22 10:60:00',
      '2026-11-22x10:00:00',
      '1969-12-31 23:59:59.999',
      '2106-01-01 00:00:00',
      '2026-11-22 10:00:07+00:00',
      '１２３４-11-22 10:00:07',
    ]) {
      assert.equal(parseUtcTime(text), undefined, text)
    }
  })
})

describe('createNativeBlockWriter', () => {
  const types = {
    s: 'String',
    n: 'UInt32',
    o: 'UInt64',
    at: "DateTime64(3, 'UTC')",
  } as const
  const columns = Object.entries(types) as [string, (typeof types)[keyof typeof types]][]

  it('writes, a row at a time, the block serialiseNative writes from the same rows', () => {
    const at = Date.UTC(2026, 10, 22, 10, 0, 7, 250)
    const rows = [
      // Lengths whose prefix grows once encoded: 100 chars, 200 bytes; 70,000 chars, 3 prefix bytes.
      { s: 'é'.repeat(100), n: 0, o: 0, at: new Date(0) },
      { s: '', n: 0xffffffff, o: Number.MAX_SAFE_INTEGER, at: new Date(at) },
      { s: `tab\there ✓ ${'x'.repeat(70_000)}`, n: 7, o: 2 ** 32 + 1, at: new Date(at + 1) },
      { s: 'a'.repeat(127), n: 1, o: 1, at: new Date(at) },
      { s: 'a'.repeat(128), n: 1, o: 1, at: new Date(at) },
    ]
    const writer = createNativeBlockWriter(columns)
    for (const row of rows) {
      writer.string(row.s)
      writer.uint(row.n)
      writer.uint(row.o)
      writer.time(row.at.getTime())
    }
    const written = writer.finish()
    assert.equal(written.rows, rows.length)
    assert.deepEqual(written.columns, ['s', 'n', 'o', 'at'])
    assert.deepEqual(Buffer.concat(written.body), block(rows, types))
  })

  it('keeps a small block small and writes a large one in few chunks', () => {
    const small = createNativeBlockWriter(columns)
    small.string('a')
    small.uint(1)
    small.uint(2)
    small.time(3)
    // Small chunks come from Buffer's shared pool (64 KiB); none of its own per column.
    for (const chunk of small.finish().body) assert.ok(chunk.buffer.byteLength <= 64 * 1024)
    const large = createNativeBlockWriter([['s', 'String']])
    const value = 'x'.repeat(900)
    for (let i = 0; i < 20_000; i++) large.string(value)
    const { body } = large.finish()
    // Header: 1 column, 20,000 rows (3 bytes), `s`, `String`; then a 2-byte length per value.
    assert.equal(Buffer.concat(body).length, 1 + 3 + 2 + 7 + 20_000 * (2 + 900))
    // 18 MB: doubling chunks up to 1 MiB, not hundreds of small ones.
    assert.ok(body.length < 40, String(body.length))
  })

  it('refuses a value of the wrong kind or out of range, and a block that ends mid-row', () => {
    const writer = createNativeBlockWriter(columns)
    assert.throws(() => writer.uint(1), TypeError)
    writer.string('a')
    assert.throws(() => writer.uint(-1), RangeError)
    assert.throws(() => writer.uint(2 ** 32), RangeError)
    writer.uint(1)
    writer.uint(2)
    assert.throws(() => writer.time(-1), RangeError)
    assert.throws(() => writer.time(Date.UTC(2106, 0, 1)), RangeError)
    assert.throws(() => writer.finish(), /whole row/)
    assert.equal(isNativeTime(1.5), false)
    assert.equal(isNativeTime(Date.UTC(2105, 11, 31)), true)
  })
})
