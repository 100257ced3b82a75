import type { FieldIssue } from '../errors/index.ts'
import { decodeEngineEvent, type EngineEvent, eventKey } from '../events/index.ts'
import { createJsonValueScanner, type ReadValue } from './json-values.ts'
import { utf8Text } from './utf8.ts'

/** One event as read, with where it was: `line 7` (where it begins) or `[3]` (in a JSON array). */
export interface InputRecord {
  readonly where: string
  readonly value: unknown
}

/** An input problem at one place: a line that is not JSON, or an event's bad field. */
export interface InputProblem {
  readonly where: string
  readonly issues: readonly FieldIssue[]
}

export interface ParsedInput {
  readonly records: readonly InputRecord[]
  readonly problems: readonly InputProblem[]
}

/** A value read by the scanner, sorted into a record or a problem. */
export const sortValues = (
  read: readonly ReadValue[],
  into: { records: InputRecord[]; problems: InputProblem[] },
) => {
  for (const item of read) {
    if ('value' in item) into.records.push(item)
    else into.problems.push(item)
  }
}

/**
 * Reads events from text in any of the forms producers keep them (`createJsonValueScanner`): a
 * JSON array; NDJSON (one event per line, blank lines ignored); one JSON object, or several one
 * after another, pretty-printed or not (`jq .` output).
 *
 * @example
 * parseEventInput('{"id":"a",...}\n{"id":"b",...}\n').records.map((r) => r.where) // ['line 1', 'line 2']
 */
export const parseEventInput = (input: string): ParsedInput => {
  const scanner = createJsonValueScanner()
  const parsed = { records: [] as InputRecord[], problems: [] as InputProblem[] }
  sortValues(scanner.push(input), parsed)
  sortValues(scanner.end(), parsed)
  return parsed
}

/** One record checked: the event and its length as JSON, or what is wrong with it. */
export type CheckedRecord =
  | { readonly event: EngineEvent; readonly bytes: number }
  | { readonly problem: InputProblem }

export interface EventCheckerOptions {
  /** An event longer as JSON is flagged: no request could carry it. */
  readonly maxEventBytes?: number
  /** How many (account, source, id) are remembered for flagging a repeat; default all of them. */
  readonly remember?: number
}

/**
 * Checks records one at a time against the event catalog, as Herald will; flags a repeated
 * (account, source, id), which Herald would reject in one batch and drop across batches
 * (events of one source and id for two accounts are two events to Herald); and with
 * `maxEventBytes` an event longer as JSON, which no request could carry, so the batches before
 * it would go out before it failed. Remembers the keys seen, or the last `remember` of them.
 */
export const createEventChecker = (options: EventCheckerOptions = {}) => {
  const seen = new Map<string, string>()
  const remember = options.remember ?? Number.POSITIVE_INFINITY
  return ({ where, value }: InputRecord): CheckedRecord => {
    const decoded = decodeEngineEvent(value)
    if (!decoded.ok) return { problem: { where, issues: decoded.issues } }
    const bytes = Buffer.byteLength(JSON.stringify(decoded.value))
    if (options.maxEventBytes !== undefined && bytes > options.maxEventBytes)
      return {
        problem: { where, issues: [{ path: '(event)', message: tooLarge(bytes, options.maxEventBytes) }] },
      }
    const key = eventKey(decoded.value)
    const first = seen.get(key)
    if (first !== undefined)
      return {
        problem: {
          where,
          issues: [{ path: 'id', message: `repeats the account, source and id of ${first}` }],
        },
      }
    seen.set(key, where)
    if (seen.size > remember) seen.delete(seen.keys().next().value as string)
    return { event: decoded.value, bytes }
  }
}

/**
 * The values of `input` (chunks of UTF-8 bytes or text) as they are read, in any of the forms
 * `parseEventInput` reads; never the whole text at once. Rejects with a `NotUtf8Error` at the
 * first byte that is not UTF-8.
 */
export async function* readEventInput(input: AsyncIterable<Uint8Array | string>): AsyncGenerator<ReadValue> {
  const scanner = createJsonValueScanner()
  for await (const text of utf8Text(input)) yield* scanner.push(text)
  yield* scanner.end()
}

const tooLarge = (bytes: number, maxEventBytes: number): string =>
  `is ${bytes} bytes as JSON, more than one request to Herald holds (${maxEventBytes + 2} bytes)`

/** The report of bad input, one line per issue, at most `limit` lines. */
export const describeProblems = (problems: readonly InputProblem[], limit = 50): string => {
  const lines = problems.flatMap(({ where, issues }) =>
    issues.map((i) => `  ${where}: ${i.path}: ${i.message}`),
  )
  const shown = lines.slice(0, limit)
  if (lines.length > limit) shown.push(`  … and ${lines.length - limit} more`)
  return shown.join('\n')
}
