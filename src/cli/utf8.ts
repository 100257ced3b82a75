/** Input that is not UTF-8: where its first bad byte is. */
export class NotUtf8Error extends Error {
  /** The bad byte's offset from the start of the input, from 0. */
  readonly offset: number
  /** The line it is on, from 1. */
  readonly line: number

  constructor(offset: number, line: number, byte: number, cutOff = false) {
    const at = `offset ${offset} (line ${line})`
    super(
      cutOff
        ? `the character begun by byte 0x${byte.toString(16).padStart(2, '0')} at ${at} is cut off by the end of the input: it is not UTF-8 text`
        : `byte 0x${byte.toString(16).padStart(2, '0')} at ${at} is not UTF-8: the input is not UTF-8 text`,
    )
    this.name = 'NotUtf8Error'
    this.offset = offset
    this.line = line
  }
}

/**
 * Decodes `input` as UTF-8 chunk by chunk, refusing (`NotUtf8Error`, naming the offset and line
 * of the first bad byte) input that is not: a lenient decoder would replace each bad byte with
 * U+FFFD, so what is sent would not be what was read, and nothing would say so. Strings pass
 * through as they are. A byte-order mark is dropped, as `TextDecoder` drops it.
 *
 * @example
 * for await (const text of utf8Text(process.stdin)) ...
 */
export async function* utf8Text(input: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8')
  let offset = 0
  let line = 1
  // The character under way: how many continuation bytes it still needs, the bounds of the next
  // one (narrower after E0, ED, F0, F4: no overlong forms, surrogates or code points past
  // U+10FFFF), and where it began.
  let need = 0
  let low = 0x80
  let high = 0xbf
  let start = 0
  let startLine = 1
  let first = 0
  for await (const chunk of input) {
    if (typeof chunk === 'string') {
      yield chunk
      continue
    }
    for (let i = 0; i < chunk.length; i++, offset++) {
      const byte = chunk[i] as number
      if (need > 0) {
        if (byte < low || byte > high) throw new NotUtf8Error(start, startLine, first)
        need--
        low = 0x80
        high = 0xbf
        continue
      }
      if (byte < 0x80) {
        if (byte === 0x0a) line++
        continue
      }
      start = offset
      startLine = line
      first = byte
      if (byte >= 0xc2 && byte <= 0xdf) need = 1
      else if (byte >= 0xe0 && byte <= 0xef) {
        need = 2
        if (byte === 0xe0) low = 0xa0
        else if (byte === 0xed) high = 0x9f
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        need = 3
        if (byte === 0xf0) low = 0x90
        else if (byte === 0xf4) high = 0x8f
      } else throw new NotUtf8Error(offset, line, byte)
    }
    const text = decoder.decode(chunk, { stream: true })
    if (text !== '') yield text
  }
  if (need > 0) throw new NotUtf8Error(start, startLine, first, true)
  const rest = decoder.decode()
  if (rest !== '') yield rest
}
