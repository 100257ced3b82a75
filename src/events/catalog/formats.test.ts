import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { timestampArbitrary } from './arbitraries.ts'
import {
  boundedText,
  instantOf,
  isNonBlankStringAttribute,
  isStringAttribute,
  isTimestamp,
  NON_BLANK_STRING_ATTRIBUTE_PATTERN,
  Seconds,
  STRING_ATTRIBUTE_PATTERN,
  TIMESTAMP_PATTERN,
  UUID_PATTERN,
  Uuid,
} from './formats.ts'

// ajv-formats' own date-time check, which the wire schemas use beside TIMESTAMP_PATTERN.
const { fullFormats } = createRequire(import.meta.url)('ajv-formats/dist/formats.js') as {
  fullFormats: Record<string, { validate: (s: string) => boolean }>
}
const pattern = new RegExp(TIMESTAMP_PATTERN, 'u')
const wire = (s: string) =>
  pattern.test(s) && (fullFormats['date-time'] as { validate: (s: string) => boolean }).validate(s)

describe('instantOf', () => {
  it('reads an RFC 3339 timestamp as milliseconds, and nothing else', () => {
    assert.equal(instantOf('2026-11-22T10:00:00Z'), Date.UTC(2026, 10, 22, 10))
    assert.equal(instantOf('2026-11-22T11:30:00+01:30'), Date.UTC(2026, 10, 22, 10))
    for (const s of ['2026-02-30T10:00:00Z', '2026-11-22T10:00:00', '2026-11-22', 'soon'])
      assert.equal(instantOf(s), undefined, s)
  })

  it('reads a leap second as the instant after the second before it', () => {
    assert.equal(instantOf('2016-12-31T23:59:60Z'), Date.UTC(2017, 0, 1))
    assert.equal(instantOf('2016-12-31T23:59:60.5Z'), Date.UTC(2017, 0, 1, 0, 0, 0, 500))
    assert.equal(instantOf('2017-01-01T00:59:60+01:00'), Date.UTC(2017, 0, 1))
  })
})

describe('isTimestamp', () => {
  it('accepts RFC 3339 timestamps with an offset, fractions and leap seconds', () => {
    for (const s of [
      '2026-11-22T10:00:00Z',
      '2026-11-22t10:00:00.123456789z',
      '2024-02-29T23:59:59+05:30',
      '2016-12-31T23:59:60Z',
      '2017-01-01T00:59:60+01:00',
    ]) {
      assert.ok(isTimestamp(s), s)
    }
  })

  it('rejects days, hours and offsets that do not exist', () => {
    for (const s of [
      '2026-02-29T10:00:00Z',
      '2026-04-31T10:00:00Z',
      '2026-11-22T24:00:00Z',
      '2026-11-22T10:60:00Z',
      '2026-11-22T10:00:60Z',
      '2026-11-22T10:00:00+24:00',
      '2026-11-22T10:00:00',
      '2026-11-22 10:00:00Z',
      '2026-11-22T10:00:00+0530',
      '2026-11-22',
      '',
    ]) {
      assert.ok(!isTimestamp(s), s)
    }
  })

  it('refuses an hour 24 or a minute 60 that the leap-second rule would map to 23:59 UTC', () => {
    // ajv-formats' date-time takes both (its leap-second check runs on any hour and minute),
    // and neither names an instant: instantOf cannot read them.
    for (const s of [
      '2016-12-31T24:59:60+01:00',
      '2016-12-31T23:60:60+00:01',
      '2016-12-31T24:00:60+00:01',
      '2017-01-01T00:60:60+01:01',
    ]) {
      assert.ok(!isTimestamp(s), s)
      assert.ok(!wire(s), `the wire schema takes ${s}`)
      assert.equal(instantOf(s), undefined, s)
    }
  })

  it('reads every timestamp it accepts as an instant', () => {
    const edges = fc.constantFrom('00', '01', '22', '23', '24', '58', '59', '60', '99')
    const shaped = fc
      .tuple(
        fc.constantFrom('2016-12-31', '2017-01-01', '2024-02-29'),
        edges,
        edges,
        fc.constantFrom('59', '60'),
        fc.constantFrom('Z', '+00:00', '+01:00', '-01:00', '+00:01', '-00:01', '+01:01', '+23:59'),
      )
      .map(([d, h, m, s, z]) => `${d}T${h}:${m}:${s}${z}`)
    fc.assert(
      fc.property(shaped, (s) => {
        if (isTimestamp(s)) assert.ok(Number.isFinite(instantOf(s)), s)
      }),
      { numRuns: 5_000 },
    )
  })

  it('agrees with the wire schema on generated timestamps', () => {
    fc.assert(
      fc.property(timestampArbitrary(), (s) => {
        assert.ok(isTimestamp(s) && wire(s), s)
      }),
      { numRuns: 2_000 },
    )
  })

  it('agrees with the wire schema on timestamp-shaped noise', () => {
    const digits = (n: number) => fc.stringMatching(new RegExp(`^\\d{${n}}$`))
    const noise = fc
      .tuple(
        digits(4),
        digits(2),
        digits(2),
        fc.constantFrom('T', 't', ' '),
        digits(2),
        digits(2),
        digits(2),
        fc.constantFrom('', '.5', '.000001', '.', '.5a'),
        fc.oneof(
          fc.constantFrom('Z', 'z', '', 'Zz', '+0530', '+05', ' Z'),
          fc.tuple(fc.constantFrom('+', '-'), digits(2), digits(2)).map(([a, b, c]) => `${a}${b}:${c}`),
        ),
      )
      .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${z}`)
    fc.assert(
      fc.property(noise, (s) => {
        assert.equal(isTimestamp(s), wire(s), s)
      }),
      { numRuns: 5_000 },
    )
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        assert.equal(isTimestamp(s), wire(s), s)
      }),
      { numRuns: 2_000 },
    )
  })
})

describe('Uuid', () => {
  const uuid = new RegExp(UUID_PATTERN, 'u')
  // ajv-formats' `uuid`, which the wire schema uses beside UUID_PATTERN, is a regular expression.
  const format = fullFormats.uuid as unknown as RegExp

  it('takes either case, and nothing the wire format would refuse', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.boolean(), (id, upper) => {
        const s = upper ? id.toUpperCase() : id
        assert.ok(Uuid.is(s) && uuid.test(s) && format.test(s), s)
      }),
    )
    for (const s of [
      '0b0c7f3e1b2a4c5d9e8f123456789abc',
      '0b0c7f3e-1b2a-4c5d-9e8f-123456789ab',
      'cfg-1',
      '',
    ]) {
      assert.ok(!Uuid.is(s), s)
    }
  })

  it("refuses the urn:uuid: prefix ajv's format alone would take", () => {
    const s = 'urn:uuid:0b0c7f3e-1b2a-4c5d-9e8f-123456789abc'
    assert.ok(format.test(s))
    assert.ok(!Uuid.is(s))
  })
})

describe('isStringAttribute', () => {
  // Strings of any UTF-16 units, lone surrogates and control characters among them, and of
  // whitespace: what the patterns the wire schema states must judge as the codec does.
  const units = fc.oneof(
    fc.string({ unit: 'binary' }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)) }),
    fc.string({ unit: fc.constantFrom(' ', '\u00a0', '\u2028', '\ufeff', '\t', 'x', '\ud83d', '\ude00') }),
  )

  it('judges as STRING_ATTRIBUTE_PATTERN does, under JSON Schema’s Unicode semantics', () => {
    const pattern = new RegExp(STRING_ATTRIBUTE_PATTERN, 'u')
    fc.assert(
      fc.property(units, (s) => assert.equal(isStringAttribute(s), pattern.test(s), JSON.stringify(s))),
      { numRuns: 5_000 },
    )
  })

  it('judges as NON_BLANK_STRING_ATTRIBUTE_PATTERN does, the not-blank check included', () => {
    const pattern = new RegExp(NON_BLANK_STRING_ATTRIBUTE_PATTERN, 'u')
    fc.assert(
      fc.property(units, (s) =>
        assert.equal(isNonBlankStringAttribute(s), pattern.test(s), JSON.stringify(s)),
      ),
      { numRuns: 5_000 },
    )
  })

  it('takes any text, pairs included, and refuses each forbidden character', () => {
    for (const s of ['', 'évt 😀', ' \u00a0x', '\u00a0', '\u00a0'.repeat(3)])
      assert.ok(isStringAttribute(s), s)
    for (const c of ['\u0000', '\t', '\u001f', '\u007f', '\u0085', '\u009f', '\ud800', '\udfff'])
      assert.equal(isStringAttribute(`a${c}b`), false, JSON.stringify(c))
    assert.equal(isNonBlankStringAttribute(' \u00a0\u3000'), false)
  })
})

describe('boundedText', () => {
  it("counts code points, as JSON Schema's maxLength does", () => {
    const upTo3 = boundedText(3)
    assert.ok(upTo3.is('abc'))
    assert.ok(!upTo3.is('abcd'))
    assert.ok(!upTo3.is(''))
    // Three code points, six UTF-16 units.
    assert.ok(upTo3.is('\u{1F6A8}\u{1F6A8}\u{1F6A8}'))
    assert.ok(!upTo3.is('\u{1F6A8}\u{1F6A8}\u{1F6A8}\u{1F6A8}'))
  })
})

describe('Seconds', () => {
  it('takes a finite number of at least 0, and not a literal too large for a number', () => {
    for (const n of [0, 1.5, 86_400]) assert.ok(Seconds.is(n), String(n))
    // JSON.parse reads 1e400 as Infinity, which JSON cannot write back (it becomes null).
    const tooLarge = (JSON.parse('{"s":1e400}') as { s: number }).s
    for (const n of [-1, tooLarge, Number.NaN]) assert.equal(Seconds.is(n), false, String(n))
  })
})
