import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { compileAvroReader } from './avro-reader.ts'
import { type AvroReader, avroPayloadDecoder, avroToPlain } from './payload-decoders.ts'

// avsc is the Confluent client's Avro library: the tests write Avro with the client's own copy.
interface AvscType extends AvroReader {
  toBuffer(value: unknown): Buffer
}
const avsc = createRequire(import.meta.resolve('@kafkajs/confluent-schema-registry'))('avsc') as {
  Type: { forSchema(schema: unknown, options?: Record<string, unknown>): AvscType }
}

/** What the compiled reader must reproduce: avsc's own reader, then the plain conversion. */
const viaAvsc = (type: AvscType, bytes: Buffer): unknown => avroToPlain(type)(type.fromBuffer(bytes))

type Outcome = { ok: true; value: unknown } | { ok: false; message: string }
const outcome = (read: () => unknown): Outcome => {
  try {
    return { ok: true, value: read() }
  } catch (error) {
    return { ok: false, message: (error as Error).message }
  }
}
/** Outcomes compare by success and value; the two readers word their errors differently. */
const strip = (o: Outcome) => (o.ok ? o : { ok: false })

const everything = avsc.Type.forSchema({
  type: 'record',
  name: 'Everything',
  namespace: 'test.herald',
  fields: [
    { name: 'n', type: 'null' },
    { name: 'b', type: 'boolean' },
    { name: 'i', type: 'int' },
    { name: 'l', type: 'long' },
    { name: 'f', type: 'float' },
    { name: 'd', type: 'double' },
    { name: 'by', type: 'bytes' },
    { name: 's', type: 'string' },
    { name: 'fx', type: { type: 'fixed', name: 'Four', size: 4 } },
    { name: 'e', type: { type: 'enum', name: 'Level', symbols: ['info', 'warning', 'error'] } },
    { name: 'a', type: { type: 'array', items: 'string' } },
    { name: 'm', type: { type: 'map', values: 'long' } },
    { name: 'optional', type: ['null', 'string'], default: null },
    { name: 'nullable', type: ['null', 'string'] },
    { name: 'either', type: ['string', 'long'] },
    {
      name: 'inner',
      type: {
        type: 'record',
        name: 'Inner',
        fields: [
          { name: 'x', type: 'string' },
          { name: 'y', type: ['null', 'double'], default: null },
        ],
      },
    },
    { name: 'inners', type: { type: 'array', items: 'Inner' } },
    { name: 'maybeInner', type: ['null', 'Inner'], default: null },
    { name: 'lists', type: { type: 'map', values: { type: 'array', items: 'Level' } } },
  ],
})

// A string, an optional long and an array: enough to reach every kind of malformed input.
const small = avsc.Type.forSchema({
  type: 'record',
  name: 'Small',
  fields: [
    { name: 's', type: 'string' },
    { name: 'u', type: ['null', 'long'], default: null },
    { name: 'a', type: { type: 'array', items: 'boolean' } },
  ],
})
const readSmall = compileAvroReader(small) as (b: Buffer) => unknown

const text = fc.string({ unit: 'binary', maxLength: 80 })
const inner = fc.record({ x: text, y: fc.option(fc.double({ noNaN: true }), { nil: null }) })
const everythingValue = fc.record({
  n: fc.constant(null),
  b: fc.boolean(),
  i: fc.integer(),
  // avsc writes longs up to 2^52, whose zigzag form is exact in a double.
  l: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
  f: fc.float({ noNaN: true }),
  d: fc.double({ noNaN: true }),
  by: fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
  s: text,
  fx: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((bytes) => Buffer.from(bytes)),
  e: fc.constantFrom('info', 'warning', 'error'),
  a: fc.array(text, { maxLength: 70 }),
  m: fc.dictionary(fc.string({ maxLength: 8 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 })),
  optional: fc.option(text, { nil: null }),
  nullable: fc.option(text, { nil: null }),
  either: fc.oneof(text, fc.integer()),
  inner,
  inners: fc.array(inner, { maxLength: 5 }),
  maybeInner: fc.option(inner, { nil: null }),
  lists: fc.dictionary(
    fc.string({ maxLength: 8 }),
    fc.array(fc.constantFrom('info', 'error'), { maxLength: 3 }),
  ),
})

describe('compileAvroReader', () => {
  const read = compileAvroReader(everything)
  assert.ok(read, 'every type of the test schema is read')

  it('reads every Avro type as avsc and the plain conversion do', () => {
    fc.assert(
      fc.property(everythingValue, (value) => {
        const bytes = everything.toBuffer(value)
        assert.deepEqual(read(bytes), viaAvsc(everything, bytes))
      }),
      { numRuns: 400 },
    )
  })

  it('leaves out a null whose default is null, keeps one without a default, and writes bytes as base64', () => {
    const value = fc.sample(everythingValue, { seed: 7, numRuns: 1 })[0] as Record<string, unknown>
    const bytes = everything.toBuffer({
      ...value,
      optional: null,
      nullable: null,
      by: Buffer.from([1, 2, 255]),
    })
    const plain = read(bytes) as Record<string, unknown>
    assert.equal('optional' in plain, false)
    assert.equal(plain.nullable, null)
    assert.equal(plain.n, null, 'a field of type null has no default: its null stays')
    assert.equal(plain.by, Buffer.from([1, 2, 255]).toString('base64'))
    assert.equal(Object.getPrototypeOf(plain), Object.prototype)
  })

  it('keeps a map key named __proto__ as a plain key', () => {
    const type = avsc.Type.forSchema({ type: 'map', values: 'string' })
    const plain = (compileAvroReader(type) as (b: Buffer) => unknown)(
      type.toBuffer(JSON.parse('{"__proto__": "x", "a": "b"}')),
    ) as Record<string, unknown>
    assert.deepEqual(Object.keys(plain), ['__proto__', 'a'])
    assert.equal(Object.getPrototypeOf(plain), Object.prototype)
  })

  it('refuses every truncation of a value, and trailing bytes', () => {
    fc.assert(
      fc.property(everythingValue, (value) => {
        const bytes = everything.toBuffer(value)
        for (let cut = 0; cut < bytes.length; cut++) assert.throws(() => read(bytes.subarray(0, cut)))
        assert.throws(() => read(Buffer.concat([bytes, Buffer.from([0])])), /trailing data/)
      }),
      { numRuns: 50 },
    )
  })

  it('agrees with avsc on random bytes: fails where it fails, reads what it reads', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 24 }),
      // Mostly well-formed: a short string, then noise.
      fc
        .tuple(fc.integer({ min: 0, max: 6 }), fc.uint8Array({ maxLength: 12 }))
        .map(([n, rest]) => Uint8Array.from([n * 2, ...Array.from({ length: n }, () => 97), ...rest])),
    )
    fc.assert(
      fc.property(bytes, (raw) => {
        const buffer = Buffer.from(raw)
        const mine = outcome(() => readSmall(buffer))
        // Where avsc would build every element a count announces before it notices the bytes
        // cannot hold them, and exhaust the heap, it is not asked: a block count beyond the
        // bytes left (refused here as such), and a varint cut off by the end of the bytes
        // (refused here as truncated), which avsc reads as the count its bytes so far make.
        fc.pre(!(mine.ok === false && /invalid block count/.test(mine.message)))
        fc.pre(!(mine.ok === false && mine.message === 'truncated buffer' && (buffer.at(-1) ?? 0) >= 0x80))
        const theirs = outcome(() => viaAvsc(small, buffer))
        assert.deepEqual(strip(mine), strip(theirs), buffer.toString('hex'))
      }),
      { numRuns: 3_000 },
    )
  })

  it('refuses block counts the bytes left cannot hold, before allocating for them', () => {
    const strings = avsc.Type.forSchema({ type: 'array', items: 'string' })
    const readStrings = compileAvroReader(strings) as (b: Buffer) => unknown
    // A block of 2^40 strings, then nothing.
    assert.throws(() => readStrings(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x40])), /block count/)
    // The input that once exhausted the heap of a property run (through avsc): an empty
    // string, a null, then a block of 2^29 booleans in 7 bytes.
    const crafted = Buffer.from([0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x04])
    assert.throws(() => readSmall(crafted), /invalid block count: 536870912/)
    // Another: a negative count of 76,889,665 booleans whose byte size is cut off. The count is
    // judged before the size is read.
    const sized = Buffer.from('046161020181f9a949', 'hex')
    assert.throws(() => readSmall(sized), /invalid block count: 76889665/)
    const decoded = avroPayloadDecoder(3, small as AvscType).decode(crafted)
    assert.equal(decoded.ok, false)
    assert.equal(!decoded.ok && decoded.code, 'payload_undecodable')
    // Items that take no bytes (nulls) are bounded by the message's bytes instead: two in two.
    const nulls = avsc.Type.forSchema({ type: 'array', items: 'null' })
    const readNulls = compileAvroReader(nulls) as (b: Buffer) => unknown
    assert.deepEqual(readNulls(nulls.toBuffer([null, null])), [null, null])
    assert.throws(() => readNulls(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04, 0x00])), /block count/)
  })

  it('refuses more items than the message has bytes, counted over all its blocks and nesting', () => {
    // Items that take no bytes (nulls, empty records) are bounded by no block's bytes: only a
    // count of every item the message announces stops a few bytes from building millions.
    const varint = (n: number): number[] => {
      const bytes: number[] = []
      for (let v = n * 2; ; v = Math.floor(v / 128)) {
        if (v < 128) return [...bytes, v]
        bytes.push((v % 128) | 0x80)
      }
    }
    const blocks = (count: number, size: number): number[] =>
      Array.from({ length: count }, () => varint(size)).flat()
    const nullsIn = avsc.Type.forSchema({
      type: 'record',
      name: 'E',
      fields: [{ name: 'x', type: { type: 'array', items: 'null' } }],
    })
    const read = compileAvroReader(nullsIn) as (b: Buffer) => unknown
    // The reviewer's 121 bytes: 40 blocks of a million nulls, then the end, 40 million items.
    const crafted = Buffer.from([...blocks(40, 1_000_000), 0])
    assert.equal(crafted.length, 121)
    assert.throws(() => read(crafted), /invalid block count/)
    const decoded = avroPayloadDecoder(9, nullsIn as AvscType).decode(crafted)
    assert.equal(!decoded.ok && decoded.code, 'payload_undecodable')
    // Blocks of a few items each add up: 300 blocks of 10 nulls in 301 bytes.
    assert.throws(() => read(Buffer.from([...blocks(300, 10), 0])), /invalid block count/)
    // Nesting: 30 arrays in one block, each announcing 10 nulls.
    const nested = avsc.Type.forSchema({ type: 'array', items: { type: 'array', items: 'null' } })
    const readNested = compileAvroReader(nested) as (b: Buffer) => unknown
    const inner = [...varint(10), 0]
    const deep = Buffer.from([...varint(30), ...Array.from({ length: 30 }, () => inner).flat(), 0])
    assert.throws(() => readNested(deep), /invalid block count/)
    // Maps: 30 entries (one byte of key each) of 10 empty records.
    const maps = avsc.Type.forSchema({
      type: 'map',
      values: { type: 'array', items: { type: 'record', name: 'Empty', fields: [] } },
    })
    const readMaps = compileAvroReader(maps) as (b: Buffer) => unknown
    const entry = (k: number) => [...varint(1), 97 + (k % 26), ...inner]
    const entries = Buffer.from([...varint(30), ...Array.from({ length: 30 }, (_, k) => entry(k)).flat(), 0])
    assert.throws(() => readMaps(entries), /invalid block count/)
    // One block of 6,000 nulls in 3 bytes.
    const one = nullsIn.toBuffer({ x: Array.from({ length: 6_000 }, () => null) })
    assert.equal(one.length, 3)
    assert.throws(() => read(one), /invalid block count/)
    // A message with bytes enough for its items reads as avsc reads it.
    const withText = avsc.Type.forSchema({
      type: 'record',
      name: 'F',
      fields: [
        { name: 's', type: 'string' },
        { name: 'x', type: { type: 'array', items: 'null' } },
      ],
    })
    const value = { s: 'x'.repeat(40), x: [null, null, null] }
    assert.deepEqual((compileAvroReader(withText) as (b: Buffer) => unknown)(withText.toBuffer(value)), value)
  })

  it('reads a payload in place from a start offset, as it reads the payload alone', () => {
    const strings = avsc.Type.forSchema({ type: 'array', items: 'string' })
    const read = compileAvroReader(strings) as (b: Buffer, start?: number) => unknown
    const payload = strings.toBuffer(['ascii', 'naïve', 'x'.repeat(70), ''])
    // A header of bytes that would not read as Avro: nothing of it may be read.
    const framed = Buffer.concat([Buffer.from([0x00, 0xff, 0x80, 0x81, 0x82]), payload])
    assert.deepEqual(read(framed, 5), read(payload))
    const decoder = avroPayloadDecoder(3, strings as unknown as AvscType)
    assert.deepEqual(decoder.decode(framed, 5), decoder.decode(payload))
    assert.equal(decoder.decode(framed.subarray(0, framed.length - 1), 5).ok, false)
  })

  it('reads wrapped unions and error records as avsc and the plain conversion do', () => {
    const wrapped = avsc.Type.forSchema(
      {
        type: 'record',
        name: 'Wrapped',
        namespace: 'test.herald',
        fields: [
          { name: 'u', type: ['null', 'string', 'long'], default: null },
          { name: 'v', type: ['null', 'string'] },
          {
            name: 'w',
            type: [
              { type: 'record', name: 'A', fields: [{ name: 'x', type: ['null', 'long'] }] },
              { type: 'record', name: 'B', fields: [{ name: 'by', type: 'bytes' }] },
              { type: 'array', items: 'int' },
            ],
          },
          { name: 'e', type: { type: 'error', name: 'Oops', fields: [{ name: 'why', type: 'string' }] } },
        ],
      },
      { wrapUnions: true },
    )
    const read = compileAvroReader(wrapped)
    assert.ok(read, 'wrapped unions and error records are read by the compiled reader')
    const value = fc.record({
      u: fc.oneof(
        fc.constant(null),
        text.map((s) => ({ string: s })),
        fc.integer().map((l) => ({ long: l })),
      ),
      v: fc.oneof(
        fc.constant(null),
        text.map((s) => ({ string: s })),
      ),
      w: fc.oneof(
        fc
          .option(fc.integer(), { nil: null })
          .map((x) => ({ 'test.herald.A': { x: x === null ? null : { long: x } } })),
        fc.uint8Array({ maxLength: 8 }).map((b) => ({ 'test.herald.B': { by: Buffer.from(b) } })),
        fc.array(fc.integer(), { maxLength: 4 }).map((a) => ({ array: a })),
      ),
      e: text.map((why) => ({ why })),
    })
    fc.assert(
      fc.property(value, (v) => {
        const bytes = wrapped.toBuffer(v)
        assert.deepEqual(read(bytes), viaAvsc(wrapped, bytes))
      }),
      { numRuns: 300 },
    )
    const plain = read(wrapped.toBuffer({ u: { long: 3 }, v: null, w: { array: [1] }, e: { why: 'no' } }))
    assert.deepEqual(plain, { u: { long: 3 }, v: null, w: { array: [1] }, e: { why: 'no' } })
  })

  it('keeps a field named __proto__ as a plain key, in records and wrapped union branches', () => {
    const type = avsc.Type.forSchema({
      type: 'record',
      name: 'Proto',
      fields: [{ name: '__proto__', type: { type: 'map', values: 'string' } }],
    })
    const read = compileAvroReader(type) as (b: Buffer) => unknown
    const bytes = type.toBuffer(JSON.parse('{"__proto__": {"polluted": "yes"}}'))
    for (const plain of [read(bytes), viaAvsc(type, bytes)] as Record<string, unknown>[]) {
      assert.equal(Object.getPrototypeOf(plain), Object.prototype)
      assert.deepEqual(Object.keys(plain), ['__proto__'])
      assert.equal((plain as { polluted?: string }).polluted, undefined)
    }
  })

  it('leaves schemas it does not read (registered logical types) to avsc', () => {
    class Timestamp {
      readonly at: number
      constructor(at: number) {
        this.at = at
      }
    }
    const logicalTypes = {
      'timestamp-millis': class extends (
        avsc as unknown as { types: { LogicalType: new (...a: unknown[]) => object } }
      ).types.LogicalType {
        _fromValue(value: number) {
          return new Timestamp(value)
        }
        _toValue(value: Timestamp) {
          return value.at
        }
      },
    }
    const logical = avsc.Type.forSchema(
      {
        type: 'record',
        name: 'Logical',
        fields: [{ name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } }],
      },
      { logicalTypes },
    )
    assert.equal(compileAvroReader(logical), undefined)
    const decoded = avroPayloadDecoder(9, logical).decode(logical.toBuffer({ at: new Timestamp(5) }))
    assert.deepEqual(decoded, { ok: true, value: { at: { at: 5 } } })
  })
})
