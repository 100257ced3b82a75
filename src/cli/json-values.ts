import type { FieldIssue } from '../errors/index.ts'

/** One value read: where it was (`line 7` where it began, or `[3]` in a JSON array) and what. */
export type ReadValue =
  | { readonly where: string; readonly value: unknown }
  | { readonly where: string; readonly issues: readonly FieldIssue[] }

/** Text of one value longer than this is not kept: no event Herald takes is anywhere near it. */
const MAX_VALUE_CHARS = 64 * 1024 * 1024

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const NEWLINE = 0x0a

const isSpace = (c: number) => c === 0x20 || c === NEWLINE || c === 0x0d || c === 0x09

/**
 * Splits text, fed in chunks of any size, into the JSON values it holds: one JSON array (its
 * elements, `[i]`), or a stream of values one after another, each named by the line it begins
 * on: NDJSON (one per line), one pretty-printed object, or several (`jq .` output) alike. The
 * scanner only follows strings and brackets; each value's text is parsed on its own, so a line
 * that is not JSON is one problem, not the end of the input. In a stream, a line that begins
 * with `{` at its first column while a value is still open (the open one is broken: a line
 * `{oops`) starts a new value, as does any line after a string left open at a line's end, which
 * JSON never allows.
 *
 * @example
 * const scanner = createJsonValueScanner()
 * scanner.push('{"id":"a"}\n{"id":') // [{ where: 'line 1', value: { id: 'a' } }]
 * scanner.push('"b"}\n')              // [{ where: 'line 2', value: { id: 'b' } }]
 * scanner.end()                       // []
 */
export const createJsonValueScanner = () => {
  let mode: 'start' | 'stream' | 'array' | 'after' = 'start'
  let line = 1
  let atLineStart = true
  // The value under way: its text so far (parts), its first line, bracket depth, string state.
  let parts: string[] = []
  let chars = 0
  let open = false
  let scalar = false
  let depth = 0
  let inString = false
  let escaped = false
  let startLine = 0
  let index = 0
  let trailing = false

  const where = () => (mode === 'array' ? `[${index}]` : `line ${startLine}`)

  const finish = (out: ReadValue[], broken?: string) => {
    const at = where()
    if (mode === 'array') index++
    const text = parts.join('')
    parts = []
    open = false
    if (chars > MAX_VALUE_CHARS) {
      out.push({
        where: at,
        issues: [{ path: '(event)', message: `is longer than ${MAX_VALUE_CHARS} characters` }],
      })
    } else if (broken !== undefined) {
      out.push({
        where: at,
        issues: [{ path: mode === 'array' ? '(event)' : '(line)', message: `not JSON: ${broken}` }],
      })
    } else {
      try {
        out.push({ where: at, value: JSON.parse(text) as unknown })
      } catch (error) {
        out.push({
          where: at,
          issues: [
            {
              path: mode === 'array' ? '(event)' : '(line)',
              message: `not JSON: ${(error as Error).message}`,
            },
          ],
        })
      }
    }
    chars = 0
  }

  const begin = (scalarValue: boolean) => {
    open = true
    scalar = scalarValue
    depth = 0
    inString = false
    escaped = false
    startLine = line
  }

  const push = (chunk: string): ReadValue[] => {
    const out: ReadValue[] = []
    let from = 0
    let i = 0
    // Keeps the text of the value under way from `from` up to `to`.
    const keep = (to: number) => {
      if (open && to > from) {
        if (chars <= MAX_VALUE_CHARS) parts.push(chunk.slice(from, to))
        chars += to - from
      }
    }
    if (mode === 'start' && chunk.charCodeAt(0) === 0xfeff) i = 1
    for (; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i)
      const lineStart = atLineStart
      atLineStart = c === NEWLINE
      if (open) {
        if (inString) {
          if (escaped) escaped = false
          else if (c === BACKSLASH) escaped = true
          else if (c === QUOTE) inString = false
          else if (c === NEWLINE) {
            keep(i)
            finish(out, `line ${line} ends inside a string`)
            line++
            from = i + 1
          }
          continue
        }
        if (scalar) {
          if (c === QUOTE) inString = true
          else if (mode === 'stream' ? c === NEWLINE : c === COMMA || c === CLOSE_BRACKET) {
            keep(i)
            finish(out)
            from = i + 1
            if (c === CLOSE_BRACKET) mode = 'after'
          }
          if (c === NEWLINE) line++
          continue
        }
        if (lineStart && c === OPEN_BRACE && mode === 'stream') {
          keep(i)
          finish(out, `it ends at line ${line - 1} without closing all its brackets`)
          begin(false)
          depth = 1
          from = i
          continue
        }
        if (c === QUOTE) inString = true
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++
        else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) {
          keep(i + 1)
          finish(out)
          from = i + 1
        }
        if (c === NEWLINE) line++
        continue
      }
      if (c === NEWLINE) line++
      if (isSpace(c)) continue
      if (mode === 'start') {
        if (c === OPEN_BRACKET) {
          mode = 'array'
          continue
        }
        mode = 'stream'
      }
      if (mode === 'after') {
        if (!trailing) {
          trailing = true
          out.push({
            where: `line ${line}`,
            issues: [{ path: '(input)', message: 'text after the JSON array that holds the events' }],
          })
        }
        continue
      }
      if (mode === 'array') {
        if (c === COMMA) continue
        if (c === CLOSE_BRACKET) {
          mode = 'after'
          continue
        }
      }
      from = i
      if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        begin(false)
        depth = 1
      } else {
        begin(true)
        if (c === QUOTE) inString = true
      }
    }
    keep(chunk.length)
    return out
  }

  const end = (): ReadValue[] => {
    const out: ReadValue[] = []
    if (open) {
      if (scalar && !inString) finish(out)
      else finish(out, 'the input ends inside it')
    }
    if (mode === 'array')
      out.push({
        where: `line ${line}`,
        issues: [{ path: '(input)', message: 'the JSON array is not closed' }],
      })
    return out
  }

  return { push, end }
}
