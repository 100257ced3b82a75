/**
 * The parts of an avsc type this module reads. The Confluent registry client hands Herald
 * avsc types for Avro schemas; reading them structurally keeps Herald independent of avsc.
 */
export interface AvroTypeLike {
  readonly typeName?: string
  readonly fields?: readonly AvroFieldLike[]
  readonly itemsType?: AvroTypeLike
  readonly valuesType?: AvroTypeLike
  readonly types?: readonly AvroTypeLike[]
  readonly symbols?: readonly string[]
  readonly size?: number
  /** The key a wrapped union puts its value under: a named type's name, else its type name. */
  readonly branchName?: string
}

export interface AvroFieldLike {
  readonly name: string
  readonly type: AvroTypeLike
  defaultValue(): unknown
}

/**
 * Reads one whole Avro value, from `start` (0 by default) to the end of `bytes`: a framed
 * message is read in place, past its header. Throws on truncated, trailing or malformed bytes.
 */
export type AvroRead = (bytes: Buffer, start?: number) => unknown

/**
 * Compiles a reader of Avro binary for one schema, straight into the plain objects Herald
 * judges: records as plain objects (a null left out where the field's default is null — an
 * absent optional field — and kept where it has no default), bytes and fixed as base64, enums
 * as their symbols, unions as their branch's value (wrapped unions as `{ [branch]: value }`).
 * Returns `undefined` for a schema using what it does not read (logical types, which Herald's
 * registry client does not register); avsc reads those.
 *
 * Why not avsc's own reader: it makes a native call per string, which costs as much as
 * JSON.parse on string-heavy events. This one decodes the payload to one Latin-1 string once
 * and slices every ASCII string out of it, falling back to UTF-8 decoding for the others, so
 * an Avro event decodes several times faster than the same event as JSON.
 *
 * Differences from avsc, all on malformed input: array and map blocks may not announce more
 * elements than the bytes left could hold, a value is refused as soon as a read would pass
 * the end, and a message may not hold more array and map items in all than it has bytes. avsc
 * notices only at the end, after it has built every announced element: one crafted block
 * count of 2^28 exhausts the heap, which is why every schema Herald's registry client can
 * produce is read here.
 *
 * The count of all items is what bounds items that take no bytes (nulls, empty records): no
 * block's bytes do, so 121 bytes of blocks of a million nulls each would otherwise build 40
 * million. A valid message of items that take bytes never reaches it: each such item holds at
 * least one byte that none of the items nested in it holds (a length, a union's index, an
 * array's end). So what a message decodes to stays proportional to its size, as JSON's does,
 * and a batch of small messages cannot build more than a batch of large ones.
 *
 * @example
 * const read = compileAvroReader(avscType)
 * if (read !== undefined) read(payload) // { specversion: '1.0', id: 'e1', data: {...}, ... }
 */
export const compileAvroReader = (root: AvroTypeLike): AvroRead | undefined => {
  const refs: unknown[] = []
  const functions: string[] = []
  const named = new Map<AvroTypeLike, string>()
  let supported = true
  const ref = (value: unknown): string => {
    refs.push(value)
    return `k${refs.length - 1}`
  }

  // Fewest bytes a value of `type` takes, to bound block counts.
  const minSize = (type: AvroTypeLike, seen = new Set<AvroTypeLike>()): number => {
    if (seen.has(type)) return 0
    seen.add(type)
    switch (type.typeName) {
      case 'null':
        return 0
      case 'float':
        return 4
      case 'double':
        return 8
      case 'fixed':
        return type.size ?? 0
      case 'record':
      case 'error':
        return (type.fields ?? []).reduce((sum, f) => sum + minSize(f.type, seen), 0)
      default:
        return 1
    }
  }

  // An expression reading one value of `type` from the state (b, s, p, n).
  const read = (type: AvroTypeLike): string => {
    switch (type.typeName) {
      case 'null':
        return 'null'
      case 'boolean':
        return 'bool()'
      case 'int':
        return 'long()'
      case 'long':
        return 'safe(long())'
      case 'float':
        return 'float()'
      case 'double':
        return 'double()'
      case 'string':
        return 'str()'
      case 'bytes':
        return 'base64(long())'
      case 'fixed':
        return `base64(${type.size ?? 0})`
      case 'enum':
        return `sym(${ref(type.symbols ?? [])})`
      case 'record':
      case 'error':
      case 'array':
      case 'map':
      case 'union:unwrapped':
      case 'union:wrapped':
        return `${functionOf(type)}()`
      default:
        supported = false
        return 'undefined'
    }
  }

  const functionOf = (type: AvroTypeLike): string => {
    const existing = named.get(type)
    if (existing !== undefined) return existing
    const name = `r${named.size}`
    named.set(type, name)
    const body: string[] = []
    switch (type.typeName) {
      case 'record':
      case 'error':
        body.push('const o = {}')
        ;(type.fields ?? []).forEach((field, i) => {
          const key = JSON.stringify(field.name)
          body.push(`const v${i} = ${read(field.type)}`)
          // A field may be named __proto__: define it, never assign it (which would set the prototype).
          const set =
            field.name === '__proto__'
              ? `Object.defineProperty(o, ${key}, { value: v${i}, enumerable: true, writable: true, configurable: true })`
              : `o[${key}] = v${i}`
          body.push(field.defaultValue() === null ? `if (v${i} !== null) ${set}` : set)
        })
        body.push('return o')
        break
      case 'array': {
        const item = type.itemsType as AvroTypeLike
        body.push('const o = []')
        body.push(
          'for (let c = block(' +
            String(minSize(item)) +
            '); c !== 0; c = block(' +
            String(minSize(item)) +
            ')) {',
        )
        body.push(`  for (let i = 0; i < c; i++) o.push(${read(item)})`)
        body.push('}')
        body.push('return o')
        break
      }
      case 'map': {
        const values = type.valuesType as AvroTypeLike
        // A map entry takes at least its key's length byte.
        body.push('const o = {}')
        body.push(`for (let c = block(${1 + minSize(values)}); c !== 0; c = block(${1 + minSize(values)})) {`)
        body.push('  for (let i = 0; i < c; i++) {')
        body.push('    const key = str()')
        body.push(`    const value = ${read(values)}`)
        body.push(
          '    if (key === "__proto__") Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })',
        )
        body.push('    else o[key] = value')
        body.push('  }')
        body.push('}')
        body.push('return o')
        break
      }
      case 'union:unwrapped': {
        const branches = type.types ?? []
        body.push('const i = long()')
        branches.forEach((branch, i) => {
          body.push(`if (i === ${i}) return ${read(branch)}`)
        })
        body.push('throw new Error("invalid union index: " + i)')
        break
      }
      case 'union:wrapped': {
        // avsc's shape: null for the null branch, else { [branch name]: value }.
        const branches = type.types ?? []
        body.push('const i = long()')
        branches.forEach((branch, i) => {
          if (branch.typeName === 'null') body.push(`if (i === ${i}) return null`)
          else
            body.push(
              `if (i === ${i}) return { [${JSON.stringify(branch.branchName ?? branch.typeName)}]: ${read(branch)} }`,
            )
        })
        body.push('throw new Error("invalid union index: " + i)')
        break
      }
    }
    functions.push(`function ${name}() {\n  ${body.join('\n  ')}\n}`)
    return name
  }

  const top = read(root)
  if (!supported) return undefined
  const source = `${refs.map((_, i) => `const k${i} = refs[${i}]`).join('\n')}
// The state: the bytes, their Latin-1 string, the position, the end, and how many more items
// arrays and maps may announce.
let b, s, p, n, m
const truncated = () => { throw new Error('truncated buffer') }
function long() {
  let v = 0, k = 0, x, h
  do {
    if (p >= n) truncated()
    x = b[p++]; h = x & 0x80; v |= (x & 0x7f) << k; k += 7
  } while (h && k < 28)
  if (!h) return (v >> 1) ^ -(v & 1)
  let f = v, fk = 268435456
  do {
    if (p >= n) truncated()
    if (fk > 1e19) throw new Error('varint too long')
    x = b[p++]; f += (x & 0x7f) * fk; fk *= 128
  } while (x & 0x80)
  return (f % 2 ? -(f + 1) : f) / 2
}
// Zigzag decoding in floating point is exact while 2|v| fits in 53 bits (avsc's bound too).
function safe(v) {
  if (v > 4503599627370496 || v < -4503599627370496) throw new Error('potential precision loss')
  return v
}
function bool() {
  if (p >= n) truncated()
  return b[p++] !== 0
}
function float() {
  if (p + 4 > n) truncated()
  const v = b.readFloatLE(p); p += 4; return v
}
function double() {
  if (p + 8 > n) truncated()
  const v = b.readDoubleLE(p); p += 8; return v
}
function end(len) {
  if (len < 0) throw new Error('negative length')
  const e = p + len
  if (e > n) truncated()
  return e
}
// A string of ASCII bytes decodes to its Latin-1 slice: a substring of s, with no native call.
// Four bytes are tested per step by OR-ing plain element loads: a DataView would cost a native
// allocation per message and is no faster per read.
function str() {
  const e = end(long())
  let i = p
  while (i + 4 <= e && ((b[i] | b[i + 1] | b[i + 2] | b[i + 3]) & 0x80) === 0) i += 4
  while (i < e && b[i] < 0x80) i++
  const v = i === e ? s.slice(p, e) : b.utf8Slice(p, e)
  p = e
  return v
}
function base64(len) {
  const e = end(len)
  const v = b.base64Slice(p, e)
  p = e
  return v
}
function sym(symbols) {
  const i = long()
  const v = symbols[i]
  if (v === undefined) throw new Error('invalid enum index: ' + i)
  return v
}
// The count is judged before a negative one's byte size is read: an impossible count is refused
// as such, whatever follows it. Every item counts against the message's budget of items.
function block(min) {
  let c = long()
  const sized = c < 0
  if (sized) c = -c
  if (c * min > n - p) throw new Error('invalid block count: ' + c)
  if (c > m) throw new Error('invalid block count: ' + c + ', more items with those before it than the message has bytes')
  m -= c
  if (sized) long()
  return c
}
${functions.join('\n')}
return function readAvro(bytes, start = 0) {
  b = bytes; n = bytes.length; p = start; s = bytes.latin1Slice(0, n); m = n - start
  try {
    const value = ${top}
    if (p < n) throw new Error('trailing data')
    return value
  } finally {
    b = undefined; s = undefined
  }
}`
  // Generated from the schema's structure (names JSON-quoted) only, never from payloads.
  return new Function('refs', source)(refs) as AvroRead
}
